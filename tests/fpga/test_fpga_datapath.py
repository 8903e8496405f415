"""The emulated card in-process: ingress front end, control registers, FIFO policies."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from fpga_helpers import SESSION, decode_all
from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator.model import ParserModel, payload_batch
from tickpath.runtime.feed import pcap
from tickpath.runtime.core.errors import ConfigError

from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold

ON = rm.CTRL_ENABLE | rm.CTRL_DROP_ON_FULL


def add(loc, ref):
    return itch.encode_add(loc, 0, 5, ref, "B", 10, "X", 100)


def frames_batch(frames, kind=dp.KIND_ETHERNET):
    buf, offs, lens, ports, recv = payload_batch(frames)
    return buf, offs, lens, ports, recv, kind


def identity_holds(c):
    return c["MESSAGES"] == (c["DUPLICATES"] + c["MALFORMED_MESSAGES"] + c["UNKNOWN_TYPES"]
                             + c["SKIPPED_TYPES"] + c["LOCATE_FILTERED"]
                             + c["MESSAGES_OUT"] + c["FIFO_DROPPED"] - c["GAPS"])


def test_identity_registers():
    m = ParserModel(fifo_depth=128)
    u32 = m.u32
    assert u32[rm.ID >> 2] == rm.ID_MAGIC and u32[rm.REG["RECORD_BYTES"] >> 2] == 64
    assert u32[rm.REG["FIFO_DEPTH"] >> 2] == 128 and u32[rm.REG["REGFILE_BYTES"] >> 2] == rm.REGFILE_BYTES
    with pytest.raises(ConfigError, match="fifo depth"):
        ParserModel(fifo_depth=4)
    with pytest.raises(ConfigError, match="wrong size"):
        rm.reg_words(bytearray(100))


def test_register_map_has_no_overlaps():
    spans = sorted((off, off + w // 8, name) for name, off, w, _a, _m in rm.REGISTERS)
    spans += [(rm.COUNTERS_BASE, rm.COUNTERS_END, "COUNTERS"),
              (rm.LOCATE_BITMAP, rm.LOCATE_BITMAP + rm.LOCATE_BITMAP_BYTES, "BITMAP")]
    spans.sort()
    for (a0, a1, n0), (b0, _b1, n1) in itertools.pairwise(spans):
        assert a1 <= b0, (n0, n1)
    assert spans[-1][1] <= rm.REGFILE_BYTES


def test_read_u64_split():
    m = ParserModel()
    m.u64[rm.counter_word("PACKETS")] = (7 << 32) | 9
    assert rm.read_u64_split(m.u32, rm.COUNTERS_BASE + 8 * rm.CNT["PACKETS"]) == (7 << 32) | 9


def test_disabled_card_counts_and_drops():
    m = ParserModel()
    m.write_control(rm.CTRL_DROP_ON_FULL)
    m.feed(*payload_batch([mold.mold_packet(SESSION, 1, [add(1, 1)])]), dp.KIND_PAYLOAD)
    c = m.counters()
    assert (c["PACKETS_IN"], c["PACKETS_DISABLED"], c["PACKETS"]) == (1, 1, 0)
    assert len(m.pop_records()) == 0 and not m.u32[rm.STATUS >> 2] & rm.ST_ENABLED


def test_ethernet_front_end_port_filter_and_not_feed():
    p1 = mold.mold_packet(SESSION, 1, [add(1, 1)])
    p2 = mold.mold_packet(SESSION, 2, [add(2, 2)])
    good = pcap.udp_frame(p1, 26400)
    plain = pcap.udp_frame(p2, 26400)
    vlan = plain[:12] + b"\x81\x00\x00\x07" + plain[12:]
    frag = bytearray(pcap.udp_frame(p2, 26400))
    frag[14 + 6] |= 0x20
    frames = [good, pcap.udp_frame(p2, 9999), b"\0" * 12 + b"\x86\xdd" + b"\0" * 60, bytes(frag),
              good[:40], vlan]
    m = ParserModel()
    m.write_control(ON, udp_port=26400)
    m.feed(*frames_batch(frames))
    c = m.counters()
    assert (c["PACKETS_IN"], c["PACKETS_FILTERED"], c["PACKETS_NOT_FEED"], c["PACKETS"]) == (6, 1, 3, 2)
    assert list(m.pop_records()["seq"]) == [1, 2]
    raw_ip = pcap.udp_frame(p1, 26400, linktype=pcap.LINKTYPE_RAW)
    m2 = ParserModel()
    m2.write_control(ON)
    m2.feed(*frames_batch([raw_ip], dp.KIND_IPV4))
    assert list(m2.pop_records()["seq"]) == [1]


def test_locate_filter_bitmap_and_locate_zero():
    m = ParserModel()
    m.write_control(ON | rm.CTRL_LOCATE_FILTER)
    m.u32[(rm.LOCATE_BITMAP >> 2) + (65535 >> 5)] = 1 << (65535 & 31)
    sys_ev = itch.encode_system_event(0, 0, 1, "O")
    msgs = [sys_ev, add(1, 1), add(65535, 2), add(64, 3)]
    m.feed(*payload_batch([mold.mold_packet(SESSION, 1, msgs)]), dp.KIND_PAYLOAD)
    got = m.pop_records()
    assert list(got["locate"]) == [0, 65535]
    c = m.counters()
    assert c["LOCATE_FILTERED"] == 2 and identity_holds(c)


def test_commands_reset_counters_and_session():
    m = ParserModel()
    m.write_control(ON)
    m.feed(*payload_batch([mold.mold_packet(SESSION, 1, [add(1, 1)])]), dp.KIND_PAYLOAD)
    assert m.counters()["MESSAGES_OUT"] == 1
    m.u32[rm.COMMAND >> 2] = rm.CMD_RESET_COUNTERS | rm.CMD_RESET_SESSION
    m.service_registers()
    assert m.u32[rm.COMMAND >> 2] == 0                       # acknowledged
    assert all(v == 0 for v in m.counters().values())
    assert not m.u32[rm.STATUS >> 2] & rm.ST_SESSION_LOCKED
    m.feed(*payload_batch([mold.mold_packet(b"NEWSESSION", 1, [add(1, 1)])]), dp.KIND_PAYLOAD)
    c = m.counters()
    assert c["WRONG_SESSION"] == 0 and c["MESSAGES_OUT"] == 1


def test_drop_on_full_counts_every_record():
    pkts = [mold.mold_packet(SESSION, 1 + 10 * k, [add(1, 10 * k + j) for j in range(10)]) for k in range(10)]
    m = ParserModel(fifo_depth=16)
    m.write_control(ON)
    m.feed(*payload_batch(pkts), dp.KIND_PAYLOAD)
    c = m.counters()
    assert c["MESSAGES_OUT"] == 16 and c["FIFO_DROPPED"] == 84 and identity_holds(c)
    assert m.u32[rm.STATUS >> 2] & rm.ST_OVERFLOW
    assert m.u32[rm.REG["FIFO_HIGH_WATER"] >> 2] == 16
    assert list(m.pop_records()["seq"]) == list(range(1, 17))
    m.u32[rm.COMMAND >> 2] = rm.CMD_CLEAR_OVERFLOW
    m.service_registers()
    assert not m.u32[rm.STATUS >> 2] & rm.ST_OVERFLOW


def test_backpressure_stalls_and_resumes_without_loss():
    pkts = [mold.mold_packet(SESSION, 1 + 10 * k, [add(1, 10 * k + j) for j in range(10)]) for k in range(10)]
    m = ParserModel(fifo_depth=32)
    m.write_control(rm.CTRL_ENABLE)
    batch = payload_batch(pkts)
    nxt = m.feed(*batch, dp.KIND_PAYLOAD)
    assert 0 < nxt < len(pkts)
    again = m.feed(*batch, dp.KIND_PAYLOAD, nxt)
    assert again == nxt and m.counters()["BACKPRESSURE_STALLS"] == 1   # one stall, counted once
    out = [m.pop_records()]
    while nxt < len(pkts):
        nxt = m.feed(*batch, dp.KIND_PAYLOAD, nxt)
        out.append(m.pop_records())
    got = np.concatenate(out)
    assert list(got["seq"]) == list(range(1, 101)) and m.counters()["FIFO_DROPPED"] == 0
    assert m.counters()["RECORDS_C2H"] == 100


def test_beats_and_expected_seq_registers():
    pkts = [mold.mold_packet(SESSION, 1, [add(1, 1)]), mold.mold_packet(SESSION, 2, [add(1, 2)] * 3)]
    m = ParserModel()
    m.write_control(ON)
    m.feed(*payload_batch(pkts), dp.KIND_PAYLOAD)
    assert m.counters()["BEATS_IN"] == sum((len(p) + 7) // 8 for p in pkts)
    assert m.u64[rm.REG["EXPECTED_SEQ"] >> 3] == 5


def test_emulator_ethernet_path_equals_decoder_on_payloads():
    from tickpath.bench.load import market
    mk = market.generate(5, 20_000, 16)
    pk = market.pack_mold(mk, SESSION)
    payloads = [pk.packet(k) for k in range(pk.n_packets)]
    recv = [1000 + k for k in range(len(payloads))]
    want, _ = decode_all(payloads, recv)
    m = ParserModel(fifo_depth=1 << 16)
    m.write_control(ON)
    buf, offs, lens, ports, _r = payload_batch([pcap.udp_frame(p, 26400) for p in payloads])
    m.feed(buf, offs, lens, ports, np.asarray(recv, np.int64), dp.KIND_ETHERNET)
    assert m.pop_records().tobytes() == want.tobytes()
