"""AF_XDP backend settings (the runtime config's [backend] table) and their validation.

Setup parameters only (after xsk_fwd.c's `port_params`): the live socket, rings and
counters are in backend.py. `validate()` checks everything that can be checked before
touching the kernel, naming the bad value; `check_interface()` then asks the kernel (in
the caller's network namespace) whether the interface and queue exist.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, fields

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.ethtool import read_channels
from tickpath.runtime.backends.afxdp.attach import MODES
from tickpath.runtime.backends.afxdp.layout import FRAME_SIZES, is_power_of_two

MAX_RING_SIZE = 1 << 16


@dataclass
class AfxdpConfig:
    interface: str
    udp_port: int
    queue_id: int = 0
    mode: str = "auto"             # auto | skb | drv | zerocopy
    rx_ring_size: int = 2048
    fill_ring_size: int = 2048
    frame_size: int = 2048         # UMEM chunk bytes: 2048 or 4096
    n_frames: int = 4096           # UMEM frames; at least rx_ring_size + fill_ring_size
    busy_poll: bool = False
    busy_poll_budget: int = 64
    busy_poll_us: int = 20
    replace_program: bool = False
    filter_program: bool = True    # redirect only IPv4/UDP to udp_port; False: every frame
    feed_address: str | None = None  # a multicast group here is joined (IGMP) on open
    numa_node: int | None = None   # UMEM node; None = the NIC's node when sysfs says

    @classmethod
    def from_mapping(cls, table: dict) -> "AfxdpConfig":
        """Build from the [backend] TOML table (its `backend = "afxdp"` key is allowed)."""
        table = {k: v for k, v in table.items() if k != "backend"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError("unknown afxdp backend keys", keys=unknown, known=sorted(known))
        for req in ("interface", "udp_port"):
            if req not in table:
                raise ConfigError("afxdp backend key missing", key=req)
        return cls(**table)

    def validate(self) -> "AfxdpConfig":
        if not isinstance(self.interface, str) or not self.interface or len(self.interface) > 15:
            raise ConfigError("interface must be a name of 1..15 characters", interface=self.interface)
        for name in ("udp_port", "queue_id", "rx_ring_size", "fill_ring_size", "frame_size",
                     "n_frames", "busy_poll_budget", "busy_poll_us"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError("must be an integer", key=name, value=v)
        if not 1 <= self.udp_port <= 65535:
            raise ConfigError("udp_port out of range", udp_port=self.udp_port, allowed="1..65535")
        if self.queue_id < 0:
            raise ConfigError("queue_id must be >= 0", queue_id=self.queue_id)
        if self.mode not in MODES:
            raise ConfigError("unknown mode", mode=self.mode, allowed=list(MODES))
        for name in ("rx_ring_size", "fill_ring_size"):
            v = getattr(self, name)
            if not is_power_of_two(v) or v > MAX_RING_SIZE:
                raise ConfigError("ring size must be a power of two", key=name, value=v,
                                  max=MAX_RING_SIZE)
        if self.frame_size not in FRAME_SIZES:
            raise ConfigError("frame_size not supported", frame_size=self.frame_size,
                              allowed=list(FRAME_SIZES))
        need = self.rx_ring_size + self.fill_ring_size
        if self.n_frames < need:
            # fewer frames than ring slots: the rings can never be full, the kernel drops
            raise ConfigError("UMEM smaller than the rings", n_frames=self.n_frames,
                              needed_frames=need, rx_ring_size=self.rx_ring_size,
                              fill_ring_size=self.fill_ring_size,
                              umem_bytes=self.n_frames * self.frame_size,
                              needed_bytes=need * self.frame_size)
        if not 1 <= self.busy_poll_budget <= 1024:
            raise ConfigError("busy_poll_budget out of range", busy_poll_budget=self.busy_poll_budget,
                              allowed="1..1024")
        for name in ("busy_poll", "replace_program", "filter_program"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be true or false", key=name, value=getattr(self, name))
        if self.feed_address is not None:
            try:
                ipaddress.IPv4Address(self.feed_address)
            except ValueError as exc:
                raise ConfigError("feed_address is not an IPv4 address",
                                  feed_address=self.feed_address) from exc
        return self

    @property
    def umem_bytes(self) -> int:
        return self.n_frames * self.frame_size

    def is_multicast(self) -> bool:
        return self.feed_address is not None and ipaddress.IPv4Address(self.feed_address).is_multicast

    def check_interface(self) -> tuple[int, int]:
        """(ifindex, rx_queues) in the current network namespace, or ConfigError."""
        ifindex = interface_index(self.interface)
        queues = rx_queue_count(self.interface, ifindex)
        if self.queue_id >= queues:
            raise ConfigError("queue_id beyond the interface's receive channels",
                              interface=self.interface, queue_id=self.queue_id, rx_queues=queues)
        return ifindex, queues


def interface_index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise ConfigError("interface does not exist in this network namespace",
                          interface=name) from exc


def rx_queue_count(name: str, ifindex: int) -> int:
    """Receive queues: ethtool channels (rx + combined), else netlink IFLA_NUM_RX_QUEUES."""
    try:
        chans = read_channels(name)
        n = chans["rx_count"] + chans["combined_count"]
        if n > 0:
            return n
    except OSError:
        pass  # driver without get_channels
    from pyroute2 import IPRoute  # here, not at the top: `tickpath info` must not pay for it
    with IPRoute() as ipr:
        links = ipr.get_links(ifindex)
    n = links[0].get_attr("IFLA_NUM_RX_QUEUES") if links else None
    return int(n or 1)
