"""The real pyroute2 ethtool path, on a veth pair inside a network namespace we create."""
import os
import shutil
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.netns

SCRIPT = r"""
import json, sys
from tickpath.hostconfig.discover.nic import EthtoolOps
from tickpath.hostconfig.apply import apply, rollback
from tickpath.hostconfig.checks.base import Context
from tickpath.hostconfig.plan import RuntimePlan
from tickpath.hostconfig.discover.sysfs import HostFS
ops = EthtoolOps()
ops.set_feature("tpa", "rx-gro", True)
before = ops.get_features("tpa")["rx-gro"]
ctx = Context.build("/", plan=RuntimePlan(interface="tpa"), nic_ops=ops)
rep = apply(ctx, only=["nic_gro"], euid=0, rollback_path=sys.argv[1])
mid = ops.get_features("tpa")["rx-gro"]
rb = rollback(sys.argv[1], HostFS("/"), ops, euid=0)
print(json.dumps({"before": before, "mid": mid, "after": ops.get_features("tpa")["rx-gro"],
                  "applied": rep.applied, "failed": rep.failed, "restored": rb.restored}))
"""


def _sh(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def test_gro_apply_and_rollback_on_veth(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed")
    ns = f"tphc{uuid.uuid4().hex[:8]}"
    r = _sh("ip", "netns", "add", ns)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        r = _sh("ip", "-n", ns, "link", "add", "tpa", "type", "veth", "peer", "name", "tpb")
        if r.returncode != 0:
            pytest.skip(f"cannot create a veth pair: {r.stderr.strip()}")
        out = _sh("ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT,
                  str(tmp_path / "rb.json"))
        assert out.returncode == 0, out.stderr
        import json

        doc = json.loads(out.stdout.strip().splitlines()[-1])
        assert doc == {"before": True, "mid": False, "after": True,
                       "applied": ["nic_feature tpa rx-gro <- False"], "failed": [],
                       "restored": ["nic_feature tpa rx-gro <- True"]}
    finally:
        _sh("ip", "netns", "del", ns)
