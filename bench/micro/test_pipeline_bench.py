"""The whole software receive path from memory: MoldUDP64/ITCH decode -> books -> streaming
indicators (EMA, RSI, VWAP, mid, microprice, imbalance), as the runtime's loop runs it
(runtime/loop.py: decode a batch of 64 packets into a reused event batch, then
pipeline.process_events), without a socket — so this is the CPU cost per message.

Input: the seeded synthetic market (200 k messages, 300 instruments, 4 messages/packet).
Each round starts from fresh books and sequence state (setup, not timed) and its counters
are checked: every message walked, no gap, no unknown order — a round that did less work
cannot pass as a faster one.
Run: .venv/bin/pytest bench/micro/test_pipeline_bench.py --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import numpy as np
from numba import njit
from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed.decoder import decode_buffer, max_events_per_packet, new_mold_state
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import Pipeline, process_events

N_MESSAGES = 200_000
N_INSTRUMENTS = 300
BATCH_PACKETS = 64

_state = {}


def _feed():
    if "pk" not in _state:
        m = market.generate(7, N_MESSAGES, N_INSTRUMENTS)
        _state["pk"] = market.pack_mold(m, "BENCHPIPE1", max_messages_per_packet=4)
    return _state["pk"]


@njit(nogil=True)
def decode_and_process(buf, offsets, lengths, recv_ns, mold, session, events, pipe, batch):
    """The runtime's duty cycle over packets held in memory; returns events processed."""
    counters = pipe.counters
    n_pk = offsets.shape[0]
    done = 0
    for first in range(0, n_pk, batch):
        n = min(batch, n_pk - first)
        m = decode_buffer(buf, offsets, lengths, first, n, recv_ns, mold, session, events, 0, counters)
        process_events(pipe, events, m)
        done += m
    return done


def _fresh(pk):
    # warmup_seq beyond the feed: no latency records (the stamps are not send times here)
    pipe = Pipeline(n_locates=N_INSTRUMENTS + 1, max_orders=1 << 18, max_levels=128,
                    warmup_seq=N_MESSAGES * 10)
    mold, session = new_mold_state("BENCHPIPE1", 1)
    events = np.zeros(BATCH_PACKETS * max_events_per_packet(int(pk.lengths.max())), EVENT_DTYPE)
    recv_ns = np.zeros(pk.n_packets, np.int64)
    return (pk.buf, pk.offsets.astype(np.int64), pk.lengths.astype(np.int64), recv_ns, mold, session,
            events, pipe.arrays, BATCH_PACKETS), {}


def test_pipeline_decode_book_indicators(benchmark):
    pk = _feed()
    args, _ = _fresh(pk)
    decode_and_process(*args)                                    # compile + warm
    holder = {}

    def setup():
        a, kw = _fresh(pk)
        holder["counters"] = a[7][6]
        return a, kw

    n_events = benchmark.pedantic(decode_and_process, setup=setup, rounds=5, iterations=1)
    c = C.as_dict(holder["counters"])
    assert c["messages"] == N_MESSAGES and c["packets"] == pk.n_packets
    assert c["gaps"] == 0 and c["book_unknown_order"] == 0 and c["events_dropped"] == 0
    assert n_events == c["events"] > 0.9 * N_MESSAGES
    benchmark.extra_info.update({"messages_per_round": N_MESSAGES, "packets": pk.n_packets,
                                 "instruments": N_INSTRUMENTS, "batch_packets": BATCH_PACKETS})
