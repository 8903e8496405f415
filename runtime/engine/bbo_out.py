"""`tickpath replay --bbo PATH`: the top-of-book rows (runtime/book/bbo.py) written as CSV, or
as Parquet when PATH ends in `.parquet` (pyarrow, the `parquet` extra).

Columns, one row per top-of-book change in feed order: seq, ts_exch (ns since midnight, as
in ITCH), locate, symbol (from the stock directory message; empty before it), bid_px,
bid_sz, bid_orders, ask_px, ask_sz, ask_orders. Prices are ITCH Price(4) integers; an
empty side is 0/0/0. A symbol is its 8 bytes with the spaces around it stripped; a byte
that is not printable ASCII, or a comma or a quote (they would break a CSV line), is written
as '?' (the locate column stays exact), the same in both formats.

Rows arrive in batches from the replay loop, which goes on while a worker thread writes
the CSV lines (one batch in flight besides the one being handed over; a write error surfaces
at the next batch or at close). Parquet row groups are built on the calling thread: pyarrow
on a third thread beside the replay's two measured slower on two CPUs. Why the CSV lines
are made by a jitted loop (nogil) and the symbol table only when it changed: a Python line
per row and the names of every locate per batch made `--bbo` 4-8x slower than the replay
itself (bench/RESULTS.md, twelfth session).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from tickpath.runtime.book.bbo import BBO_COLUMNS
from tickpath.runtime.core.errors import ConfigError

_INT_COLUMNS = tuple(c for c in BBO_COLUMNS if c != "symbol")


_SYMBOL_BYTES = 8
PARQUET_GROUP_ROWS = 1 << 17   # rows per Parquet row group (the last one may hold fewer)
_ROW_BYTES_MAX = 2 * 20 + 10 + _SYMBOL_BYTES + 6 * 20 + 9 + 1   # digits, commas, newline


def symbol_table(symbols_u64: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-locate symbols (the R message's 8 bytes, read little-endian into a u64) as
    (bytes [n, 8], length [n]): spaces around stripped, unsafe bytes as '?'."""
    raw = np.ascontiguousarray(symbols_u64, dtype="<u8").view(np.uint8).reshape(-1, 8).copy()
    unsafe = (raw < 0x20) | (raw > 0x7E) | (raw == ord(",")) | (raw == ord('"'))
    raw[unsafe & (raw != 0)] = ord("?")
    raw[raw == 0] = ord(" ")             # an unset locate (or NUL padding) reads as empty
    lens = np.zeros(len(raw), dtype=np.int64)
    for i, r in enumerate(raw):
        name = r.tobytes().strip(b" ")
        raw[i, :len(name)] = np.frombuffer(name, np.uint8)
        lens[i] = len(name)
    return raw, lens


def _names_of(sym_bytes: np.ndarray, sym_len: np.ndarray) -> list[str]:
    return [r[:n].tobytes().decode("ascii") for r, n in zip(sym_bytes, sym_len)]


@njit(nogil=True, inline="always")
def _put_int(buf, o, v):
    """Decimal digits of the integer v at buf[o:]; returns the offset after them."""
    if v < 0:
        buf[o] = ord("-")
        o += 1
        u = np.uint64(-(v + 1)) + np.uint64(1)   # |v| without overflow at the minimum
    else:
        u = np.uint64(v)
    n = 1
    t = u // np.uint64(10)
    while t:
        n += 1
        t //= np.uint64(10)
    for j in range(n - 1, -1, -1):
        buf[o + j] = np.uint8(u % np.uint64(10)) + np.uint8(48)   # 48: '0'
        u //= np.uint64(10)
    return o + n


@njit(nogil=True, cache=True)
def format_csv(rows, sym_bytes, sym_len, buf):
    """rows as CSV lines (BBO_COLUMNS order) into buf, which holds _ROW_BYTES_MAX per row;
    returns the bytes written."""
    o = 0
    n_sym = sym_len.shape[0]
    for i in range(min(rows.shape[0], buf.shape[0] // _ROW_BYTES_MAX)):
        r = rows[i]
        o = _put_int(buf, o, np.uint64(r.seq))
        buf[o] = ord(",")
        o = _put_int(buf, o + 1, np.uint64(r.ts_exch))
        buf[o] = ord(",")
        o = _put_int(buf, o + 1, np.int64(r.locate))
        buf[o] = ord(",")
        o += 1
        loc = min(np.int64(r.locate), n_sym - 1)
        for j in range(sym_len[loc] if loc >= 0 else 0):
            buf[o] = sym_bytes[loc, j]
            o += 1
        for v in (np.int64(r.bid_px), np.int64(r.bid_sz), np.int64(r.bid_orders),
                  np.int64(r.ask_px), np.int64(r.ask_sz), np.int64(r.ask_orders)):
            buf[o] = ord(",")
            o = _put_int(buf, o + 1, v)
        buf[o] = ord("\n")
        o += 1
    return o


class BboWriter:
    """Appends batches of BBO_DTYPE rows to PATH (CSV, or Parquet for *.parquet)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.parquet = self.path.endswith(".parquet")
        self.rows = 0
        self._pq = None
        self._symbols = None      # the symbols the table below was made from
        self._table = None        # symbol_table(self._symbols): replaced, never changed
        self._names = (None, None)   # (table bytes, their pyarrow names)
        self._buf = np.zeros(0, dtype=np.uint8)   # CSV lines: worker only
        self._pending = []        # parquet: (rows, symbols) not yet in a row group
        self._pending_rows = 0
        self._inflight = []       # the worker's batches not known written yet
        self._pool = None
        if self.parquet:
            try:
                import pyarrow  # noqa: F401
                import pyarrow.parquet  # noqa: F401
            except ImportError as exc:
                raise ConfigError("--bbo to .parquet needs pyarrow: pip install "
                                  "'tickpath[parquet]'", path=self.path) from exc
        try:
            self._f = None if self.parquet else open(self.path, "wb")
        except OSError as exc:
            raise ConfigError("cannot write --bbo file", path=self.path,
                              reason=exc.strerror) from exc
        if self._f is not None:
            self._f.write((",".join(BBO_COLUMNS) + "\n").encode("ascii"))

    def _symbols_now(self, symbols_u64: np.ndarray):
        """The symbol table, made again only when a stock directory message changed it."""
        if self._symbols is None or not np.array_equal(self._symbols, symbols_u64):
            self._symbols = np.array(symbols_u64, dtype="<u8")
            self._table = symbol_table(self._symbols)
        return self._table

    def write(self, rows: np.ndarray, symbols_u64: np.ndarray) -> None:
        """Hand a batch to the writer thread (rows are copied: the caller reuses them)."""
        if len(rows) == 0:
            return
        sym_bytes, sym_len = self._symbols_now(symbols_u64)
        if self.parquet:   # on this thread: pyarrow beside the replay's two measured slower
            self._write_parquet(rows.copy(), sym_bytes, sym_len)
            self.rows += len(rows)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="bbo-out")
        self._wait(keep=1)
        self._inflight.append(self._pool.submit(self._write_now, rows.copy(), sym_bytes,
                                                sym_len))
        self.rows += len(rows)

    def _wait(self, keep: int) -> None:
        while len(self._inflight) > keep:
            self._inflight.pop(0).result()   # a write error is raised here

    def _write_now(self, rows, sym_bytes, sym_len) -> None:
        """CSV lines of one batch, on the writer thread."""
        if len(self._buf) < len(rows) * _ROW_BYTES_MAX:
            self._buf = np.zeros(len(rows) * _ROW_BYTES_MAX, dtype=np.uint8)
        n = format_csv(rows, sym_bytes, sym_len, self._buf)
        self._f.write(memoryview(self._buf)[:n])

    def _write_parquet(self, rows, sym_bytes, sym_len) -> None:
        """Rows are gathered into row groups of about PARQUET_GROUP_ROWS (a row group per
        replay batch measured 2x slower than the CSV, and readers want big groups)."""
        import pyarrow as pa
        if self._names[0] is not sym_bytes:
            self._names = (sym_bytes, pa.array(_names_of(sym_bytes, sym_len), type=pa.string()))
        loc = np.minimum(rows["locate"].astype(np.int64), len(sym_len) - 1)
        # the names of now (one C++ gather, no str a row)
        self._pending.append((rows, self._names[1].take(pa.array(loc))))
        self._pending_rows += len(rows)
        if self._pending_rows >= PARQUET_GROUP_ROWS:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        if not self._pending:
            return
        rows = np.concatenate([r for r, _ in self._pending])
        arrays = {c: pa.array(rows[c].astype(np.uint64 if c == "seq" else np.int64))
                  for c in _INT_COLUMNS}
        arrays["symbol"] = pa.concat_arrays([sym for _, sym in self._pending])
        self._pending = []
        self._pending_rows = 0
        table = pa.table({c: arrays[c] for c in BBO_COLUMNS})
        if self._pq is None:
            self._pq = pq.ParquetWriter(self.path, table.schema)
        self._pq.write_table(table)

    def close(self) -> None:
        """Wait for the writer thread, then finish the file (a write error is raised)."""
        try:
            self._wait(keep=0)
            if self.parquet:
                self._flush_parquet()
                if self._pq is None:   # no rows: still a valid file with the columns
                    import pyarrow as pa
                    import pyarrow.parquet as pq
                    schema = pa.schema([(c, pa.string() if c == "symbol" else
                                         (pa.uint64() if c == "seq" else pa.int64()))
                                        for c in BBO_COLUMNS])
                    pq.write_table(schema.empty_table(), self.path)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._f is not None:
                self._f.close()
            if self._pq is not None:
                self._pq.close()
