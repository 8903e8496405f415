"""The seeded synthetic market (bench/market.py): reproducible, session-shaped, every order
reference live (checked by an independent Python replay), packs into valid MoldUDP64."""
from __future__ import annotations

import collections

import numpy as np
import pytest
from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed.decoder import MOLD_NEXT_SEQ, decode_buffer, new_mold_state
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import empty_events, stock_symbol

N_INSTR = 25


@pytest.fixture(scope="module")
def mkt():
    return market.generate(11, 60_000, N_INSTR)


def decode_all(pk: market.MoldPackets, n_events: int):
    m, sess = new_mold_state()
    ctr = C.new_counters()
    ev = empty_events(n_events)
    recv = np.zeros(pk.n_packets, dtype=np.int64)
    n = decode_buffer(pk.buf, pk.offsets, pk.lengths, 0, pk.n_packets, recv, m, sess, ev, 0,
                      ctr)
    return ev[:n], ctr, m


def test_reproducible_from_seed():
    a = market.generate(5, 5_000, 10)
    b = market.generate(5, 5_000, 10)
    c = market.generate(6, 5_000, 10)
    assert np.array_equal(a.buf, b.buf) and np.array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.buf[:len(c.buf)], c.buf[:len(a.buf)])


def test_session_preamble(mkt):
    types = bytes(mkt.types[:2 * N_INSTR + 3]).decode()
    assert types == "S" + "R" * N_INSTR + "H" * N_INSTR + "SS"
    assert [mkt.message(i)[11:12] for i in (0, 2 * N_INSTR + 1, 2 * N_INSTR + 2)] == \
        [b"O", b"S", b"Q"]
    assert len(set(mkt.symbols)) == N_INSTR


def test_decodes_cleanly_with_every_reference_live(mkt):
    pk = market.pack_mold(mkt, "MKT")
    ev, ctr, m = decode_all(pk, mkt.n_messages)
    assert {k: v for k, v in C.as_dict(ctr).items() if v} == dict(
        packets=pk.n_packets, messages=mkt.n_messages, events=mkt.n_messages)
    assert m[MOLD_NEXT_SEQ] == mkt.n_messages + 1
    assert np.array_equal(ev["seq"], np.arange(1, mkt.n_messages + 1))
    assert np.array_equal(ev["msg_type"], mkt.types)
    # independent replay: order id -> [locate, shares, price, added_at]
    live: dict[int, list] = {}
    ages = []
    directory = {}
    last_ts = 0
    for i, e in enumerate(ev.tolist()):
        _, ts, _, ref, ref2, shares, price, loc, _, t, side, _, _, _ = e
        t = chr(t)
        if i > 2 * N_INSTR + 2:
            assert ts >= last_ts
            last_ts = ts
        if t == "R":
            directory[loc] = stock_symbol(ref2)
        elif t in "AF":
            assert ref not in live and 1 <= loc <= N_INSTR and loc in directory
            assert shares > 0 and price > 0 and price % market.TICK_PRICE4 == 0
            assert side in (ord("B"), ord("S"))
            live[ref] = [loc, shares, price, i]
        elif t in "DXECU":
            assert ref in live, (i, t, ref)
            o = live[ref]
            assert o[0] == loc
            ages.append(i - o[3])
            if t == "D":
                del live[ref]
            elif t == "X":
                assert 0 < shares < o[1]
                o[1] -= shares
            elif t in "EC":
                assert 0 < shares <= o[1]
                o[1] -= shares
                if o[1] == 0:
                    del live[ref]
            else:
                assert ref2 not in live and shares > 0 and price > 0
                del live[ref]
                live[ref2] = [loc, shares, price, i]
        elif t == "P":
            assert ref == 0 and shares > 0 and 1 <= loc <= N_INSTR
    assert np.median(ages) < 300          # most orders are touched soon after being added


def test_plausible_message_mix(mkt):
    flow = collections.Counter(bytes(mkt.types[2 * N_INSTR + 3:]).decode())
    n = sum(flow.values())
    share = {t: flow[t] / n for t in "AFDXUECP"}
    assert 0.35 < share["A"] + share["F"] < 0.55
    assert 0.01 < share["F"] < 0.05
    assert 0.20 < share["D"] < 0.45
    assert 0.02 < share["X"] < 0.10
    assert 0.05 < share["U"] < 0.15
    assert 0.03 < share["E"] + share["C"] < 0.12 and share["C"] > 0
    assert 0.01 < share["P"] < 0.06
    assert set(flow) <= set("AFDXUECP")


def test_pack_limits_and_layout(mkt):
    pk = market.pack_mold(mkt, "MKT", first_seq=1000, max_payload_bytes=300,
                          max_messages_per_packet=5)
    assert np.all(pk.lengths <= 300) and np.all(pk.msg_count <= 5) and np.all(pk.msg_count > 0)
    assert pk.msg_count.sum() == mkt.n_messages
    assert np.array_equal(pk.first_seq, 1000 + pk.msg_first)
    for k in (0, 1, pk.n_packets // 2, pk.n_packets - 1):
        p = pk.packet(k)
        sess, seq, count = mold.parse_header(p)
        assert (sess, seq, count) == (b"MKT       ", pk.first_seq[k], pk.msg_count[k])
        o = mold.HEADER_BYTES
        for i in range(pk.msg_first[k], pk.msg_first[k] + count):
            ln = int.from_bytes(p[o:o + 2], "big")
            assert p[o + 2:o + 2 + ln] == mkt.message(i)
            assert pk.ts_offsets[i] == pk.offsets[k] + o + 2 + 5
            o += 2 + ln
        assert o == len(p)
    # greedy: merging the next packet's first message would break a limit
    k = 3
    nxt = pk.lengths[k] + 2 + (mkt.offsets[pk.msg_first[k + 1] + 1]
                               - mkt.offsets[pk.msg_first[k + 1]])
    assert nxt > 300 or pk.msg_count[k] == 5


def test_stamp_timestamps_reaches_decoded_events(mkt):
    pk = market.pack_mold(mkt, "MKT")
    k = 7
    market.stamp_timestamps(pk.buf, pk.ts_offsets, pk.msg_first, pk.msg_count, k,
                            0x123456789ABC)
    ev, _, _ = decode_all(pk, mkt.n_messages)
    first, count = pk.msg_first[k], pk.msg_count[k]
    assert np.all(ev["ts_exch"][first:first + count] == 0x123456789ABC)
    assert ev["ts_exch"][first - 1] != 0x123456789ABC
    assert ev["ts_exch"][first + count] != 0x123456789ABC


@pytest.mark.parametrize("call", [
    lambda: market.generate(1, 10, 10),                  # below the preamble
    lambda: market.generate(1, 100, 0),
    lambda: market.generate(1, 100, 2, mean_gap_ns=0),
    lambda: market.pack_mold(market.generate(1, 100, 2), "S", max_payload_bytes=40),
    lambda: market.pack_mold(market.generate(1, 100, 2), "S", max_messages_per_packet=0),
    lambda: market.pack_mold(market.generate(1, 100, 2), "S", first_seq=0),
    lambda: market.pack_mold(market.generate(1, 100, 2), "SESSIONTOOLONG"),
])
def test_bad_market_parameters(call):
    with pytest.raises(ConfigError):
        call()
