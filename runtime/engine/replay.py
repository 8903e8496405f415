"""Replay: run a capture (pcap/pcapng) or a NASDAQ ITCH 5.0 binary file through the same
pipeline as the live runtime (decoder → books → indicators), as fast as possible or at the
recorded pace.

Deterministic: a packet's receive time is the one recorded in the capture (for an ITCH file,
the ITCH timestamp of its first message), the MoldUDP64 state and the books start empty, so
the same file always gives the same event records, byte for byte (`events_sha256` in the
summary; `events_out` writes them). Only the latency histogram depends on the wall clock.

Sources yield batches of MoldUDP64 packets stored back to back (buf, offsets, lengths,
recv_ns). A capture is read whole (runtime/pcap.py) and its UDP payloads located by a numba
walk over the frames; an ITCH file streams in blocks (bench/itchfile.py), so a whole trading
day replays in bounded memory. Frames that are not IPv4/UDP (or not for `udp_port`) are
counted FRAMES_NOT_FEED, frames cut short by the capture's snaplen FRAMES_DROPPED.
"""
from __future__ import annotations

import hashlib
import os
import struct
import time

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import pcap
from tickpath.runtime.feed.decoder import decode_packet, max_events_per_packet, new_mold_state
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.engine.pipeline import Pipeline, process_events
from tickpath.runtime.sys.libc import libc_usleep

PACE_MAX = 0
PACE_RECORDED = 1
BATCH_PACKETS = 512
_KIND_ETH = 0
_KIND_IP = 1


def detect_format(path: str) -> str:
    """"pcap" (classic or pcapng, by magic) or "itch" (anything else: gzip or raw ITCH)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ConfigError("cannot read replay file", path=path, reason=exc.strerror) from exc
    if len(head) == 4:
        for endian in "<>":
            if struct.unpack(endian + "I", head)[0] in (0xA1B2C3D4, 0xA1B23C4D, 0x0A0D0D0A):
                return "pcap"
    return "itch"


@njit(nogil=True, cache=True)
def locate_udp(data, offsets, lengths, orig_lengths, kind, udp_port, out_off, out_len, counters):
    """For each captured frame, where its UDP payload lies in data (-1 when it is not one we
    replay). Every header read is length-checked first."""
    for i in range(offsets.shape[0]):
        out_off[i] = -1
        out_len[i] = 0
        o = offsets[i]
        n = lengths[i]
        if o < 0 or n < 0 or o + n > data.shape[0]:
            counters[C.FRAMES_DROPPED] += 1
            continue
        if n < orig_lengths[i]:
            counters[C.FRAMES_DROPPED] += 1   # cut by the snaplen: the tail is lost
            continue
        p = 0
        if kind == _KIND_ETH:
            if n < 14:
                counters[C.FRAMES_NOT_FEED] += 1
                continue
            et = (np.int64(data[o + 12]) << 8) | data[o + 13]
            p = 14
            if et == 0x8100 and n >= 18:
                et = (np.int64(data[o + 16]) << 8) | data[o + 17]
                p = 18
            if et != 0x0800:
                counters[C.FRAMES_NOT_FEED] += 1
                continue
        if n < p + 20 or (data[o + p] >> 4) != 4 or data[o + p + 9] != 17:
            counters[C.FRAMES_NOT_FEED] += 1
            continue
        ihl = np.int64(data[o + p] & 0x0F) * 4
        total = (np.int64(data[o + p + 2]) << 8) | data[o + p + 3]
        frag = ((np.int64(data[o + p + 6]) << 8) | data[o + p + 7]) & 0x3FFF
        u = p + ihl
        if ihl < 20 or frag != 0 or n < u + 8 or total < ihl + 8:
            counters[C.FRAMES_NOT_FEED] += 1
            continue
        dport = (np.int64(data[o + u + 2]) << 8) | data[o + u + 3]
        ulen = (np.int64(data[o + u + 4]) << 8) | data[o + u + 5]
        if ulen < 8 or u + ulen > n or ulen > total - ihl:
            counters[C.FRAMES_NOT_FEED] += 1
            continue
        if udp_port != 0 and dport != udp_port:
            counters[C.FRAMES_NOT_FEED] += 1
            continue
        out_off[i] = o + u + 8
        out_len[i] = ulen - 8
        counters[C.FRAMES] += 1


@njit(nogil=True, cache=True)
def _wait_until(t_ns, stop):
    """Sleep/spin until t_ns (CLOCK_REALTIME); False if the stop flag was raised meanwhile."""
    while True:
        now = realtime_ns()
        if now >= t_ns:
            return True
        if stop[0] != 0:
            return False
        if t_ns - now > 200_000:
            libc_usleep(100)


@njit(nogil=True, cache=True)
def replay_packets(buf, offsets, lengths, recv_ns, n, mold, session, events, pipe, sink,
                   pace, stop):
    """Decode and process packets [0, n) of a batch; copies each batch of events into sink
    (sized by the caller for the batch's worst case). pace = [mode, wall_start_ns,
    first_recv_ns, speed * 1e6]. Returns events written into sink, or -1 if stopped."""
    counters = pipe.counters
    m = 0
    for i in range(n):
        if stop[0] != 0:
            return -1
        o = offsets[i]
        ln = lengths[i]
        if o < 0:
            continue                         # not a feed frame (already counted)
        if ln < 0 or o + ln > buf.shape[0]:
            counters[C.PACKETS] += 1
            counters[C.MALFORMED_PACKETS] += 1
            continue
        if pace[0] == PACE_RECORDED and not _wait_until(
                pace[1] + ((recv_ns[i] - pace[2]) * 1_000_000) // pace[3], stop):
            return -1
        k = decode_packet(buf[o:o + ln], recv_ns[i], mold, session, events, 0, counters)
        process_events(pipe, events, k)
        if m + k <= sink.shape[0]:
            sink[m:m + k] = events[:k]
            m += k
    return m


class Replayer:
    """One replay run: the pipeline, the decoder state and the event sink (see module doc)."""

    def __init__(self, path, *, pace: str = "max", speed: float = 1.0, udp_port: int = 0,
                 session: str | None = None, instruments: int = 8192, max_orders: int = 1 << 20,
                 max_levels: int = 64, events_out: str | None = None, chunk_bytes: int = 4 << 20):
        self.path = os.fspath(path)
        if pace not in ("max", "recorded"):
            raise ConfigError("pace must be max or recorded", pace=pace)
        if not speed > 0:
            raise ConfigError("speed must be a positive factor", speed=speed)
        if not 0 <= udp_port <= 65535:
            raise ConfigError("UDP port out of range", udp_port=udp_port)
        self.format = detect_format(self.path)
        self.pace_mode = PACE_RECORDED if pace == "recorded" else PACE_MAX
        self.speed, self.udp_port, self.chunk_bytes = float(speed), int(udp_port), chunk_bytes
        self.pipe = Pipeline(n_locates=instruments, max_orders=max_orders, max_levels=max_levels)
        self.mold, self.session = new_mold_state(session, 1 if self.format == "itch" else 0)
        self.events = np.zeros(max_events_per_packet(65535), dtype=EVENT_DTYPE)
        self.sink = np.zeros(BATCH_PACKETS * max_events_per_packet(1472), dtype=EVENT_DTYPE)
        self.pace = np.zeros(4, dtype=np.int64)
        self.stop = np.zeros(1, dtype=np.int64)
        self.events_out = events_out
        self.digest = hashlib.sha256()
        self.n_events = 0
        self.itch_stats: dict = {}

    # --- sources: batches of (buf, offsets, lengths, recv_ns) --------------------------------
    def _pcap_batches(self, progress):
        cap = pcap.read_capture(self.path)
        n = len(cap)
        off = np.empty(n, dtype=np.int64)
        ln = np.empty(n, dtype=np.int64)
        kind = _KIND_ETH if cap.linktype == pcap.LINKTYPE_ETHERNET else _KIND_IP
        locate_udp(cap.data, cap.offsets, cap.lengths, cap.orig_lengths, kind, self.udp_port,
                   off, ln, self.pipe.counters)
        for a in range(0, n, BATCH_PACKETS):
            b = min(n, a + BATCH_PACKETS)
            yield cap.data, off[a:b], ln[a:b], cap.ts_ns[a:b]
            if progress:
                progress(b, n)

    def _itch_batches(self, progress):
        from tickpath.runtime.feed.itchfile import ItchFile, chunk_to_mold
        f = ItchFile(self.path, chunk_bytes=self.chunk_bytes)
        self.itch_stats = f.stats
        last_ts = 0
        cb = (lambda done: progress(done, f.file_bytes)) if progress else None
        for chunk in f.chunks(cb):
            pk, ts = chunk_to_mold(chunk)
            # packets without a timestamp (none in real files) keep the previous one
            ts = np.maximum.accumulate(np.where(ts < 0, last_ts, ts))
            last_ts = int(ts[-1]) if len(ts) else last_ts
            for a in range(0, pk.n_packets, BATCH_PACKETS):
                b = min(pk.n_packets, a + BATCH_PACKETS)
                yield pk.buf, pk.offsets[a:b], pk.lengths[a:b], ts[a:b]

    def run(self, progress=None) -> dict:
        """Replay the whole file; progress(done, total) after each block. Returns a summary."""
        src = self._pcap_batches if self.format == "pcap" else self._itch_batches
        out = open(self.events_out, "wb") if self.events_out else None
        t0 = time.perf_counter()
        first = True
        try:
            for buf, off, ln, rns in src(progress):
                if first and len(rns):
                    self.pace[:] = (self.pace_mode, realtime_ns(), int(rns[0]), int(self.speed * 1e6))
                    first = False
                need = len(off) * max_events_per_packet(int(ln.max()) if len(ln) else 0)
                if need > len(self.sink):   # room for every event of the batch
                    self.sink = np.zeros(need, dtype=EVENT_DTYPE)
                m = replay_packets(buf, off, ln, rns, len(off), self.mold, self.session,
                                   self.events, self.pipe.arrays, self.sink, self.pace, self.stop)
                if m < 0:
                    break
                chunk = self.sink[:m].tobytes()
                self.digest.update(chunk)
                self.n_events += m
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
        elapsed_s = time.perf_counter() - t0
        c = C.as_dict(self.pipe.counters)
        return {"file": self.path, "format": self.format, "events": self.n_events,
                "events_sha256": self.digest.hexdigest(), "elapsed_s": elapsed_s,
                "messages_per_s": c["messages"] / elapsed_s if elapsed_s > 0 else 0.0,
                "counters": {k: v for k, v in c.items() if v}, "itch_file": dict(self.itch_stats)}

    def request_stop(self) -> None:
        self.stop[0] = 1


def replay(path, **kw) -> dict:
    """Replay a file (see Replayer for the options); returns the summary."""
    return Replayer(path, **kw).run()
