"""The closed loop over a veth pair: the tick-to-trade paths whose receive side needs a real
interface (`afxdp`), and the kernel backend on the same wire (`kernel-veth`) to compare it with.

    netns tx (the venue's host)                          netns rx (the responder's host)
    tickpath venue: ITCH out  --- UDP 198.18.x.1 -> x.2 ---> vrx: XDP program -> AF_XDP socket
                    OUCH listener on vtx 198.18.x.1  <--- TCP ---  tickpath trade ([cores] rx)
    trigger sender (OUCH, to the venue in its namespace)
    wire tap: packet socket on vtx, the answers as they arrive from the veth

Why this topology: an XDP program cannot attach to loopback, so the venue and the responder
are two hosts (bench/harness/netns.py's BenchLink: two namespaces joined by one veth pair,
addresses from 198.18.0.0/15). The venue process runs inside the tx namespace (its ITCH goes
to the rx address through vtx, its OUCH listener is bound to the tx address); `tickpath trade`
runs inside the rx namespace on vrx, receiving the feed with the backend under test and
sending its orders back over the same veth. The triggers and the tap are the bench's own
sockets, made with the creating thread moved into the tx namespace (a socket keeps its
namespace). Everything else is what the loopback paths do: the same seeded venue, the same
trigger schedule, both ends timed on the venue's clock (namespaces share CLOCK_REALTIME).

What differs from the loopback paths: both directions cross the veth, one more hop than `lo`
(veth_xmit and a receive on the peer), and the answer is stamped as it arrives on vtx (the
venue's end of the wire) instead of as it leaves on `lo`. So read `afxdp` against
`kernel-veth` (same wire, same placement), not against `kernel`.

One link serves a whole bench run (every veth path and repeat); `close()` removes both
namespaces (the veth goes with them) and runs at exit too (BenchLink registers it). Child
processes are moved into a namespace by `setns` before exec (`preexec`): the bench's callers
end them before the link closes.
"""
from __future__ import annotations

import os
import subprocess

from tickpath.bench.harness import netns

VETH_PATHS = ("kernel-veth", "afxdp")


def unavailable_reason(path: str) -> str | None:
    """None when this veth path can run here, else why not (root, namespaces, AF_XDP)."""
    why = netns.unavailable_reason()
    if why:
        return why
    if path == "afxdp":   # the receive bench's own check: AF_XDP sockets, the backend importable
        from tickpath.bench.harness.backends import bench_backends
        return bench_backends()["afxdp"].check()
    return None


def _enter(ns_path: str, cpu: int | None):
    """preexec_fn: move the child into a network namespace (and onto a CPU) before exec."""
    def enter():
        fd = os.open(ns_path, os.O_RDONLY)
        if not netns.setns_ok(fd):
            os._exit(126)   # in the child: exec never runs, the caller sees the exit status
        os.close(fd)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return enter


class VethLoop:
    """The venue's host (tx) and the responder's host (rx) for one bench run."""

    LINK_INDEX = 15     # BenchLink names carry pid and index: the receive bench uses 0

    def __init__(self, index: int = LINK_INDEX):
        self.link = netns.BenchLink(index)

    def open(self) -> "VethLoop":
        self.link.open()
        try:
            # the responder side resolves the venue's address without ARP: the XDP program
            # passes ARP on, but a reply lost while it attaches would stall the OUCH login
            r = subprocess.run(["ip", "-n", self.link.ns_rx, "neigh", "replace", self.link.ip_tx, "lladdr",
                                netns.TX_MAC, "dev", self.link.if_rx, "nud", "permanent"],
                               capture_output=True, text=True, timeout=20, check=False)
            if r.returncode != 0:
                raise RuntimeError(f"ip neigh replace failed: {r.stderr.strip()}")
        except BaseException:
            self.link.close()
            raise
        return self

    @property
    def venue_host(self) -> str:
        return self.link.ip_tx

    @property
    def responder_host(self) -> str:
        return self.link.ip_rx

    @property
    def venue_if(self) -> str:
        return self.link.if_tx

    @property
    def responder_if(self) -> str:
        return self.link.if_rx

    def preexec_venue(self, cpu: int | None):
        return _enter(f"/run/netns/{self.link.ns_tx}", cpu)

    def preexec_responder(self, cpu: int | None = None):
        return _enter(f"/run/netns/{self.link.ns_rx}", cpu)

    def in_venue_ns(self):
        """Context: sockets made inside it belong to the venue's namespace."""
        return self.link.inside(self.link.ns_tx)

    def describe(self) -> dict:
        k = self.link
        return {"venue_ns": k.ns_tx, "responder_ns": k.ns_rx, "venue_if": k.if_tx, "responder_if": k.if_rx,
                "venue_addr": k.ip_tx, "responder_addr": k.ip_rx}

    def exists(self) -> bool:
        return self.link.exists()

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "VethLoop":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
