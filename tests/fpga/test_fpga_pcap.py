"""runtime/pcap.py: classic pcap and pcapng, both byte orders and resolutions, and clear
errors for foreign link types, bad magics and truncated records."""
from __future__ import annotations

import struct

import pytest
from tickpath.runtime.feed import pcap
from tickpath.runtime.core.errors import ConfigError

T = 1_750_000_000_123_456_789


def _frames():
    return [pcap.udp_frame(b"P%d" % i * (i + 1), 26400 + i % 2) for i in range(7)]


@pytest.mark.parametrize("writer", [pcap.write_pcap, pcap.write_pcapng])
@pytest.mark.parametrize("linktype", [pcap.LINKTYPE_ETHERNET, pcap.LINKTYPE_RAW])
def test_round_trip(tmp_path, writer, linktype):
    frames = [pcap.udp_frame(b"P%d" % i * (i + 1), 26400 + i % 2, linktype=linktype) for i in range(7)]
    ts = [T + 1000 * i for i in range(7)]
    writer(tmp_path / "c", frames, ts, linktype=linktype)
    cap = pcap.read_capture(tmp_path / "c")
    assert cap.linktype == linktype and len(cap) == 7
    assert [cap.packet(i) for i in range(7)] == frames
    assert list(cap.ts_ns) == ts
    pl = list(pcap.udp_payloads(cap))
    assert [p for _t, _port, p in pl] == [b"P%d" % i * (i + 1) for i in range(7)]
    assert [port for _t, port, _p in pl] == [26400 + i % 2 for i in range(7)]


def test_big_endian_microsecond_pcap(tmp_path):
    fr = _frames()[0]
    raw = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    raw += struct.pack(">IIII", 1000, 250, len(fr), len(fr)) + fr
    (tmp_path / "be.pcap").write_bytes(raw)
    cap = pcap.read_capture(tmp_path / "be.pcap")
    assert cap.ts_ns[0] == 1000 * 10**9 + 250_000 and cap.packet(0) == fr


def test_pcapng_microsecond_default_and_snaplen(tmp_path):
    fr = _frames()[1]

    def block(t, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    raw = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    raw += block(1, struct.pack("<HHI", 1, 0, 0))                       # no if_tsresol: us
    raw += block(6, struct.pack("<IIIII", 0, 0, 5_000_001, 20, len(fr)) + fr[:20])
    raw += block(0xBAD, b"ignored!")                                     # unknown block skipped
    (tmp_path / "c.pcapng").write_bytes(raw)
    cap = pcap.read_capture(tmp_path / "c.pcapng")
    assert cap.ts_ns[0] == 5_000_001_000 and cap.lengths[0] == 20 and cap.orig_lengths[0] == len(fr)
    assert list(pcap.udp_payloads(cap)) == []                            # cut short: not UDP


def test_foreign_link_type(tmp_path):
    (tmp_path / "x.pcap").write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127))
    with pytest.raises(ConfigError, match=r"unsupported pcap link type.*linktype=127"):
        pcap.read_capture(tmp_path / "x.pcap")
    with pytest.raises(ConfigError, match="unsupported pcap link type"):
        pcap.write_pcap(tmp_path / "y.pcap", [], [], linktype=105)


def test_truncated_records_and_bad_magic(tmp_path):
    pcap.write_pcap(tmp_path / "ok.pcap", _frames(), [T] * 7)
    raw = (tmp_path / "ok.pcap").read_bytes()
    for cut, what in ((len(raw) - 3, "record data"), (24 + 8, "record header"), (10, "file header")):
        (tmp_path / "t.pcap").write_bytes(raw[:cut])
        with pytest.raises(ConfigError, match=f"truncated capture.*record='{what}'"):
            pcap.read_capture(tmp_path / "t.pcap")
    pcap.write_pcapng(tmp_path / "ok.pcapng", _frames(), [T] * 7)
    raw = (tmp_path / "ok.pcapng").read_bytes()
    (tmp_path / "t.pcapng").write_bytes(raw[:-5])
    with pytest.raises(ConfigError, match="truncated capture"):
        pcap.read_capture(tmp_path / "t.pcapng")
    (tmp_path / "m.pcap").write_bytes(b"\x00" * 40)
    with pytest.raises(ConfigError, match="not a pcap or pcapng"):
        pcap.read_capture(tmp_path / "m.pcap")
    with pytest.raises(ConfigError, match="cannot read capture"):
        pcap.read_capture(tmp_path / "absent.pcap")


def test_udp_payloads_skip_what_is_not_udp(tmp_path):
    good = pcap.udp_frame(b"feed", 1234)
    frag = bytearray(good)
    frag[14 + 6] = 0x20                                   # more-fragments flag
    arp = b"\xff" * 12 + b"\x08\x06" + b"\0" * 28
    vlan = good[:12] + b"\x81\x00\x00\x05" + good[12:]
    pcap.write_pcap(tmp_path / "m.pcap", [good, bytes(frag), arp, vlan, good[:20]], [T] * 5)
    pl = list(pcap.udp_payloads(pcap.read_capture(tmp_path / "m.pcap")))
    assert [(port, p) for _t, port, p in pl] == [(1234, b"feed"), (1234, b"feed")]
