"""The live trade loop's own cost per message: `tickpath trade`'s generated loop
(runtime/trading/live.py, the t2t benchmark's responder strategy, books only) over a feed
from memory (bench/load/memfeed.py: one packet per poll, no socket), so what is timed is the
loop -- frame decode a message at a time, books, one strategy step per run of one
instrument, the send path's checks -- and not the kernel or the venue.

Flows (bench/load/market.py, seeded, 300 k messages): "storm" -- 300 instruments
interleaved, packets of up to 36 messages, so almost every message is its own run and its
own step (the shape that made the wall-to-wall bench's storm tail); "few" -- 8 instruments,
4 messages a packet, longer runs. Each round starts from fresh books and context (setup, not
timed) and checks its work: every message decoded, one strategy step per run.
Run: .venv/bin/pytest bench/micro/test_trade_loop_bench.py --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.memfeed import MemFeed
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine import idle
from tickpath.runtime.engine.loop import new_ctrl
from tickpath.runtime.engine.pipeline import P_BOOKS_ONLY, Pipeline
from tickpath.runtime.feed.decoder import new_frame_part, new_mold_state
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import new_trade_ctx
from tickpath.runtime.trading.live import loop_module
from tickpath.runtime.trading.ouch import session as ouch_session
from tickpath.runtime.trading.risk import validate_risk
from tickpath.runtime.trading.strategy import load_strategy

N_MESSAGES = 300_000
FLOWS = {"storm": dict(n_instruments=300, per_packet=36),
         "few": dict(n_instruments=8, per_packet=4)}
_RESPONDER = dict(symbols=["ZZZA"], answer_symbol="ZZZB", answer_price=100, answer_qty=1)


def _setup(flow):
    f = FLOWS[flow]
    packets = pack_mold(generate(11, N_MESSAGES, f["n_instruments"], levels_per_side=5),
                        "BENCH00001", max_messages_per_packet=f["per_packet"])
    feed = MemFeed(packets)
    n_loc = f["n_instruments"] + 1
    strat = load_strategy("tickpath.bench.t2t.responder", _RESPONDER)
    risk = validate_risk({})

    def fresh():
        pipe = Pipeline(n_locates=n_loc, max_orders=1 << 18, max_levels=4096)
        pipe.params[P_BOOKS_ONLY] = 1          # the responder reads no indicators
        return pipe, new_trade_ctx(n_loc, risk), strat.new_state(n_loc)

    pipe, tctx, st = fresh()
    events = np.zeros(4096, EVENT_DTYPE)
    strat.compile(tctx, st, pipe.arrays, events, R.new_responses(64))
    mod = loop_module(strat, feed)
    payload = np.zeros((32, 2048), np.uint8)
    lengths = np.zeros(32, np.int32)
    recv_ns = np.zeros(32, np.int64)

    def run(pipe, tctx, st):
        mold, session = new_mold_state(None, 1)
        return mod.trade_loop(feed.state(), payload, lengths, recv_ns, mold, session, events,
                              new_frame_part(), pipe.arrays, new_ctrl(),
                              idle.make_params("busy-spin"), idle.new_state(), tctx, st,
                              ouch_session.new_state(), R.new_responses(64))

    run(*fresh())   # compile or load the loop before any clock
    return fresh, run


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_trade_loop_per_message(benchmark, placement, flow):
    fresh, run = _setup(flow)
    box = {}

    def setup():
        box["state"] = fresh()
        return box["state"], {}

    benchmark.pedantic(run, setup=setup, rounds=7, warmup_rounds=1)
    pipe, tctx, _ = box["state"]
    assert pipe.counters[C.MESSAGES] == N_MESSAGES and pipe.counters[C.GAPS] == 0
    steps = int(tctx.counters[T.C_BOOK_CALLS])
    assert 0 < steps <= N_MESSAGES
    benchmark.extra_info["book_calls"] = steps
    if benchmark.stats:
        benchmark.extra_info["ns_per_message_median"] = (
            benchmark.stats.stats.median * 1e9 / N_MESSAGES)
