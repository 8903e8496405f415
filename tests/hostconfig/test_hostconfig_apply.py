import json
import os

import pytest

from tickpath.hostconfig.apply import apply, load_rollback, rollback
from tickpath.hostconfig.checks.base import OK, Context, run_checks
from fakehost import KernelLikeFS
from tickpath.hostconfig.plan import RuntimePlan
from tickpath.hostconfig.discover.sysfs import HostFS, Unknown
from tickpath.runtime.core.errors import ConfigError, PrivilegeError

PLAN = RuntimePlan(rx_cores=[2, 3], interface="eth0", frame_bytes=2048, frames=4096,
                   hugepages=True)   # two hot cores: the checks take any set


def _ctx(root, nic=None, fs_cls=KernelLikeFS, **fs_kw):
    ctx = Context.build(root, plan=PLAN, nic_ops=nic, memlock_bytes=1 << 30)
    ctx.fs = fs_cls(root, **fs_kw)
    return ctx


def _snapshot(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def test_needs_root(make_host, tmp_path):
    with pytest.raises(PrivilegeError, match="host apply needs root.*euid=1000"):
        apply(_ctx(make_host("untuned")), euid=1000, rollback_path=str(tmp_path / "r.json"))
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(PrivilegeError, match="rollback needs root"):
        rollback(str(tmp_path / "r.json"), HostFS(str(tmp_path)), euid=1000)


def test_unknown_ids_refused_before_writing(make_host, tmp_path):
    root = make_host("untuned")
    before = _snapshot(root)
    with pytest.raises(ConfigError, match="unknown check id"):
        apply(_ctx(root), only=["thp", "frobnicate"], euid=0,
              rollback_path=str(tmp_path / "r.json"))
    assert _snapshot(root) == before


def test_dry_run_writes_nothing(make_host, fake_nic):
    root = make_host("untuned")
    before = _snapshot(root)
    nic = fake_nic()
    rep = apply(_ctx(root, nic), dry_run=True, euid=1000)  # no root needed to look
    assert rep.planned and rep.rollback_path is None and not rep.applied
    assert "nohz_full=2-3" in rep.cmdline and "isolcpus=managed_irq,domain,2-3" in rep.cmdline
    assert _snapshot(root) == before and nic.features["eth0"]["rx-gro"] is True


def test_apply_then_rollback_restores_every_byte(make_host, fake_nic, tmp_path):
    root = make_host("untuned")
    before = _snapshot(root)
    nic = fake_nic()
    nic_before = json.dumps([nic.features, nic.coalesce], sort_keys=True)
    rb = str(tmp_path / "rollback.json")
    rep = apply(_ctx(root, nic), euid=0, rollback_path=rb)
    assert not rep.failed and not rep.skipped, (rep.failed, rep.skipped)
    assert len(rep.applied) == len(rep.planned) > 30
    # the saved file lists every previous value, written before any change
    doc = load_rollback(rb)
    assert len(doc["entries"]) == len(rep.planned)
    thp = [e for e in doc["entries"] if e["check"] == "thp"][0]
    assert thp["previous"] == "always" and thp["previous_raw"] == "[always] madvise never"
    # the host now passes every check apply can fix
    after = {r.id: r for r in run_checks(_ctx(root, nic))}
    for cid in {cid for cid, _ in rep.planned}:
        assert after[cid].verdict == OK, (cid, after[cid].read)
    assert _snapshot(root) != before
    assert nic.features["eth0"]["rx-gro"] is False
    assert nic.coalesce["eth0"]["use_adaptive_rx_coalesce"] == 0
    rrep = rollback(rb, KernelLikeFS(root), nic, euid=0)
    assert not rrep.failed and len(rrep.restored) == len(doc["entries"])
    assert _snapshot(root) == before
    assert json.dumps([nic.features, nic.coalesce], sort_keys=True) == nic_before
    # a second rollback finds everything already in place
    again = rollback(rb, KernelLikeFS(root), nic, euid=0)
    assert not again.restored and len(again.unchanged) == len(doc["entries"])


def test_refused_write_is_reported_and_others_proceed(make_host, tmp_path):
    root = make_host("untuned")
    ctx = _ctx(root, refuse={"/proc/irq/0/smp_affinity_list"})
    rep = apply(ctx, only=["plan_irq_affinity", "ksm"], euid=0,
                rollback_path=str(tmp_path / "r.json"))
    assert len(rep.failed) == 1 and "/proc/irq/0/" in rep.failed[0]
    assert "EIO" in rep.failed[0]
    assert len(rep.applied) == 8  # IRQs 1-7 and ksm
    with open(os.path.join(root, "proc/irq/0/smp_affinity_list")) as f:
        assert f.read() == "0-3\n"


class _IgnoringFS(HostFS):
    """A kernel that accepts a write and keeps the old value (as some sysfs knobs do)."""

    def write_text(self, host_path, value):
        if host_path.endswith("nr_hugepages"):
            return
        super().write_text(host_path, value)


def test_unverified_write_is_failed_and_put_back(make_host, tmp_path):
    root = make_host("untuned")
    rep = apply(_ctx(root, fs_cls=_IgnoringFS), only=["plan_hugepages"], euid=0,
                rollback_path=str(tmp_path / "r.json"))
    assert rep.applied == [] and len(rep.failed) == 1
    assert "read back '0', wrote '4'" in rep.failed[0]


class _FlakyFS(KernelLikeFS):
    """ksm/run reads fine once (the audit), then permission is denied (apply's capture)."""

    reads = 0

    def read_text(self, host_path):
        if host_path == "/sys/kernel/mm/ksm/run":
            _FlakyFS.reads += 1
            if _FlakyFS.reads > 1:
                return Unknown("permission denied path=/sys/kernel/mm/ksm/run")
        return super().read_text(host_path)


def test_unreadable_target_is_skipped_not_written(make_host, tmp_path):
    root = make_host("untuned")
    rep = apply(_ctx(root, fs_cls=_FlakyFS), only=["ksm", "thp"], euid=0,
                rollback_path=str(tmp_path / "r.json"))
    assert len(rep.skipped) == 1 and "permission denied" in rep.skipped[0]
    assert rep.applied == ["/sys/kernel/mm/transparent_hugepage/enabled <- never"]
    with open(os.path.join(root, "sys/kernel/mm/ksm/run")) as f:
        assert f.read() == "1\n"  # never written: we could not have restored it
    assert [e["check"] for e in load_rollback(str(tmp_path / "r.json"))["entries"]] == ["thp"]


def test_nic_refusal(make_host, fake_nic, tmp_path):
    nic = fake_nic(refuse={"rx-lro"})
    rep = apply(_ctx(make_host("untuned"), nic), only=["nic_gro", "nic_lro"], euid=0,
                rollback_path=str(tmp_path / "r.json"))
    assert rep.applied == ["nic_feature eth0 rx-gro <- False"]
    assert len(rep.failed) == 1 and "Operation not supported" in rep.failed[0]


@pytest.mark.parametrize("content,match", [
    ("not json", "not JSON"), ('{"format": "x"}', "not a tickpath rollback"),
    ('{"format": "tickpath-hostconfig-rollback", "version": 99}', "unsupported"),
    ('{"format": "tickpath-hostconfig-rollback", "version": 1, "entries": [{"kind": "rm"}]}',
     "malformed rollback entry")])
def test_bad_rollback_files(tmp_path, content, match):
    p = tmp_path / "rb.json"
    p.write_text(content)
    with pytest.raises(ConfigError, match=match):
        rollback(str(p), HostFS(str(tmp_path)), euid=0)
    with pytest.raises(ConfigError, match="cannot read"):
        rollback(str(tmp_path / "none.json"), HostFS(str(tmp_path)), euid=0)


def test_kernel_like_fs_rejects_bad_choice(make_host):
    from tickpath.runtime.core.errors import ResourceError

    fs = KernelLikeFS(make_host("untuned"))
    with pytest.raises(ResourceError, match="EINVAL"):
        fs.write_text("/sys/kernel/mm/transparent_hugepage/enabled", "sometimes")
    fs.write_text("/sys/kernel/mm/transparent_hugepage/enabled", "madvise")
    assert fs.read_text("/sys/kernel/mm/transparent_hugepage/enabled") == \
        "always [madvise] never"


def test_fixed_nic_feature_is_not_planned(make_host, fake_nic, tmp_path):
    nic = fake_nic(features={"rx-gro": True, "rx-gro-hw": True}, fixed={"rx-gro-hw"})
    ctx = _ctx(make_host("untuned"), nic)
    (res,) = run_checks(ctx, ["nic_gro"])
    assert res.verdict == "fail" and "rx-gro-hw on (fixed)" in res.read
    assert [c.key for c in res.changes] == ["rx-gro"] and "no run-time fix" in res.fix
    rep = apply(ctx, only=["nic_gro"], euid=0, rollback_path=str(tmp_path / "r.json"))
    assert rep.applied == ["nic_feature eth0 rx-gro <- False"] and not rep.failed
