"""The parser's RTL against the emulator and the software decoder: records byte for byte, counters
name by name (Icarus Verilog for the hand-made cases, Verilator for the long random feed)."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from fpga_helpers import SESSION, decode_all
from rtl_support import (
    ENABLE_DROP,
    need,
    recv_times,
    record_packets,
    same_counters,
    stimulus,
    three_way,
)

from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga.emulator.model import ParserModel, payload_batch
from tickpath.fpga.sim import cosim, gen_include, latency
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold

A = itch.encode_add(5, 1, 100, 42, "B", 100, "AAPL", 1_000_000)
E = itch.encode_executed(5, 2, 200, 42, 10, 77)


def _m(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def _hdr(seq, count, session=SESSION):
    return session + struct.pack(">QH", seq, count)


def _market(seed, n_messages, instruments=64):
    from tickpath.bench.load import market
    m = market.generate(seed, n_messages, instruments)
    pk = market.pack_mold(m, SESSION)
    return [pk.packet(k) for k in range(pk.n_packets)]


def _all_types():
    """One message of every ITCH 5.0 type, fields non-zero so a mis-routed byte shows."""
    msgs = []
    for i, t in enumerate(sorted(itch.BODY_FIELDS)):
        fields = {}
        for name, code in itch.BODY_FIELDS[t]:
            if code == "c":
                fields[name] = chr(ord("A") + i % 26)
            elif code.endswith("s"):
                fields[name] = f"X{i}"[: int(code[:-1])]
            elif code == "H":
                fields[name] = 0x1234 + i
            elif code == "I":
                fields[name] = 0x01020304 + i
            else:
                fields[name] = 0x0102030405060708 + i
        msgs.append(itch.encode(t, locate=100 + i, tracking=7 + i, ts_ns=0x123456789A + i, **fields))
    return msgs


def test_generated_includes_match_their_sources():
    assert gen_include.stale() == [], "run python -m tickpath.fpga.sim.gen_include"


def test_rom_routes_every_decoded_field_to_its_record_byte():
    routes = gen_include.rom_routes()
    assert sorted(chr(t) for t in routes) == sorted(itch.DECODED_TYPES)
    for dst in routes.values():
        assert len(set(dst.values())) == len(dst)       # no record byte written twice


def test_every_message_type():
    need("icarus")
    msgs = _all_types()
    pkts = [mold.mold_packet(SESSION, 1 + i, [m]) for i, m in enumerate(msgs)]
    res, model, dc = three_way(pkts)
    same_counters(res, model)
    assert sorted(chr(t) for t in res.records["msg_type"]) == sorted(itch.DECODED_TYPES)


def test_all_types_in_one_packet_longer_than_spec_with_input_gaps():
    need("icarus")
    msgs = [m + b"\xEE" * 3 for m in _all_types()]
    res, model, _ = three_way([mold.mold_packet(SESSION, 1, msgs)] * 2, gap_pct=30, stall_pct=30)
    same_counters(res, model)


@pytest.mark.parametrize("adopt", [False, True])
def test_gaps_duplicates_heartbeats_end_of_session(adopt):
    need("icarus")
    pkts = [
        mold.mold_packet(SESSION, 3, [A, A]),       # late join: gap of 2 (expected starts at 1)
        mold.mold_packet(SESSION, 4, [A, A, A]),    # one duplicate, two new
        mold.mold_heartbeat(SESSION, 10),           # heartbeat ahead: gap 7..9
        mold.mold_packet(SESSION, 2, [A]),          # all duplicates
        mold.mold_packet(SESSION, 12, [A]),         # gap of 2
        mold.mold_end_of_session(SESSION, 13),
        mold.mold_packet(b"OTHERSESS1", 13, [A]),   # wrong session
    ]
    res, model, dc = three_way(pkts, adopt=adopt)
    same_counters(res, model)
    assert dc["gaps"] == (2 if adopt else 3) and dc["wrong_session"] == 1
    assert res.session() == SESSION
    st = res.reg("STATUS")
    assert st & rm.ST_SESSION_LOCKED and st & rm.ST_ENABLED and st & rm.ST_LINK_UP


def _bad(s):
    """Every damage case the decoder's fuzz and equality tests use, numbered from s."""
    return [
        b"",                                         # empty
        SESSION[:7],                                 # shorter than the header
        _hdr(s, 2) + _m(A),                          # count says 2, holds 1
        _hdr(s, 1) + struct.pack(">H", 200) + A,     # length runs past the end
        _hdr(s, 2) + struct.pack(">H", 0) + _m(A),   # zero-length message
        _hdr(s, 1) + _m(A[:20]),                     # too short for its type
        _hdr(s, 1) + _m(b"Z" + A[1:]),               # undefined type
        _hdr(s, 1) + _m(A) + b"\x01\x02\x03",        # trailing bytes
        _hdr(s, 0) + b"\x00",                        # heartbeat with a body
        _hdr(1 << 63, 1) + _m(A),                    # nonsense sequence number
        _hdr(s, 1) + b"\x00",                        # one byte of a length field
        _hdr(s, 3) + _m(b"") + _m(b"") + _m(b"Z"),   # three tiny messages in one beat
        _hdr(s, 0xFFFE) + _m(A),                     # a count far past the payload
        _hdr(s, 2) + _m(E[:5]) + _m(b"") + b"\x07",  # short message, zero length, then junk
    ]


def test_damaged_packets_each_followed_by_a_good_one():
    """Every damage case, then a good packet: the good one's records always come out (the
    state machine never hangs), records stay in the event layout, counters agree."""
    need("icarus")
    pkts, seq = [], 100
    for k in range(len(_bad(0))):
        pkts.append(_bad(seq)[k])
        seq += 4
        pkts.append(mold.mold_packet(SESSION, seq, [A, E]))
        seq += 2
    res, model, dc = three_way(pkts, gap_pct=20)
    same_counters(res, model)
    owner = record_packets(res.records, pkts)
    goods = {k for k in range(1, len(pkts), 2)}
    assert goods <= set(owner.tolist())
    assert set(np.unique(res.records["version"])) == {1}
    assert set(np.unique(res.records["msg_type"])) <= {0, ord("A"), ord("E")}
    assert dc["malformed_packets"] == 10 and dc["malformed_messages"] >= 5
    assert dc["unknown_types"] == 2


def test_zero_length_duplicate_counts_as_a_duplicate():
    """decoder.py: a message below the expected sequence is a duplicate whatever it holds - a
    zero-length one too. The RTL follows the decoder, and so does the emulator now (it used to
    test the length first and count it MALFORMED_MESSAGES)."""
    need("icarus")
    pkts = [mold.mold_packet(SESSION, 1, [A, A]), _hdr(1, 2) + _m(b"") + _m(A)]
    res, model, dc = three_way(pkts)
    assert res.counters()["DUPLICATES"] == dc["duplicates"] == 2
    assert res.counters()["MALFORMED_MESSAGES"] == dc["malformed_messages"] == 0
    emu = model.counters()
    assert (emu["DUPLICATES"], emu["MALFORMED_MESSAGES"]) == (2, 0)
    same_counters(res, model)


def test_runs_of_zero_length_messages_take_a_pass_per_length_field():
    """Damaged input the framer walks one length field per pass: a beat holding four zero-length
    messages takes four cycles (s_tready drops meanwhile); nothing is lost or reordered and the
    next packet's records come out as the decoder's. Valid ITCH (12+ byte messages) never needs
    a second pass: test_latency_and_one_beat_per_cycle."""
    need("icarus")
    zeros = _hdr(3, 200) + _m(b"") * 200
    pkts = [mold.mold_packet(SESSION, 1, [A, E]), zeros, mold.mold_packet(SESSION, 203, [A, E])]
    res, model, dc = three_way(pkts)
    same_counters(res, model)
    assert dc["malformed_messages"] == 200 and len(res.records) == 4
    beats = (len(zeros) + 7) // 8
    span = int(res.last_edges[1] - res.first_edges[1] + 1)
    assert beats < span <= 4 * beats, (beats, span)


def _fuzzed(rng: random.Random, n_packets: int):
    pkts, seq = [], 1
    msgs = [A, E, A, E]
    for _ in range(n_packets):
        n = rng.randint(0, 4)
        p = bytearray(mold.mold_packet(SESSION, seq, msgs[:n]) if n else mold.mold_heartbeat(SESSION, seq))
        for _ in range(rng.randint(0, 3)):
            p[rng.randrange(len(p))] = rng.randrange(256)
        if rng.random() < 0.5:
            p = p[:rng.randint(0, len(p))]
        pkts.append(bytes(p))
        seq = max(1, seq + rng.randint(-2, 4) + n)
    return pkts


def test_fuzzed_packets():
    need("icarus")
    pkts = _fuzzed(random.Random(17), 400)
    res, model, dc = three_way(pkts, gap_pct=15, stall_pct=15, seed=5)
    same_counters(res, model)
    assert dc["malformed_packets"] > 0 and dc["duplicates"] > 0 and dc["gaps"] > 0


def test_random_market_feed_icarus():
    need("icarus")
    pkts = _market(11, 3000)
    res, model, dc = three_way(pkts, gap_pct=10, stall_pct=10, seed=3)
    same_counters(res, model)
    assert dc["gaps"] == 0 and len(res.records) == 3000


def test_random_market_feed_verilator():
    """The issue's goal: RTL == emulator == decoder on a million messages (about 25 s)."""
    need("verilator")
    n_messages = 1_000_000
    pkts = _market(23, n_messages, 300)
    res, model, dc = three_way(pkts, sim="verilator", gap_pct=5, stall_pct=5, seed=9)
    same_counters(res, model)
    assert len(res.records) == n_messages


def test_drop_on_full_drops_the_same_records_as_the_emulator():
    """Output held while 12 packets of 4 records meet a 16-record FIFO: the RTL keeps and drops
    exactly the records the emulator does, counts FIFO_DROPPED and sets STATUS.OVERFLOW."""
    need("icarus")
    pkts = [mold.mold_packet(SESSION, 1 + 4 * k, [A, E, A, E]) for k in range(12)]
    more = [mold.mold_packet(SESSION, 49 + 2 * k, [A, E]) for k in range(3)]
    rv = recv_times(len(pkts) + len(more))
    st = stimulus([], []).hold_output(True).packets(pkts, rv[:12]).hold_output(False)
    st.idle(50).packets(more, rv[12:])
    res = cosim.run(st, "icarus", fifo_depth=16)
    model = ParserModel(fifo_depth=16)
    model.write_control(ENABLE_DROP)
    model.feed(*payload_batch(pkts, rv[:12]), dp.KIND_PAYLOAD)
    held = model.pop_records()
    model.feed(*payload_batch(more, rv[12:]), dp.KIND_PAYLOAD)
    emu = np.concatenate([held, model.pop_records()])
    assert res.records.tobytes() == emu.tobytes()
    c = res.counters()
    assert c["FIFO_DROPPED"] == model.counters()["FIFO_DROPPED"] == 48 - 16
    same_counters(res, model)
    assert res.reg("STATUS") & rm.ST_OVERFLOW
    assert res.reg("FIFO_HIGH_WATER") == 16


def test_back_pressure_loses_nothing_and_counts_stalls():
    need("icarus")
    pkts = _market(5, 1500)
    rv = recv_times(len(pkts))
    ev, dc = decode_all(pkts, rv)
    st = stimulus(pkts, rv, control=rm.CTRL_ENABLE)
    res = cosim.run(st, "icarus", fifo_depth=128, stall_pct=85, seed=2)
    assert res.records.tobytes() == ev.tobytes()
    c = res.counters()
    assert c["FIFO_DROPPED"] == 0 and c["BACKPRESSURE_STALLS"] > 0
    assert not res.reg("STATUS") & rm.ST_OVERFLOW
    assert 16 < res.reg("FIFO_HIGH_WATER") <= 128


def test_locate_filter_and_port_filter_and_disable():
    """Bitmap bits written over AXI-Lite withhold the same records as in the emulator; the UDP
    port filter and CONTROL.ENABLE count the same packets."""
    need("icarus")
    pkts = _market(7, 1200, 40)
    rv = recv_times(len(pkts))
    keep = [3, 5, 8, 13, 21, 34]
    words = {}
    for loc in keep:
        words[loc >> 5] = words.get(loc >> 5, 0) | (1 << (loc & 31))
    ctrl = ENABLE_DROP | rm.CTRL_LOCATE_FILTER
    ports = [7000 if k % 5 else 7001 for k in range(len(pkts))]
    st = cosim.Stimulus()
    for w, v in words.items():
        st.write(rm.LOCATE_BITMAP + 4 * w, v)
    st.write(rm.CONTROL, ctrl).write(rm.UDP_PORT, 7000)
    half = len(pkts) // 2
    for k in range(half):
        st.packet(pkts[k], rv[k], ports[k])
    st.write(rm.CONTROL, ctrl & ~rm.CTRL_ENABLE)
    for k in range(half, half + 5):
        st.packet(pkts[k], rv[k], ports[k])
    st.write(rm.CONTROL, ctrl)
    for k in range(half + 5, len(pkts)):
        st.packet(pkts[k], rv[k], ports[k])
    st.packet(pkts[0], 0, 0, not_feed=True)
    res = cosim.run(st, "icarus", fifo_depth=256)

    model = ParserModel(fifo_depth=1 << 16)
    u32 = model.u32
    for w, v in words.items():
        u32[(rm.LOCATE_BITMAP >> 2) + w] = v
    u32[rm.UDP_PORT >> 2] = 7000

    def feed(lo, hi, control):
        model.write_control(control)
        buf, offs, lens, _p, recv = payload_batch(pkts[lo:hi], rv[lo:hi])
        model.feed(buf, offs, lens, np.asarray(ports[lo:hi], np.int64), recv, dp.KIND_PAYLOAD)

    feed(0, half, ctrl)
    feed(half, half + 5, ctrl & ~rm.CTRL_ENABLE)
    feed(half + 5, len(pkts), ctrl)
    emu = model.pop_records()
    assert res.records.tobytes() == emu.tobytes()
    assert set(np.unique(res.records["locate"])) <= set(keep) | {0}
    c = res.counters()
    assert c["PACKETS_NOT_FEED"] == 1
    c["PACKETS_NOT_FEED"] -= 1
    c["PACKETS_IN"] -= 1
    e = model.counters()
    assert {k: c[k] for k in c} == {k: e[k] for k in c}, {k: (c[k], e[k]) for k in c if c[k] != e[k]}
    assert c["LOCATE_FILTERED"] > 0 and c["PACKETS_FILTERED"] > 0 and c["PACKETS_DISABLED"] == 5


def test_register_file_identity_commands_and_session_reset():
    need("icarus")
    pkts = [mold.mold_packet(SESSION, 1, [A, E]), mold.mold_packet(SESSION, 3, [A])]
    other = b"NEXTSESS02"
    st = stimulus(pkts, recv_times(2))
    st.command(rm.CMD_RESET_COUNTERS | rm.CMD_RESET_SESSION)
    st.packet(mold.mold_packet(other, 1, [A]), 5)
    res = cosim.run(st, "icarus", fifo_depth=64)
    assert res.reg("ID") == rm.ID_MAGIC and res.reg("VERSION") == rm.VERSION
    assert res.reg("RECORD_BYTES") == 64 and res.reg("EVENT_VERSION") == 1
    assert res.reg("FIFO_DEPTH") == 64 and res.reg("C2H_ALIGN") == 4096
    assert res.reg("REGFILE_BYTES") == rm.REGFILE_BYTES
    assert res.reg("COMMAND") == 0 and res.reg("CONTROL") == ENABLE_DROP
    assert res.reg("FIFO_LEVEL") == 0
    assert res.session() == other and res.reg64("EXPECTED_SEQ") == 2
    assert res.reg64("ALIVE_NS") > 0
    c = res.counters()
    # counted from the reset on: only the new session's packet
    assert c["PACKETS"] == 1 and c["MESSAGES_OUT"] == 1 and c["WRONG_SESSION"] == 0
    assert len(res.records) == 4 and res.records["seq"].tolist() == [1, 2, 3, 1]


def test_tlast_marks_each_packets_last_record():
    need("icarus")
    pkts = _market(3, 600)
    pkts.insert(3, mold.mold_packet(SESSION, 10_000, [A]))       # a gap record and one message
    rv = recv_times(len(pkts))
    for stall in (0, 60):
        res = cosim.run(stimulus(pkts, rv), "icarus", stall_pct=stall, seed=4)
        owner = record_packets(res.records, pkts)
        gaps = res.records["flags"] & 1 == 1
        owner[gaps] = np.array([owner[i + 1] for i in np.flatnonzero(gaps)])
        is_last = np.append(owner[1:] != owner[:-1], True)
        assert np.array_equal(res.last, is_last), stall


def test_latency_and_one_beat_per_cycle():
    """No input gaps, output always ready: every packet's first beat follows the previous
    packet's last beat at the next edge (one beat per cycle, no stall), and every record
    leaves at most 20 cycles after the beat holding its message's last byte."""
    need("icarus")
    rep = latency.measure(2000, "icarus")
    assert rep["records"] == 2000
    assert rep["cycles_lost_between_packets"] == 0 and rep["stalls"] == 0
    assert rep["beats_per_cycle"] == 1.0
    assert 0 < rep["message_latency_cycles"][0] <= rep["message_latency_cycles"][100] <= 20


def test_yosys_accepts_the_rtl():
    """Yosys elaborates the design (the synthesizable subset, no latches); the full synthesis
    report is `tickpath fpga synth` (minutes), recorded in bench/RESULTS.md."""
    need("yosys")
    import subprocess
    reads = "; ".join(f"read_verilog -I{cosim.RTL_DIR} {p}" for p in cosim.rtl_paths())
    cmd = ["yosys", "-q", "-p", f"{reads}; chparam -set FIFO_DEPTH 16 -set FIFO_AW 4 tp_itch_top; "
           "hierarchy -check -top tp_itch_top; proc; check -assert; select -assert-none t:$dlatch"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
