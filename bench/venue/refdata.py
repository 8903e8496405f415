"""Reference data: the one table of what the venue lists — symbol, stock locate, tick size,
round lot, reference price and price band per instrument — loaded from the config or
generated from a seed, published in the ITCH stock directory (R) and the ready line, and
frozen into numpy arrays the engine reads.

Prices are integers with 4 implied decimals (ITCH Price(4), OUCH Price). The band is a
LULD-like collar: orders priced outside [ref * (1 - band), ref * (1 + band)] (rounded
inward to the tick grid) are rejected, and market orders execute only inside it. Locate 0
is never used (ITCH reserves it for messages about no instrument).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickpath.runtime.core.errors import ConfigError

CENT = 100                   # one cent in Price(4) units
MIN_PRICE = 1                # 0.0001
MAX_ITCH_PRICE = (1 << 32) - 1   # ITCH Price(4) is a u32
DEFAULT_BAND = 0.05          # LULD tier 1 above $3: 5 %


@dataclass(frozen=True)
class Instrument:
    symbol: str
    ref_price: int           # Price(4)
    tick: int = CENT
    round_lot: int = 100
    band: float = DEFAULT_BAND


@dataclass(frozen=True)
class RefData:
    """Arrays are indexed by locate (row 0 unused)."""
    instruments: tuple
    symbols: np.ndarray      # uint8 (n + 1, 8), space padded
    tick: np.ndarray         # int64
    round_lot: np.ndarray
    ref_price: np.ndarray
    band_lo: np.ndarray      # lowest accepted price (on the grid)
    band_hi: np.ndarray      # highest accepted price (on the grid)
    sym_keys: np.ndarray     # uint64, sorted: the 8 symbol bytes as a big-endian integer
    sym_locs: np.ndarray     # int32: the locate of sym_keys[i]

    @property
    def n(self) -> int:
        return len(self.instruments)

    def locate(self, symbol: str) -> int:
        for i, ins in enumerate(self.instruments):
            if ins.symbol == symbol:
                return i + 1
        raise ConfigError("unknown symbol", symbol=symbol)

    def table(self) -> list[dict]:
        return [{"symbol": ins.symbol, "locate": i + 1, "tick": ins.tick,
                 "round_lot": ins.round_lot, "ref_price": ins.ref_price,
                 "band_lo": int(self.band_lo[i + 1]), "band_hi": int(self.band_hi[i + 1])}
                for i, ins in enumerate(self.instruments)]


def symbol_key(sym: bytes) -> int:
    return int.from_bytes(sym.ljust(8, b" ")[:8], "big")


def build(instruments) -> RefData:
    ins = tuple(instruments)
    if not 1 <= len(ins) <= 65534:
        raise ConfigError("instrument count out of range", n=len(ins), allowed="1..65534")
    n = len(ins)
    symbols = np.full((n + 1, 8), ord(" "), dtype=np.uint8)
    tick = np.zeros(n + 1, np.int64)
    lot = np.zeros(n + 1, np.int64)
    ref = np.zeros(n + 1, np.int64)
    lo = np.zeros(n + 1, np.int64)
    hi = np.zeros(n + 1, np.int64)
    seen = set()
    for k, s in enumerate(ins):
        raw = s.symbol.encode("ascii") if isinstance(s.symbol, str) else bytes(s.symbol)
        if not 1 <= len(raw) <= 8 or raw in seen or not raw.replace(b".", b"").isalnum():
            raise ConfigError("symbol must be 1-8 alphanumeric ASCII bytes, unique", symbol=s.symbol)
        seen.add(raw)
        if not (isinstance(s.tick, int) and s.tick >= 1):
            raise ConfigError("tick must be a positive integer (Price(4) units)", symbol=s.symbol, tick=s.tick)
        if not (isinstance(s.ref_price, int) and s.ref_price > 0 and s.ref_price % s.tick == 0):
            raise ConfigError("ref_price must be a positive multiple of tick", symbol=s.symbol,
                              ref_price=s.ref_price, tick=s.tick)
        if not 0.0 < s.band < 1.0 or not 1 <= s.round_lot <= 1_000_000:
            raise ConfigError("band in (0, 1) and round_lot in 1..1e6 required", symbol=s.symbol,
                              band=s.band, round_lot=s.round_lot)
        b_lo = -(-int(s.ref_price * (1.0 - s.band)) // s.tick) * s.tick   # round inward
        b_hi = int(s.ref_price * (1.0 + s.band)) // s.tick * s.tick
        if b_hi > MAX_ITCH_PRICE:
            raise ConfigError("band top beyond ITCH Price(4) range", symbol=s.symbol, band_hi=b_hi)
        symbols[k + 1, :len(raw)] = np.frombuffer(raw, np.uint8)
        tick[k + 1], lot[k + 1], ref[k + 1] = s.tick, s.round_lot, s.ref_price
        lo[k + 1], hi[k + 1] = max(b_lo, s.tick), b_hi
    keys = np.array([symbol_key(bytes(symbols[k])) for k in range(1, n + 1)], dtype=np.uint64)
    order = np.argsort(keys)
    return RefData(instruments=ins, symbols=symbols, tick=tick, round_lot=lot, ref_price=ref,
                   band_lo=lo, band_hi=hi, sym_keys=keys[order].copy(),
                   sym_locs=(order + 1).astype(np.int32))


def generate(n_instruments: int, seed: int, band: float = DEFAULT_BAND) -> RefData:
    """n distinct 4-letter symbols (AAAA, AAAB, ...), reference prices $5..$500 log-uniform
    on the cent grid, round lot 100."""
    if not 1 <= n_instruments <= 26 ** 4:
        raise ConfigError("instruments out of range", instruments=n_instruments, allowed="1..456976")
    rng = np.random.default_rng(seed)
    ref = (np.exp(rng.uniform(np.log(5), np.log(500), n_instruments)) * 100).astype(np.int64) * CENT
    out = []
    for k in range(n_instruments):
        v, s = k, ""
        for _ in range(4):
            s = chr(ord("A") + v % 26) + s
            v //= 26
        out.append(Instrument(symbol=s, ref_price=int(ref[k]), band=band))
    return build(out)


def from_config(rows: list[dict]) -> RefData:
    """[[instrument]] tables: symbol, ref_price (dollars, float) or ref_price4 (Price(4)),
    tick (dollars, default 0.01), round_lot (100), band (0.05)."""
    out = []
    allowed = {"symbol", "ref_price", "ref_price4", "tick", "round_lot", "band"}
    for r in rows:
        extra = set(r) - allowed
        if extra or "symbol" not in r:
            raise ConfigError("instrument needs symbol; unknown keys", keys=sorted(extra))
        tick = int(round(float(r.get("tick", 0.01)) * 10_000))
        ref4 = int(r["ref_price4"]) if "ref_price4" in r else int(round(float(r["ref_price"]) * 10_000))
        out.append(Instrument(symbol=str(r["symbol"]), ref_price=ref4, tick=tick,
                              round_lot=int(r.get("round_lot", 100)),
                              band=float(r.get("band", DEFAULT_BAND))))
    return build(out)
