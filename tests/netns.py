"""Test hosts made by the test: two network namespaces joined by a veth pair.

    ns <tx>  [vtx 198.18.x.1/30, 02:00:00:00:00:01] <==veth==> [vrx 198.18.x.2/30, 02:..:02]  ns <rx>

Names carry the pid and a counter, so parallel test runs never clash; `close()` deletes
both namespaces (the veth ends go with them) and runs even when the test fails (context
manager / fixture finalizer, plus atexit as a last resort). IPv6 is disabled on both ends so
no router/neighbour solicitations appear as stray frames; the tx side gets a permanent
neighbour entry for the rx address, because an XDP program on vrx may swallow ARP.

`inside(ns)` moves the calling thread into a namespace and back (setns(2)): a socket keeps
the namespace it was created in, so a test can create a sender in tx, then open an AF_XDP
receiver in rx, and drive both from one thread.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import subprocess

_COUNTER = itertools.count()
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """setns(2) into a network namespace (os.setns exists only from Python 3.12)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
TX_MAC = "02:00:00:00:00:01"
RX_MAC = "02:00:00:00:00:02"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=20)


def netns_unavailable_reason() -> str | None:
    """None when this process can create namespaces and veth pairs, else why not."""
    if os.geteuid() != 0:
        return f"network namespaces need root (CAP_SYS_ADMIN + CAP_NET_ADMIN); euid={os.geteuid()}"
    name = f"tpprobe{os.getpid()}"
    try:
        r = _ip("netns", "add", name, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"iproute2 `ip` unusable: {exc}"
    if r.returncode != 0:
        return f"ip netns add refused: {r.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


class VethPair:
    def __init__(self, subnet_index: int | None = None):
        n = next(_COUNTER)
        tag = f"{os.getpid() % 100000}x{n}"
        self.ns_tx = f"tp{tag}t"
        self.ns_rx = f"tp{tag}r"
        self.if_tx = "vtx"
        self.if_rx = "vrx"
        idx = (subnet_index if subnet_index is not None else (os.getpid() * 7 + n)) % 32768
        base = (198 << 24) | (18 << 16) | (idx * 4)       # a /30 inside 198.18.0.0/15
        self.ip_tx = _dotted(base + 1)
        self.ip_rx = _dotted(base + 2)
        self._open = False

    def open(self) -> "VethPair":
        self._open = True
        atexit.register(self.close)
        try:
            for ns in (self.ns_tx, self.ns_rx):
                _ip("netns", "add", ns)
                self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
                self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
            _ip("link", "add", self.if_tx, "netns", self.ns_tx, "address", TX_MAC, "type", "veth",
                "peer", "name", self.if_rx, "netns", self.ns_rx, "address", RX_MAC)
            for ns, ifn, addr in ((self.ns_tx, self.if_tx, self.ip_tx), (self.ns_rx, self.if_rx, self.ip_rx)):
                _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", ifn)
                _ip("-n", ns, "link", "set", ifn, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.ns_tx, "neigh", "replace", self.ip_rx, "lladdr", RX_MAC, "dev", self.if_tx,
                "nud", "permanent")
            _ip("-n", self.ns_tx, "route", "add", "224.0.0.0/4", "dev", self.if_tx)
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def sysctl(ns: str, key: str, value: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"],
                       check=True, capture_output=True, timeout=20)

    def exec(self, ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                              timeout=kw.pop("timeout", 60), **kw)

    @contextlib.contextmanager
    def inside(self, ns: str):
        """Run the block with this thread in namespace `ns`; always moves back."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            setns(target)
            yield
        finally:
            setns(home)
            os.close(target)
            os.close(home)

    def exists(self) -> bool:
        out = _ip("netns", "list", check=False).stdout
        names = {line.split()[0] for line in out.splitlines() if line.strip()}
        return self.ns_tx in names or self.ns_rx in names

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for ns in (self.ns_tx, self.ns_rx):
            _ip("netns", "del", ns, check=False)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self) -> "VethPair":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _dotted(v: int) -> str:
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))
