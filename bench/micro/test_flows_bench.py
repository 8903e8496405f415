"""Books, decode + books, and `tickpath replay` on more than one flow -- shallow, deep and
wide (bench/load/market.py FLOWS) -- side by side with itch-book (an independent C++ ITCH
parser + order book) on the same file in the same run. Every flow is reported, never only
the friendliest.

* books: book_apply_all over the flow's decoded events (ns per event);
* decode + books: itchfile.decode_messages straight from the file's bytes, then the books;
* replay: `Replayer.run()` on the ITCH file, the user's command (decode, books, indicators,
  the events digest), messages per second;
* replay --bbo: `Replayer(..., bbo=PATH).run()`, every top-of-book change written as CSV
  or Parquet (the research-data command; itch-book's BBO table below is the same rows, kept
  in memory), messages per second;
* itch-book: `itch_book.Feed(...).batches(("bbo",))` on the same file (its parser, its book,
  its BBO table), messages per second.
* replay cold: the command as a user runs it, `tickpath replay FILE --json`, a fresh process
  each round, alternating with a fresh process running itch-book on the file. The warm
  rounds above reuse a process whose code is loaded and whose freed pages come back fast; a
  user's single run pays for loading the compiled code (`warm_s`) and for faulting in new
  tables (inside `elapsed_s`). Reported: each side's time inside its process (ours with
  and without warm_s) and whole-process wall time (Python start and imports included).
Sizes: TICKPATH_BENCH_FLOW_MSGS messages per flow (default 1,000,000).
Run: .venv/bin/pytest bench/micro/test_flows_bench.py --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

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


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_replay_bbo_on_flow(benchmark, tmp_path_factory, flow, fmt):
    """`tickpath replay FILE --bbo PATH`: the research-data command, against itch-book's
    BBO table of the same file (which it keeps in memory; this writes the file)."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) missing")
    path, n_loc = _flow_file(tmp_path_factory, flow)
    out = tmp_path_factory.mktemp("bbo") / f"bbo.{fmt}"

    def run():
        return Replayer(path, instruments=n_loc, max_orders=MAX_ORDERS, bbo=str(out)).run()

    r = run()
    assert r["counters"]["messages"] == N_MSGS and r["bbo"]["rows"] > 0
    benchmark.pedantic(run, rounds=3, warmup_rounds=0)
    if benchmark.stats:
        benchmark.extra_info["rows"] = r["bbo"]["rows"]
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


_ITCH_BOOK_ONE_RUN = """
import sys, time, datetime as dt, itch_book
t = time.perf_counter(); rows = 0
for b in itch_book.Feed(sys.argv[1], date=dt.date(2019, 1, 30)).batches(("bbo",)):
    rows += len(b.bbo["seq"])
print(time.perf_counter() - t, rows)
"""


def _timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t, out.stdout


@pytest.mark.parametrize("flow", ["shallow", "deep", "wide"])
def test_replay_cold_on_flow(benchmark, tmp_path_factory, flow):
    pytest.importorskip("itch_book", reason="itch-book (the test extra) missing")
    path, n_loc = _flow_file(tmp_path_factory, flow)
    ours_cmd = [sys.executable, "-m", "tickpath.runtime.cli", "replay", str(path),
                "--instruments", str(n_loc), "--json",
                "--no-progress"]
    theirs_cmd = [sys.executable, "-c", _ITCH_BOOK_ONE_RUN, str(path)]
    _timed(ours_cmd)   # compiles into the cache once: later rounds load it, as a user's do
    ours, theirs = [], []

    def setup():   # itch-book's fresh process just before each of ours
        wall, out = _timed(theirs_cmd)
        theirs.append((wall, float(out.split()[0])))

    def run():
        wall, out = _timed(ours_cmd)
        d = json.loads(out)
        assert d["counters"]["messages"] == N_MSGS and not d["book_unreliable"]
        ours.append((wall, d["warm_s"], d["elapsed_s"]))

    benchmark.pedantic(run, setup=setup, rounds=3, warmup_rounds=0)
    o, t = np.median(np.array(ours), axis=0), np.median(np.array(theirs), axis=0)
    benchmark.extra_info.update({
        "ours_elapsed_s": [round(x[2], 4) for x in ours],
        "ours_warm_s": [round(x[1], 4) for x in ours],
        "ours_wall_s": [round(x[0], 3) for x in ours],
        "itch_book_s": [round(x[1], 4) for x in theirs],
        "itch_book_wall_s": [round(x[0], 3) for x in theirs],
        "x_itch_book_elapsed": round(t[1] / o[2], 2),
        "x_itch_book_warm_and_elapsed": round(t[1] / (o[1] + o[2]), 2),
        "x_itch_book_wall": round(t[0] / o[0], 2),
    })
