"""Attach an XDP program to an interface, crash-safe, and never over someone else's.

Preferred: BPF_LINK_CREATE (Linux 5.9+). The kernel detaches a link's program when the
last fd to the link closes, so a crash, SIGKILL or SIGTERM (default action) detaches it
with no code of ours running. Fallback: netlink IFLA_XDP (pyroute2) with
XDP_FLAGS_UPDATE_IF_NOEXIST; that attachment outlives the process, so `detach()` must run
(close(), atexit, and the backend's SIGTERM handler see to it).

Modes: "skb" = generic XDP (any netdev, copy), "drv" = native driver XDP, "zerocopy" =
native (the socket then binds with XDP_ZEROCOPY), "auto" = native if the driver has it,
else generic. Which mode the kernel really used is read back from IFLA_XDP_ATTACHED.
An interface that already has a program is refused unless replace=True.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from tickpath.runtime.core.errors import BackendError, ConfigError
from tickpath.runtime.backends.afxdp import bpf as _bpf
from tickpath.runtime.backends.afxdp.layout import (
    XDP_FLAGS_DRV_MODE,
    XDP_FLAGS_SKB_MODE,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
)

MODES = ("auto", "skb", "drv", "zerocopy")
_ATTACHED_NAMES = {0: None, 1: "drv", 2: "skb", 3: "hw", 4: "multi"}
_MODE_FLAGS = {"skb": XDP_FLAGS_SKB_MODE, "drv": XDP_FLAGS_DRV_MODE, "zerocopy": XDP_FLAGS_DRV_MODE}


def _iproute():
    """A netlink handle; pyroute2 is imported here, not at the top (~0.14 s `tickpath info` skips)."""
    from pyroute2 import IPRoute
    return IPRoute()


def current_xdp(ifindex: int) -> dict:
    """{'mode': None|'drv'|'skb'|'hw'|'multi', 'prog_id': int} for the interface, via netlink."""
    with _iproute() as ipr:
        links = ipr.get_links(ifindex)
    if not links:
        raise ConfigError("interface vanished", ifindex=ifindex)
    xdp = links[0].get_attr("IFLA_XDP")
    if xdp is None:
        return {"mode": None, "prog_id": 0}
    raw_mode = xdp.get_attr("IFLA_XDP_ATTACHED")
    mode_num = {None: 0, "xdp": 1, "xdpgeneric": 2, "xdpoffload": 3, "xdpmulti": 4}.get(raw_mode, raw_mode)
    prog = xdp.get_attr("IFLA_XDP_PROG_ID") or xdp.get_attr("IFLA_XDP_DRV_PROG_ID") \
        or xdp.get_attr("IFLA_XDP_SKB_PROG_ID") or 0
    return {"mode": _ATTACHED_NAMES.get(mode_num, str(mode_num)), "prog_id": int(prog)}


def _netlink_set(ifindex: int, fd: int, flags: int) -> None:
    with _iproute() as ipr:
        ipr.link("set", index=ifindex,
                 xdp={"attrs": [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]})


def _link_create(prog_fd: int, ifindex: int, flags: int) -> int:
    attr = _bpf._attr("=IIII", prog_fd, ifindex, _bpf.BPF_XDP, flags)
    return _bpf.bpf(_bpf.BPF_LINK_CREATE, attr)


@dataclass
class Attachment:
    ifname: str
    ifindex: int
    prog_id: int
    mode: str            # what the kernel reports: "drv" or "skb"
    method: str          # "bpf_link" or "netlink"
    link_fd: int = -1
    _flags: int = 0

    def detach(self) -> None:
        """Remove our program (idempotent); leaves a program that is not ours alone."""
        if self.method == "bpf_link":
            if self.link_fd >= 0:
                os.close(self.link_fd)
                self.link_fd = -1
            return
        if self.prog_id == 0:
            return
        try:
            cur = current_xdp(self.ifindex)
            if cur["prog_id"] == self.prog_id:
                _netlink_set(self.ifindex, -1, self._flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST)
        except Exception:
            pass  # interface gone (namespace removed): the program went with it
        self.prog_id = 0


def attach(ifname: str, ifindex: int, prog_fd: int, mode: str, replace: bool = False,
           allow_netlink: bool = True) -> Attachment:
    if mode not in MODES:
        raise ConfigError("unknown XDP mode", mode=mode, allowed=list(MODES))
    cur = current_xdp(ifindex)
    if cur["prog_id"]:
        if not replace:
            raise BackendError("an XDP program is already attached to the interface",
                               interface=ifname, prog_id=cur["prog_id"], mode=cur["mode"],
                               hint="set replace_program = true to replace it")
        try:
            flags = XDP_FLAGS_SKB_MODE if cur["mode"] == "skb" else XDP_FLAGS_DRV_MODE
            _netlink_set(ifindex, -1, flags)
        except Exception as exc:
            raise BackendError("cannot remove the attached XDP program (a bpf_link held by "
                               "another process cannot be replaced)", interface=ifname,
                               prog_id=cur["prog_id"], reason=str(exc)) from exc

    our_id = _bpf.prog_id(prog_fd)
    tries = ["drv", "skb"] if mode == "auto" else [mode]
    last: Exception | None = None
    for m in tries:
        flags = _MODE_FLAGS[m]
        try:
            link_fd = _link_create(prog_fd, ifindex, flags)
            att = Attachment(ifname, ifindex, our_id, "", "bpf_link", link_fd, flags)
        except OSError as exc:
            last = exc
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise _bpf._priv_or_backend(exc, "XDP attach", interface=ifname) from exc
            if exc.errno == errno.EBUSY:
                raise BackendError("an XDP program was attached concurrently", interface=ifname,
                                   mode=m) from exc
            if not allow_netlink or exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.E2BIG):
                continue  # e.g. EOPNOTSUPP: this mode is not offered; try the next one
            # old kernel without XDP links: netlink, which outlives the process
            try:
                _netlink_set(ifindex, prog_fd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST)
            except Exception as exc2:
                last = exc2
                continue
            att = Attachment(ifname, ifindex, our_id, "", "netlink", -1, flags)
        now = current_xdp(ifindex)
        att.mode = now["mode"] or m
        if now["prog_id"] != our_id:
            att.detach()
            raise BackendError("XDP program not attached after attach", interface=ifname,
                               expected_prog_id=our_id, found_prog_id=now["prog_id"])
        return att
    reason = getattr(last, "strerror", None) or str(last)
    raise BackendError("XDP attach failed in every mode tried", interface=ifname, modes=tries,
                       errno=getattr(last, "errno", None), reason=reason)
