"""NIC offloads and coalescing (ethtool -k / -c / -l), behind a small injectable interface.

`EthtoolOps` uses pyroute2's ethtool module (ioctl SIOCETHTOOL under the hood; pyroute2 0.9
has features, coalesce, rings and channels but no ntuple). Checks and apply only see the
four methods below, so fixture tests pass a fake holding a dict. `tickpath info` reads the
channel counts through it; hostconfig's audit and apply read and write through it.

Channels (`ethtool -l`) are read by `read_channels`, one SIOCETHTOOL ioctl with stdlib
only: importing pyroute2 costs ~0.14 s and its Ethtool() another ~0.08 s, more than all of
`tickpath info` may take (≤ 0.4 s), and the AF_XDP backend counts its queues with it too.
"""
from __future__ import annotations

import array
import fcntl
import socket
import struct
from typing import Protocol

SIOCETHTOOL = 0x8946        # linux/sockios.h
ETHTOOL_GCHANNELS = 0x3C    # linux/ethtool.h
IFNAMSIZ = 16
# struct ethtool_channels after its cmd word, all __u32, named as pyroute2 names them
CHANNEL_FIELDS = ("max_rx", "max_tx", "max_other", "max_combined",
                  "rx_count", "tx_count", "other_count", "combined_count")


def read_channels(ifname: str) -> dict[str, int]:
    """`ethtool -l IFNAME` as a dict of CHANNEL_FIELDS; OSError when the driver has no
    get_channels (EOPNOTSUPP: lo, ifb, ...) or the interface does not exist (ENODEV)."""
    name = ifname.encode()
    if not 0 < len(name) < IFNAMSIZ:
        raise OSError(f"bad interface name: {ifname!r}")
    chans = array.array("I", [ETHTOOL_GCHANNELS] + [0] * len(CHANNEL_FIELDS))
    addr, _ = chans.buffer_info()   # the kernel writes the reply through this pointer
    ifreq = struct.pack("16sP", name, addr) + bytes(16)   # struct ifreq is 40 bytes
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
    return dict(zip(CHANNEL_FIELDS, chans[1:]))


class NicOps(Protocol):
    def get_features(self, ifname: str) -> dict[str, bool]: ...
    def set_feature(self, ifname: str, name: str, enable: bool) -> None: ...
    def feature_changeable(self, ifname: str, name: str) -> bool: ...  # optional
    def get_coalesce(self, ifname: str) -> dict[str, int]: ...
    def set_coalesce(self, ifname: str, key: str, value: int) -> None: ...
    def get_channels(self, ifname: str) -> dict[str, int]: ...


class EthtoolOps:
    """The real NIC, via pyroute2.ethtool (opened lazily, one netlink/ioctl handle)."""

    def __init__(self):
        self._eth = None

    def _e(self):
        if self._eth is None:
            from pyroute2.ethtool import Ethtool

            self._eth = Ethtool()
        return self._eth

    def get_features(self, ifname: str) -> dict[str, bool]:
        feats = self._e().get_features(ifname).features
        # only features the driver lets us change matter for apply; report all for audit
        return {name: bool(f.enable) for name, f in feats.items() if name}

    def feature_changeable(self, ifname: str, name: str) -> bool:
        f = self._e().get_features(ifname).features.get(name)
        return bool(f is not None and f.available)

    def set_feature(self, ifname: str, name: str, enable: bool) -> None:
        e = self._e()
        feats = e.get_features(ifname)
        feats.features[name].enable = bool(enable)
        e.set_features(ifname, feats)

    def get_coalesce(self, ifname: str) -> dict[str, int]:
        d = dict(self._e().get_coalesce(ifname))
        d.pop("cmd", None)
        return d

    def set_coalesce(self, ifname: str, key: str, value: int) -> None:
        self._e().set_coalesce(ifname, {key: int(value)})

    def get_channels(self, ifname: str) -> dict[str, int]:
        return read_channels(ifname)   # not pyroute2: see the module's docstring

    def close(self) -> None:
        if self._eth is not None:
            self._eth.close()
            self._eth = None
