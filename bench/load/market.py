"""A seeded synthetic ITCH 5.0 market, and its packing into MoldUDP64 packets.

Realistic in shape, reproducible from a seed, fast (numba: about a million messages a
second or better). A session starts like NASDAQ's: system event 'O' (start of messages),
a stock directory (R) and a trading action 'T' (H) for every instrument, then 'S' and 'Q'
(start of system / market hours). Then order flow: adds (A, some F), deletes (D), partial
cancels (X), executions (E, some C), replaces (U) and non-displayed trades (P) in ratios
near those of a real TotalView day (adds ~ deletes, executions a few percent). Instruments
are drawn with Zipf-like popularity; each has a mid price on a one-cent grid doing a random
walk, and orders rest a few ticks from it. Every E/X/D/U/C references a live order: the
generator tracks live orders and picks recently added ones far more often than old ones
(most orders are touched soon after being added). Order references and match numbers rise.

Knobs (`generate`'s keyword arguments; the defaults make the flow every test was written
against, draw for draw): depth -- `levels_per_side` and `depth` ("near": a geometric number
of ticks from the mid, most at the touch; "uniform": any of the levels equally); instrument
count (1 .. 26^4; popularity stays Zipf-like); order lifetime -- `cancels` ("recent": the
touched order is a recently added one; "random": any live order equally); the message
`mix` (probabilities of add, delete, partial cancel, replace, execution; trades take the
rest); `max_live_orders` (the live set the generator tracks: deep books need more); and
`drain_from`: from that flow message on, every message deletes a random live order (a book
thinning out, as at the close), then, once no order is left, non-displayed trades.
FLOWS names the shallow, deep and wide flows the benchmarks report side by side.

`pack_mold` greedily packs the messages into MoldUDP64 packets (payload and message count
limits) and records, for each message, where its 6-byte timestamp lies in the packet
buffer: the load generator stamps its scheduled send time there (`stamp_timestamps`) just
before sending, so latency = completion - send needs no protocol change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed.moldudp64 import MoldPackets  # noqa: F401  (re-exported: bench's senders use it)
from tickpath.runtime.core.errors import ConfigError

TICK_PRICE4 = 100                      # one cent in Price(4) units
MARKET_OPEN_NS = 34_200 * 1_000_000_000  # 09:30:00 since midnight
MAX_LIVE_ORDERS = 1 << 16             # default live-set size the generator tracks
MAX_LIVE_ORDERS_LIMIT = 1 << 24
DEFAULT_MIX = (0.44, 0.30, 0.06, 0.09, 0.08)   # add, delete, cancel, replace, exec; P = rest

# action draw thresholds (cumulative probabilities) when orders are live
_P_ADD = 0.44
_P_DELETE = _P_ADD + 0.30
_P_CANCEL = _P_DELETE + 0.06
_P_REPLACE = _P_CANCEL + 0.09
_P_EXEC = _P_REPLACE + 0.08   # the rest (0.03) are P trades
_F_SHARE = 0.05               # adds that carry an MPID attribution (F)
_C_SHARE = 0.10               # executions that print at another price (C)

# where the bytes go: offsets (itch.A_PRICE...) and lengths from itch.py's one table
_A_BYTES, _F_BYTES, _D_BYTES, _X_BYTES, _U_BYTES, _E_BYTES, _C_BYTES, _P_BYTES = (
    itch.MESSAGE_BYTES[t] for t in "AFDXUECP")
_LONGEST_FLOW_BYTES = max(itch.MESSAGE_BYTES[t] for t in "AFDXUECP")
# E and C share their first fields (the generator writes C through the E offsets)
assert itch.BODY_FIELDS["C"][:3] == itch.BODY_FIELDS["E"]


@dataclass(frozen=True)
class Market:
    """ITCH messages back to back: message i is buf[offsets[i]:offsets[i+1]]."""
    buf: np.ndarray          # uint8
    offsets: np.ndarray      # int64[n + 1]
    types: np.ndarray        # uint8[n], the type byte of each message
    symbols: tuple           # 8-byte symbol of locate 1..n_instruments
    ref_prices: np.ndarray   # int64 Price(4) reference price of locate 1..n_instruments
    seed: int

    @property
    def n_messages(self) -> int:
        return len(self.types)

    def message(self, i: int) -> bytes:
        return self.buf[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def messages(self) -> list[bytes]:
        return [self.message(i) for i in range(self.n_messages)]


# ---- big-endian stores into a preallocated buffer (sizes fixed by the caller) ----

@njit(nogil=True, inline="always")
def _put(buf, o, value, n_bytes):
    for i in range(n_bytes):
        buf[o + i] = (value >> (8 * (n_bytes - 1 - i))) & 0xFF


@njit(nogil=True, inline="always")
def _header(buf, o, msg_type, locate, ts_ns):
    buf[o] = msg_type
    _put(buf, o + itch.LOCATE_OFFSET, locate, 2)
    _put(buf, o + itch.TRACKING_OFFSET, 0, 2)   # tracking number: NASDAQ-internal, zero here
    _put(buf, o + itch.TIMESTAMP_OFFSET, ts_ns, itch.TIMESTAMP_BYTES)


@njit(nogil=True, inline="always")
def _symbol(buf, o, symbols, loc):
    for i in range(8):
        buf[o + i] = symbols[loc - 1, i]


@njit(nogil=True, cache=True)
def _flow(seed, n, o, buf, offsets, types, symbols, cum_weight, mid, ts_start_ns,
          mean_gap_ns, recent_orders, cum_mix, levels_per_side, depth_uniform,
          random_cancels, max_live, drain_from):
    """Write n order-flow messages from buf[o:]; offsets/types already sized."""
    np.random.seed(seed)
    _P_ADD, _P_DELETE, _P_CANCEL, _P_REPLACE, _P_EXEC = (cum_mix[0], cum_mix[1], cum_mix[2],
                                                          cum_mix[3], cum_mix[4])
    MAX_LIVE_ORDERS = max_live
    live_ref = np.zeros(max_live, dtype=np.int64)
    live_loc = np.zeros(max_live, dtype=np.int64)
    live_side = np.zeros(max_live, dtype=np.int64)
    live_shares = np.zeros(max_live, dtype=np.int64)
    live_price = np.zeros(max_live, dtype=np.int64)
    n_live = 0
    next_ref = 1
    next_match = 1
    ts = ts_start_ns
    first = offsets.shape[0] - 1 - n
    for k in range(n):
        i = first + k
        offsets[i] = o
        ts += 1 + np.int64(np.random.exponential(mean_gap_ns))
        u = np.random.random()
        if n_live == 0:
            u = 0.0                          # nothing live: add
        elif n_live == MAX_LIVE_ORDERS and u < _P_ADD:
            u = _P_ADD                       # book full: delete instead
        # a recent live order (tail-biased): most orders die young
        j = n_live - 1 - min(np.int64(np.random.exponential(recent_orders)), n_live - 1)
        if random_cancels and n_live > 0:
            j = np.random.randint(0, n_live)
        draining = 0 <= drain_from <= k and n_live > 0
        if draining:                         # thinning: delete a random live order
            j = np.random.randint(0, n_live)
        elif 0 <= drain_from <= k:
            u = 2.0                          # drained: trades only (they touch no book)
        if u < _P_ADD and not draining:
            loc = np.searchsorted(cum_weight, np.random.random() * cum_weight[-1]) + 1
            step = np.random.random()
            if step < 0.05:
                mid[loc - 1] += TICK_PRICE4
            elif step < 0.10 and mid[loc - 1] > 2 * TICK_PRICE4:
                mid[loc - 1] -= TICK_PRICE4
            side = ord("B") if np.random.random() < 0.5 else ord("S")
            if depth_uniform:
                away = 1 + np.random.randint(0, levels_per_side)
            else:
                away = 1 + min(np.random.geometric(0.35), levels_per_side)
            price = mid[loc - 1] - away * TICK_PRICE4 if side == ord("B") else \
                mid[loc - 1] + away * TICK_PRICE4
            price = max(price, TICK_PRICE4)
            shares = 100 * min(np.random.geometric(0.4), 50)
            if np.random.random() < 0.08:
                shares = np.random.randint(1, 100)   # odd lot
            t = ord("F") if np.random.random() < _F_SHARE else ord("A")
            _header(buf, o, t, loc, ts)
            _put(buf, o + itch.A_ORDER_REF, next_ref, 8)     # F: A plus an attribution
            buf[o + itch.A_SIDE] = side
            _put(buf, o + itch.A_SHARES, shares, 4)
            _symbol(buf, o + itch.A_STOCK, symbols, loc)
            _put(buf, o + itch.A_PRICE, price, 4)
            if t == ord("F"):
                buf[o + itch.F_ATTRIBUTION] = ord("M")          # attribution "MPID"
                buf[o + itch.F_ATTRIBUTION + 1] = ord("P")
                buf[o + itch.F_ATTRIBUTION + 2] = ord("I")
                buf[o + itch.F_ATTRIBUTION + 3] = ord("D")
                o += _F_BYTES
            else:
                o += _A_BYTES
            live_ref[n_live] = next_ref
            live_loc[n_live] = loc
            live_side[n_live] = side
            live_shares[n_live] = shares
            live_price[n_live] = price
            n_live += 1
            next_ref += 1
        elif u < _P_DELETE or (u < _P_CANCEL and live_shares[j] < 2) or draining:
            t = ord("D")
            _header(buf, o, t, live_loc[j], ts)
            _put(buf, o + itch.D_ORDER_REF, live_ref[j], 8)
            o += _D_BYTES
            n_live -= 1                       # swap-remove
            live_ref[j] = live_ref[n_live]
            live_loc[j] = live_loc[n_live]
            live_side[j] = live_side[n_live]
            live_shares[j] = live_shares[n_live]
            live_price[j] = live_price[n_live]
        elif u < _P_CANCEL:
            t = ord("X")
            cut = np.random.randint(1, live_shares[j])   # partial: leaves >= 1
            _header(buf, o, t, live_loc[j], ts)
            _put(buf, o + itch.X_ORDER_REF, live_ref[j], 8)
            _put(buf, o + itch.X_SHARES, cut, 4)
            o += _X_BYTES
            live_shares[j] -= cut
        elif u < _P_REPLACE:
            t = ord("U")
            sign = -1 if live_side[j] == ord("B") else 1
            price = max(live_price[j] + sign * TICK_PRICE4 * np.random.randint(-2, 3),
                        TICK_PRICE4)
            shares = 100 * min(np.random.geometric(0.4), 50)
            _header(buf, o, t, live_loc[j], ts)
            _put(buf, o + itch.U_ORDER_REF, live_ref[j], 8)
            _put(buf, o + itch.U_NEW_ORDER_REF, next_ref, 8)
            _put(buf, o + itch.U_SHARES, shares, 4)
            _put(buf, o + itch.U_PRICE, price, 4)
            o += _U_BYTES
            live_ref[j] = next_ref              # the new order takes the old one's slot
            live_shares[j] = shares
            live_price[j] = price
            next_ref += 1
        elif u < _P_EXEC:
            full = np.random.random() < 0.6 or live_shares[j] < 2
            shares = live_shares[j] if full else np.random.randint(1, live_shares[j])
            t = ord("C") if np.random.random() < _C_SHARE else ord("E")
            _header(buf, o, t, live_loc[j], ts)
            _put(buf, o + itch.E_ORDER_REF, live_ref[j], 8)   # C: E plus printable, price
            _put(buf, o + itch.E_SHARES, shares, 4)
            _put(buf, o + itch.E_MATCH, next_match, 8)
            if t == ord("C"):
                buf[o + itch.C_PRINTABLE] = ord("Y")
                _put(buf, o + itch.C_PRICE, max(live_price[j] + TICK_PRICE4
                                                * np.random.randint(-1, 2), TICK_PRICE4), 4)
                o += _C_BYTES
            else:
                o += _E_BYTES
            next_match += 1
            if full:
                n_live -= 1
                live_ref[j] = live_ref[n_live]
                live_loc[j] = live_loc[n_live]
                live_side[j] = live_side[n_live]
                live_shares[j] = live_shares[n_live]
                live_price[j] = live_price[n_live]
            else:
                live_shares[j] -= shares
        else:
            t = ord("P")
            loc = np.searchsorted(cum_weight, np.random.random() * cum_weight[-1]) + 1
            side = ord("B") if np.random.random() < 0.5 else ord("S")
            _header(buf, o, t, loc, ts)
            _put(buf, o + itch.P_ORDER_REF, 0, 8)   # NASDAQ zeroes P's order reference
            buf[o + itch.P_SIDE] = side
            _put(buf, o + itch.P_SHARES, 100 * np.random.randint(1, 10), 4)
            _symbol(buf, o + itch.P_STOCK, symbols, loc)
            _put(buf, o + itch.P_PRICE, mid[loc - 1], 4)
            _put(buf, o + itch.P_MATCH, next_match, 8)
            o += _P_BYTES
            next_match += 1
        types[i] = t
    offsets[offsets.shape[0] - 1] = o
    return o


# the flows benchmarks report side by side: generate(seed, n, **FLOWS[name])
FLOWS = {
    "shallow": dict(n_instruments=300, levels_per_side=5, depth="near"),
    "deep": dict(n_instruments=1000, levels_per_side=50, depth="uniform",
                 max_live_orders=1 << 18),
    "wide": dict(n_instruments=10_000, levels_per_side=20, depth="near",
                 max_live_orders=1 << 18),
}


def _symbols(n_instruments: int) -> np.ndarray:
    """Distinct 4-letter symbols (AAAA, AAAB, ...), space padded to 8 bytes."""
    out = np.full((n_instruments, 8), ord(" "), dtype=np.uint8)
    for k in range(n_instruments):
        v = k
        for c in range(3, -1, -1):
            out[k, c] = ord("A") + v % 26
            v //= 26
    return out


def _check_knobs(levels_per_side, depth, cancels, mix, max_live_orders, drain_from):
    """The knobs as _flow takes them; ConfigError naming the bad one."""
    if isinstance(levels_per_side, bool) or not isinstance(levels_per_side, (int, np.integer)) \
            or not 1 <= levels_per_side <= 100_000:
        raise ConfigError("levels_per_side out of range", key="levels_per_side",
                          value=levels_per_side, allowed="1..100000")
    if depth not in ("near", "uniform"):
        raise ConfigError("depth must be near or uniform", key="depth", value=depth)
    if cancels not in ("recent", "random"):
        raise ConfigError("cancels must be recent or random", key="cancels", value=cancels)
    p = np.asarray(mix, dtype=np.float64)
    if p.shape != (5,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() > 1 + 1e-9 \
            or p[0] <= 0:
        raise ConfigError("mix takes 5 probabilities (add, delete, cancel, replace, exec), "
                          "add > 0, sum <= 1 (trades take the rest)", key="mix", value=mix)
    if isinstance(max_live_orders, bool) or not isinstance(max_live_orders, (int, np.integer)) \
            or not 1 <= max_live_orders <= MAX_LIVE_ORDERS_LIMIT:
        raise ConfigError("max_live_orders out of range", key="max_live_orders",
                          value=max_live_orders, allowed=f"1..{MAX_LIVE_ORDERS_LIMIT}")
    if drain_from is not None and (isinstance(drain_from, bool) or drain_from < 0):
        raise ConfigError("drain_from must be a flow message index >= 0", key="drain_from",
                          value=drain_from)
    cum = np.cumsum(p)
    if mix == DEFAULT_MIX:
        cum = np.array([0.44, 0.44 + 0.30, 0.44 + 0.30 + 0.06, 0.44 + 0.30 + 0.06 + 0.09,
                        0.44 + 0.30 + 0.06 + 0.09 + 0.08])   # the historical sums, bit for bit
    return (cum, int(levels_per_side), depth == "uniform", cancels == "random",
            int(max_live_orders), -1 if drain_from is None else int(drain_from))


def generate(seed: int, n_messages: int, n_instruments: int, *,
             mean_gap_ns: float = 1_000.0, recent_orders: float = 32.0,
             start_ns: int = MARKET_OPEN_NS, levels_per_side: int = 20, depth: str = "near",
             cancels: str = "recent", mix=DEFAULT_MIX, max_live_orders: int = MAX_LIVE_ORDERS,
             drain_from: int | None = None) -> Market:
    """`n_messages` ITCH messages in all (preamble included) over `n_instruments`; the
    keyword knobs are described in the module docstring."""
    knobs = _check_knobs(levels_per_side, depth, cancels, tuple(mix), max_live_orders,
                         drain_from)
    if not 1 <= n_instruments <= 26 ** 4:
        raise ConfigError("n_instruments out of range", n_instruments=n_instruments,
                          max_instruments=26 ** 4)
    n_pre = 2 * n_instruments + 3
    if n_messages < n_pre:
        raise ConfigError("n_messages below the session preamble (S, R and H per instrument, "
                          "S, S)", n_messages=n_messages, preamble=n_pre)
    if mean_gap_ns <= 0 or recent_orders <= 0:
        raise ConfigError("mean_gap_ns and recent_orders must be positive",
                          mean_gap_ns=mean_gap_ns, recent_orders=recent_orders)
    rng = np.random.default_rng(seed)
    symbols = _symbols(n_instruments)
    # reference prices $5..$500, log-uniform, on the cent grid
    ref = (np.exp(rng.uniform(np.log(5), np.log(500), n_instruments)) * 100).astype(np.int64)
    ref_prices = ref * TICK_PRICE4
    popularity = 1.0 / np.arange(1, n_instruments + 1) ** 0.8
    cum_weight = np.cumsum(rng.permutation(popularity))
    pre = [itch.encode_system_event(0, 0, start_ns - 3_600_000_000_000, "O")]
    for k in range(n_instruments):
        pre.append(itch.encode_stock_directory(k + 1, 0, start_ns - 3_000_000_000_000,
                                               bytes(symbols[k])))
    for k in range(n_instruments):
        pre.append(itch.encode_trading_action(k + 1, 0, start_ns - 2_000_000_000_000,
                                              bytes(symbols[k]), "T"))
    pre.append(itch.encode_system_event(0, 0, start_ns - 1_000_000_000_000, "S"))
    pre.append(itch.encode_system_event(0, 0, start_ns, "Q"))
    n_flow = n_messages - n_pre
    pre_bytes = sum(len(m) for m in pre)
    buf = np.zeros(pre_bytes + _LONGEST_FLOW_BYTES * n_flow, dtype=np.uint8)
    offsets = np.zeros(n_messages + 1, dtype=np.int64)
    types = np.zeros(n_messages, dtype=np.uint8)
    o = 0
    for i, m in enumerate(pre):
        offsets[i] = o
        types[i] = m[0]
        buf[o:o + len(m)] = np.frombuffer(m, dtype=np.uint8)
        o += len(m)
    offsets[n_pre] = o
    flow_seed = int(rng.integers(0, 2 ** 31 - 1))
    end = _flow(flow_seed, n_flow, o, buf, offsets, types, symbols, cum_weight,
                ref_prices.copy(), start_ns, float(mean_gap_ns), float(recent_orders), *knobs)
    return Market(buf=buf[:end].copy(), offsets=offsets, types=types,
                  symbols=tuple(bytes(s) for s in symbols), ref_prices=ref_prices, seed=seed)


_PREFIX = mold.LENGTH_PREFIX_BYTES   # the u16 length before each message


@njit(nogil=True, cache=True)
def _pack(mbuf, moffsets, session, first_seq, max_payload, max_count, out, pkt_off, pkt_len,
          pkt_seq, pkt_first, pkt_count, ts_off):
    n = moffsets.shape[0] - 1
    k = -1
    o = 0
    size = max_payload + 1       # forces a new packet at the first message
    count = 0
    for i in range(n):
        ln = moffsets[i + 1] - moffsets[i]
        if size + _PREFIX + ln > max_payload or count == max_count:
            if k >= 0:
                _put(out, pkt_off[k] + mold.COUNT_OFFSET, count, 2)
                pkt_len[k] = size
                pkt_count[k] = count
            k += 1
            pkt_off[k] = o
            pkt_seq[k] = first_seq + i
            pkt_first[k] = i
            for c in range(mold.SESSION_BYTES):
                out[o + mold.SESSION_OFFSET + c] = session[c]
            _put(out, o + mold.SEQ_OFFSET, first_seq + i, 8)
            o += mold.HEADER_BYTES
            size = mold.HEADER_BYTES
            count = 0
        _put(out, o, ln, _PREFIX)
        out[o + _PREFIX:o + _PREFIX + ln] = mbuf[moffsets[i]:moffsets[i + 1]]
        ts_off[i] = o + _PREFIX + itch.TIMESTAMP_OFFSET
        o += _PREFIX + ln
        size += _PREFIX + ln
        count += 1
    if k >= 0:
        _put(out, pkt_off[k] + mold.COUNT_OFFSET, count, 2)
        pkt_len[k] = size
        pkt_count[k] = count
    return k + 1, o


def pack_mold(market: Market, session: str | bytes, first_seq: int = mold.FIRST_SEQ, *,
              max_payload_bytes: int = mold.MTU1500_PAYLOAD_BYTES,
              max_messages_per_packet: int = mold.MAX_MESSAGES_PER_PACKET) -> MoldPackets:
    """Greedy packing: a packet closes when the next message would exceed either limit."""
    sess = mold.session_bytes(session)
    longest = int(np.max(np.diff(market.offsets))) if market.n_messages else 0
    if not mold.HEADER_BYTES + 2 + longest <= max_payload_bytes <= mold.MAX_UDP_PAYLOAD_BYTES:
        raise ConfigError("max_payload_bytes cannot hold one message or exceeds UDP",
                          max_payload_bytes=max_payload_bytes,
                          min_bytes=mold.HEADER_BYTES + 2 + longest,
                          max_bytes=mold.MAX_UDP_PAYLOAD_BYTES)
    if not 1 <= max_messages_per_packet <= mold.MAX_MESSAGES_PER_PACKET:
        raise ConfigError("max_messages_per_packet out of range",
                          max_messages_per_packet=max_messages_per_packet)
    if not 1 <= first_seq <= (1 << 62):
        raise ConfigError("first_seq out of range", first_seq=first_seq)
    n = market.n_messages
    max_pkts = max(n, 1)
    out = np.zeros(len(market.buf) + 2 * n + mold.HEADER_BYTES * max_pkts, dtype=np.uint8)
    pkt_off = np.zeros(max_pkts, dtype=np.int64)
    pkt_len = np.zeros(max_pkts, dtype=np.int64)
    pkt_seq = np.zeros(max_pkts, dtype=np.int64)
    pkt_first = np.zeros(max_pkts, dtype=np.int64)
    pkt_count = np.zeros(max_pkts, dtype=np.int64)
    ts_off = np.zeros(n, dtype=np.int64)
    n_pkts, used = _pack(market.buf, market.offsets, np.frombuffer(sess, dtype=np.uint8),
                         first_seq, max_payload_bytes, max_messages_per_packet, out, pkt_off,
                         pkt_len, pkt_seq, pkt_first, pkt_count, ts_off)
    return MoldPackets(buf=out[:used].copy(), offsets=pkt_off[:n_pkts].copy(),
                       lengths=pkt_len[:n_pkts].copy(), first_seq=pkt_seq[:n_pkts].copy(),
                       msg_first=pkt_first[:n_pkts].copy(), msg_count=pkt_count[:n_pkts].copy(),
                       ts_offsets=ts_off, session=sess)


@njit(nogil=True, cache=True)
def stamp_timestamps(buf, ts_offsets, msg_first, msg_count, k, ts_ns):
    """Write ts_ns (ns since midnight, 48 bits) into every message of packet k."""
    ts = ts_ns & 0xFFFFFFFFFFFF
    for i in range(msg_first[k], msg_first[k] + msg_count[k]):
        o = ts_offsets[i]
        if 0 <= o and o + itch.TIMESTAMP_BYTES <= buf.shape[0]:
            _put(buf, o, ts, itch.TIMESTAMP_BYTES)
