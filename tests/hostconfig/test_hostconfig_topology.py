import json
import os

import pytest

from tickpath.hostconfig.discover.sysfs import Unknown
from tickpath.hostconfig.discover.topology import choose_cores, discover
from tickpath.runtime.core.errors import ConfigError


def test_numa2_machine(make_host, fake_nic):
    t = discover(make_host("numa2"), nic_ops=fake_nic())
    assert t.cpus_online == list(range(8))
    assert t.smt_groups == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert sorted(t.nodes) == [0, 1]
    assert t.nodes[1].cpus == [2, 3, 6, 7] and t.nodes[0].mem_total_kb == 16318412
    assert t.nodes[1].hugepages[2048] == {"nr": 0, "free": 0}
    nic = t.nics["ens1f0"]
    assert (nic.numa_node, nic.driver, nic.pci_address) == (1, "mlx5_core", "0000:af:00.0")
    assert (nic.rx_queues, nic.tx_queues, nic.combined_channels) == (8, 8, 4)
    assert nic.operstate == "up" and nic.mtu == 1500
    assert [p.address for p in t.pci] == ["0000:af:00.0"] and t.pci[0].numa_node == 1
    assert t.cpu_model == "Fixture CPU @ 3.00GHz" and t.kernel == "6.1.0-fixture"
    assert t.node_of_cpu(6) == 1 and t.siblings_of(2) == [6]
    d = json.loads(json.dumps(t.to_dict()))
    assert d["cpus_online_list"] == "0-7"
    assert d["nics"]["ens1f0"]["numa_node"] == 1


def test_choose_cores_prefers_nic_node_and_avoids_siblings(make_host):
    t = discover(make_host("numa2"))
    assert choose_cores(t, 2, "ens1f0") == [2, 3]  # node 1, distinct cores
    assert choose_cores(t, 3, "ens1f0") == [2, 3, 6]  # node 1 before the other node
    assert choose_cores(t, 2) == [1, 2]  # no NIC: avoid cpu 0
    assert choose_cores(t, 8)[-1] == 0  # cpu 0 only as the last resort
    with pytest.raises(ConfigError, match="unknown network interface"):
        choose_cores(t, 1, "nope0")
    with pytest.raises(ConfigError, match="that many"):
        choose_cores(t, 9)


def test_choose_cores_isolated_first(make_host):
    t = discover(make_host("numa2", isolated=[0, 5, 7]))
    # isolated on the NIC's node (7), then isolated elsewhere (0, 5; cpu 0 is fine when
    # isolated), then non-isolated on the NIC's node
    assert choose_cores(t, 4, "ens1f0") == [7, 0, 5, 2]


def test_vm_nic_numa_from_pci_parent(make_host):
    # virtio-net: the net device's `device` is virtioN, numa_node sits on the PCI parent
    root = make_host("vm")
    dev = os.path.join(root, "sys/devices/pci0000:00/0000:00:02.0/0000:00:03.0")
    os.makedirs(os.path.join(dev, "virtio0"))
    link = os.path.join(root, "sys/class/net/eth0/device")
    os.remove(link)
    os.symlink(os.path.relpath(os.path.join(dev, "virtio0"), os.path.dirname(link)), link)
    with open(os.path.join(dev, "numa_node"), "w") as f:
        f.write("0\n")
    t = discover(root)
    assert t.nics["eth0"].pci_address == "0000:00:03.0"
    assert t.nics["eth0"].numa_node == 0
    assert isinstance(t.nohz_full, Unknown)  # the VM kernel has no nohz_full file


def test_malformed_and_missing_degrade(make_host):
    root = make_host("untuned")
    with open(os.path.join(root, "sys/devices/system/cpu/isolated"), "w") as f:
        f.write("0-3,x\n")
    os.remove(os.path.join(root, "sys/devices/system/node/node0/meminfo"))
    t = discover(root)
    assert isinstance(t.isolated, Unknown) and "malformed cpulist" in t.isolated.reason
    assert isinstance(t.nodes[0].mem_total_kb, Unknown)
    json.dumps(t.to_dict())


def test_no_numa_sysfs_means_one_node(make_host):
    import shutil

    root = make_host("untuned")
    shutil.rmtree(os.path.join(root, "sys/devices/system/node"))
    t = discover(root)
    assert list(t.nodes) == [0] and t.nodes[0].cpus == [0, 1, 2, 3]
    assert t.nodes[0].mem_total_kb == 32636824 and t.notes


def test_empty_root_never_raises(tmp_path):
    t = discover(str(tmp_path))
    assert isinstance(t.cpus_online, Unknown) and t.nics == {}
    json.dumps(t.to_dict())
    with pytest.raises(ConfigError, match="online CPUs unknown"):
        choose_cores(t, 1)


def test_real_host_reads():
    t = discover("/")
    assert isinstance(t.cpus_online, list) and t.cpus_online
    assert "lo" in t.nics
    json.dumps(t.to_dict())
