"""UniverseBatcher: per-instrument price series from event records, batch indicators across
the whole universe on a schedule (on the GPU when the kernels backend is cupy).

A Python consumer thread drains the runtime's output ring into plain EVENT_DTYPE arrays and
hands them to `ingest` (this module does not know the ring). Trade prints - ITCH 'P'
(non-cross trade), 'C' (executed with price) and 'Q' (cross, FLAG_CROSS) - append price
(Price(4) / 1e4) and shares to the instrument's row in preallocated [n_instruments, window]
rings. Every `interval_ns`, `maybe_run(now_ns)` lays the rings out in time order (oldest
first, NaN-padded on the left for instruments with fewer points: the kernels skip leading
NaNs) into a preallocated matrix and runs the configured batch kernels over all instruments
at once. Mid prices need book state, which events alone do not carry: a caller that keeps
books pushes them with `push_prices`.

Nothing is dropped silently: events that are not trade prints, trade prints with a locate
outside [0, n_instruments) and prints with a zero price are counted in `counts`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE

from tickpath.kernels import batch
from tickpath.kernels._nb import JIT

PRICE_SCALE = 1e-4          # ITCH Price(4): 4 implied decimals
TRADE_TYPES = (ord("P"), ord("C"), ord("Q"))

# counts slots
C_EVENTS = 0        # events seen
C_TRADES = 1        # trade prints appended
C_NOT_TRADE = 2     # other message types (not used here, by design)
C_BAD_LOCATE = 3    # trade prints whose locate is outside the universe
C_ZERO_PRICE = 4    # trade prints without a price
N_COUNTS = 5
COUNT_NAMES = ("events", "trades", "not_trade", "bad_locate", "zero_price")


@njit(**JIT)
def _ingest(events, prices, volumes, n_written, counts):
    n_inst, window = prices.shape
    for i in range(events.shape[0]):
        ev = events[i]
        counts[C_EVENTS] += 1
        t = ev.msg_type
        if t != 80 and t != 67 and t != 81:          # 'P', 'C', 'Q'
            counts[C_NOT_TRADE] += 1
            continue
        loc = np.int64(ev.locate)
        if loc >= n_inst:
            counts[C_BAD_LOCATE] += 1
            continue
        if ev.price == 0:
            counts[C_ZERO_PRICE] += 1
            continue
        pos = n_written[loc] % window
        prices[loc, pos] = ev.price * PRICE_SCALE
        volumes[loc, pos] = np.float64(ev.shares)
        n_written[loc] += 1
        counts[C_TRADES] += 1


@njit(**JIT)
def _push(locs, values, vols, prices, volumes, n_written, counts):
    n_inst, window = prices.shape
    for i in range(locs.shape[0]):
        loc = locs[i]
        if loc < 0 or loc >= n_inst:
            counts[C_BAD_LOCATE] += 1
            continue
        pos = n_written[loc] % window
        prices[loc, pos] = values[i]
        volumes[loc, pos] = vols[i]
        n_written[loc] += 1
        counts[C_TRADES] += 1


@njit(**JIT)
def _layout(ring, n_written, out):
    """Time-ordered copy of each row (oldest first), NaN-padded on the left."""
    n_inst, window = ring.shape
    for r in range(n_inst):
        k = n_written[r]
        have = k if k < window else window
        pad = window - have
        for j in range(pad):
            out[r, j] = np.nan
        first = k - have
        for j in range(have):
            out[r, pad + j] = ring[r, (first + j) % window]


def default_indicators():
    """name -> callable(prices, volumes) over [n_instruments, window] matrices."""
    return {
        "sma20": lambda p, v: batch.sma(p, 20),
        "ema20": lambda p, v: batch.ema(p, 20),
        "rsi14": lambda p, v: batch.rsi(p, 14),
        "vwap50": lambda p, v: batch.vwap(p, v, 50),
    }


class UniverseBatcher:
    """Collects trade prices per instrument and runs batch indicators every interval_ns."""

    def __init__(self, n_instruments: int, window: int, interval_ns: int,
                 indicators: dict | None = None):
        if int(n_instruments) < 1 or int(n_instruments) > 65536:
            raise ConfigError("n_instruments out of range (locate is a u16)",
                              n_instruments=n_instruments)
        if int(window) < 2:
            raise ConfigError("window too short", window=window, minimum=2)
        if int(interval_ns) < 0:
            raise ConfigError("interval_ns must be >= 0", interval_ns=interval_ns)
        self.n_instruments = int(n_instruments)
        self.window = int(window)
        self.interval_ns = int(interval_ns)
        self.indicators = dict(indicators if indicators is not None else default_indicators())
        shape = (self.n_instruments, self.window)
        self._prices = np.full(shape, np.nan)
        self._volumes = np.zeros(shape)
        self._n_written = np.zeros(self.n_instruments, np.int64)
        self._ordered_prices = np.zeros(shape)  # zeros: the setup dry run reads them
        self._ordered_volumes = np.zeros(shape)  # zeros: the setup dry run reads them
        self.counts = np.zeros(N_COUNTS, np.int64)
        self.last_run_ns = None
        self.last = {}          # name -> latest value per instrument (or tuple of them)
        self.runs = 0
        # a dry run on the empty (all-NaN) universe: a period longer than the window, or any
        # other bad parameter, fails here at setup rather than at the first scheduled run
        for name, fn in self.indicators.items():
            try:
                fn(self._ordered_prices * np.nan, self._ordered_volumes)
            except ConfigError as exc:
                raise ConfigError("indicator does not fit the universe", indicator=name,
                                  window=self.window, error=str(exc)) from exc

    def ingest(self, events: np.ndarray) -> None:
        """Append the trade prints of a batch of event records."""
        if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
            raise ConfigError("events must be an EVENT_DTYPE array",
                              dtype=str(getattr(events, "dtype", type(events).__name__)))
        if events.ndim != 1:
            raise ConfigError("events must be 1-D", ndim=events.ndim)
        _ingest(events, self._prices, self._volumes, self._n_written, self.counts)

    def push_prices(self, locates, prices, volumes=None) -> None:
        """Append prices computed elsewhere (e.g. book mids) for the given locates."""
        locs = np.ascontiguousarray(locates, dtype=np.int64)
        vals = np.ascontiguousarray(prices, dtype=np.float64)
        vols = (np.zeros_like(vals) if volumes is None
                else np.ascontiguousarray(volumes, dtype=np.float64))
        if not (locs.shape == vals.shape == vols.shape) or locs.ndim != 1:
            raise ConfigError("locates, prices and volumes differ in shape",
                              locates=locs.shape, prices=vals.shape, volumes=vols.shape)
        if not np.isfinite(vals).all():
            raise ConfigError("prices must be finite", argument="prices")
        _push(locs, vals, vols, self._prices, self._volumes, self._n_written, self.counts)

    def points(self, locate: int) -> int:
        """How many points the instrument holds (at most window)."""
        return int(min(self._n_written[locate], self.window))

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """(prices, volumes) [n_instruments, window], oldest first, NaN-padded on the left."""
        _layout(self._prices, self._n_written, self._ordered_prices)
        _layout(self._volumes, self._n_written, self._ordered_volumes)
        return self._ordered_prices, self._ordered_volumes

    def run(self) -> dict:
        """Run every indicator over the universe now; returns name -> full result."""
        prices, volumes = self.series()
        results = {}
        for name, fn in self.indicators.items():
            res = fn(prices, volumes)
            results[name] = res
            self.last[name] = (tuple(r[:, -1] for r in res) if isinstance(res, tuple)
                               else res[:, -1])
        self.runs += 1
        return results

    def maybe_run(self, now_ns: int) -> dict | None:
        """Run if interval_ns has passed since the last run (the schedule); else None."""
        if self.last_run_ns is not None and now_ns - self.last_run_ns < self.interval_ns:
            return None
        self.last_run_ns = int(now_ns)
        return self.run()

    def stats(self) -> dict:
        return {name: int(self.counts[i]) for i, name in enumerate(COUNT_NAMES)}
