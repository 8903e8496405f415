"""Config validation and struct decoding (no privileges needed)."""
from __future__ import annotations

import struct

import pytest

from tickpath.runtime.backends.afxdp import bpf as B
from tickpath.runtime.backends.afxdp import layout as L
from tickpath.runtime.backends.afxdp.config import AfxdpConfig
from tickpath.runtime.core.errors import ConfigError


def cfg(**kw):
    base = dict(interface="lo", udp_port=9000)
    base.update(kw)
    return AfxdpConfig(**base)


@pytest.mark.parametrize("kw, needle", [
    ({"rx_ring_size": 1000}, "rx_ring_size"),
    ({"fill_ring_size": 3}, "fill_ring_size"),
    ({"n_frames": 1000}, "UMEM smaller than the rings"),
    ({"frame_size": 3000}, "frame_size"),
    ({"mode": "turbo"}, "mode"),
    ({"udp_port": 0}, "udp_port"),
    ({"udp_port": 70000}, "udp_port"),
    ({"queue_id": -1}, "queue_id"),
    ({"busy_poll": "yes"}, "busy_poll"),
    ({"feed_address": "not-an-ip"}, "feed_address"),
    ({"interface": ""}, "interface"),
])
def test_bad_values_name_themselves(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        cfg(**kw).validate()


def test_mapping_rejects_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match="unknown afxdp backend keys"):
        AfxdpConfig.from_mapping({"backend": "afxdp", "interface": "lo", "udp_port": 1, "rx_ring": 8})
    with pytest.raises(ConfigError, match="udp_port"):
        AfxdpConfig.from_mapping({"interface": "lo"})
    c = AfxdpConfig.from_mapping({"backend": "afxdp", "interface": "lo", "udp_port": 5, "mode": "skb"})
    assert c.validate().mode == "skb"


def test_missing_interface_and_queue_beyond_channels():
    with pytest.raises(ConfigError, match="does not exist"):
        cfg(interface="nosuchif0").check_interface()
    with pytest.raises(ConfigError, match="queue_id beyond"):
        cfg(queue_id=64).check_interface()


def test_mmap_offsets_both_layouts():
    v2 = b"".join(struct.pack("=QQQQ", 0 + i, 64 + i, 128 + i, 192 + i) for i in range(4))
    off = L.decode_mmap_offsets(v2)
    assert off.fill.flags == 194 and off.rx.desc == 128
    v1 = b"".join(struct.pack("=QQQ", 0, 64, 128) for _ in range(4))
    off1 = L.decode_mmap_offsets(v1)
    assert off1.rx.flags == -1 and off1.completion.desc == 128
    with pytest.raises(ValueError):
        L.decode_mmap_offsets(b"\x00" * 40)


def test_statistics_by_length():
    full = struct.pack("=6Q", 1, 2, 3, 4, 5, 6)
    assert L.decode_statistics(full)["rx_fill_ring_empty_descs"] == 5
    assert L.decode_statistics(full[:24]) == {"rx_dropped": 1, "rx_invalid_descs": 2, "tx_invalid_descs": 3}


def test_programs_are_whole_instructions_ending_in_exit():
    for prog in (B.redirect_program(7), B.filter_program(7, 9000)):
        assert len(prog) % 8 == 0
        assert prog[-8] == 0x95                         # exit
        # the map fd is in an ld_imm64 with src_reg = BPF_PSEUDO_MAP_FD
        insns = [prog[i:i + 8] for i in range(0, len(prog), 8)]
        lds = [x for x in insns if x[0] == 0x18]
        assert lds and all(x[1] >> 4 == 1 and struct.unpack("<i", x[4:])[0] == 7 for x in lds)
    # the port appears as a network-order compare
    filt = B.filter_program(7, 0x1234)
    assert struct.pack("<i", 0x3412) in filt


def test_probe_reports_path_and_interface():
    import os
    from tickpath.runtime.backends.afxdp.probe import probe
    info = probe("lo")
    assert info["bpf_path"].startswith("raw bpf()")
    assert info["interface"]["rx_queues"] >= 1
    if os.geteuid() == 0:
        assert info["usable"] in (True, False) and "af_xdp_socket" in info
    assert "error" in probe("nosuchif0")["interface"]
