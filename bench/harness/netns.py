"""A throwaway two-namespace veth link for the bench's AF_XDP path (slow path only).

    netns <tx> [vtx 198.18.x.1/30] <== veth ==> [vrx 198.18.x.2/30] netns <rx>

AF_XDP needs an interface of its own to attach its XDP program to; taking over a real NIC
or loopback would disturb the host, so the bench makes this link, sends from the tx side
and receives (generic/skb mode) on vrx. Names carry the pid, so two benches never clash;
`close()` deletes both namespaces (the veth goes with them) and is idempotent. `inside(ns)`
moves the calling thread into a namespace for the duration of a block (sockets keep the
namespace they were created in). Needs root; `unavailable_reason()` says why not otherwise.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import subprocess

from tickpath.runtime.core.errors import PrivilegeError, ResourceError

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
RX_MAC = "02:00:00:00:b0:02"
TX_MAC = "02:00:00:00:b0:01"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if check and r.returncode != 0:
        raise ResourceError("ip command failed", args=" ".join(args), stderr=r.stderr.strip())
    return r


def unavailable_reason() -> str | None:
    """None when this process can make namespaces and veth pairs, else the reason."""
    if os.geteuid() != 0:
        return f"network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); euid={os.geteuid()}"
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    probe = f"tpbprobe{os.getpid()}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add refused: {r.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def setns_ok(fd: int) -> bool:
    """Move this thread into the network namespace open at fd (safe in a preexec_fn)."""
    return _libc.setns(fd, _CLONE_NEWNET) == 0


def _setns(fd: int) -> None:
    if not setns_ok(fd):
        e = ctypes.get_errno()
        raise PrivilegeError("setns failed", errno=e, reason=os.strerror(e))


class BenchLink:
    """The veth pair; use as a context manager or call open()/close()."""

    def __init__(self, index: int = 0):
        tag = f"{os.getpid() % 100000}b{index}"
        self.ns_tx, self.ns_rx = f"tpb{tag}t", f"tpb{tag}r"
        self.if_tx, self.if_rx = "vtx", "vrx"
        sub = (os.getpid() * 13 + index + 16000) % 32768          # a /30 inside 198.18.0.0/15
        base = (198 << 24) | (18 << 16) | (sub * 4)
        self.ip_tx = ".".join(str((base + 1 >> s) & 255) for s in (24, 16, 8, 0))
        self.ip_rx = ".".join(str((base + 2 >> s) & 255) for s in (24, 16, 8, 0))
        self._open = False

    def open(self) -> BenchLink:
        why = unavailable_reason()
        if why:
            raise PrivilegeError("cannot create the bench's veth link", reason=why)
        self._open = True
        atexit.register(self.close)
        try:
            for ns in (self.ns_tx, self.ns_rx):
                _ip("netns", "add", ns)
                # no IPv6 chatter (router solicitations) landing on the XDP socket
                _ip("-n", ns, "link", "set", "lo", "up")
                for key in ("all", "default"):   # default: the veth arrives after this
                    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                    f"net.ipv6.conf.{key}.disable_ipv6=1"], capture_output=True,
                                   timeout=20, check=False)
            _ip("link", "add", self.if_tx, "netns", self.ns_tx, "address", TX_MAC, "type", "veth",
                "peer", "name", self.if_rx, "netns", self.ns_rx, "address", RX_MAC)
            for ns, ifn, addr in ((self.ns_tx, self.if_tx, self.ip_tx), (self.ns_rx, self.if_rx, self.ip_rx)):
                _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", ifn)
                _ip("-n", ns, "link", "set", ifn, "up")
            # the XDP program on vrx may swallow ARP replies: a permanent neighbour entry
            _ip("-n", self.ns_tx, "neigh", "replace", self.ip_rx, "lladdr", RX_MAC, "dev", self.if_tx,
                "nud", "permanent")
            # multicast feeds leave the tx namespace through the veth
            _ip("-n", self.ns_tx, "route", "add", "224.0.0.0/4", "dev", self.if_tx)
        except BaseException:
            self.close()
            raise
        return self

    @contextlib.contextmanager
    def inside(self, ns: str):
        """Run the block with this thread in namespace `ns`; always moves back."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
            yield
        finally:
            _setns(home)
            os.close(target)
            os.close(home)

    def exists(self) -> bool:
        out = _ip("netns", "list", check=False).stdout
        return any(line.split()[0] in (self.ns_tx, self.ns_rx) for line in out.splitlines() if line.strip())

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for ns in (self.ns_tx, self.ns_rx):
            _ip("netns", "del", ns, check=False)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> BenchLink:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
