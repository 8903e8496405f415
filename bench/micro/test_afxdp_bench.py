"""AF_XDP (skb/copy mode) vs a kernel UDP socket, side by side on one veth pair.

One paced sender (numba, sendto through libc, CLOCK_REALTIME send time in the first 8 bytes
of each datagram) runs in the tx namespace; the receiver runs in the rx namespace, each
alternative in its own jitted spin loop (AF_XDP: afxdp_poll; socket: recvfrom MSG_DONTWAIT),
recording latency = receive stamp - send stamp per datagram. Reported: the highest tried
rate with zero loss for each, and p50/p99 latency at a moderate rate.

    PYTHONPATH=tests/support python bench/micro/test_afxdp_bench.py [--rates 50000,100000,...] [--seconds 0.3]
or via pytest (one short round): pytest bench/micro/test_afxdp_bench.py --benchmark-enable
Needs root and network namespaces.
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit


from tickpath.runtime.backends.afxdp.backend import AfxdpBackend
from tickpath.runtime.backends.afxdp.config import AfxdpConfig
from tickpath.runtime.sys.intrinsics import monotonic_ns, realtime_ns
from tickpath.runtime.sys.libc import libc_recvfrom

PORT = 26500
PAYLOAD_BYTES = 64

_SENDER = r"""
import socket, struct, sys
import numpy as np
from numba import njit
from tickpath.runtime.sys.intrinsics import monotonic_ns, realtime_ns, cpu_relax
from tickpath.runtime.sys.libc import libc_sendto

@njit(nogil=True)
def send_paced(fd, buf, n, interval_ns, sa):
    start = monotonic_ns() + 1_000_000
    errors = 0
    for i in range(n):
        due = start + i * interval_ns
        while monotonic_ns() < due:
            cpu_relax()
        t = realtime_ns()
        for b in range(8):
            buf[b] = (t >> (8 * b)) & 0xFF
            buf[8 + b] = (i >> (8 * b)) & 0xFF
        if libc_sendto(fd, buf.ctypes.data, buf.shape[0], 0, sa.ctypes.data, 16) < 0:
            errors += 1
    return errors

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
dst = sys.argv[1]
buf = np.zeros(int(sys.argv[2]), np.uint8)
sa = np.frombuffer(struct.pack("=H", socket.AF_INET) + struct.pack("!H", 9) + socket.inet_aton(dst) + bytes(8), np.uint8).copy()
send_paced(s.fileno(), buf, 10, 1000, sa)   # compile + warm
print("ready", flush=True)
for line in sys.stdin:
    rate, n, port = map(int, line.split())
    sa[2:4] = np.frombuffer(struct.pack("!H", port), np.uint8)
    err = send_paced(s.fileno(), buf, n, int(1e9 / rate), sa)
    print("done", err, flush=True)
"""


@njit(nogil=True, inline="always")
def _le64(p, o):
    v = np.int64(0)
    for b in range(8):
        v |= np.int64(p[o + b]) << (8 * b)
    return v


@njit(nogil=True)
def afxdp_loop(poll, state, payload, lengths, recv_ns, lat_ns, n_want, deadline_ns):
    got = 0
    while got < n_want and monotonic_ns() < deadline_ns:
        n = poll(state, payload, lengths, recv_ns)
        for i in range(n):
            if lengths[i] >= 16 and got < lat_ns.shape[0]:
                lat_ns[got] = recv_ns[i] - _le64(payload[i], 0)
                got += 1
    return got


@njit(nogil=True)
def socket_loop(fd, buf, lat_ns, n_want, deadline_ns):
    got = 0
    while got < n_want and monotonic_ns() < deadline_ns:
        r = libc_recvfrom(fd, buf.ctypes.data, buf.shape[0], 0x40, 0, 0)
        if r >= 16:
            lat_ns[got] = realtime_ns() - _le64(buf, 0)
            got += 1
    return got


class Bench:
    def __init__(self, pair):
        self.pair = pair
        self.sender = subprocess.Popen(
            ["ip", "netns", "exec", pair.ns_tx, sys.executable, "-c", _SENDER, pair.ip_rx, str(PAYLOAD_BYTES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.sender.stdout.readline().strip() == "ready"
        self.payload = np.zeros((64, 2048), np.uint8)
        self.lengths = np.zeros(64, np.int32)
        self.recv_ns = np.zeros(64, np.int64)

    def close(self):
        self.sender.stdin.close()
        self.sender.wait(timeout=10)

    def _send(self, rate, n):
        self.sender.stdin.write(f"{rate} {n} {PORT}\n")
        self.sender.stdin.flush()

    def _done(self):
        return self.sender.stdout.readline()

    def run_afxdp(self, rate, n):
        with self.pair.inside(self.pair.ns_rx):
            b = AfxdpBackend(AfxdpConfig(interface=self.pair.if_rx, udp_port=PORT, mode="skb")).open()
        try:
            lat = np.zeros(n, np.int64)
            afxdp_loop(b.poll, b.state, self.payload, self.lengths, self.recv_ns, lat, 0, 0)  # compile
            self._send(rate, n)
            got = afxdp_loop(b.poll, b.state, self.payload, self.lengths, self.recv_ns, lat, n,
                             time.clock_gettime_ns(time.CLOCK_MONOTONIC) + int(n / rate * 1e9) + 500_000_000)
            self._done()
            st = b.stats()
        finally:
            b.close()
        return got, lat[:got], st

    def run_socket(self, rate, n):
        with self.pair.inside(self.pair.ns_rx):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((self.pair.ip_rx, PORT))
        try:
            buf = np.zeros(2048, np.uint8)
            lat = np.zeros(n, np.int64)
            socket_loop(s.fileno(), buf, lat, 0, 0)
            self._send(rate, n)
            got = socket_loop(s.fileno(), buf, lat, n,
                              time.clock_gettime_ns(time.CLOCK_MONOTONIC) + int(n / rate * 1e9) + 500_000_000)
            self._done()
        finally:
            s.close()
        return got, lat[:got], {}


def compare(rates, seconds, latency_rate=20_000, latency_seconds=0.5, repeats=3):
    from netns import VethPair
    out = {"rates": {}, "latency": {}}
    with VethPair() as pair:
        bench = Bench(pair)
        try:
            for name in ("afxdp", "socket"):
                run = getattr(bench, f"run_{name}")
                p50s, p99s = [], []
                for _ in range(repeats):
                    n = int(latency_rate * latency_seconds)
                    got, lat, _ = run(latency_rate, n)
                    p50s.append(float(np.percentile(lat, 50)))
                    p99s.append(float(np.percentile(lat, 99)))
                out["latency"][name] = {"rate_pkts_per_s": latency_rate, "p50_ns": p50s, "p99_ns": p99s}
                best = 0
                for rate in rates:
                    n = int(rate * seconds)
                    got, _, _ = run(rate, n)
                    out["rates"].setdefault(name, {})[rate] = got / n
                    if got == n:
                        best = rate
                out.setdefault("max_zero_loss_pkts_per_s", {})[name] = best
        finally:
            bench.close()
    z = out["max_zero_loss_pkts_per_s"]
    out["ratio_afxdp_over_socket"] = (z["afxdp"] / z["socket"]) if z["socket"] else None
    return out


def test_afxdp_vs_socket(benchmark):
    import os
    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and AF_XDP")
    res = benchmark.pedantic(compare, args=([50_000, 100_000], 0.2), kwargs={"repeats": 1},
                             rounds=1, iterations=1)
    benchmark.extra_info.update(json.loads(json.dumps(res, default=str)))
    assert res["max_zero_loss_pkts_per_s"]["afxdp"] > 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="50000,100000,150000,200000,250000,300000,400000")
    ap.add_argument("--seconds", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps(compare([int(r) for r in a.rates.split(",")], a.seconds, repeats=a.repeats), indent=1))
