"""The audit log's writer thread: drains the SPSC ring into an append-only file.

`AuditLog(path, ring_records, flush_interval_ms)` creates the file at start() —
O_WRONLY|O_APPEND|O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: never an existing file, never
through a symlink — writes the header, and starts a thread that every flush_interval_ms
moves what the hot thread published (`writer`, an AuditWriter for the jitted
audit_write_* functions) into a buffer with each record's CRC (jitted, nogil) and appends
it with write(2). Whole records are appended, so after a SIGKILL the file holds every
record written up to the last flush, and at worst a torn last record (the reader
reports it). `fsync=True` also survives power loss, at a syscall's cost per flush.
stop() drains what is left, closes the file and returns the stats.
"""
from __future__ import annotations

import os
import threading
import time
import zlib

import numpy as np

from tickpath.runtime.core.errors import ConfigError, TickpathError, translate_oserror
from tickpath.runtime.ipc.ring import Ring
from tickpath.runtime.trading.audit import layout as L
from tickpath.runtime.trading.audit.writer import CRC_TABLE, AuditWriter, drain_with_crc


class AuditError(TickpathError):
    """The audit log could not be created, written or read."""


def make_header(created_ns: int) -> bytes:
    h = np.zeros(1, L.HEADER_DTYPE)
    h["magic"] = L.MAGIC
    h["version"] = L.VERSION
    h["record_bytes"] = L.RECORD_BYTES
    h["created_ns"] = created_ns
    h["pid"] = os.getpid()
    raw = h.view(np.uint8)
    h["crc"] = zlib.crc32(raw[: L.HEADER_CRC_BYTES].tobytes())
    return h.tobytes()


class AuditLog:
    def __init__(self, path: str, ring_records: int = 1 << 16, flush_interval_ms: float = 10.0,
                 fsync: bool = False, batch_records: int = 4096):
        if flush_interval_ms <= 0:
            raise ConfigError("audit flush interval must be positive",
                              key="audit.flush_interval_ms", value=flush_interval_ms)
        self.path = path
        self.flush_interval_s = flush_interval_ms / 1000.0
        self.fsync = fsync
        try:
            self.ring = Ring.create(ring_records, L.AUDIT_DTYPE, policy="drop-newest")
        except ConfigError as exc:
            raise ConfigError("audit ring size must be a power of two >= 2",
                              key="audit.ring_records", value=ring_records) from exc
        self.writer = AuditWriter(self.ring.hdr, self.ring.data, np.zeros(L.N_WCTL, np.int64))
        self._out = np.zeros(batch_records, L.AUDIT_DTYPE)
        self._out_bytes = self._out.view(np.uint8)
        self._fd = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()     # one consumer at a time: the thread, or flush()/stop()
        self.records_written = 0
        self.bytes_written = 0
        self.flushes = 0
        self.write_errors = 0
        self.last_error = ""

    def start(self) -> "AuditLog":
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags, 0o600)
        except FileExistsError as exc:
            raise AuditError("audit log already exists (never appended to or overwritten)",
                             path=self.path) from exc
        except OSError as exc:
            raise translate_oserror(exc, "creating the audit log", path=self.path) from exc
        self._write_all(make_header(time.clock_gettime_ns(time.CLOCK_REALTIME)))
        drain_with_crc(self.ring.hdr, self.ring.data, self._out[:0], self._out_bytes[:0], CRC_TABLE)
        self._thread = threading.Thread(target=self._run, name="tickpath-audit", daemon=True)
        self._thread.start()
        return self

    def _write_all(self, data) -> None:
        view = memoryview(data)
        while len(view):
            n = os.write(self._fd, view)
            view = view[n:]
            self.bytes_written += n

    def _drain(self) -> int:
        with self._lock:
            return self._drain_locked()

    def _drain_locked(self) -> int:
        total = 0
        while True:
            n = drain_with_crc(self.ring.hdr, self.ring.data, self._out, self._out_bytes, CRC_TABLE)
            if n == 0:
                return total
            try:
                self._write_all(self._out_bytes[: n * L.RECORD_BYTES])
            except OSError as exc:   # counted; the records are lost from the file: verify sees the gap
                self.write_errors += 1
                self.last_error = f"{exc.strerror or exc} errno={exc.errno}"
            self.records_written += n
            total += n

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            if self._drain() and self.fsync:
                os.fsync(self._fd)
            self.flushes += 1

    def flush(self) -> int:
        """Drain now from the caller's thread (tests, shutdown); returns records written."""
        n = self._drain()
        if n and self.fsync:
            os.fsync(self._fd)
        return n

    def stop(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._fd >= 0:
            self._drain()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        return self.stats()

    def stats(self) -> dict:
        return {"path": self.path, "records_written": self.records_written,
                "records_dropped_ring_full": int(self.writer.ctl[L.W_DROPPED]),
                "records_logged": int(self.writer.ctl[L.W_NEXT_SEQ]),
                "bytes_written": self.bytes_written, "flushes": self.flushes,
                "write_errors": self.write_errors, "last_error": self.last_error,
                "ring": self.ring.stats()}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
