"""`tickpath info`: what the runtime sees on this host — CPUs and SMT siblings, NUMA nodes,
isolated / nohz_full CPUs, NICs (driver, queues, node), huge pages per node, whether AF_XDP
works (and by which path), whether cupy and a CUDA device are usable, XDMA device nodes.

Each probe is independent and degrades to a reason string; nothing here raises.
"""
from __future__ import annotations

import glob
import json
import os


def _topology() -> dict:
    from tickpath.runtime.sys.topology import discover
    try:
        from tickpath.runtime.sys.ethtool import EthtoolOps
        ops = EthtoolOps()
    except Exception:  # pyroute2 missing or no netlink: channels reported unknown
        ops = None
    return discover("/", nic_ops=ops).to_dict()


def _afxdp() -> dict:
    try:
        from tickpath.runtime.backends.afxdp.probe import probe
    except ImportError as exc:
        return {"usable": False, "reason": f"afxdp module unavailable: {exc}"}
    return probe()


def _gpu() -> dict:
    try:
        from tickpath.kernels._backend import backend  # not the package: it imports numba
        b = backend()
        return b if isinstance(b, dict) else dict(vars(b))
    except Exception as exc:
        return {"name": "unknown", "reason": str(exc)}


def _xdma(device_dir: str = "/dev") -> dict:
    nodes = sorted(os.path.basename(p) for p in glob.glob(os.path.join(device_dir, "xdma*")))
    return {"device_dir": device_dir, "nodes": nodes,
            "present": bool(nodes), "reason": "" if nodes else "no /dev/xdma* nodes (driver not loaded or no card)"}


def gather() -> dict:
    out = {}
    for key, fn in (("topology", _topology), ("afxdp", _afxdp), ("kernels", _gpu), ("xdma", _xdma)):
        try:
            out[key] = fn()
        except Exception as exc:  # info must always print something useful
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _fmt(v) -> str:
    if isinstance(v, dict) and "unknown" in v:
        return "n/a"  # the reason is in --json
    if isinstance(v, list):
        return ",".join(map(str, v)) if v else "none"
    return str(v)


def print_info(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    t = info.get("topology", {})
    c.print(f"[bold]host[/bold]: {_fmt(t.get('cpu_model'))}, kernel {_fmt(t.get('kernel'))}")
    c.print(f"CPUs online: {_fmt(t.get('cpus_online'))}; SMT sibling groups: "
            f"{_fmt([('+'.join(map(str, g))) for g in t.get('smt_groups', [])])}; "
            f"isolated: {_fmt(t.get('isolated'))}; nohz_full: {_fmt(t.get('nohz_full'))}")
    nt = Table(title="NUMA nodes")
    for col in ("node", "cpus", "memory MiB", "2 MiB pages (nr/free)", "1 GiB pages (nr/free)"):
        nt.add_column(col)
    for nid, n in sorted(t.get("nodes", {}).items()):
        hp = n.get("hugepages", {})
        h2, h1 = hp.get("2048", {}), hp.get("1048576", {})
        mem = n.get("mem_total_kb")
        nt.add_row(str(nid), _fmt(n.get("cpus")), f"{mem // 1024:,}" if isinstance(mem, int) else _fmt(mem),
                   f"{_fmt(h2.get('nr'))}/{_fmt(h2.get('free'))}", f"{_fmt(h1.get('nr'))}/{_fmt(h1.get('free'))}")
    c.print(nt)
    it = Table(title="NICs")
    for col in ("name", "driver", "state", "mtu", "rx/tx queues", "channels", "NUMA node", "PCI"):
        it.add_column(col)
    for name, n in sorted(t.get("nics", {}).items()):
        it.add_row(name, _fmt(n.get("driver")), _fmt(n.get("operstate")), _fmt(n.get("mtu")),
                   f"{_fmt(n.get('rx_queues'))}/{_fmt(n.get('tx_queues'))}", _fmt(n.get("combined_channels")),
                   _fmt(n.get("numa_node")), _fmt(n.get("pci_address")))
    c.print(it)
    a = info.get("afxdp", {})
    c.print(f"[bold]AF_XDP[/bold]: {'usable' if a.get('usable') else 'not usable'} — socket {a.get('af_xdp_socket')}, "
            f"XSKMAP {a.get('bpf_xskmap')}; path: {a.get('bpf_path')}; libbpf {a.get('libbpf') or 'absent'}, "
            f"libxdp {a.get('libxdp') or 'absent'} (neither is needed); modes: skb on every netdev, drv/zerocopy "
            "driver-dependent (`tickpath info --interface IF`)")
    k = info.get("kernels", {})
    c.print(f"[bold]indicator kernels[/bold]: {k.get('name')} — {k.get('reason')}")
    x = info.get("xdma", {})
    c.print(f"[bold]XDMA[/bold]: {', '.join(x.get('nodes', [])) or x.get('reason')}")


def to_json(info: dict) -> str:
    return json.dumps(info, indent=2, default=str)
