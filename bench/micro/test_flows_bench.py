"""Books, decode + books, and `tickpath replay` on more than one flow -- shallow, deep and
wide (bench/load/market.py FLOWS) -- side by side with itch-book (an independent C++ ITCH
parser + order book) on the same file in the same run. Every flow is reported, never only
the friendliest.

* books: book_apply_all over the flow's decoded events (ns per event);
* decode + books: itchfile.decode_messages straight from the file's bytes, then the books;
* replay: `Replayer.run()` on the ITCH file, the user's command (decode, books, indicators,
  the events digest), messages per second;
* itch-book: `itch_book.Feed(...).batches(("bbo",))` on the same file (its parser, its book,
  its BBO table), messages per second.
Sizes: TICKPATH_BENCH_FLOW_MSGS messages per flow (default 1,000,000).
Run: .venv/bin/pytest bench/micro/test_flows_bench.py --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest

from tickpath.bench.load.market import FLOWS, generate
from tickpath.runtime.book.orderbook import book_apply_all, clear_books, new_books
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.replay import Replayer
from tickpath.runtime.feed import itchfile

N_MSGS = int(os.environ.get("TICKPATH_BENCH_FLOW_MSGS", 1_000_000))
MAX_ORDERS = 1 << 20
_files: dict = {}


def _flow_file(tmp_path_factory, name):
    if name not in _files:
        p = tmp_path_factory.mktemp("flows") / f"{name}.itch"
        itchfile.write_itch_file(p, generate(7, N_MSGS, **FLOWS[name]).messages())
        _files[name] = p
    return _files[name], FLOWS[name]["n_instruments"] + 1


def _events(path):
    """The file's events, decoded straight from its bytes (one chunk holds it all)."""
    f = itchfile.ItchFile(path, chunk_bytes=os.path.getsize(path) + (1 << 20))
    out = np.zeros(N_MSGS, EVENT_DTYPE)
    counters = C.new_counters()
    for ch in f.chunks():
        m, _ = itchfile.decode_messages(ch.buf, ch.pos, 0, ch.n, 1, np.zeros(1, np.int64), out,
                                        counters)
    return out[:m]


@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_books_on_flow(benchmark, tmp_path_factory, flow):
    path, n_loc = _flow_file(tmp_path_factory, flow)
    ev = _events(path)
    books, counters = new_books(n_loc, MAX_ORDERS, 4096), C.new_counters()
    book_apply_all(books, ev[:1000], counters)

    def setup():
        clear_books(books)
        counters[:] = 0

    benchmark.pedantic(book_apply_all, args=(books, ev, counters), setup=setup, rounds=5,
                       warmup_rounds=1)
    assert counters[C.BOOK_UNKNOWN_ORDER] == counters[C.BOOK_LEVELS_FULL] == 0
    benchmark.extra_info["events"] = len(ev)
    if benchmark.stats:
        benchmark.extra_info["ns_per_event_median"] = benchmark.stats.stats.median * 1e9 / len(ev)


@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_decode_and_books_on_flow(benchmark, tmp_path_factory, flow):
    path, n_loc = _flow_file(tmp_path_factory, flow)
    f = itchfile.ItchFile(path, chunk_bytes=os.path.getsize(path) + (1 << 20))
    ch = next(f.chunks())
    ev = np.zeros(ch.n, EVENT_DTYPE)
    books, counters = new_books(n_loc, MAX_ORDERS, 4096), C.new_counters()

    def run():
        m, _ = itchfile.decode_messages(ch.buf, ch.pos, 0, ch.n, 1, np.zeros(1, np.int64), ev,
                                        counters)
        return book_apply_all(books, ev[:m], counters)

    def setup():
        clear_books(books)
        counters[:] = 0

    run()
    benchmark.pedantic(run, setup=setup, rounds=5, warmup_rounds=1)
    assert counters[C.MESSAGES] == N_MSGS and counters[C.BOOK_UNKNOWN_ORDER] == 0
    if benchmark.stats:
        benchmark.extra_info["ns_per_msg_median"] = benchmark.stats.stats.median * 1e9 / N_MSGS


@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_replay_on_flow(benchmark, tmp_path_factory, flow):
    path, n_loc = _flow_file(tmp_path_factory, flow)

    def run():
        return Replayer(path, instruments=n_loc, max_orders=MAX_ORDERS).run()

    r = run()
    assert r["counters"]["messages"] == N_MSGS and not r["book_unreliable"]
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    if benchmark.stats:
        benchmark.extra_info["msgs_per_s_median"] = N_MSGS / benchmark.stats.stats.median


@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_itch_book_on_flow(benchmark, tmp_path_factory, flow):
    itch_book = pytest.importorskip("itch_book", reason="itch-book (the test extra) missing")
    path, _ = _flow_file(tmp_path_factory, flow)

    def run():
        rows = 0
        for b in itch_book.Feed(str(path), date=dt.date(2019, 1, 30)).batches(("bbo",)):
            rows += len(b.bbo["seq"])
        return rows

    assert run() > 0
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    if benchmark.stats:
        benchmark.extra_info["msgs_per_s_median"] = N_MSGS / benchmark.stats.stats.median
