"""Fixture hosts: /proc and /sys trees written into a directory, and a sysfs-like writer.

Tests (and demos: `tickpath host audit --root DIR`) need hosts we do not have: a tuned
bare-metal box, an untuned one, a VM without cpufreq or cpuidle, a two-node NUMA machine
with the NIC on node 1. `build_host(root, spec)` writes only the files hostconfig reads, in
the kernel's formats. `KernelLikeFS` writes the way sysfs does: a "[selected]" file keeps
its choices and moves the brackets, an unknown choice is EINVAL, and chosen paths refuse
writes with EIO (as IRQ 0 and 2 do on x86), writing nr_hugepages moves free_hugepages
with it, so apply's verify and rollback can be tested.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from tickpath.runtime.core.errors import translate_oserror

from tickpath.hostconfig.discover.cpulist import format_cpulist, format_cpumask
from tickpath.hostconfig.discover.sysfs import HostFS


@dataclass
class NicSpec:
    node: int = 0
    driver: str = "ice"
    pci: str | None = "0000:3b:00.0"  # None: a virtual device (no `device` link)
    queues: int = 4
    mtu: int = 1500


@dataclass
class HostSpec:
    cpus: int = 4
    nodes: list[list[int]] | None = None  # None: one node with every CPU
    smt_pairs: bool = False  # True: cpu i and i + cpus/2 are siblings
    isolated: list[int] = field(default_factory=list)
    nohz_full: list[int] | None = field(default_factory=list)  # None: kernel without it
    cmdline: str = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet"
    cpufreq: bool = True
    governor: str = "powersave"
    epp: str | None = "balance_performance"
    cpuidle: bool = True
    cstates_disabled: bool = False
    thp: str = "always"
    ksm: int = 1
    sysctls: dict[str, int] = field(default_factory=lambda: {
        "kernel/numa_balancing": 1, "vm/swappiness": 60, "vm/stat_interval": 1,
        "kernel/timer_migration": 1, "kernel/nmi_watchdog": 1, "net/core/busy_read": 0,
        "net/core/busy_poll": 0, "kernel/sched_rt_runtime_us": 950000,
        "kernel/osrelease": 0})
    swaps: list[str] = field(default_factory=lambda: ["/dev/sda2"])
    clocksource: str = "tsc"
    irqs: dict[int, list[int]] | None = None  # IRQ -> affinity; None: 0..7 on all CPUs
    default_irq_affinity: list[int] | None = None  # None: all CPUs
    workqueue: list[int] | None = None  # None: all CPUs
    hugepages_2m: list[tuple[int, int]] | None = None  # per node (nr, free)
    nics: dict[str, NicSpec] = field(default_factory=lambda: {"eth0": NicSpec()})
    irqbalance: bool = True


def _w(root: str, host_path: str, text: str) -> None:
    p = os.path.join(root, host_path.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text if text.endswith("\n") or text == "" else text + "\n")


def _link(root: str, host_path: str, target: str) -> None:
    p = os.path.join(root, host_path.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.symlink(target, p)


def build_host(root: str, spec: HostSpec) -> str:
    """Write the fixture tree for `spec` below `root`; returns root."""
    cpus = list(range(spec.cpus))
    nodes = spec.nodes or [cpus]
    c = "/sys/devices/system/cpu"
    _w(root, f"{c}/online", format_cpulist(cpus))
    _w(root, f"{c}/isolated", format_cpulist(spec.isolated))
    if spec.nohz_full is not None:
        _w(root, f"{c}/nohz_full", format_cpulist(spec.nohz_full))
    _w(root, f"{c}/smt/active", "1" if spec.smt_pairs else "0")
    half = spec.cpus // 2
    for cpu in cpus:
        sib = [cpu] if not spec.smt_pairs else sorted({cpu % half, cpu % half + half})
        _w(root, f"{c}/cpu{cpu}/topology/thread_siblings_list", format_cpulist(sib))
        if spec.cpufreq:
            _w(root, f"{c}/cpu{cpu}/cpufreq/scaling_governor", spec.governor)
            if spec.epp is not None:
                _w(root, f"{c}/cpu{cpu}/cpufreq/energy_performance_preference", spec.epp)
        if spec.cpuidle:
            for i, (name, lat) in enumerate([("POLL", 0), ("C1", 2), ("C6", 133)]):
                d = f"{c}/cpu{cpu}/cpuidle/state{i}"
                _w(root, f"{d}/name", name)
                _w(root, f"{d}/latency", str(lat))
                _w(root, f"{d}/disable", "1" if spec.cstates_disabled and lat > 0 else "0")
    n = "/sys/devices/system/node"
    _w(root, f"{n}/online", format_cpulist(range(len(nodes))))
    for nid, ncpus in enumerate(nodes):
        _w(root, f"{n}/node{nid}/cpulist", format_cpulist(ncpus))
        _w(root, f"{n}/node{nid}/meminfo",
           f"Node {nid} MemTotal:       16318412 kB\nNode {nid} MemFree:        1000 kB")
        nr, free = (spec.hugepages_2m or [(0, 0)] * len(nodes))[nid]
        for size, (a, b) in ((2048, (nr, free)), (1048576, (0, 0))):
            hp = f"{n}/node{nid}/hugepages/hugepages-{size}kB"
            _w(root, f"{hp}/nr_hugepages", str(a))
            _w(root, f"{hp}/free_hugepages", str(b))
    _w(root, "/proc/cmdline", spec.cmdline)
    _w(root, "/proc/cpuinfo", "processor\t: 0\nmodel name\t: Fixture CPU @ 3.00GHz\n"
       "flags\t\t: fpu tsc constant_tsc nonstop_tsc avx2\n")
    _w(root, "/proc/meminfo", "MemTotal:       32636824 kB\n")
    _w(root, "/sys/kernel/mm/transparent_hugepage/enabled",
       " ".join(f"[{x}]" if x == spec.thp else x for x in ("always", "madvise", "never")))
    _w(root, "/sys/kernel/mm/ksm/run", str(spec.ksm))
    for name, v in spec.sysctls.items():
        _w(root, f"/proc/sys/{name}", "6.1.0-fixture" if name == "kernel/osrelease" else str(v))
    _w(root, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n" + "".join(
        f"{s}\tpartition\t1000\t0\t-2\n" for s in spec.swaps))
    cs = "/sys/devices/system/clocksource/clocksource0"
    _w(root, f"{cs}/current_clocksource", spec.clocksource)
    _w(root, f"{cs}/available_clocksource", "tsc hpet acpi_pm")
    irqs = spec.irqs if spec.irqs is not None else {i: cpus for i in range(8)}
    for irq, aff in irqs.items():
        _w(root, f"/proc/irq/{irq}/smp_affinity_list", format_cpulist(aff))
        _w(root, f"/proc/irq/{irq}/smp_affinity", format_cpumask(aff, spec.cpus))
    dflt = spec.default_irq_affinity if spec.default_irq_affinity is not None else cpus
    _w(root, "/proc/irq/default_smp_affinity", format_cpumask(dflt, spec.cpus))
    wq = spec.workqueue if spec.workqueue is not None else cpus
    _w(root, "/sys/devices/virtual/workqueue/cpumask", format_cpumask(wq, spec.cpus))
    if spec.irqbalance:
        _w(root, "/proc/812/comm", "irqbalance")
    _w(root, "/proc/1/comm", "systemd")
    for name, nic in spec.nics.items():
        _nic(root, name, nic)
    return root


def _nic(root: str, name: str, nic: NicSpec) -> None:
    net = f"/sys/class/net/{name}"
    if nic.pci:
        dev = f"/sys/devices/pci0000:00/0000:00:02.0/{nic.pci}"
        _w(root, f"{dev}/numa_node", str(nic.node))
        _w(root, f"{dev}/vendor", "0x8086")
        _w(root, f"{dev}/device", "0x159b")
        _w(root, f"{dev}/class", "0x020000")
        _w(root, f"/sys/bus/pci/drivers/{nic.driver}/.keep", "")
        _link(root, f"{dev}/driver", os.path.relpath(
            os.path.join(root, f"sys/bus/pci/drivers/{nic.driver}"),
            os.path.join(root, dev.lstrip("/"))))
        _link(root, f"/sys/bus/pci/devices/{nic.pci}", os.path.relpath(
            os.path.join(root, dev.lstrip("/")), os.path.join(root, "sys/bus/pci/devices")))
        _link(root, f"{net}/device", os.path.relpath(
            os.path.join(root, dev.lstrip("/")), os.path.join(root, net.lstrip("/"))))
    _w(root, f"{net}/operstate", "up")
    _w(root, f"{net}/mtu", str(nic.mtu))
    for q in range(nic.queues):
        os.makedirs(os.path.join(root, f"sys/class/net/{name}/queues/rx-{q}"), exist_ok=True)
        os.makedirs(os.path.join(root, f"sys/class/net/{name}/queues/tx-{q}"), exist_ok=True)


def tuned_host(**kw) -> HostSpec:
    """A host tuned for cores 2-3 (the way tuned's cpu-partitioning leaves it)."""
    d = dict(cpus=4, isolated=[2, 3], nohz_full=[2, 3],
             cmdline="BOOT_IMAGE=/vmlinuz ro isolcpus=managed_irq,domain,2-3 nohz_full=2-3 "
                     "rcu_nocbs=2-3 nosmt", governor="performance", epp="performance",
             cstates_disabled=True, thp="never", ksm=0,
             sysctls={"kernel/numa_balancing": 0, "vm/swappiness": 10, "vm/stat_interval": 10,
                      "kernel/timer_migration": 0, "kernel/nmi_watchdog": 0,
                      "net/core/busy_read": 50, "net/core/busy_poll": 50,
                      "kernel/sched_rt_runtime_us": -1, "kernel/osrelease": 0},
             swaps=[], irqs={i: [0, 1] for i in range(8)}, default_irq_affinity=[0, 1],
             workqueue=[0, 1], hugepages_2m=[(512, 512)], irqbalance=False)
    d.update(kw)
    return HostSpec(**d)


def untuned_host(**kw) -> HostSpec:
    """A distribution default install: every check has something to say."""
    d = dict(cpus=4, hugepages_2m=[(0, 0)])
    d.update(kw)
    return HostSpec(**d)


def vm_host(**kw) -> HostSpec:
    """A VM: no cpufreq, no cpuidle states, no NUMA affinity on a virtio NIC."""
    d = dict(cpus=2, cpufreq=False, cpuidle=False, nohz_full=None, clocksource="kvm-clock",
             nics={"eth0": NicSpec(node=-1, driver="virtio_net", pci="0000:00:03.0",
                                   queues=1)})
    d.update(kw)
    return HostSpec(**d)


def numa2_host(**kw) -> HostSpec:
    """Two nodes of 4 CPUs with SMT pairs; the NIC is on node 1."""
    d = dict(cpus=8, nodes=[[0, 1, 4, 5], [2, 3, 6, 7]], smt_pairs=True,
             hugepages_2m=[(0, 0), (0, 0)],
             nics={"ens1f0": NicSpec(node=1, driver="mlx5_core", pci="0000:af:00.0",
                                     queues=8)})
    d.update(kw)
    return HostSpec(**d)


class KernelLikeFS(HostFS):
    """A HostFS whose writes behave like sysfs attribute writes (for fixture trees)."""

    def __init__(self, root: str, refuse: set[str] | None = None):
        super().__init__(root)
        self.refuse = set(refuse or ())  # host paths whose writes fail with EIO

    def write_text(self, host_path: str, value: str) -> None:
        if host_path in self.refuse:
            raise translate_oserror(OSError(errno.EIO, os.strerror(errno.EIO)),
                                    "writing a host file", path=host_path)
        current = self.read_text(host_path)
        v = value.strip()
        if isinstance(current, str) and "[" in current:
            choices = [w.strip("[]") for w in current.split()]
            if v not in choices:
                raise translate_oserror(OSError(errno.EINVAL, os.strerror(errno.EINVAL)),
                                        "writing a host file", path=host_path, value=v)
            value = " ".join(f"[{c}]" if c == v else c for c in choices)
        if host_path.endswith("/nr_hugepages") and isinstance(self.read_int(host_path), int):
            # the kernel allocates (or frees) the difference: free pages follow nr
            free_path = host_path.replace("/nr_hugepages", "/free_hugepages")
            delta = int(v) - self.read_int(host_path)
            free = self.read_int(free_path)
            if isinstance(free, int):
                super().write_text(free_path, str(max(0, free + delta)))
        super().write_text(host_path, value)
