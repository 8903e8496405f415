"""Recorded files as batches of decoded events, in bounded memory.

NASDAQ TotalView-ITCH 5.0 binary files (gzip or not) stream through runtime/feed/itchfile.py
(blocks → MoldUDP64 packets, sequence numbers = the file's message index); pcap/pcapng
captures of a MoldUDP64 feed through runtime/feed/pcap.py and replay's UDP walk. Either way
the decoder (runtime/feed/decoder.py) makes the 64-byte event records the live path sees.
The exchange clock of the backtest is each event's ITCH timestamp (ts_exch).

ITCH files are decoded straight from the reader's block buffer (`decode_file_runs`), with
no MoldUDP64 packets built in between: the walk cuts the block into the packets
`itchfile.chunk_to_mold` would make (greedy, up to a 1472-byte payload) only to give each
event the same receive time as the packet path (the packet's first ITCH timestamp, which
the trading core's staleness breaker reads), so events are byte-identical to replay's.
The caller hands its own batch buffer (`fill`): no copy between decoder and loop.

Bad input raises ConfigError naming the file (the runner reports it per file and goes on
with the others): a corrupt gzip stream, an unreadable capture; a truncated ITCH tail is
counted in `itch_file.truncated_tail_bytes`. `directory(path)` reads only the head of a file
for its stock directory (symbol → locate), so a missing instrument is reported before the
run starts.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE, stock_symbol
from tickpath.runtime.engine.replay import _KIND_ETH, _KIND_IP, detect_format, locate_udp
from tickpath.runtime.feed import pcap
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold_layout
from tickpath.runtime.feed.decoder import (
    _decode_message, decode_packet, max_events_per_packet, new_mold_state,
)
from tickpath.runtime.sys.byteorder import load_be48

BATCH_PACKETS = 512
_R = ord("R")


@njit(nogil=True, cache=True, _nrt=False)
def decode_into(buf, offsets, lengths, recv_ns, n, mold, session, out, o, counters):
    """Decode packets [0, n) into out[o:]; returns the new end (the caller sizes out)."""
    for i in range(n):
        p = offsets[i]
        ln = lengths[i]
        if p < 0:
            continue
        if ln < 0 or p + ln > buf.shape[0]:
            counters[8] += 1   # MALFORMED_PACKETS
            continue
        o = decode_packet(buf[p:p + ln], recv_ns[i], mold, session, out, o, counters)
    return o


_TS_END = itch.TIMESTAMP_OFFSET + 6     # a message this long carries an ITCH timestamp


@njit(nogil=True, cache=True, _nrt=False)
def decode_file_runs(buf, pos, first, n, first_seq, max_payload, events, ev, counters):
    """Decode messages [first, n) of a block (message k's 2-byte length at buf[pos[k]]) into
    events[ev:], packet by packet as chunk_to_mold would cut them: each event's receive time
    is its packet's first ITCH timestamp (0 if none). Stops before a packet that would not
    fit. Returns (new event end, next message). Lengths come from frame_messages (checked
    against the buffer); checked again here, numba does not bounds-check."""
    k = first
    cap = events.shape[0]
    n_bytes = buf.shape[0]
    while k < n:
        j = k      # the packet: messages [k, j), greedy up to max_payload bytes
        size = mold_layout.HEADER_BYTES
        ts = np.int64(-1)
        while j < n and j - k < mold_layout.MAX_MESSAGES_PER_PACKET:
            ln = pos[j + 1] - pos[j]
            if size + ln > max_payload and j > k:
                break
            if ts < 0 and ln - 2 >= _TS_END and pos[j + 1] <= n_bytes:
                ts = load_be48(buf, pos[j] + 2 + itch.TIMESTAMP_OFFSET)
            size += ln
            j += 1
        if cap - ev < j - k:
            break               # one event per message at most: the next call takes it
        rns = max(ts, np.int64(0))
        counters[C.PACKETS] += 1
        ev0 = ev
        for m in range(k, j):
            o = pos[m]
            length = pos[m + 1] - o - 2
            if o < 0 or length <= 0 or pos[m + 1] > n_bytes:
                counters[C.MALFORMED_MESSAGES] += 1
            else:
                ev = _decode_message(buf, o + 2, length, first_seq + m, rns, events, ev, counters)
        counters[C.MESSAGES] += j - k
        counters[C.EVENTS] += ev - ev0
        k = j
    return ev, k


class EventSource:
    """Iterate a file as event batches: `for events in src.batches(counters, progress)`."""

    def __init__(self, path: str, chunk_bytes: int = 4 << 20, udp_port: int = 0):
        self.path = path
        self.format = detect_format(path)
        self.chunk_bytes = chunk_bytes
        self.udp_port = udp_port
        self.itch_stats: dict = {}
        self.mold, self.session = new_mold_state(None, 1 if self.format == "itch" else 0)
        self.out = np.zeros(0, dtype=EVENT_DTYPE)   # the packet path's batch, sized at first use
        self._gen = None
        self._dst = None

    def _packets(self, progress):
        if self.format == "pcap":
            cap = pcap.read_capture(self.path)
            n = len(cap)
            off = np.empty(n, dtype=np.int64)
            ln = np.empty(n, dtype=np.int64)
            kind = _KIND_ETH if cap.linktype == pcap.LINKTYPE_ETHERNET else _KIND_IP
            locate_udp(cap.data, cap.offsets, cap.lengths, cap.orig_lengths, kind, self.udp_port,
                       off, ln, self._counters)
            for a in range(0, n, BATCH_PACKETS):
                b = min(n, a + BATCH_PACKETS)
                yield cap.data, off[a:b], ln[a:b], cap.ts_ns[a:b]
                if progress:
                    progress(b, n)
            return
        from tickpath.runtime.feed.itchfile import ItchFile, chunk_to_mold
        f = ItchFile(self.path, chunk_bytes=self.chunk_bytes)
        self.itch_stats = f.stats
        cb = (lambda done: progress(done, f.file_bytes)) if progress else None
        for chunk in f.chunks(cb):
            pk, ts = chunk_to_mold(chunk)
            for a in range(0, pk.n_packets, BATCH_PACKETS):
                b = min(pk.n_packets, a + BATCH_PACKETS)
                yield pk.buf, pk.offsets[a:b], pk.lengths[a:b], np.maximum(ts[a:b], 0)

    def fill(self, counters, out, start, progress=None):
        """Decode the next events into out[start:] (the caller leaves room for a packet's
        worth); returns the new end, or -1 at the end of the file. ITCH straight from the
        block buffer; pcap through its packets."""
        if self._gen is None:
            self._gen = self._fill_gen(counters, progress)
        self._dst = (out, start)
        try:
            return next(self._gen)
        except StopIteration:
            return -1

    def _fill_gen(self, counters, progress):
        if self.format != "itch":
            for ev in self.batches(counters, progress):
                a = 0
                while a < len(ev):   # the caller's buffer may hold less than a batch
                    out, o = self._dst
                    m = min(len(ev) - a, len(out) - o)
                    out[o:o + m] = ev[a:a + m]
                    a += m
                    yield o + m
            return
        from tickpath.runtime.feed.itchfile import ItchFile
        f = ItchFile(self.path, chunk_bytes=self.chunk_bytes)
        self.itch_stats = f.stats
        cb = (lambda done: progress(done, f.file_bytes)) if progress else None
        payload = mold_layout.MTU1500_PAYLOAD_BYTES
        for chunk in f.chunks(cb):
            k = 0
            while k < chunk.n:
                out, o = self._dst
                e, k = decode_file_runs(chunk.buf, chunk.pos, k, chunk.n,
                                        chunk.first_index + mold_layout.FIRST_SEQ, payload,
                                        out, o, counters)
                yield e

    def batches(self, counters, progress=None):
        """Yield decoded event arrays (views valid until the next batch)."""
        self._counters = counters
        for buf, off, ln, rns in self._packets(progress):
            need = len(off) * max_events_per_packet(int(ln.max()) if len(ln) else 0)
            if need > len(self.out):
                self.out = np.zeros(max(need, BATCH_PACKETS * max_events_per_packet(1472)),
                                    dtype=EVENT_DTYPE)
            m = decode_into(buf, off, ln, rns, len(off), self.mold, self.session, self.out, 0,
                            counters)
            if m:
                yield self.out[:m]


def directory(path: str, max_events: int = 1 << 20) -> dict[str, int]:
    """Symbol → locate from the stock directory (R) messages at the head of a file."""
    from tickpath.runtime.core import counters as C
    src = EventSource(path, chunk_bytes=1 << 20)
    ctr = C.new_counters()
    out: dict[str, int] = {}
    seen = 0
    buf = np.zeros(8192, dtype=EVENT_DTYPE)
    while True:
        m = src.fill(ctr, buf, 0)
        if m < 0:
            break
        ev = buf[:m]
        r = ev[ev["msg_type"] == _R]
        for sym, loc in zip(r["ref2"], r["locate"]):
            out.setdefault(stock_symbol(int(sym)), int(loc))
        seen += len(ev)
        # the directory precedes the order flow; stop once flow starts after some R
        if out and (ev["msg_type"] == ord("A")).any() or seen >= max_events:
            break
    return out


def resolve(path: str, symbols, n_locates: int) -> dict[str, int]:
    """Locate of each requested symbol (ConfigError naming the file and what is missing)."""
    d = directory(path)
    missing = [s for s in symbols if s not in d]
    if missing:
        raise ConfigError("instrument not in the file's stock directory", path=path,
                          missing=missing, key="strategy.params.symbol(s)", directory_size=len(d))
    too_big = {s: d[s] for s in symbols if d[s] >= n_locates}
    if too_big:
        raise ConfigError("locate beyond backtest.instruments", path=path, locates=too_big,
                          key="backtest.instruments", instruments=n_locates)
    return {s: d[s] for s in symbols}
