"""The open-loop load generator: sends pre-encoded MoldUDP64 packets on a fixed schedule and
never waits for the receiver (wrk2's rule: a slow receiver must not slow the sender, or the
latency it sees is hidden — coordinated omission).

Packet k is scheduled at start + (index of its first message) / rate. Just before sending,
the sender stamps that *scheduled* time (ns since UTC midnight) into the ITCH timestamp of
every message in the packet, so the receiver measures completion − intended send time,
which includes any lateness of the sender itself. The loop is numba (nogil) calling libc
sendto (a declared libc symbol, runtime/sys/libc.py); it is bounded by its packet count and a deadline, and watches a stop
flag. Send errors are counted (the receiver will see the gap), never retried silently.
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


# progress slots (int64), readable while the sender runs
S_SENT_PKTS, S_SENT_MSGS, S_SEND_ERRORS, S_LATE_NS_MAX, S_DONE, S_STOP = range(6)
N_PROGRESS = 8
_SPIN_WINDOW_NS = 100_000   # closer than this to the schedule: spin, else sleep a little


@njit(nogil=True, cache=True)
def send_loop(fd, addr_ptr, buf, offsets, lengths, msg_first, msg_count, ts_offsets,
              first_pkt, n_pkts, start_ns, interval_ps, midnight_ns, deadline_ns, progress):
    """Send packets [first_pkt, first_pkt+n_pkts); returns packets sent."""
    base_msg = msg_first[first_pkt]
    buf_addr = buf.ctypes.data
    sent = 0
    for k in range(first_pkt, first_pkt + n_pkts):
        # schedule in picoseconds per message, so 3 M msgs/s keeps its precision
        t_sched = start_ns + ((msg_first[k] - base_msg) * interval_ps) // 1000
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
        late = now - t_sched
        if late > progress[S_LATE_NS_MAX]:
            progress[S_LATE_NS_MAX] = late
        stamp_timestamps(buf, ts_offsets, msg_first, msg_count, k, t_sched - midnight_ns)
        rc = libc_sendto(fd, buf_addr + offsets[k], lengths[k], 0, addr_ptr, 16)
        if rc < 0:
            progress[S_SEND_ERRORS] += 1
        else:
            sent += 1
            progress[S_SENT_MSGS] += msg_count[k]
        store_release(progress, S_SENT_PKTS, sent)
    store_release(progress, S_DONE, 1)
    return sent


def sockaddr_in(host: str, port: int) -> np.ndarray:
    """struct sockaddr_in as 16 bytes (family little-endian, port and address big-endian)."""
    raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(host) + b"\0" * 8
    return np.frombuffer(raw, dtype=np.uint8).copy()


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
        self.addr = sockaddr_in(host, self.port)
        self.buf = packets.buf.copy()   # stamping writes into it
        self.thread: threading.Thread | None = None
        self.start_ns = 0
        self.sent = 0
        self._compile()

    def _compile(self):
        p = self.packets
        send_loop(self.sock.fileno(), self.addr.ctypes.data, self.buf, p.offsets, p.lengths,
                  p.msg_first, p.msg_count, p.ts_offsets, 0, 0, 0, 1, 0, 0, self.progress)
        self.progress[:] = 0   # the compile pass marked itself done

    def _body(self, first_pkt, n_pkts, midnight_ns):
        if self.cpu is not None:
            import os
            os.sched_setaffinity(threading.get_native_id(), [self.cpu])
        p = self.packets
        interval_ps = int(round(1e12 / self.rate))
        deadline = self.start_ns + int(self.max_seconds * 1e9)
        self.sent = send_loop(self.sock.fileno(), self.addr.ctypes.data, self.buf, p.offsets,
                              p.lengths, p.msg_first, p.msg_count, p.ts_offsets, first_pkt,
                              n_pkts, self.start_ns, interval_ps, midnight_ns, deadline,
                              self.progress)

    def start(self, first_pkt: int = 0, n_pkts: int | None = None, delay_s: float = 0.05):
        n = self.packets.n_packets - first_pkt if n_pkts is None else n_pkts
        from tickpath.runtime.engine.pipeline import utc_midnight_ns
        self.start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) + int(delay_s * 1e9)
        self.thread = threading.Thread(target=self._body, args=(first_pkt, n, utc_midnight_ns()),
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


