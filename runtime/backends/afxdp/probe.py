"""`probe()` for `tickpath info`: can AF_XDP run here, by which path, on which modes.

Capabilities are detected, not configured: open an AF_XDP socket, create (and drop) an
XSKMAP, look for libbpf/libxdp (reported only: tickpath's raw bpf() path needs neither),
and for an interface report its queues, any attached program and the XDP modes it offers.
Generic (skb) mode works on every netdev; native (drv) and zero-copy depend on the driver
and are read from netlink's IFLA_XDP when attached, else reported as "untested" rather
than probed by attaching (which resets the rings of many real NICs).
"""
from __future__ import annotations

import ctypes.util
import os
import platform
import re
import socket

from tickpath.runtime.core.errors import TickpathError
from tickpath.runtime.backends.afxdp import bpf as _bpf
from tickpath.runtime.backends.afxdp.attach import current_xdp
from tickpath.runtime.backends.afxdp.config import interface_index, rx_queue_count
from tickpath.runtime.backends.afxdp.layout import AF_XDP

LD_SO_CACHE = "/etc/ld.so.cache"


def shared_library(name: str, cache_path: str = LD_SO_CACHE) -> str | None:
    """The soname the loader knows for lib<name> (what ctypes.util.find_library answers), read
    from the loader's cache: find_library runs ldconfig, gcc and ld (~0.1 s), a third of what
    `tickpath info` may take. The cache's strings are NUL-terminated paths; a key (the soname)
    may be stored as the tail of its path, so the name is matched after a '/' or a NUL."""
    try:
        with open(cache_path, "rb") as f:
            data = f.read()
    except OSError:  # no cache file (musl, containers without ldconfig): ask the slow way
        return ctypes.util.find_library(name)
    found = re.search(rb"[/\x00](lib" + re.escape(name.encode()) + rb"\.so(?:\.[0-9]+)+)\x00", data)
    return found.group(1).decode() if found else None


def probe(interface: str | None = None) -> dict:
    out: dict = {"kernel": platform.release(), "bpf_path": "raw bpf() syscall, hand-encoded XDP program",
                 "libbpf": shared_library("bpf"), "libxdp": shared_library("xdp")}
    try:
        socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
        out["af_xdp_socket"] = "ok"
    except OSError as exc:
        out["af_xdp_socket"] = f"refused: {exc.strerror}"
    try:
        os.close(_bpf.create_xskmap(1))
        out["bpf_xskmap"] = "ok"
    except TickpathError as exc:
        out["bpf_xskmap"] = f"refused: {exc}"
    out["usable"] = out["af_xdp_socket"] == "ok" and out["bpf_xskmap"] == "ok"
    if interface:
        try:
            idx = interface_index(interface)
            out["interface"] = {"name": interface, "ifindex": idx,
                                "rx_queues": rx_queue_count(interface, idx),
                                "attached": current_xdp(idx),
                                "modes": {"skb": "yes (generic XDP, copy)",
                                          "drv": "untested (driver-dependent)",
                                          "zerocopy": "untested (driver-dependent)"}}
        except TickpathError as exc:
            out["interface"] = {"name": interface, "error": str(exc)}
    return out
