"""NIC offloads and coalescing (ethtool -k / -c / -l), behind a small injectable interface.

`EthtoolOps` uses pyroute2's ethtool module (ioctl SIOCETHTOOL under the hood; pyroute2 0.9
has features, coalesce, rings and channels but no ntuple). Checks and apply only see the
four methods below, so fixture tests pass a fake holding a dict. `tickpath info` reads the
channel counts through it; hostconfig's audit and apply read and write through it.
"""
from __future__ import annotations

from typing import Protocol


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
        return dict(self._e().get_channels(ifname)._asdict())

    def close(self) -> None:
        if self._eth is not None:
            self._eth.close()
            self._eth = None
