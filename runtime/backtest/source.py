"""Recorded files as batches of decoded events, in bounded memory.

NASDAQ TotalView-ITCH 5.0 binary files (gzip or not) stream through runtime/feed/itchfile.py
(blocks → MoldUDP64 packets, sequence numbers = the file's message index); pcap/pcapng
captures of a MoldUDP64 feed through runtime/feed/pcap.py and replay's UDP walk. Either way
the decoder (runtime/feed/decoder.py) makes the 64-byte event records the live path sees.
The exchange clock of the backtest is each event's ITCH timestamp (ts_exch).

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
from tickpath.runtime.feed.decoder import decode_packet, max_events_per_packet, new_mold_state

BATCH_PACKETS = 512
_R = ord("R")


@njit(nogil=True, cache=True)
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


class EventSource:
    """Iterate a file as event batches: `for events in src.batches(counters, progress)`."""

    def __init__(self, path: str, chunk_bytes: int = 4 << 20, udp_port: int = 0):
        self.path = path
        self.format = detect_format(path)
        self.chunk_bytes = chunk_bytes
        self.udp_port = udp_port
        self.itch_stats: dict = {}
        self.mold, self.session = new_mold_state(None, 1 if self.format == "itch" else 0)
        self.out = np.zeros(BATCH_PACKETS * max_events_per_packet(1472), dtype=EVENT_DTYPE)

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

    def batches(self, counters, progress=None):
        """Yield decoded event arrays (views valid until the next batch)."""
        self._counters = counters
        for buf, off, ln, rns in self._packets(progress):
            need = len(off) * max_events_per_packet(int(ln.max()) if len(ln) else 0)
            if need > len(self.out):
                self.out = np.zeros(need, dtype=EVENT_DTYPE)
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
    for ev in src.batches(ctr):
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
