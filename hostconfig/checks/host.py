"""Host-wide checks: what any low-latency host should look like, plan or no plan.

Values and fixes after tuned's latency-performance / network-latency profiles and Rigtorp's
low-latency guide (see shared/REFERENCE.md). Sysctls and sysfs knobs that can change at
run time carry a `Change` for apply; boot-time settings carry kernel command line items.
"""
from __future__ import annotations

import re

from tickpath.hostconfig.checks.base import (
    OK,
    WARN,
    Change,
    Outcome,
    check,
    na,
    sysctl_name,
    unknown,
)
from tickpath.hostconfig.discover.cpulist import format_cpulist
from tickpath.hostconfig.discover.sysfs import Unknown

CPU = "/sys/devices/system/cpu"
SYSCTL_FILE_HINT = " (persist: add the line to /etc/sysctl.d/90-tickpath.conf)"


def _hot_or_placeholder(ctx) -> str:
    if ctx.plan and ctx.plan.rx_cores:
        return format_cpulist(ctx.plan.rx_cores)
    return "<hot cpus>"


def _sysctl(ctx, path: str, good, expected: str, target: int, bad=WARN) -> Outcome:
    """One integer sysctl: ok when good(value), else `bad` with a sysctl -w fix."""
    v = ctx.fs.read_int(path)
    name = sysctl_name(path)
    if isinstance(v, Unknown):
        if v.reason.startswith("missing"):
            return na(f"{name} not in this kernel", expected)
        return unknown(v, expected)
    if good(v):
        return Outcome(str(v), expected, OK)
    return Outcome(str(v), expected, bad, f"sysctl -w {name}={target}" + SYSCTL_FILE_HINT,
                   [Change("file", path, str(target), compare="int")])


@check("smt", "SMT (hyper-threading) off",
       "a sibling thread shares the core's pipeline and caches with the hot loop")
def _smt(ctx):
    v = ctx.fs.read_int(f"{CPU}/smt/active")
    if isinstance(v, Unknown):
        if ctx.topo.smt_groups == [] and isinstance(ctx.topo.cpus_online, list):
            return Outcome("no SMT siblings (smt/active missing)", "0", OK)
        return unknown(v, "0")
    if v == 0:
        return Outcome("0", "0", OK)
    return Outcome(str(v), "0", WARN,
                   "disable SMT in the BIOS, boot with nosmt, or at run time: "
                   f"echo off > {CPU}/smt/control", cmdline=["nosmt"])


@check("isolcpus", "isolated CPUs exist",
       "the scheduler puts no other task on an isolated CPU")
def _isolcpus(ctx):
    iso = ctx.topo.isolated
    if isinstance(iso, Unknown):
        return unknown(iso, "hot cpus")
    hot = _hot_or_placeholder(ctx)
    if iso:
        return Outcome(format_cpulist(iso), "hot cpus", OK)
    return Outcome("none", "hot cpus", WARN, f"boot with isolcpus=managed_irq,domain,{hot}",
                   cmdline=[f"isolcpus=managed_irq,domain,{hot}"])


@check("nohz_full", "tickless (nohz_full) CPUs exist",
       "the scheduler tick interrupts a busy CPU up to 1000 times a second")
def _nohz(ctx):
    nz = ctx.topo.nohz_full
    hot = _hot_or_placeholder(ctx)
    if isinstance(nz, Unknown):
        if nz.reason.startswith("missing"):
            return Outcome("kernel without CONFIG_NO_HZ_FULL", "hot cpus", WARN,
                           "use a kernel built with CONFIG_NO_HZ_FULL=y")
        return unknown(nz, "hot cpus")
    if nz:
        return Outcome(format_cpulist(nz), "hot cpus", OK)
    return Outcome("none", "hot cpus", WARN, f"boot with nohz_full={hot}",
                   cmdline=[f"nohz_full={hot}"])


def cmdline_param(ctx, name: str) -> str | None | Unknown:
    text = ctx.fs.read_text("/proc/cmdline")
    if isinstance(text, Unknown):
        return text
    m = None
    for m in re.finditer(rf"(?:^|\s){re.escape(name)}(?:=(\S*))?", text):
        pass  # why: the last occurrence wins, as in the kernel's parser
    return None if m is None else (m.group(1) or "")


@check("rcu_nocbs", "RCU callbacks offloaded (rcu_nocbs)",
       "RCU callback processing runs as softirq on the CPU unless offloaded")
def _rcu(ctx):
    v = cmdline_param(ctx, "rcu_nocbs")
    hot = _hot_or_placeholder(ctx)
    if isinstance(v, Unknown):
        return unknown(v, "hot cpus")
    if v:
        return Outcome(v, "hot cpus", OK)
    return Outcome("not on /proc/cmdline", "hot cpus", WARN, f"boot with rcu_nocbs={hot}",
                   cmdline=[f"rcu_nocbs={hot}"])


def _cpus(ctx) -> list[int]:
    return ctx.topo.cpus_online if isinstance(ctx.topo.cpus_online, list) else []


def _per_cpu_file(ctx, rel: str, want: str, label: str) -> Outcome:
    """A per-CPU sysfs word (governor, EPP): ok when every CPU reads `want`."""
    values, changes, missing = {}, [], 0
    for cpu in _cpus(ctx):
        path = f"{CPU}/cpu{cpu}/{rel}"
        v = ctx.fs.read_text(path)
        if isinstance(v, Unknown):
            if v.reason.startswith("missing"):
                missing += 1
                continue
            return unknown(v, want)
        values[cpu] = v.strip()
        if v.strip() != want:
            changes.append(Change("file", path, want, compare="word"))
    if not values:
        return na(f"no {label} (a VM or a driver without it)", want)
    read = ", ".join(f"{w}: {format_cpulist([c for c in values if values[c] == w])}"
                     for w in sorted(set(values.values())))
    if not changes:
        return Outcome(read, want, OK)
    return Outcome(read, want, WARN,
                   f"for f in {CPU}/cpu*/{rel}; do echo {want} > $f; done", changes)


@check("governor", "CPU frequency governor is performance",
       "other governors lower the clock when idle and take time to raise it")
def _governor(ctx):
    return _per_cpu_file(ctx, "cpufreq/scaling_governor", "performance", "cpufreq")


@check("epp", "energy performance preference is performance",
       "intel_pstate/amd_pstate trade latency for power unless told otherwise")
def _epp(ctx):
    return _per_cpu_file(ctx, "cpufreq/energy_performance_preference", "performance",
                         "energy_performance_preference")


@check("cstates", "deep C-states disabled",
       "waking from a deep idle state takes tens to hundreds of microseconds")
def _cstates(ctx):
    cpus = ctx.plan.rx_cores if ctx.plan and ctx.plan.rx_cores else _cpus(ctx)
    enabled, changes, seen = [], [], 0
    for cpu in cpus:
        for state in ctx.fs.glob(f"{CPU}/cpu{cpu}/cpuidle/state*"):
            seen += 1
            lat = ctx.fs.read_int(f"{state}/latency")
            dis = ctx.fs.read_int(f"{state}/disable")
            if isinstance(lat, Unknown) or isinstance(dis, Unknown):
                return unknown(lat if isinstance(lat, Unknown) else dis, "disabled")
            if lat > 0 and dis == 0:  # why: latency 0 is POLL, which costs nothing to leave
                name = ctx.fs.read_text(f"{state}/name")
                enabled.append(f"cpu{cpu}:{name if isinstance(name, str) else '?'}")
                changes.append(Change("file", f"{state}/disable", "1", compare="int"))
    if not seen:
        return na("no cpuidle states (a VM, or idle=poll)", "deep states disabled")
    if not enabled:
        return Outcome("deep states disabled", "deep states disabled", OK)
    shown = ", ".join(enabled[:6]) + (f" (+{len(enabled) - 6})" if len(enabled) > 6 else "")
    return Outcome(shown, "deep states disabled", WARN,
                   "echo 1 > .../cpuidle/stateN/disable for states with latency > 0, or hold "
                   "/dev/cpu_dma_latency at 0, or boot with processor.max_cstate=1 "
                   "intel_idle.max_cstate=0", changes,
                   ["processor.max_cstate=1", "intel_idle.max_cstate=0"])


@check("thp", "transparent huge pages not always",
       "khugepaged compaction stalls and page-fault latency spikes")
def _thp(ctx):
    path = "/sys/kernel/mm/transparent_hugepage/enabled"
    v = ctx.fs.read_selected(path)
    if isinstance(v, Unknown):
        return na("kernel without THP", "never") if v.reason.startswith("missing") \
            else unknown(v, "never")
    if v in ("never", "madvise"):
        return Outcome(v, "never (or madvise)", OK)
    return Outcome(v, "never (or madvise)", WARN, f"echo never > {path}",
                   [Change("file", path, "never", compare="selected")],
                   ["transparent_hugepage=never"])


@check("ksm", "KSM page merging off", "ksmd scans and merges pages, stalling writers")
def _ksm(ctx):
    path = "/sys/kernel/mm/ksm/run"
    v = ctx.fs.read_int(path)
    if isinstance(v, Unknown):
        return na("kernel without KSM", "0") if v.reason.startswith("missing") \
            else unknown(v, "0")
    if v == 0:
        return Outcome("0", "0", OK)
    return Outcome(str(v), "0", WARN, f"echo 0 > {path}",
                   [Change("file", path, "0", compare="int")])


@check("numa_balancing", "automatic NUMA balancing off",
       "it unmaps pages to sample accesses, causing minor faults on the hot path")
def _numa_bal(ctx):
    return _sysctl(ctx, "/proc/sys/kernel/numa_balancing", lambda v: v == 0, "0", 0)


@check("swap", "no swap", "a swapped-out page costs milliseconds to fault back")
def _swap(ctx):
    text = ctx.fs.read_text("/proc/swaps")
    if isinstance(text, Unknown):
        return unknown(text, "none")
    devices = [ln.split()[0] for ln in text.splitlines()[1:] if ln.strip()]
    if not devices:
        return Outcome("none", "none", OK)
    return Outcome(", ".join(devices), "none", WARN,
                   "swapoff -a (and remove swap from /etc/fstab)")


@check("swappiness", "vm.swappiness <= 10", "less eagerness to swap out anonymous memory")
def _swappiness(ctx):
    return _sysctl(ctx, "/proc/sys/vm/swappiness", lambda v: v <= 10, "<= 10", 10)


@check("stat_interval", "vm.stat_interval >= 10",
       "the vmstat worker wakes every CPU each interval")
def _stat_interval(ctx):
    return _sysctl(ctx, "/proc/sys/vm/stat_interval", lambda v: v >= 10, ">= 10", 10)


@check("timer_migration", "kernel.timer_migration off",
       "timers migrating between CPUs land on the hot cores")
def _timer_migration(ctx):
    return _sysctl(ctx, "/proc/sys/kernel/timer_migration", lambda v: v == 0, "0", 0)


@check("nmi_watchdog", "NMI watchdog off",
       "the watchdog's perf NMI fires periodically on every CPU")
def _nmi(ctx):
    out = _sysctl(ctx, "/proc/sys/kernel/nmi_watchdog", lambda v: v == 0, "0", 0)
    if out.verdict == WARN:
        out.cmdline = ["nmi_watchdog=0"]
    return out


@check("busy_read", "net.core.busy_read = 50 (socket backend)",
       "lets blocking socket reads busy-poll the NIC queue instead of sleeping")
def _busy_read(ctx):
    return _sysctl(ctx, "/proc/sys/net/core/busy_read", lambda v: v >= 50, ">= 50", 50)


@check("busy_poll", "net.core.busy_poll = 50 (socket backend)",
       "the same for poll/select/epoll")
def _busy_poll(ctx):
    return _sysctl(ctx, "/proc/sys/net/core/busy_poll", lambda v: v >= 50, ">= 50", 50)


@check("sched_rt_runtime", "kernel.sched_rt_runtime_us = -1 (SCHED_FIFO spinning)",
       "RT throttling stops a SCHED_FIFO spinner for 50 ms each second")
def _rt_runtime(ctx):
    return _sysctl(ctx, "/proc/sys/kernel/sched_rt_runtime_us", lambda v: v == -1, "-1", -1)


@check("clocksource", "clocksource is tsc",
       "other clocksources make clock_gettime a slow syscall instead of a vDSO read")
def _clocksource(ctx):
    base = "/sys/devices/system/clocksource/clocksource0"
    cur = ctx.fs.read_text(f"{base}/current_clocksource")
    if isinstance(cur, Unknown):
        return unknown(cur, "tsc")
    if cur.strip() == "tsc":
        return Outcome("tsc", "tsc", OK)
    avail = ctx.fs.read_text(f"{base}/available_clocksource")
    changes = []
    if isinstance(avail, str) and "tsc" in avail.split():
        changes = [Change("file", f"{base}/current_clocksource", "tsc", compare="word")]
    return Outcome(cur.strip(), "tsc", WARN,
                   f"echo tsc > {base}/current_clocksource (if listed in available_clocksource)"
                   ", or boot with tsc=reliable", changes, ["tsc=reliable"])


@check("tsc_flags", "invariant TSC (constant_tsc, nonstop_tsc)",
       "without them the TSC drifts with frequency or stops in deep idle")
def _tsc_flags(ctx):
    text = ctx.fs.read_text("/proc/cpuinfo")
    if isinstance(text, Unknown):
        return unknown(text, "constant_tsc nonstop_tsc")
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    if not m:
        return na("no x86 flags line in /proc/cpuinfo", "constant_tsc nonstop_tsc")
    flags = set(m.group(1).split())
    missing = [f for f in ("constant_tsc", "nonstop_tsc") if f not in flags]
    if not missing:
        return Outcome("constant_tsc nonstop_tsc", "constant_tsc nonstop_tsc", OK)
    return Outcome("missing " + " ".join(missing), "constant_tsc nonstop_tsc", WARN,
                   "hardware property: use a CPU with an invariant TSC")


@check("irqbalance", "irqbalance not moving IRQs onto hot cores",
       "irqbalance rewrites IRQ affinity every 10 s, undoing manual placement")
def _irqbalance(ctx):
    running = []
    for comm in ctx.fs.glob("/proc/[0-9]*/comm"):
        name = ctx.fs.read_text(comm)
        if isinstance(name, str) and name.strip() == "irqbalance":
            running.append(comm.split("/")[2])
    if not running:
        return Outcome("not running", "not running (or hot cpus banned)", OK)
    hot = _hot_or_placeholder(ctx)
    return Outcome(f"running pid={','.join(running)}", "not running (or hot cpus banned)",
                   WARN, f"systemctl stop irqbalance, or IRQBALANCE_BANNED_CPULIST={hot} in "
                   "/etc/default/irqbalance")


