"""Publish a NASDAQ ITCH 5.0 binary file as MoldUDP64 over UDP, at a chosen message rate or
at the pace recorded in the file's timestamps (optionally sped up).

The file streams block by block (bench/itchfile.py); each block becomes MoldUDP64 packets
(`chunk_to_mold`) whose send times are computed ahead: at a fixed rate, packet k goes at
start + (index of its first message in the file) / rate, and the scheduled time is stamped
into its messages' ITCH timestamps as bench/sender.py does (so receivers measure latency);
at recorded pace, packet k goes at start + (its first ITCH timestamp - the file's first) /
speed and the timestamps are left as recorded. The send loop is numba calling libc sendto
(bench/sender.py's binding, progress slots and open-loop rule: never waits for a receiver);
sender.py itself is unchanged.
"""
from __future__ import annotations

import socket
import time

import numpy as np
from numba import njit
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.intrinsics import cpu_relax, load_acquire, realtime_ns, store_release

from tickpath.runtime.feed.itchfile import ItchFile, chunk_to_mold
from tickpath.runtime.sys.libc import libc_sendto, libc_usleep
from tickpath.bench.load.market import stamp_timestamps
from tickpath.bench.load.sender import (
    N_PROGRESS,
    S_DONE,
    S_LATE_NS_MAX,
    S_SEND_ERRORS,
    S_SENT_MSGS,
    S_SENT_PKTS,
    S_STOP,
    sockaddr_in,
)

_SPIN_WINDOW_NS = 100_000


@njit(nogil=True, cache=True)
def send_scheduled(fd, addr_ptr, buf, offsets, lengths, msg_first, msg_count, ts_offsets,
                   sched_ns, stamp, midnight_ns, deadline_ns, progress):
    """Send packet k at sched_ns[k] (CLOCK_REALTIME); stamp != 0 writes the scheduled time
    into its ITCH timestamps first. Returns packets sent (stops at the deadline or stop)."""
    buf_addr = buf.ctypes.data
    sent = 0
    for k in range(offsets.shape[0]):
        t = sched_ns[k]
        while True:
            now = realtime_ns()
            if now >= t:
                break
            if t - now > _SPIN_WINDOW_NS:
                libc_usleep(20)
            else:
                cpu_relax()
        if now > deadline_ns or load_acquire(progress, S_STOP) != 0:
            break
        progress[S_LATE_NS_MAX] = max(progress[S_LATE_NS_MAX], now - t)
        if stamp != 0:
            stamp_timestamps(buf, ts_offsets, msg_first, msg_count, k, t - midnight_ns)
        if libc_sendto(fd, buf_addr + offsets[k], lengths[k], 0, addr_ptr, 16) < 0:
            progress[S_SEND_ERRORS] += 1
        else:
            sent += 1
            progress[S_SENT_MSGS] += msg_count[k]
            store_release(progress, S_SENT_PKTS, progress[S_SENT_PKTS] + 1)
    return sent


def publish_itch_file(path, host: str, port: int, *, rate_msgs_per_s: float | None = None,
                      speed: float = 1.0, session: str = "ITCHFILE", max_seconds: float = 3600.0,
                      chunk_bytes: int = 4 << 20, progress=None, progress_slots=None) -> dict:
    """Send the whole file; rate_msgs_per_s=None means the recorded pace divided by speed.
    progress(done_bytes, total_bytes) is called per block. Returns the sender's counts."""
    if rate_msgs_per_s is not None and not rate_msgs_per_s > 0:
        raise ConfigError("rate must be a positive number of messages per second",
                          rate_msgs_per_s=rate_msgs_per_s)
    if not speed > 0:
        raise ConfigError("speed must be a positive factor", speed=speed)
    from tickpath.runtime.engine.pipeline import utc_midnight_ns
    f = ItchFile(path, chunk_bytes=chunk_bytes)
    prog = progress_slots if progress_slots is not None else np.zeros(N_PROGRESS, dtype=np.int64)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    addr = sockaddr_in(host, int(port))
    midnight = utc_midnight_ns()
    z, zb = np.zeros(0, np.int64), np.zeros(0, np.uint8)
    send_scheduled(sock.fileno(), addr.ctypes.data, zb, z, z, z, z, z, z, 0, 0, 0, prog)  # compile now, not late
    start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) + 20_000_000
    deadline = start_ns + int(max_seconds * 1e9)
    ts0 = None
    cb = (lambda done: progress(done, f.file_bytes)) if progress else None
    try:
        for chunk in f.chunks(cb):
            pk, pkt_ts = chunk_to_mold(chunk, session)
            if rate_msgs_per_s is not None:
                first_msg = chunk.first_index + pk.msg_first
                sched = start_ns + (first_msg * (1e9 / rate_msgs_per_s)).astype(np.int64)
            else:
                pkt_ts = np.maximum.accumulate(np.where(pkt_ts < 0, 0, pkt_ts))
                if ts0 is None and len(pkt_ts):
                    ts0 = int(pkt_ts[0])
                sched = start_ns + ((pkt_ts - ts0) / speed).astype(np.int64)
            send_scheduled(sock.fileno(), addr.ctypes.data, pk.buf, pk.offsets, pk.lengths,
                           pk.msg_first, pk.msg_count, pk.ts_offsets, sched,
                           1 if rate_msgs_per_s is not None else 0, midnight, deadline, prog)
            if prog[S_STOP] or time.clock_gettime_ns(time.CLOCK_REALTIME) > deadline:
                break
    finally:
        sock.close()
        prog[S_DONE] = 1     # Python side: a plain store (x86-TSO)
    return {"sent_packets": int(prog[S_SENT_PKTS]), "sent_messages": int(prog[S_SENT_MSGS]),
            "send_errors": int(prog[S_SEND_ERRORS]), "max_late_ns": int(prog[S_LATE_NS_MAX]),
            "file": dict(f.stats)}
