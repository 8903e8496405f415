"""Decoder throughput: MoldUDP64 + ITCH 5.0 packets from memory, one core.

Run: .venv/bin/pytest bench/micro/test_decoder_bench.py --benchmark-enable -p no:cacheprovider
(add --benchmark-columns=min,median,max,stddev,rounds; TICKPATH_BENCH_CPU=3 pins the run
to CPU 3, and the CPU model and placement go into extra_info). The input is the seeded synthetic
market (1 M messages, 500 instruments, 1472-byte packets). Side by side:
* batched: the runtime's shape, 64 packets decoded into a reused, cache-resident event
  batch (sized with max_events_per_packet) before the next batch;
* one array: every event into one 64 MB array (stores stream to memory);
* generate / pack: the synthetic market itself, for the load generator's budget.
Each round restarts the stream state, and the counters are checked after every round, so
a round that decoded less (duplicates, drops) cannot pass as a faster one.
"""
from __future__ import annotations


import numpy as np
import pytest
from numba import njit
from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed.decoder import (
    MOLD_NEXT_SEQ,
    decode_buffer,
    max_events_per_packet,
    new_mold_state,
)
from tickpath.runtime.core.event import empty_events

N_MESSAGES = 1_000_000
N_INSTRUMENTS = 500
BATCH_PACKETS = 64


pytestmark = pytest.mark.usefixtures("placement")  # bench/micro/conftest.py




@pytest.fixture(scope="module")
def feed():
    mkt = market.generate(2024, N_MESSAGES, N_INSTRUMENTS)
    pk = market.pack_mold(mkt, "BENCH")
    return mkt, pk


@njit(nogil=True)
def _decode_batched(buf, offsets, lengths, recv_ns, mold, session, events, counters, batch):
    n_pkts = lengths.shape[0]
    checksum = 0
    for first in range(0, n_pkts, batch):
        n = decode_buffer(buf, offsets, lengths, first, batch, recv_ns, mold, session, events,
                          0, counters)
        checksum += n   # a consumer would publish events[0:n] here
    return checksum


def _fresh(counters, mold):
    counters[:] = 0
    mold[MOLD_NEXT_SEQ] = 1


def _check(counters, pk):
    assert counters[C.EVENTS] == N_MESSAGES and counters[C.MESSAGES] == N_MESSAGES
    assert counters[C.PACKETS] == pk.n_packets
    assert counters[C.EVENTS_DROPPED] == 0 and counters[C.DUPLICATES] == 0


def test_decode_batched(benchmark, feed):
    _, pk = feed
    mold, session = new_mold_state()
    counters = C.new_counters()
    events = empty_events(BATCH_PACKETS * max_events_per_packet(int(pk.lengths.max())))
    recv = np.zeros(pk.n_packets, dtype=np.int64)
    args = (pk.buf, pk.offsets, pk.lengths, recv, mold, session, events, counters,
            BATCH_PACKETS)
    _decode_batched(*args)   # compile outside the timing

    def run():
        _fresh(counters, mold)
        return _decode_batched(*args)

    benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=1)
    _check(counters, pk)
    benchmark.extra_info["messages"] = N_MESSAGES
    benchmark.extra_info["packets"] = pk.n_packets
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median


def test_decode_one_array(benchmark, feed):
    _, pk = feed
    mold, session = new_mold_state()
    counters = C.new_counters()
    events = empty_events(N_MESSAGES)
    recv = np.zeros(pk.n_packets, dtype=np.int64)

    def run():
        _fresh(counters, mold)
        return decode_buffer(pk.buf, pk.offsets, pk.lengths, 0, pk.n_packets, recv, mold,
                             session, events, 0, counters)

    run()
    benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=1)
    _check(counters, pk)
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median


def test_generate_market(benchmark):
    market.generate(1, 10_000, 10)   # compile
    mkt = benchmark.pedantic(market.generate, args=(7, N_MESSAGES, N_INSTRUMENTS), rounds=3,
                             iterations=1)
    assert mkt.n_messages == N_MESSAGES
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median


def test_pack_mold(benchmark, feed):
    mkt, _ = feed
    pk = benchmark.pedantic(market.pack_mold, args=(mkt, "BENCH"), rounds=3, iterations=1)
    assert pk.msg_count.sum() == N_MESSAGES
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median
