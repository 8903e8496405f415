"""The C floor of tick-to-trade: build floor.c with the system C compiler, and run it as
a responder against the venue (see floor.c for what it does and does not do).

The binary is built at run time (bench/refs/cbuild.py, shared with the receive floor) into a
per-user cache directory named by a hash of the source, so an edit rebuilds and a second run
reuses it; without a C compiler `build()` raises FloorUnavailable with the reason and the harness skips the floor (the rest runs).
The harness owns the sockets: it binds the ITCH port and logs in over SoupBinTCP in Python,
then hands both file descriptors to the C process, so the C side is only the spin loop.
"""
from __future__ import annotations

import json
import os
import shutil  # noqa: F401 (tests patch shutil.which through this module; the build is cbuild's)
import socket
import subprocess
from pathlib import Path

from tickpath.bench.refs import cbuild
from tickpath.bench.venue import ouch, soupbin

SOURCE = Path(__file__).with_name("floor.c")


class FloorUnavailable(cbuild.CUnavailable):
    """The floor cannot run here (no C compiler, or it failed to build); the reason says why."""


def cache_dir() -> Path:
    return cbuild.user_cache_dir("t2t")


def build() -> Path:
    """The floor binary, compiled when the source changed; FloorUnavailable without a compiler."""
    return cbuild.build(SOURCE, cache_dir(), "floor", unavailable=FloorUnavailable)


def login(host: str, port: int, user: str, password: str, timeout_s: float = 10.0) -> socket.socket:
    """A TCP session logged in to the venue (SoupBinTCP 4.1), TCP_NODELAY, then non-blocking."""
    s = socket.create_connection((host, port), timeout=timeout_s)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(soupbin.login_request(user, password))
    buf = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            s.close()
            raise FloorUnavailable(f"the venue closed the session during login as {user}")
        buf += chunk
        pkts, buf = soupbin.split(buf)
        for t, payload in pkts:
            if t == soupbin.LOGIN_ACCEPTED:
                s.setblocking(False)
                return s
            if t == soupbin.LOGIN_REJECTED:
                s.close()
                raise FloorUnavailable(f"login rejected for {user}: {payload!r}")


def order_packet(symbol: str, price4: int, qty: int = 1) -> bytes:
    """The pre-built answer: an IOC buy (never resting, so the answers leave the book as it was),
    UserRefNum and ClOrdID patched per trigger by the C side."""
    msg = ouch.encode_inbound("O", uref=0, side="B", qty=qty, symbol=symbol, price=price4, tif="3",
                              display="Y", capacity="P", iso="N", cross="N", clordid=b"0" * 14,
                              appendage_len=0)
    return soupbin.packet(soupbin.UNSEQUENCED, msg)


class Floor:
    """The C responder as a child process pinned to `cpu` (None: unpinned)."""

    def __init__(self, exe: Path, udp: socket.socket, tcp: socket.socket, marker: dict, seconds: float,
                 cpu: int | None = None):
        args = [str(exe), str(udp.fileno()), str(tcp.fileno()), str(marker["locate_lo"]),
                str(marker["locate_hi"]), str(marker["shares"]), f"{seconds:.3f}", "0",
                order_packet(marker["symbol"], marker["answer_price"]).hex()]
        pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     pass_fds=(udp.fileno(), tcp.fileno()), preexec_fn=pre)

    def wait(self, timeout_s: float) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            return {"error": "the floor did not finish in time", "stderr": err[-500:]}
        if self.proc.returncode != 0:
            return {"error": f"floor exited {self.proc.returncode}", "stderr": err[-500:]}
        return json.loads(out.strip().splitlines()[-1])
