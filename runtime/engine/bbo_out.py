"""`tickpath replay --bbo PATH`: the top-of-book rows (runtime/book/bbo.py) written as CSV, or
as Parquet when PATH ends in `.parquet` (pyarrow, the `parquet` extra).

Columns, one row per top-of-book change in feed order: seq, ts_exch (ns since midnight, as
in ITCH), locate, symbol (from the stock directory message; empty before it), bid_px,
bid_sz, bid_orders, ask_px, ask_sz, ask_orders. Prices are ITCH Price(4) integers; an
empty side is 0/0/0. Rows arrive in batches from the replay loop (slow path, Python).
"""
from __future__ import annotations

import os

import numpy as np

from tickpath.runtime.book.bbo import BBO_COLUMNS
from tickpath.runtime.core.errors import ConfigError

_INT_COLUMNS = tuple(c for c in BBO_COLUMNS if c != "symbol")


def symbol_names(symbols_u64: np.ndarray) -> np.ndarray:
    """Per-locate symbols (the R message's 8 ASCII bytes, read little-endian into a u64) as
    stripped strings."""
    raw = np.ascontiguousarray(symbols_u64, dtype="<u8").view("S8")
    return np.char.strip(np.char.decode(raw, "ascii", errors="replace"))


class BboWriter:
    """Appends batches of BBO_DTYPE rows to PATH (CSV, or Parquet for *.parquet)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.parquet = self.path.endswith(".parquet")
        self.rows = 0
        self._pq = None
        if self.parquet:
            try:
                import pyarrow  # noqa: F401
                import pyarrow.parquet  # noqa: F401
            except ImportError as exc:
                raise ConfigError("--bbo to .parquet needs pyarrow: pip install "
                                  "'tickpath[parquet]'", path=self.path) from exc
        try:
            self._f = None if self.parquet else open(self.path, "w", encoding="ascii",
                                                     newline="")
        except OSError as exc:
            raise ConfigError("cannot write --bbo file", path=self.path,
                              reason=exc.strerror) from exc
        if self._f is not None:
            self._f.write(",".join(BBO_COLUMNS) + "\n")

    def write(self, rows: np.ndarray, symbols_u64: np.ndarray) -> None:
        if len(rows) == 0:
            return
        names = symbol_names(symbols_u64)
        loc = rows["locate"].astype(np.int64)
        sym = names[np.minimum(loc, len(names) - 1)]
        cols = {c: rows[c if c != "ts_exch" else "ts_exch"] for c in _INT_COLUMNS}
        if self.parquet:
            self._write_parquet(cols, sym)
        else:
            text = [cols[c].astype(np.int64).astype(str) for c in _INT_COLUMNS]
            ordered = text[:3] + [sym.astype(str)] + text[3:]
            self._f.write("".join(",".join(r) + "\n" for r in zip(*ordered)))
        self.rows += len(rows)

    def _write_parquet(self, cols, sym) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        arrays = {c: pa.array(cols[c].astype(np.uint64 if c == "seq" else np.int64))
                  for c in _INT_COLUMNS}
        arrays["symbol"] = pa.array(sym.astype(str))
        table = pa.table({c: arrays[c] for c in BBO_COLUMNS})
        if self._pq is None:
            self._pq = pq.ParquetWriter(self.path, table.schema)
        self._pq.write_table(table)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
        if self.parquet:
            if self._pq is None:   # no rows: still a valid file with the columns
                import pyarrow as pa
                import pyarrow.parquet as pq
                schema = pa.schema([(c, pa.string() if c == "symbol" else
                                     (pa.uint64() if c == "seq" else pa.int64()))
                                    for c in BBO_COLUMNS])
                pq.write_table(schema.empty_table(), self.path)
            else:
                self._pq.close()
