"""Topology discovery: what the machine is, read once from /sys and /proc.

`discover(root)` returns a `Topology`: online CPUs, SMT sibling groups, NUMA nodes (CPUs,
MemTotal, huge pages of each size), isolated and nohz_full CPUs, NICs (driver, NUMA node,
queues, state, MTU, PCI address) and PCI devices, CPU model and kernel. Anything unreadable
is an `Unknown(reason)` in place of its value, never an exception. `tickpath info` prints
`to_dict()`; `choose_cores` is the runtime's automatic placement ("prefer isolated cores on
the NIC's NUMA node"). The single facts the runtime needs on its own (online CPUs, NUMA
node ids, free 2 MiB pages of a node, a NIC's node) are the small readers below, which
`discover` uses too: one reader per fact. hostconfig builds on this module (layering:
hostconfig imports runtime, never the reverse). Sources: Documentation/ABI/testing/sysfs-devices-system-cpu,
sysfs-devices-node, sysfs-class-net, admin-guide/mm/hugetlbpage.rst.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from tickpath.runtime.core.errors import ConfigError

from tickpath.runtime.sys.cpulist import format_cpulist, parse_cpulist
from tickpath.runtime.sys.hostfs import HostFS, Unknown

__all__ = ["Topology", "Node", "Nic", "PciDevice", "discover", "choose_cores",
           "parse_cpulist", "format_cpulist", "online_cpus", "numa_nodes", "free_huge_pages",
           "nic_numa_node"]

CPU_DIR = "/sys/devices/system/cpu"
NODE_DIR = "/sys/devices/system/node"
NET_DIR = "/sys/class/net"
PCI_DIR = "/sys/bus/pci/devices"
HUGEPAGE_SIZES_KB = (2048, 1048576)  # 2 MiB and 1 GiB, the two x86-64 sizes
_PCI_ADDR = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def _jsonable(v):
    if isinstance(v, Unknown):
        return v.to_dict()
    if hasattr(v, "to_dict"):
        return v.to_dict()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class Node:
    node_id: int
    cpus: list[int] | Unknown
    mem_total_kb: int | Unknown
    # size_kb -> {"nr": pages reserved, "free": pages free} (or Unknown)
    hugepages: dict[int, dict[str, int | Unknown]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class Nic:
    name: str
    driver: str | Unknown
    numa_node: int | Unknown  # -1: the device has no NUMA affinity (or is virtual)
    rx_queues: int | Unknown
    tx_queues: int | Unknown
    combined_channels: int | Unknown  # ethtool -l; only when discover() got NIC ops
    operstate: str | Unknown
    mtu: int | Unknown
    pci_address: str | None | Unknown  # None for virtual devices (lo, veth, bridges)

    def to_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class PciDevice:
    address: str
    vendor: str | Unknown
    device: str | Unknown
    pci_class: str | Unknown
    numa_node: int | Unknown

    def to_dict(self) -> dict:
        return _jsonable(self.__dict__)


@dataclass
class Topology:
    root: str
    cpus_online: list[int] | Unknown
    smt_groups: list[list[int]]  # each a set of hardware threads sharing one core
    nodes: dict[int, Node]
    isolated: list[int] | Unknown
    nohz_full: list[int] | Unknown
    nics: dict[str, Nic]
    pci: list[PciDevice]
    cpu_model: str | Unknown
    kernel: str | Unknown
    notes: list[str] = field(default_factory=list)

    def node_of_cpu(self, cpu: int) -> int | None:
        for nid, node in self.nodes.items():
            if isinstance(node.cpus, list) and cpu in node.cpus:
                return nid
        return None

    def siblings_of(self, cpu: int) -> list[int]:
        """The other hardware threads of `cpu`'s core (empty without SMT)."""
        for group in self.smt_groups:
            if cpu in group:
                return [c for c in group if c != cpu]
        return []

    def nic_node(self, nic: str) -> int | None:
        """The NIC's NUMA node, or None when it has none or we could not learn it."""
        if nic not in self.nics:
            raise ConfigError("unknown network interface", interface=nic,
                              known=",".join(sorted(self.nics)))
        node = self.nics[nic].numa_node
        return node if isinstance(node, int) and node >= 0 else None

    def to_dict(self) -> dict:
        d = _jsonable(self.__dict__)
        for key in ("cpus_online", "isolated", "nohz_full"):
            v = getattr(self, key)
            if isinstance(v, list):
                d[key + "_list"] = format_cpulist(v)
        return d


def _fs(root) -> HostFS:
    return root if isinstance(root, HostFS) else HostFS(root)


def online_cpus(root: str | HostFS = "/") -> list[int] | Unknown:
    """The online CPUs (cpu/online), else every cpuN directory (no hotplug state known)."""
    fs = _fs(root)
    cpus = fs.read_cpulist(f"{CPU_DIR}/online")
    if isinstance(cpus, Unknown):
        dirs = [p.rsplit("cpu", 1)[1] for p in fs.glob(f"{CPU_DIR}/cpu[0-9]*")]
        if dirs:
            return sorted(int(d) for d in dirs)
    return cpus


def numa_nodes(root: str | HostFS = "/") -> list[int]:
    """Online NUMA node ids; [0] when the kernel has no NUMA view (CONFIG_NUMA off)."""
    ids = _fs(root).read_cpulist(f"{NODE_DIR}/online")
    return ids if isinstance(ids, list) and ids else [0]


def free_huge_pages(node: int, root: str | HostFS = "/", size_kb: int = 2048) -> int:
    """Free huge pages of `size_kb` on `node`; the global pool's without a per-node view;
    0 when neither can be read."""
    fs = _fs(root)
    n = fs.read_int(f"{NODE_DIR}/node{node}/hugepages/hugepages-{size_kb}kB/free_hugepages")
    if isinstance(n, Unknown):
        n = fs.read_int(f"/sys/kernel/mm/hugepages/hugepages-{size_kb}kB/free_hugepages")
    return n if isinstance(n, int) else 0


def _nic_numa(fs: HostFS, name: str, pci_dir: str | None) -> int | Unknown:
    numa = fs.read_int(f"{NET_DIR}/{name}/device/numa_node")
    if isinstance(numa, Unknown) and pci_dir:
        numa = fs.read_int(f"{pci_dir}/numa_node")
    return numa


def nic_numa_node(name: str, root: str | HostFS = "/") -> int | None:
    """The NIC's NUMA node, or None (a virtual device, no NUMA, or unreadable)."""
    fs = _fs(root)
    if not fs.exists(f"{NET_DIR}/{name}/device"):
        return None
    node = _nic_numa(fs, name, _pci_parent(fs, f"{NET_DIR}/{name}/device"))
    return node if isinstance(node, int) and node >= 0 else None


def _smt_groups(fs: HostFS, cpus) -> list[list[int]]:
    groups: set[tuple[int, ...]] = set()
    for cpu in cpus if isinstance(cpus, list) else []:
        # thread_siblings_list is the long-standing name; core_cpus_list its newer alias
        sib = fs.read_cpulist(f"{CPU_DIR}/cpu{cpu}/topology/thread_siblings_list")
        if isinstance(sib, Unknown):
            sib = fs.read_cpulist(f"{CPU_DIR}/cpu{cpu}/topology/core_cpus_list")
        if isinstance(sib, list) and len(sib) > 1:
            groups.add(tuple(sib))
    return [list(g) for g in sorted(groups)]


def _node_meminfo_kb(fs: HostFS, host_path: str, node_id: int | None) -> int | Unknown:
    text = fs.read_text(host_path)
    if isinstance(text, Unknown):
        return text
    # node meminfo: "Node 0 MemTotal:  16318412 kB"; /proc/meminfo: "MemTotal:  ... kB"
    m = re.search(r"MemTotal:\s+(\d+)\s*kB", text)
    return int(m.group(1)) if m else Unknown(f"no MemTotal in path={host_path}")


def _hugepages(fs: HostFS, base: str) -> dict[int, dict[str, int | Unknown]]:
    return {
        size: {
            "nr": fs.read_int(f"{base}/hugepages-{size}kB/nr_hugepages"),
            "free": fs.read_int(f"{base}/hugepages-{size}kB/free_hugepages"),
        }
        for size in HUGEPAGE_SIZES_KB
    }


def _nodes(fs: HostFS, cpus, notes: list[str]) -> dict[int, Node]:
    ids = fs.read_cpulist(f"{NODE_DIR}/online")
    if isinstance(ids, Unknown):
        # a kernel built without CONFIG_NUMA: one node holding everything
        notes.append(f"no NUMA nodes in sysfs ({ids.reason}); assuming one node 0")
        return {0: Node(0, cpus, _node_meminfo_kb(fs, "/proc/meminfo", None),
                        _hugepages(fs, "/sys/kernel/mm/hugepages"))}
    nodes = {}
    for nid in ids:
        base = f"{NODE_DIR}/node{nid}"
        nodes[nid] = Node(nid, fs.read_cpulist(f"{base}/cpulist"),
                          _node_meminfo_kb(fs, f"{base}/meminfo", nid),
                          _hugepages(fs, f"{base}/hugepages"))
    return nodes


def _count_queues(fs: HostFS, name: str, prefix: str) -> int | Unknown:
    entries = fs.listdir(f"{NET_DIR}/{name}/queues")
    if isinstance(entries, Unknown):
        return entries
    return sum(1 for e in entries if e.startswith(prefix))


def _pci_parent(fs: HostFS, host_path: str) -> str | None:
    """Host path of the PCI function a device hangs off (itself, or a parent: virtio-net's
    `device` is virtioN, a child of the PCI function that has the numa_node)."""
    real = os.path.realpath(fs.path(host_path))
    root = fs.root.rstrip("/") + "/"
    while real.startswith(root) and real != fs.root:
        if _PCI_ADDR.match(os.path.basename(real)):
            return fs.host_path(real)
        real = os.path.dirname(real)
    return None


def _nic(fs: HostFS, name: str, nic_ops) -> Nic:
    base = f"{NET_DIR}/{name}"
    if fs.exists(f"{base}/device"):
        pci_dir = _pci_parent(fs, f"{base}/device")
        pci = os.path.basename(pci_dir) if pci_dir else None
        driver = fs.readlink_name(f"{base}/device/driver")
        numa = _nic_numa(fs, name, pci_dir)
    else:
        pci, driver, numa = None, "virtual", -1
    combined: int | Unknown = Unknown("channels need ethtool (no NIC ops given)")
    if nic_ops is not None:
        try:
            combined = int(nic_ops.get_channels(name).get("combined_count", 0))
        except Exception as exc:  # why: any ioctl/netlink failure is a fact about this NIC
            combined = Unknown(f"ethtool -l failed: {type(exc).__name__} "
                               f"{str(exc).strip(chr(0))[:60]}")
    return Nic(name=name, driver=driver, numa_node=numa,
               rx_queues=_count_queues(fs, name, "rx-"),
               tx_queues=_count_queues(fs, name, "tx-"),
               combined_channels=combined,
               operstate=fs.read_text(f"{base}/operstate"),
               mtu=fs.read_int(f"{base}/mtu"), pci_address=pci)


def _pci(fs: HostFS) -> list[PciDevice]:
    out = []
    for path in fs.glob(f"{PCI_DIR}/*"):
        addr = path.rsplit("/", 1)[1]
        out.append(PciDevice(addr, fs.read_text(f"{path}/vendor"), fs.read_text(f"{path}/device"),
                             fs.read_text(f"{path}/class"), fs.read_int(f"{path}/numa_node")))
    return out


def _cpu_model(fs: HostFS) -> str | Unknown:
    text = fs.read_text("/proc/cpuinfo")
    if isinstance(text, Unknown):
        return text
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else Unknown("no 'model name' in /proc/cpuinfo")


def discover(root: str = "/", nic_ops=None) -> Topology:
    """Read the host's topology below `root`; never raises for missing or odd files."""
    fs = _fs(root)
    notes: list[str] = []
    cpus = online_cpus(fs)
    names = fs.listdir(NET_DIR)
    nics = {n: _nic(fs, n, nic_ops) for n in names} if isinstance(names, list) else {}
    if isinstance(names, Unknown):
        notes.append(f"no NICs: {names.reason}")
    return Topology(
        root=fs.root, cpus_online=cpus, smt_groups=_smt_groups(fs, cpus),
        nodes=_nodes(fs, cpus, notes),
        isolated=fs.read_cpulist(f"{CPU_DIR}/isolated"),
        nohz_full=fs.read_cpulist(f"{CPU_DIR}/nohz_full"),
        nics=nics, pci=_pci(fs), cpu_model=_cpu_model(fs),
        kernel=fs.read_text("/proc/sys/kernel/osrelease"), notes=notes)


def choose_cores(topology: Topology, n: int, nic: str | None = None) -> list[int]:
    """Pick `n` CPUs for hot threads, best first.

    Order: isolated CPUs on the NIC's node, then other isolated CPUs, then non-isolated CPUs
    on the NIC's node, then any. Within a tier, CPUs that are not SMT siblings of a CPU
    already chosen come first; CPU 0 (where the kernel puts housekeeping by default) comes
    last of all unless it is isolated. Raises ConfigError if `n` exceeds the online CPUs.
    """
    cpus = topology.cpus_online
    if isinstance(cpus, Unknown):
        raise ConfigError("cannot choose cores: online CPUs unknown", reason=cpus.reason)
    if n < 1 or n > len(cpus):
        raise ConfigError("cannot choose that many cores", wanted=n, online=len(cpus))
    isolated = set(topology.isolated) if isinstance(topology.isolated, list) else set()
    nic_node = topology.nic_node(nic) if nic is not None else None
    on_nic_node = set()
    if nic_node is not None and isinstance(topology.nodes.get(nic_node, Node(0, [], 0)).cpus, list):
        on_nic_node = set(topology.nodes[nic_node].cpus)

    def tier(c: int) -> int:
        if c in isolated:
            return 0 if c in on_nic_node or nic_node is None else 1
        return 2 if c in on_nic_node else 3

    chosen: list[int] = []
    while len(chosen) < n:
        taken_siblings = {s for c in chosen for s in topology.siblings_of(c)}
        best = min(
            (c for c in cpus if c not in chosen),
            key=lambda c: (c == 0 and c not in isolated, tier(c), c in taken_siblings, c),
        )
        chosen.append(best)
    return chosen
