"""A/B arbitration throughput: the arbiter alone (runtime/lines/arbiter.py), one core.

Run: .venv/bin/pytest bench/micro/test_lines_bench.py --benchmark-enable -p no:cacheprovider
The input is the seeded synthetic market (1 M messages, 500 instruments, 1472-byte packets)
on two lines: every packet on line B, line A losing 1 % of packets (seeded), A offered first
— so most messages are delivered from A, B's copies are counted duplicates and A's losses are
filled by B. The sink only counts what it is handed (no decoder), so this is the arbiter's
own cost per message. Each round starts from a fresh arbiter (made outside the timing) and
is checked: every message delivered once, nothing given up.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from numba import njit

from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.lines.arbiter import SRC_A, SRC_B, Arbiter, accept_packet, flush
from tickpath.runtime.lines.sink import register_sink

N_MESSAGES = 1_000_000
N_INSTRUMENTS = 500
LOSS_A = 0.01

pytestmark = pytest.mark.usefixtures("placement")  # bench/micro/conftest.py


@pytest.fixture(scope="module")
def feed():
    pk = market.pack_mold(market.generate(2024, N_MESSAGES, N_INSTRUMENTS), "BENCH")
    drop_a = np.random.default_rng(5).random(pk.n_packets) < LOSS_A
    return pk, drop_a


class CountSink(NamedTuple):
    delivered: np.ndarray   # int64[1]: messages handed on


@njit(nogil=True)
def _count_sink(sink, st_buf, meta, n):
    for r in range(n):
        sink.delivered[0] += meta[2, r]


register_sink(CountSink, _count_sink)   # the arbiter delivers by sink type (runtime/lines/sink.py)


@njit(nogil=True)
def _arbitrate(arb, buf, offsets, lengths, drop_a, counters, sink):
    for k in range(offsets.shape[0]):
        p = buf[offsets[k]:offsets[k] + lengths[k]]
        if not drop_a[k]:
            accept_packet(arb, SRC_A, p, lengths[k], k, k, 1000, counters, sink)
        accept_packet(arb, SRC_B, p, lengths[k], k, k, 1000, counters, sink)
        flush(arb, sink)
    return sink.delivered[0]


def test_arbitrate_two_lines(benchmark, feed):
    pk, drop_a = feed

    def setup():
        arb = Arbiter(session=b"BENCH")
        return (arb.arrays, pk.buf, pk.offsets, pk.lengths, drop_a, C.new_counters(),
                CountSink(np.zeros(1, np.int64))), {}

    args, _ = setup()
    _arbitrate(*args)   # compile outside the timing
    last = {}

    def run(*a):
        last["args"] = a
        return _arbitrate(*a)

    benchmark.pedantic(run, setup=setup, rounds=10, iterations=1, warmup_rounds=1)
    _, _, _, _, _, counters, sink = last["args"]
    assert sink.delivered[0] == N_MESSAGES
    assert counters[C.ARB_FIRST_A] + counters[C.ARB_FIRST_B] == N_MESSAGES
    assert counters[C.ARB_FIRST_B] > 0 and counters[C.UNRECOVERABLE] == 0
    benchmark.extra_info["messages"] = N_MESSAGES
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median
