"""Fixture hosts for hostconfig tests, built in tmp_path (never the real /proc or /sys)."""
from __future__ import annotations

import pytest

import fakehost


class FakeNicOps:
    """NIC ops over a dict, standing in for pyroute2's ethtool on fixture hosts."""

    def __init__(self, features=None, coalesce=None, refuse=(), fixed=()):
        self.features = {"eth0": dict(features or {"rx-gro": True, "rx-gro-hw": False,
                                                    "rx-lro": True, "tx-checksum-ipv4": True})}
        self.coalesce = {"eth0": dict(coalesce or {"use_adaptive_rx_coalesce": 1,
                                                    "rx_coalesce_usecs": 50})}
        self.refuse = set(refuse)
        self.fixed = set(fixed)  # features the driver will not change (ethtool: [fixed])

    def feature_changeable(self, ifname, name):
        return name not in self.fixed

    def get_features(self, ifname):
        return dict(self.features[ifname])

    def set_feature(self, ifname, name, enable):
        if name in self.refuse:
            raise OSError(95, "Operation not supported")
        self.features[ifname][name] = bool(enable)

    def get_coalesce(self, ifname):
        return dict(self.coalesce[ifname])

    def set_coalesce(self, ifname, key, value):
        self.coalesce[ifname][key] = int(value)

    def get_channels(self, ifname):
        return {"combined_count": 4}


@pytest.fixture
def make_host(tmp_path):
    """make_host("untuned", **overrides) -> root path of a fresh fixture tree."""
    n = [0]

    def make(kind: str, **kw) -> str:
        n[0] += 1
        spec = getattr(fakehost, f"{kind}_host")(**kw)
        return fakehost.build_host(str(tmp_path / f"{kind}{n[0]}"), spec)

    return make


@pytest.fixture
def fake_nic():
    return FakeNicOps
