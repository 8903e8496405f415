"""tickpath replay FILE --bbo PATH: every top-of-book change as CSV or Parquet, row for row
what itch-book (an independent C++ ITCH book) makes of the same file; the --bbo loop leaves
the same indicators and events as the plain replay loop."""
from __future__ import annotations

import csv
import struct

import numpy as np
import pytest

from tickpath.bench.load.market import generate
from tickpath.runtime.engine import replay
from tickpath.runtime.feed import itchfile

N_INSTR = 12
KW = dict(instruments=N_INSTR + 1, max_orders=1 << 16)
COLS = (("seq", "seq"), ("locate", "locate"), ("bid_px", "bid_px"), ("bid_sz", "bid_sz"),
        ("bid_ct", "bid_orders"), ("ask_px", "ask_px"), ("ask_sz", "ask_sz"),
        ("ask_ct", "ask_orders"))


@pytest.fixture(scope="module")
def market():
    return generate(17, 60_000, N_INSTR, levels_per_side=120, depth="uniform",
                    mix=(0.6, 0.2, 0.05, 0.05, 0.05), max_live_orders=1 << 15,
                    drain_from=40_000)


@pytest.fixture(scope="module")
def day(tmp_path_factory, market):
    p = tmp_path_factory.mktemp("bbo") / "day.itch.gz"
    itchfile.write_itch_file(p, market.messages())
    return p


def _itch_book(market):
    itch_book = pytest.importorskip("itch_book", reason="itch-book (the test extra) missing")
    s = itch_book.Session(tables=["bbo"], depth=0, symbols=[])
    s.reserve(market.n_messages + 16)
    s.feed(b"".join(struct.pack(">H", len(m)) + m for m in market.messages()))
    return s.take_bbo()


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def test_csv_rows_equal_itch_books_bbo(tmp_path, market, day):
    out = tmp_path / "bbo.csv"
    r = replay.replay(day, bbo=str(out), **KW)
    theirs = _itch_book(market)
    rows = _read_csv(out)
    assert r["bbo"]["rows"] == len(rows) == len(theirs["seq"]) > 500
    assert list(rows[0]) == ["seq", "ts_exch", "locate", "symbol", "bid_px", "bid_sz",
                             "bid_orders", "ask_px", "ask_sz", "ask_orders"]
    for a, b in COLS:
        mine = np.array([int(x[b]) for x in rows], dtype=np.int64)
        assert np.array_equal(mine, theirs[a].astype(np.int64)), a
    ts = np.array([int(x["ts_exch"]) for x in rows])
    assert np.array_equal(ts, theirs["ts"].astype(np.int64))
    # the symbol is the stock directory's: locate k is the k-th 4-letter name
    sym = {int(x["locate"]): x["symbol"] for x in rows}
    assert all(sym[loc] == market.symbols[loc - 1].decode().strip() for loc in sym)
    # the drain empties every book: each instrument's last row has both sides empty
    last = {}
    for x in rows:
        last[x["locate"]] = x
    assert all(x["bid_px"] == x["ask_px"] == x["bid_sz"] == "0" for x in last.values())


def test_parquet_holds_the_same_rows(tmp_path, day):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) missing")
    replay.replay(day, bbo=str(tmp_path / "b.csv"), **KW)
    r = replay.replay(day, bbo=str(tmp_path / "b.parquet"), **KW)
    t = pq.read_table(tmp_path / "b.parquet").to_pydict()
    rows = _read_csv(tmp_path / "b.csv")
    assert len(t["seq"]) == len(rows) == r["bbo"]["rows"]
    for c in rows[0]:
        assert [str(v) for v in t[c]] == [x[c] for x in rows], c


def test_bbo_loop_leaves_what_the_pipeline_loop_leaves(tmp_path, day):
    plain = replay.Replayer(day, **KW)
    a = plain.run()
    with_bbo = replay.Replayer(day, bbo=str(tmp_path / "x.csv"), **KW)
    b = with_bbo.run()
    assert a["events_xxh3_128"] == b["events_xxh3_128"] and a["counters"] == b["counters"]
    assert np.array_equal(plain.pipe.out, with_bbo.pipe.out, equal_nan=True)
    assert plain.pipe.out[1:, 7].sum() > 10_000        # OUT_UPDATES: the books did change


def test_cli_bbo_and_an_unwritable_path(tmp_path, day, capsys):
    from tickpath.runtime.cli import main
    out = tmp_path / "cli.csv"
    assert main(["replay", str(day), "--bbo", str(out), "--no-progress",
                 "--instruments", "16"]) == 0
    assert "top of book:" in capsys.readouterr().out and out.stat().st_size > 0
    assert main(["replay", str(day), "--bbo", str(tmp_path / "no" / "dir.csv"),
                 "--no-progress"]) == 2
    assert "cannot write --bbo file" in capsys.readouterr().err


def test_a_book_past_its_bound_is_warned_not_silently_wrong(tmp_path, day, capsys):
    from tickpath.runtime.cli import main
    assert main(["replay", str(day), "--no-progress", "--instruments", "16",
                 "--max-levels", "16"]) == 0
    err = capsys.readouterr().err
    assert "unreliable" in err and "locates" in err
