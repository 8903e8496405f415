"""Plan checks: does the host suit this runtime config (hot cores, NIC, buffers)?

Each check reads the runtime plan (plan.py) and says "na" without one. A config naming CPUs
that are not online degrades every core check to "unknown" with that reason. Mismatches
here are "fail": the runtime would run, but not where or how its config says it should.
"""
from __future__ import annotations

import math
import resource

from tickpath.hostconfig.checks.base import FAIL, OK, WARN, Change, Outcome, check, na, unknown
from tickpath.hostconfig.checks.host import cmdline_param
from tickpath.hostconfig.discover.cpulist import format_cpulist, format_cpumask, parse_cpulist
from tickpath.hostconfig.discover.sysfs import Unknown
from tickpath.hostconfig.discover.topology import choose_cores

NO_PLAN = "no runtime config given (--config FILE)"


def hot_cores(ctx) -> list[int] | Unknown | None:
    """The plan's hot cores; Unknown if they are not all online; None without a plan."""
    if ctx.plan is None or not ctx.plan.rx_cores:
        return None
    online = ctx.topo.cpus_online
    if isinstance(online, Unknown):
        return online
    missing = [c for c in ctx.plan.rx_cores if c not in online]
    if missing:
        return Unknown(f"cores.rx names CPUs that are not online: {format_cpulist(missing)} "
                       f"(online: {format_cpulist(online)})")
    return list(ctx.plan.rx_cores)


def housekeeping(ctx, hot: list[int]) -> list[int]:
    return [c for c in ctx.topo.cpus_online if c not in hot]


def _with_hot(fn):
    """Wrap a plan check: na without a plan, unknown when the cores cannot be checked."""

    def wrapper(ctx):
        hot = hot_cores(ctx)
        if hot is None:
            return na(NO_PLAN)
        if isinstance(hot, Unknown):
            return unknown(hot)
        return fn(ctx, hot)

    wrapper.__name__ = fn.__name__
    return wrapper


@check("plan_cores", "hot cores exist and are online",
       "pinning to a CPU that is offline or absent fails at start", scope="plan")
@_with_hot
def _plan_cores(ctx, hot):
    return Outcome(format_cpulist(hot), "online cpus", OK)


def _subset(ctx, hot, have, name, param) -> Outcome:
    if isinstance(have, Unknown):
        if have.reason.startswith("missing") and name == "nohz_full":
            return Outcome("kernel without CONFIG_NO_HZ_FULL", format_cpulist(hot), FAIL,
                           "use a kernel built with CONFIG_NO_HZ_FULL=y")
        return unknown(have, format_cpulist(hot))
    lacking = [c for c in hot if c not in have]
    want = format_cpulist(hot)
    if not lacking:
        return Outcome(format_cpulist(have), f"includes {want}", OK)
    value = f"managed_irq,domain,{want}" if param == "isolcpus" else want
    return Outcome(format_cpulist(have) or "none", f"includes {want}", FAIL,
                   f"boot with {param}={value} (lacking: {format_cpulist(lacking)})",
                   cmdline=[f"{param}={value}"])


@check("plan_isolated", "hot cores are isolated",
       "other tasks scheduled on a hot core preempt the busy-poll loop", scope="plan")
@_with_hot
def _plan_isolated(ctx, hot):
    return _subset(ctx, hot, ctx.topo.isolated, "isolated", "isolcpus")


@check("plan_nohz_full", "hot cores are nohz_full",
       "the scheduler tick interrupts a hot core otherwise", scope="plan")
@_with_hot
def _plan_nohz(ctx, hot):
    return _subset(ctx, hot, ctx.topo.nohz_full, "nohz_full", "nohz_full")


@check("plan_rcu_nocbs", "hot cores offload RCU callbacks",
       "RCU callbacks otherwise run as softirqs on the hot core", scope="plan")
@_with_hot
def _plan_rcu(ctx, hot):
    v = cmdline_param(ctx, "rcu_nocbs")
    if isinstance(v, Unknown):
        return unknown(v, format_cpulist(hot))
    try:
        have = parse_cpulist(v or "")
    except Exception as exc:
        return unknown(f"rcu_nocbs on /proc/cmdline: {exc}", format_cpulist(hot))
    return _subset(ctx, hot, have, "rcu_nocbs", "rcu_nocbs")


@check("plan_numa", "hot cores on the NIC's NUMA node",
       "packets DMA'd to a remote node cross the socket interconnect", scope="plan")
@_with_hot
def _plan_numa(ctx, hot):
    nic = ctx.plan.interface
    if not nic:
        return na("no [nic] interface in the config")
    if nic not in ctx.topo.nics:
        return unknown(f"interface {nic!r} not found in /sys/class/net")
    node = ctx.topo.nics[nic].numa_node
    if isinstance(node, Unknown):
        return unknown(node)
    if node < 0:
        return na(f"{nic} has no NUMA affinity (virtual device or one-node machine)")
    far = [c for c in hot if ctx.topo.node_of_cpu(c) != node]
    if not far:
        return Outcome(f"node {node}", f"node {node}", OK)
    better = choose_cores(ctx.topo, len(hot), nic)
    return Outcome(f"{format_cpulist(far)} not on node {node}", f"node {node}", FAIL,
                   f"set [cores] rx = {better} (choose_cores' pick for {nic})")


@check("plan_smt_siblings", "hot cores have no busy SMT sibling",
       "a sibling thread shares the core's execution units", scope="plan")
@_with_hot
def _plan_smt(ctx, hot):
    sibs = {c: ctx.topo.siblings_of(c) for c in hot}
    busy = {c: s for c, s in sibs.items() if s}
    if not busy:
        return Outcome("none", "none online", OK)
    shown = "; ".join(f"cpu{c}: {format_cpulist(s)}" for c, s in busy.items())
    offs = " ".join(f"echo 0 > /sys/devices/system/cpu/cpu{s}/online;"
                    for ss in busy.values() for s in ss if s not in hot)
    return Outcome(shown, "none online", WARN, f"take the siblings offline: {offs}".strip(";"))


def _irq_dirs(ctx) -> list[str]:
    return [p for p in ctx.fs.glob("/proc/irq/[0-9]*") if p.rsplit("/", 1)[1].isdigit()]


@check("plan_irq_affinity", "no IRQ routed to a hot core",
       "an interrupt on a hot core stops the loop for its handler and softirq", scope="plan")
@_with_hot
def _plan_irqs(ctx, hot):
    keep = housekeeping(ctx, hot)
    if not keep:
        return unknown("every online CPU is a hot core: nowhere to move IRQs")
    on_hot, changes, unknowns = [], [], []
    for d in _irq_dirs(ctx):
        path = f"{d}/smp_affinity_list"
        aff = ctx.fs.read_cpulist(path)
        if isinstance(aff, Unknown):
            unknowns.append(aff.reason)
            continue
        if set(aff) & set(hot):
            on_hot.append(d.rsplit("/", 1)[1])
            changes.append(Change("file", path, format_cpulist(keep), compare="cpulist"))
    if unknowns and not on_hot and len(unknowns) == len(_irq_dirs(ctx)):
        return unknown(unknowns[0], "none on hot cpus")
    if not on_hot:
        note = f" ({len(unknowns)} unreadable)" if unknowns else ""
        return Outcome("none on hot cpus" + note, "none on hot cpus", OK)
    shown = ",".join(on_hot[:12]) + (f" (+{len(on_hot) - 12})" if len(on_hot) > 12 else "")
    return Outcome(f"IRQs {shown} may run on {format_cpulist(hot)}", "none on hot cpus", FAIL,
                   f"echo {format_cpulist(keep)} > /proc/irq/N/smp_affinity_list for each",
                   changes)


def _mask_check(ctx, hot, path: str, what: str) -> Outcome:
    n_cpus = max(ctx.topo.cpus_online) + 1
    keep = housekeeping(ctx, hot)
    mask = ctx.fs.read_cpumask(path)
    if isinstance(mask, Unknown):
        if mask.reason.startswith("missing"):
            return na(f"{path} not in this kernel")
        return unknown(mask, f"excludes {format_cpulist(hot)}")
    if not keep:
        return unknown(f"every online CPU is a hot core: nowhere to put {what}")
    bad = sorted(set(mask) & set(hot))
    if not bad:
        return Outcome(f"{format_cpulist(mask)}", f"excludes {format_cpulist(hot)}", OK)
    new = format_cpumask(keep, n_cpus)
    return Outcome(format_cpulist(mask), f"excludes {format_cpulist(hot)}", FAIL,
                   f"echo {new} > {path}", [Change("file", path, new, compare="cpumask")])


@check("plan_default_irq_affinity", "new IRQs default away from hot cores",
       "IRQs registered later (a NIC reset) start on the default mask", scope="plan")
@_with_hot
def _plan_default_irq(ctx, hot):
    return _mask_check(ctx, hot, "/proc/irq/default_smp_affinity", "new IRQs")


@check("plan_workqueue", "unbound workqueues on housekeeping cores",
       "kernel worker threads otherwise run on the hot cores", scope="plan")
@_with_hot
def _plan_workqueue(ctx, hot):
    return _mask_check(ctx, hot, "/sys/devices/virtual/workqueue/cpumask", "workqueues")


@check("plan_hugepages", "2 MiB huge pages free on the buffers' node",
       "the runtime maps its buffers from huge pages on the node of its cores", scope="plan")
def _plan_hugepages(ctx):
    plan = ctx.plan
    if plan is None:
        return na(NO_PLAN)
    if not plan.hugepages:
        return na("buffers.hugepages = false")
    need = plan.hugepages_2m_needed()
    if need is None:
        return na("no [buffers] frame_bytes/frames in the config")
    node = None
    if plan.interface and plan.interface in ctx.topo.nics:
        n = ctx.topo.nics[plan.interface].numa_node
        node = n if isinstance(n, int) and n >= 0 else None
    hot = hot_cores(ctx)
    if node is None and isinstance(hot, list) and hot:
        node = ctx.topo.node_of_cpu(hot[0])
    if node is None:
        node = min(ctx.topo.nodes) if ctx.topo.nodes else 0
    if node not in ctx.topo.nodes:
        return unknown(f"node {node} not in sysfs")
    pages = ctx.topo.nodes[node].hugepages.get(2048, {})
    nr, free = pages.get("nr"), pages.get("free")
    if isinstance(nr, Unknown) or isinstance(free, Unknown) or nr is None:
        return unknown(nr if isinstance(nr, Unknown) else free or "no 2 MiB pages dir")
    expected = f">= {need} free on node {node}"
    if free >= need:
        return Outcome(f"{free} free of {nr} on node {node}", expected, OK)
    path = f"/sys/devices/system/node/node{node}/hugepages/hugepages-2048kB/nr_hugepages"
    if not ctx.fs.exists("/sys/devices/system/node"):
        path = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    target = nr + (need - free)
    return Outcome(f"{free} free of {nr} on node {node}", expected, FAIL,
                   f"echo {target} > {path}", [Change("file", path, str(target), compare="int")],
                   [f"hugepagesz=2M hugepages={target}"])


@check("plan_memlock", "RLIMIT_MEMLOCK covers the buffers",
       "the runtime locks its buffers in memory (and AF_XDP registers UMEM) up to this limit",
       scope="plan")
def _plan_memlock(ctx):
    if ctx.plan is None:
        return na(NO_PLAN)
    need = ctx.plan.buffer_bytes()
    if need is None:
        return na("no [buffers] frame_bytes/frames in the config")
    have = ctx.memlock_bytes
    if have is None:
        return unknown("RLIMIT_MEMLOCK not known")
    need_kib = math.ceil(need / 1024)
    if have == resource.RLIM_INFINITY or have >= need:
        shown = "unlimited" if have == resource.RLIM_INFINITY else f"{have // 1024} KiB"
        return Outcome(shown, f">= {need_kib} KiB", OK)
    return Outcome(f"{have // 1024} KiB", f">= {need_kib} KiB", FAIL,
                   f"ulimit -l {need_kib} (or '* - memlock {need_kib}' in "
                   "/etc/security/limits.d/tickpath.conf, or LimitMEMLOCK= in the unit)")
