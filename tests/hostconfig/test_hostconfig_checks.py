import os

import pytest

from tickpath.hostconfig.checks.base import (
    FAIL,
    NA,
    OK,
    UNKNOWN,
    WARN,
    Context,
    all_checks,
    exit_status,
    run_checks,
)
from tickpath.hostconfig.plan import RuntimePlan
from tickpath.runtime.core.errors import ConfigError

PLAN = {"cores": {"rx": [2, 3]}, "nic": {"interface": "eth0"},
        "buffers": {"frame_bytes": 2048, "frames": 4096, "ring_capacity": 65536,
                    "hugepages": True}}
ENOUGH = 1 << 30


def _plan(d: dict) -> RuntimePlan:
    """A plan with several hot cores (the checks take any set; a runtime config has one)."""
    b = d.get("buffers", {})
    return RuntimePlan(rx_cores=sorted(d.get("cores", {}).get("rx", [])),
                       interface=d.get("nic", {}).get("interface"), frame_bytes=b.get("frame_bytes"),
                       frames=b.get("frames"), ring_capacity=b.get("ring_capacity"),
                       hugepages=bool(b.get("hugepages", False)))


def _run(root, plan=PLAN, nic=None, memlock=ENOUGH):
    ctx = Context.build(root, plan=_plan(plan) if plan is not None else None,
                        nic_ops=nic, memlock_bytes=memlock)
    res = {r.id: r for r in run_checks(ctx)}
    for r in res.values():  # no check may fall over on a fixture host
        assert "could not evaluate" not in r.read, (r.id, r.read)
        assert r.verdict in (OK, WARN, FAIL, NA, UNKNOWN)
        assert r.why and r.title
        if r.verdict in (WARN, FAIL):
            assert r.fix, r.id
    return res


def test_every_check_has_data():
    checks = all_checks()
    assert len(checks) >= 30
    for c in checks.values():
        assert c.id and c.title and c.why and c.scope in ("host", "plan")


def test_tuned_host_is_clean(make_host, fake_nic):
    nic = fake_nic(features={"rx-gro": False, "rx-lro": False},
                   coalesce={"use_adaptive_rx_coalesce": 0})
    res = _run(make_host("tuned"), nic=nic)
    bad = {k: (r.verdict, r.read) for k, r in res.items() if r.verdict != OK}
    assert bad == {}
    assert exit_status(list(res.values())) == 0


def test_untuned_host(make_host, fake_nic):
    res = _run(make_host("untuned"), nic=fake_nic())
    for cid in ("governor", "epp", "cstates", "thp", "ksm", "numa_balancing", "swap",
                "swappiness", "stat_interval", "timer_migration", "nmi_watchdog",
                "busy_read", "busy_poll", "sched_rt_runtime", "irqbalance", "isolcpus",
                "nohz_full", "rcu_nocbs"):
        assert res[cid].verdict == WARN, cid
    for cid in ("plan_isolated", "plan_nohz_full", "plan_rcu_nocbs", "plan_irq_affinity",
                "plan_default_irq_affinity", "plan_workqueue", "plan_hugepages", "nic_gro",
                "nic_lro", "nic_adaptive_rx"):
        assert res[cid].verdict == FAIL, cid
    assert res["plan_isolated"].cmdline == ["isolcpus=managed_irq,domain,2-3"]
    assert res["thp"].fix == "echo never > /sys/kernel/mm/transparent_hugepage/enabled"
    assert res["numa_balancing"].fix.startswith("sysctl -w kernel.numa_balancing=0")
    assert res["nic_gro"].fix == "ethtool -K eth0 gro off"
    assert res["plan_default_irq_affinity"].fix == "echo 3 > /proc/irq/default_smp_affinity"
    assert "echo 6 >" in res["plan_hugepages"].fix  # 12 MiB of buffers = 6 x 2 MiB pages
    assert len(res["plan_irq_affinity"].changes) == 8
    assert exit_status(list(res.values())) == 1


def test_vm_without_cpufreq(make_host):
    res = _run(make_host("vm"), plan={"cores": {"rx": [1]}, "nic": {"interface": "eth0"}})
    assert res["governor"].verdict == NA and res["epp"].verdict == NA
    assert res["cstates"].verdict == NA
    assert res["clocksource"].verdict == WARN and res["clocksource"].changes
    assert res["plan_numa"].verdict == NA  # virtio NIC: no NUMA affinity
    assert res["nic_gro"].verdict == UNKNOWN  # no NIC ops for a fixture root
    assert res["plan_nohz_full"].verdict == FAIL and "CONFIG_NO_HZ_FULL" in \
        res["plan_nohz_full"].read


def test_numa2_nic_on_node1(make_host):
    plan = {"cores": {"rx": [0, 1]}, "nic": {"interface": "ens1f0"},
            "buffers": {"frame_bytes": 2048, "frames": 1024, "hugepages": True}}
    res = _run(make_host("numa2"), plan=plan)
    assert res["plan_numa"].verdict == FAIL
    assert "[2, 3]" in res["plan_numa"].fix  # choose_cores' pick on node 1
    assert res["plan_hugepages"].verdict == FAIL and "node1" in res["plan_hugepages"].fix
    assert res["plan_smt_siblings"].verdict == WARN and "cpu0: 4" in \
        res["plan_smt_siblings"].read
    assert res["smt"].verdict == WARN and res["smt"].cmdline == ["nosmt"]
    good = dict(plan, cores={"rx": [2, 3]})
    assert _run(make_host("numa2"), plan=good)["plan_numa"].verdict == OK


def test_no_plan_means_na(make_host):
    res = _run(make_host("untuned"), plan=None)
    for cid, r in res.items():
        if all_checks()[cid].scope == "plan":
            assert r.verdict == NA, cid


def test_cores_that_do_not_exist(make_host):
    res = _run(make_host("untuned"), plan={"cores": {"rx": [2, 9]}})
    for cid in ("plan_cores", "plan_isolated", "plan_irq_affinity", "plan_workqueue"):
        assert res[cid].verdict == UNKNOWN
        assert "not online: 9" in res[cid].read


def test_memlock(make_host):
    root = make_host("tuned")
    assert _run(root, memlock=64 << 10)["plan_memlock"].verdict == FAIL
    assert _run(root, memlock=-1)["plan_memlock"].verdict == OK  # RLIM_INFINITY


@pytest.mark.parametrize("path,text,cid", [
    ("sys/kernel/mm/transparent_hugepage/enabled", "always madvise never", "thp"),
    ("proc/sys/vm/swappiness", "sixty", "swappiness"),
    ("sys/devices/system/cpu/isolated", "0-3,x", "plan_isolated"),
    ("proc/irq/3/smp_affinity_list", "0-3,x", None),
    ("sys/devices/virtual/workqueue/cpumask", "zz", "plan_workqueue"),
    ("sys/devices/system/cpu/cpu1/cpuidle/state2/latency", "", "cstates"),
])
def test_malformed_files_are_unknown(make_host, path, text, cid):
    root = make_host("untuned")
    with open(os.path.join(root, path), "w") as f:
        f.write(text + "\n")
    res = _run(root, plan=dict(PLAN, cores={"rx": [1, 2]}))
    if cid is None:  # one bad IRQ among many: still judged on the rest
        assert res["plan_irq_affinity"].verdict == FAIL
        assert "/proc/irq/3/" not in str(res["plan_irq_affinity"].changes)
    else:
        assert res[cid].verdict == UNKNOWN and "malformed" in res[cid].read


def test_missing_files_on_older_kernel(make_host):
    root = make_host("untuned")
    for p in ("proc/sys/kernel/numa_balancing", "sys/kernel/mm/ksm/run",
              "sys/devices/virtual/workqueue/cpumask"):
        os.remove(os.path.join(root, p))
    res = _run(root)
    assert res["numa_balancing"].verdict == NA and res["ksm"].verdict == NA
    assert res["plan_workqueue"].verdict == NA


def test_unknown_ids_refused(make_host):
    ctx = Context.build(make_host("tuned"), memlock_bytes=ENOUGH)
    with pytest.raises(ConfigError, match="unknown check id.*nope"):
        run_checks(ctx, ["thp", "nope"])
    assert [r.id for r in run_checks(ctx, ["thp"])] == ["thp"]
