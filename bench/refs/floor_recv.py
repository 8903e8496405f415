"""The receive floor as a path of `tickpath bench` (`floor-recv`): floor_recv.c, a C program
that spins on non-blocking recvmmsg and only reads each message's ITCH timestamp.

It is fed by the same open-loop sender, the same seeded feed and the same placement as every
other path (pinned to the receiver's CPU), and its latency has the pipeline's definition
(CLOCK_REALTIME at completion − the scheduled send time in the ITCH timestamp, warm-up by
MoldUDP64 sequence number), so the report can divide any path's p50 by this one's. The
harness binds the socket like the kernel backend (SO_REUSEADDR, the same receive buffer,
non-blocking) and hands its descriptor to the C process; the batch and slot sizes are the
kernel backend's defaults. The binary is built at run time (cbuild.py); without a C compiler
the path is skipped with the reason. Like the plain-Python baseline it reports at the end
(no live counters), which costs it nothing while it spins.

`floor-recv-veth` is the same program on the veth link the AF_XDP path receives on (its
socket made inside the receive namespace, the sender in the other): a path that crosses the
veth is compared with the floor over the same link, not with loopback's, which skips the
veth's transmit and its softirq hop.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from tickpath.bench.refs import cbuild

SOURCE = Path(__file__).with_name("floor_recv.c")
NAME = "floor-recv"
RCVBUF_BYTES = 8 << 20        # the kernel backend's default (runtime/config/sections.py Backend)
SO_RCVBUFFORCE = 33


class FloorRecvUnavailable(cbuild.CUnavailable):
    """The receive floor cannot run here; the reason says why."""


def build() -> Path:
    return cbuild.build(SOURCE, cbuild.user_cache_dir("refs"), "floor-recv", unavailable=FloorRecvUnavailable)


def check() -> str | None:
    """None when the floor can run here, else the reason (the bench lists it as skipped)."""
    try:
        build()
    except FloorRecvUnavailable as exc:
        return str(exc)
    return None


def bind_socket(host: str = "127.0.0.1", port: int = 0, rcvbuf_bytes: int = RCVBUF_BYTES) -> socket.socket:
    """A non-blocking UDP socket set up like the kernel backend's."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf_bytes)
        except OSError:   # without CAP_NET_ADMIN: rmem_max caps it, as for the backend
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        s.bind((host, port))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


class FloorRecvProcess:
    """One floor-recv process on a bound socket; `result()` waits and returns its counts and
    latencies (int64 ns). Python-only control: everything timed happens in C."""

    def __init__(self, n_expected: int, deadline_s: float, midnight_ns: int, warmup_seq: int,
                 cpu: int | None = None, slots: int = 32, slot_bytes: int = 2048, host: str = "127.0.0.1",
                 netns_ctx=None):
        exe = build()
        self.tmp = tempfile.TemporaryDirectory(prefix="tickpath-floor-recv-")
        self.out = os.path.join(self.tmp.name, "latency_ns.bin")
        # a socket belongs to the namespace it was made in: the C process may run anywhere
        with netns_ctx if netns_ctx is not None else contextlib.nullcontext():
            self.sock = bind_socket(host)
        self.dest = self.sock.getsockname()
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [str(exe), str(fd), str(int(n_expected)), f"{deadline_s:.3f}", str(int(midnight_ns)),
             str(int(warmup_seq)), str(int(slots)), str(int(slot_bytes)), self.out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(fd,))
        if cpu is not None:   # pinned from here: preexec_fn is unsafe in a threaded process
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(self.proc.pid, [cpu])
        self.sock.close()     # the child holds its own copy of the descriptor
        self.sock = None

    def result(self, timeout_s: float) -> dict:
        try:
            out, err = self.proc.communicate(timeout=max(timeout_s, 1.0))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise RuntimeError(f"floor-recv did not finish in {timeout_s:.1f} s: {err[-300:]}") from None
        if self.proc.returncode != 0:
            raise RuntimeError(f"floor-recv exited {self.proc.returncode}: {err.strip()[-300:]}")
        res = json.loads(out.strip().splitlines()[-1])
        res["latency_ns"] = np.fromfile(self.out, dtype=np.int64)
        if len(res["latency_ns"]) != res["recorded"]:
            raise RuntimeError(f"floor-recv wrote {len(res['latency_ns'])} latencies, said {res['recorded']}")
        return res

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.tmp.cleanup()


def wait_until(proc: FloorRecvProcess, deadline: float) -> float:
    """Monotonic time at which the process ended (or the deadline passed)."""
    while proc.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return time.monotonic()
