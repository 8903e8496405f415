"""The runtime's own topology readers (runtime/sys/topology.py) on fixture hosts: online
CPUs, NUMA node ids, free 2 MiB pages per node, a NIC's node. `discover` reads the same
facts through the same functions (tests/hostconfig covers it)."""
from __future__ import annotations

import fakehost
from tickpath.runtime.sys import topology as T


def test_numa2_host(tmp_path):
    root = fakehost.build_host(str(tmp_path), fakehost.numa2_host(hugepages_2m=[(4, 3), (8, 5)]))
    assert T.online_cpus(root) == list(range(8))
    assert T.numa_nodes(root) == [0, 1]
    assert (T.free_huge_pages(0, root), T.free_huge_pages(1, root)) == (3, 5)
    assert T.free_huge_pages(7, root) == 0          # no such node, no global pool: none
    assert T.nic_numa_node("ens1f0", root) == 1
    assert T.nic_numa_node("nosuch0", root) is None
    t = T.discover(root)
    assert t.nics["ens1f0"].numa_node == 1 and t.cpus_online == T.online_cpus(root)


def test_virtual_nic_and_no_numa_view(tmp_path):
    spec = fakehost.vm_host(nics={"veth0": fakehost.NicSpec(pci=None)})
    root = fakehost.build_host(str(tmp_path), spec)
    assert T.nic_numa_node("veth0", root) is None   # no device link: no NUMA affinity
    empty = tmp_path / "empty"
    empty.mkdir()
    assert T.numa_nodes(str(empty)) == [0]           # CONFIG_NUMA off: one node
    assert isinstance(T.online_cpus(str(empty)), T.Unknown)


def test_hostconfig_discover_is_these_readers():
    """hostconfig's discover names are the runtime's objects, not copies (layering: hostconfig
    imports runtime; tests/runtime/test_layering.py checks runtime never imports hostconfig)."""
    from tickpath.hostconfig.discover import cpulist, nic, sysfs, topology
    from tickpath.runtime.sys import cpulist as rc, ethtool, hostfs
    assert topology.discover is T.discover and topology.choose_cores is T.choose_cores
    assert sysfs.HostFS is hostfs.HostFS and sysfs.Unknown is hostfs.Unknown
    assert cpulist.parse_cpulist is rc.parse_cpulist and nic.EthtoolOps is ethtool.EthtoolOps
