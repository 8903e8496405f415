"""The --bbo writer (runtime/engine/bbo_out.py): its jitted CSV lines equal Python's own
formatting of the same rows, at the extremes of every column's type; symbols with unsafe
bytes are written as '?', the same in CSV and Parquet; a symbol that changes between two
batches is written with its new name."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from tickpath.runtime.book.bbo import BBO_COLUMNS, BBO_DTYPE
from tickpath.runtime.engine.bbo_out import BboWriter, symbol_table


def _symbols(*names: bytes) -> np.ndarray:
    raw = b"".join(n.ljust(8, b" ")[:8] for n in names)
    return np.frombuffer(raw, dtype="<u8").copy()


def _rows(n, seed=3):
    rng = np.random.default_rng(seed)
    r = np.zeros(n, BBO_DTYPE)
    r["seq"] = (rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2)
                + rng.integers(0, 2, n).astype(np.uint64))   # all of u64
    r["ts_exch"] = rng.integers(0, 2**48, n, dtype=np.uint64)
    r["locate"] = rng.integers(0, 3, n)
    for c in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        r[c] = rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64)
    for c in ("bid_orders", "ask_orders"):
        r[c] = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    # the extremes of each type, and zeros (an empty side)
    r[0] = (2**64 - 1, 2**64 - 1, 2**32 - 1, 2**32 - 1, -2**63, 2**63 - 1, 0, 0, 0, 0)
    r[1] = (0, 0, 0, 0, 0, -1, 9, 10, 2**32 - 1, 0)
    return r


def _python_lines(rows, names):
    out = []
    for x in rows:
        sym = names[min(int(x["locate"]), len(names) - 1)]
        vals = {c: str(int(x[c])) for c in BBO_COLUMNS if c != "symbol"}
        vals["symbol"] = sym
        out.append(",".join(vals[c] for c in BBO_COLUMNS))
    return out


def test_csv_lines_equal_pythons_formatting_at_the_extremes(tmp_path):
    rows = _rows(5000)
    syms = _symbols(b"", b"AAPL", b" MSFT  ")
    w = BboWriter(tmp_path / "a.csv")
    w.write(rows[:1234], syms)
    w.write(rows[1234:], syms)
    w.close()
    lines = (tmp_path / "a.csv").read_text("ascii").splitlines()
    assert lines[0] == ",".join(BBO_COLUMNS) and w.rows == len(rows) == len(lines) - 1
    assert lines[1:] == _python_lines(rows, ["", "AAPL", "MSFT"])


def test_unsafe_symbol_bytes_become_question_marks():
    raw, lens = symbol_table(_symbols(b"A,B", b'Q"\x01Z', b"\xffXY", b"  ok  "))
    got = [bytes(r[:n]) for r, n in zip(raw, lens)]
    assert got == [b"A?B", b"Q??Z", b"?XY", b"ok"]


def test_a_symbol_changed_between_batches_is_written_with_its_new_name(tmp_path):
    rows = np.zeros(2, BBO_DTYPE)
    rows["locate"] = 1
    w = BboWriter(tmp_path / "b.csv")
    w.write(rows[:1], _symbols(b"", b"OLD"))
    w.write(rows[1:], _symbols(b"", b"NEW"))
    w.close()
    with open(tmp_path / "b.csv", newline="") as f:
        assert [x["symbol"] for x in csv.DictReader(f)] == ["OLD", "NEW"]


def test_parquet_holds_the_csv_rows_in_row_groups(tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) missing")
    from tickpath.runtime.engine import bbo_out
    monkeypatch.setattr(bbo_out, "PARQUET_GROUP_ROWS", 128)
    rows = _rows(300)
    rows["ts_exch"] &= np.uint64(2**48 - 1)   # ITCH's 48 bits: Parquet keeps it as int64
    syms = _symbols(b"", b"A,B", b"\xffXY")
    for name in ("c.csv", "c.parquet"):
        w = BboWriter(tmp_path / name)
        for a in (0, 100, 250):       # batches; the rows buffer is reused by the replay
            part = rows[a:a + (100 if a == 0 else 150 if a == 100 else 50)].copy()
            w.write(part, syms)
            part[:] = 0
        w.close()
    f = pq.ParquetFile(tmp_path / "c.parquet")
    assert f.metadata.num_row_groups == 2 and f.metadata.num_rows == 300 == w.rows
    t = f.read().to_pydict()
    with open(tmp_path / "c.csv", newline="") as fh:
        ref = list(csv.DictReader(fh))
    for c in BBO_COLUMNS:
        assert [str(v) for v in t[c]] == [x[c] for x in ref], c
    assert set(t["symbol"]) <= {"", "A?B", "?XY"}
