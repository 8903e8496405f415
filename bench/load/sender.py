"""The open-loop load generator: sends pre-encoded MoldUDP64 packets on a fixed schedule and
never waits for the receiver (wrk2's rule: a slow receiver must not slow the sender, or the
latency it sees is hidden — coordinated omission).

Packet k is scheduled at start + (index of its first message) / rate. Just before sending,
the sender stamps that *scheduled* time (ns since UTC midnight) into the ITCH timestamp of
every message in the packet, so the receiver measures completion − intended send time,
which includes any lateness of the sender itself. The loop is numba (nogil) calling libc
sendto (a declared libc symbol, runtime/sys/libc.py); it is bounded by its packet count and
a deadline, and watches a stop flag. Send errors are counted (the receiver will see the
gap), never retried silently.

`send_paced` is the one open-loop send core: `Sender` here (one line, a fixed rate),
itchsend.py (an ITCH file at a rate or at its recorded pace, block by block) and
retransmit.py's `ABSender` (lines A and B with seeded loss masks) all call it, each with a
per-packet schedule and its own progress array (slots S_*).
"""
from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.intrinsics import cpu_relax, load_acquire, realtime_ns, store_release
from tickpath.runtime.sys.libc import libc_sendto, libc_usleep

from tickpath.bench.load.market import MoldPackets, stamp_timestamps


# progress slots (int64), readable while a sender runs
S_SENT_PKTS = 0      # packets handed to the kernel on at least one line
S_SENT_MSGS = 1      # their messages
S_SEND_ERRORS = 2    # sendto calls that failed (the receiver will see the gap)
S_LATE_NS_MAX = 3    # the latest a packet went out after its scheduled time
S_DONE = 4           # set by the caller once its last send_paced call returned
S_STOP = 5           # set by anyone: send_paced returns before the next packet
S_DROPPED_A = 6      # packets withheld on purpose from line 0 (a loss mask)
S_DROPPED_B = 7      # ... from line 1
S_NEXT_PKT = 8       # the schedule reached this packet: every one before it is spent
N_PROGRESS = 16
N_LINES_MAX = 2
SOCKADDR_BYTES = 16
_SPIN_WINDOW_NS = 100_000   # closer than this to the schedule: spin, else sleep a little


@njit(nogil=True, cache=True)
def send_paced(fd, addrs, buf, offsets, lengths, msg_first, msg_count, ts_offsets, first_pkt,
               n_pkts, base_ns, sched_ns, stamp, midnight_ns, deadline_ns, drops, progress):
    """The one open-loop send core: packet k (first_pkt <= k < first_pkt + n_pkts) goes at
    base_ns + sched_ns[k] (CLOCK_REALTIME) to every line (addrs: uint8[n_lines, 16]
    sockaddr_in) whose loss mask drops[line, k] is 0 (drops may have no columns: no loss),
    whatever the receiver does; stamp != 0 first writes the scheduled time into its ITCH
    timestamps. Stops at the deadline or the stop slot; returns packets sent."""
    buf_addr = buf.ctypes.data
    addr_base = addrs.ctypes.data
    n_lines = min(addrs.shape[0], N_LINES_MAX)
    last = min(first_pkt + n_pkts, offsets.shape[0], sched_ns.shape[0])
    sent = 0
    for k in range(max(first_pkt, 0), last):
        t_sched = base_ns + sched_ns[k]
        while True:
            now = realtime_ns()
            if now >= t_sched:
                break
            if t_sched - now > _SPIN_WINDOW_NS:
                libc_usleep(20)
            else:
                cpu_relax()
        if now > deadline_ns or load_acquire(progress, S_STOP) != 0:
            break
        progress[S_LATE_NS_MAX] = max(progress[S_LATE_NS_MAX], now - t_sched)
        if stamp != 0:
            stamp_timestamps(buf, ts_offsets, msg_first, msg_count, k, t_sched - midnight_ns)
        ok = False
        for line in range(n_lines):
            if k < drops.shape[1] and drops[line, k] != 0:
                progress[S_DROPPED_A + line] += 1
            elif libc_sendto(fd, buf_addr + offsets[k], lengths[k], 0,
                             addr_base + SOCKADDR_BYTES * line, SOCKADDR_BYTES) < 0:
                progress[S_SEND_ERRORS] += 1
            else:
                ok = True
        if ok:
            sent += 1
            progress[S_SENT_MSGS] += msg_count[k]
            store_release(progress, S_SENT_PKTS, progress[S_SENT_PKTS] + 1)
        store_release(progress, S_NEXT_PKT, k + 1)
    return sent


def rate_schedule(msg_first: np.ndarray, rate_msgs_per_s: float, first_pkt: int = 0) -> np.ndarray:
    """Send offsets (ns, for send_paced's sched_ns) at a fixed message rate: packet k goes
    (its first message - packet first_pkt's first message) / rate after the start, computed
    in picoseconds per message so 3 M msgs/s keeps its precision."""
    interval_ps = int(round(1e12 / rate_msgs_per_s))
    base = msg_first[first_pkt] if len(msg_first) > first_pkt else 0
    return ((msg_first.astype(np.int64) - base) * interval_ps) // 1000


NO_DROPS = np.zeros((N_LINES_MAX, 0), np.uint8)


def sockaddr_in(host: str, port: int) -> np.ndarray:
    """struct sockaddr_in as 16 bytes (family little-endian, port and address big-endian)."""
    raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(host) + b"\0" * 8
    return np.frombuffer(raw, dtype=np.uint8).copy()


def line_addrs(*lines: tuple[str, int]) -> np.ndarray:
    """send_paced's addrs: one sockaddr_in row per (host, port) line."""
    if not 1 <= len(lines) <= N_LINES_MAX:
        raise ConfigError("a sender has one or two lines", lines=len(lines))
    return np.ascontiguousarray(np.stack([sockaddr_in(h, int(p)) for h, p in lines]))


class Sender:
    """Sends `packets` to host:port at `rate_msgs_per_s`, on a thread pinned to `cpu`."""

    def __init__(self, packets: MoldPackets, host: str, port: int, rate_msgs_per_s: float,
                 cpu: int | None = None, max_seconds: float = 600.0, ttl: int = 1,
                 interface_addr: str | None = None):
        if not rate_msgs_per_s > 0:
            raise ConfigError("rate must be a positive number of messages per second",
                              rate_msgs_per_s=rate_msgs_per_s)
        self.packets, self.host, self.port = packets, host, int(port)
        self.rate = float(rate_msgs_per_s)
        self.cpu, self.max_seconds = cpu, max_seconds
        self.progress = np.zeros(N_PROGRESS, dtype=np.int64)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        if ttl != 1:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if interface_addr:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface_addr))
        self.addr = line_addrs((host, self.port))   # one line
        self.buf = packets.buf.copy()   # stamping writes into it
        self.thread: threading.Thread | None = None
        self.start_ns = 0
        self.sent = 0
        self._compile()

    def _compile(self):
        p = self.packets
        send_paced(self.sock.fileno(), self.addr, self.buf, p.offsets, p.lengths, p.msg_first,
                   p.msg_count, p.ts_offsets, 0, 0, 0, np.zeros(0, np.int64), 1, 0, 0, NO_DROPS,
                   self.progress)
        self.progress[:] = 0

    def _body(self, first_pkt, n_pkts, midnight_ns, sched):
        if self.cpu is not None:
            import os
            os.sched_setaffinity(threading.get_native_id(), [self.cpu])
        p = self.packets
        deadline = self.start_ns + int(self.max_seconds * 1e9)
        self.sent = send_paced(self.sock.fileno(), self.addr, self.buf, p.offsets, p.lengths,
                               p.msg_first, p.msg_count, p.ts_offsets, first_pkt, n_pkts,
                               self.start_ns, sched, 1, midnight_ns, deadline, NO_DROPS,
                               self.progress)
        self.progress[S_DONE] = 1

    def start(self, first_pkt: int = 0, n_pkts: int | None = None, delay_s: float = 0.05):
        n = self.packets.n_packets - first_pkt if n_pkts is None else n_pkts
        from tickpath.runtime.engine.pipeline import utc_midnight_ns
        sched = rate_schedule(self.packets.msg_first, self.rate, first_pkt)
        self.start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) + int(delay_s * 1e9)
        self.thread = threading.Thread(target=self._body,
                                       args=(first_pkt, n, utc_midnight_ns(), sched),
                                       name="tickpath-sender", daemon=True)
        self.thread.start()
        return self

    def done(self) -> bool:
        return bool(self.progress[S_DONE])

    def stop(self):
        self.progress[S_STOP] = 1

    def join(self, timeout_s: float | None = None):
        if self.thread is not None:
            self.thread.join(timeout_s)

    def stats(self) -> dict:
        return {"sent_packets": int(self.progress[S_SENT_PKTS]),
                "sent_messages": int(self.progress[S_SENT_MSGS]),
                "send_errors": int(self.progress[S_SEND_ERRORS]),
                "max_late_ns": int(self.progress[S_LATE_NS_MAX]),
                "rate_msgs_per_s": self.rate}

    def close(self):
        self.stop()
        self.join(5)
        self.sock.close()


