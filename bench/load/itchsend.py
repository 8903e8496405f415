"""Publish a NASDAQ ITCH 5.0 binary file as MoldUDP64 over UDP, at a chosen message rate or
at the pace recorded in the file's timestamps (optionally sped up).

The file streams block by block (bench/itchfile.py); each block becomes MoldUDP64 packets
(`chunk_to_mold`) whose send times are computed ahead: at a fixed rate, packet k goes at
start + (index of its first message in the file) / rate, and the scheduled time is stamped
into its messages' ITCH timestamps as bench/load/sender.py does (so receivers measure
latency); at recorded pace, packet k goes at start + (its first ITCH timestamp - the
file's first) / speed and the timestamps are left as recorded. The sending is sender.py's
one open-loop core (`send_paced`: never waits for a receiver), its progress slots too.
"""
from __future__ import annotations

import socket
import time

import numpy as np
from tickpath.runtime.core.errors import ConfigError

from tickpath.runtime.feed.itchfile import ItchFile, chunk_to_mold
from tickpath.bench.load.sender import (
    N_PROGRESS,
    NO_DROPS,
    S_DONE,
    S_LATE_NS_MAX,
    S_SEND_ERRORS,
    S_SENT_MSGS,
    S_SENT_PKTS,
    S_STOP,
    line_addrs,
    send_paced,
)


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
    addr = line_addrs((host, int(port)))
    midnight = utc_midnight_ns()
    z, zb = np.zeros(0, np.int64), np.zeros(0, np.uint8)
    send_paced(sock.fileno(), addr, zb, z, z, z, z, z, 0, 0, 0, z, 0, 0, 0, NO_DROPS,
               prog)  # compile now, not late
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
            send_paced(sock.fileno(), addr, pk.buf, pk.offsets, pk.lengths, pk.msg_first,
                       pk.msg_count, pk.ts_offsets, 0, pk.n_packets, 0, sched,
                       1 if rate_msgs_per_s is not None else 0, midnight, deadline, NO_DROPS,
                       prog)
            if prog[S_STOP] or time.clock_gettime_ns(time.CLOCK_REALTIME) > deadline:
                break
    finally:
        sock.close()
        prog[S_DONE] = 1     # Python side: a plain store (x86-TSO)
    return {"sent_packets": int(prog[S_SENT_PKTS]), "sent_messages": int(prog[S_SENT_MSGS]),
            "send_errors": int(prog[S_SEND_ERRORS]), "max_late_ns": int(prog[S_LATE_NS_MAX]),
            "file": dict(f.stats)}
