"""NIC checks on the feed's interface: GRO/LRO off and adaptive RX coalescing off.

GRO/LRO merge packets (delaying the first until the batch closes); adaptive coalescing lets
the driver hold interrupts to batch them. Both buy throughput with latency. Read and set
through NIC ops (nic.py: pyroute2's ethtool); "na" without an interface in the plan.
"""
from __future__ import annotations

from tickpath.hostconfig.checks.base import FAIL, OK, Change, Outcome, check, na, unknown

# ethtool -k feature names that merge received packets
GRO_FEATURES = ("rx-gro", "rx-gro-hw")
LRO_FEATURES = ("rx-lro",)


def _iface(ctx):
    if ctx.plan is None or not ctx.plan.interface:
        return None, na("no [nic] interface in the runtime config (--config FILE)")
    if ctx.nic_ops is None:
        return None, unknown("no NIC access (ethtool ops) for this root")
    return ctx.plan.interface, None


def _features_off(ctx, names, flag: str) -> Outcome:
    ifname, early = _iface(ctx)
    if early:
        return early
    try:
        feats = ctx.nic_ops.get_features(ifname)
    except Exception as exc:  # why: ioctl/netlink errors are facts about this NIC
        return unknown(f"ethtool -k {ifname} failed: {type(exc).__name__} {exc}", "off")
    present = [n for n in names if n in feats]
    if not present:
        return na(f"{ifname} has no {'/'.join(names)}", "off")
    on = [n for n in present if feats[n]]
    # why: a feature the driver marks fixed cannot be turned off; apply must not try
    can = getattr(ctx.nic_ops, "feature_changeable", lambda _i, _n: True)
    fixed = [n for n in on if not can(ifname, n)]
    read = ", ".join(f"{n} {'on' if feats[n] else 'off'}{' (fixed)' if n in fixed else ''}"
                     for n in present)
    if not on:
        return Outcome(read, "off", OK)
    fix = f"ethtool -K {ifname} {flag} off"
    if fixed:
        fix += f" ({', '.join(fixed)} fixed on by the driver: no run-time fix)"
    return Outcome(read, "off", FAIL, fix,
                   [Change("nic_feature", ifname, False, key=n) for n in on if n not in fixed])


@check("nic_gro", "GRO off on the feed interface",
       "GRO holds packets to merge them, delaying the first", scope="plan")
def _gro(ctx):
    return _features_off(ctx, GRO_FEATURES, "gro")


@check("nic_lro", "LRO off on the feed interface",
       "LRO merges packets in hardware, delaying and rewriting them", scope="plan")
def _lro(ctx):
    return _features_off(ctx, LRO_FEATURES, "lro")


@check("nic_adaptive_rx", "adaptive RX coalescing off",
       "the driver raises interrupt delay under load, exactly when latency matters",
       scope="plan")
def _adaptive(ctx):
    ifname, early = _iface(ctx)
    if early:
        return early
    try:
        co = ctx.nic_ops.get_coalesce(ifname)
    except Exception as exc:
        return unknown(f"ethtool -c {ifname} failed: {type(exc).__name__} {exc}", "off")
    if "use_adaptive_rx_coalesce" not in co:
        return na(f"{ifname} reports no adaptive-rx setting", "off")
    v = int(co["use_adaptive_rx_coalesce"])
    usecs = co.get("rx_coalesce_usecs")
    read = f"adaptive-rx {'on' if v else 'off'}" + (f", rx-usecs {usecs}" if usecs is not None
                                                     else "")
    if v == 0:
        return Outcome(read, "off", OK)
    return Outcome(read, "off", FAIL, f"ethtool -C {ifname} adaptive-rx off",
                   [Change("nic_coalesce", ifname, 0, key="use_adaptive_rx_coalesce")])
