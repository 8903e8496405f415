"""Capture: every frame the runtime received, with its receive time, written to a pcap or
pcapng file on a separate thread, without slowing the hot path.

`CaptureBackend` wraps any frame backend: its poll calls the inner backend's poll, then
copies each received frame into a record of an SPSC ring (runtime/ring.py) and publishes it
— a bounded copy, no syscall, no lock. The inner poll is bound at compile time by name, in a
generated module that numba caches (runtime/backends/wrapped.py), so numba still
specialises the loop per backend and a restart loads it from disk. If the ring is full (the writer
fell behind), the frame is not captured and CAPTURE_DROPPED counts it; the live path never
waits for the disk.

The writer thread drains the ring with a numba nogil function that builds file records
(pcap ns-resolution records, or pcapng EPBs) into one byte buffer — an Ethernet + IPv4 +
UDP header is put back in front of each payload (the backend only kept the payload), so the
files open in Wireshark, replay with `tickpath replay` and feed the FPGA emulator — then one
write() per batch. A datagram longer than its slot (length -1 from the socket backend) is
written with the slot's bytes and a larger original length: readers see a snaplen cut.

Ring record (bytes): 0 recv_ns i64 | 8 captured length i32 | 12 original length i32 |
16 payload[slot_bytes rounded up to 8].

Failures (issue 19): the file is written with os.write on its descriptor once per drained
batch (no Python-side buffer), so a SIGKILL loses at most what the ring held — one writer
interval (idle_sleep_s). A write error (disk full...) is surfaced at once: CAPTURE_ERRORS
counts it, the file is truncated back to its last whole record, and the error is published
to the hot path through an atomic flag: with on_error="degrade" (the default) the poll stops
capturing and counts each frame CAPTURE_DROPPED while the runtime goes on; with "stop" the
poll returns -EIO, which ends the loop with a backend error. close() then does not raise
again (the error is in stats()), so the runtime's stats are still written.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
import struct
import threading
import time
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.registry import FRAMES
from tickpath.runtime.backends.wrapped import wrap_poll
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed.pcap import LINKTYPE_ETHERNET
from tickpath.runtime.ipc.ring import Ring, available, publish, read_slot, release, try_claim
from tickpath.runtime.sys.intrinsics import load_acquire, store_release

REC_META_BYTES = 16
EIO = errno.EIO
HDR_BYTES = 42                  # Ethernet 14 + IPv4 20 + UDP 8
FORMATS = ("pcap", "pcapng")
_FMT_PCAP, _FMT_PCAPNG = 0, 1
_WRITE_BATCH_BYTES = 1 << 20
ON_ERROR = ("degrade", "stop")
# error flag slots (int64, written by the writer thread, read by the hot path)
E_ERRNO = 0           # errno of the writer's failure; 0 = none
E_STOP = 1            # 1: a failure stops the loop (-EIO); 0: capture degrades to off


def record_bytes(slot_bytes: int) -> int:
    return REC_META_BYTES + (slot_bytes + 7) // 8 * 8


@njit(nogil=True, cache=True)
def capture_frames(hdr, meta, rec, payload, lengths, recv_ns, n, counters):
    """Copy frames [0, n) into the ring; a full ring counts CAPTURE_DROPPED per frame."""
    cap_bytes = rec.shape[1] - REC_META_BYTES
    slot_bytes = payload.shape[1]
    for i in range(min(n, payload.shape[0])):
        slot = try_claim(hdr)
        if slot < 0:
            counters[C.CAPTURE_DROPPED] += 1
            continue
        ln = lengths[i]
        orig = ln
        if ln < 0 or ln > slot_bytes:
            ln = slot_bytes                  # truncated by the backend: keep what the slot holds
            orig = slot_bytes + 1
        ln = min(ln, cap_bytes)
        rec[slot, REC_META_BYTES:REC_META_BYTES + ln] = payload[i, :ln]
        meta[slot, 0] = recv_ns[i]
        meta[slot, 1] = np.int64(ln) | (np.int64(orig) << 32)
        publish(hdr, 1)


class CaptureState(NamedTuple):
    """The wrapper poll's state, by name (numba types the tuple; no run-time cost)."""
    inner: Any            # the inner backend's poll state
    hdr: np.ndarray       # the capture ring's header (runtime/ipc/ring.py)
    meta: np.ndarray      # the ring's records as int64 (recv_ns, lengths)
    rec: np.ndarray       # the ring's records as bytes
    counters: np.ndarray  # the runtime's counters (CAPTURE_DROPPED)
    err: np.ndarray       # E_* slots: the writer's failure, published to the poll


@njit(nogil=True, inline="always")
def capture_poll_impl(inner_poll, state, payload, lengths, recv_ns):
    """The wrapper poll's body; `inner_poll` is bound by name where this is inlined
    (runtime/backends/wrapped.py), so the wrapped loop still loads from numba's cache."""
    err = state.err
    failed = load_acquire(err, E_ERRNO) != 0
    if failed and err[E_STOP] != 0:
        return -EIO             # the writer failed and the configuration says stop
    n = inner_poll(state.inner, payload, lengths, recv_ns)
    if n > 0:
        if failed:
            state.counters[C.CAPTURE_DROPPED] += n   # degraded: received, not captured
        else:
            capture_frames(state.hdr, state.meta, state.rec, payload, lengths, recv_ns, n,
                           state.counters)
    return n


@njit(nogil=True, cache=True)
def _put_le(out, o, v, n):
    for c in range(n):
        out[o + c] = (v >> (8 * c)) & 0xFF


@njit(nogil=True, cache=True)
def drain_records(hdr, meta, rec, fmt, template, csum_base, out):
    """Turn ready ring records into file records in out; returns (records, bytes)."""
    avail = available(hdr)
    o = 0
    k = 0
    while k < avail:
        slot = read_slot(hdr, k)
        t = meta[slot, 0]
        ln = np.int64(meta[slot, 1] & 0xFFFFFFFF)
        orig = meta[slot, 1] >> 32
        incl = HDR_BYTES + ln
        wire = min(HDR_BYTES + orig, 65535 + 14)
        pad = (-incl) % 4 if fmt == _FMT_PCAPNG else 0
        head = 28 if fmt == _FMT_PCAPNG else 16
        need = head + incl + pad + (4 if fmt == _FMT_PCAPNG else 0)
        if o + need > out.shape[0]:
            break
        if fmt == _FMT_PCAPNG:
            _put_le(out, o, 6, 4)
            _put_le(out, o + 4, need, 4)
            _put_le(out, o + 8, 0, 4)
            _put_le(out, o + 12, t >> 32, 4)
            _put_le(out, o + 16, t & 0xFFFFFFFF, 4)
            _put_le(out, o + 20, incl, 4)
            _put_le(out, o + 24, wire, 4)
        else:
            _put_le(out, o, t // 1_000_000_000, 4)
            _put_le(out, o + 4, t % 1_000_000_000, 4)
            _put_le(out, o + 8, incl, 4)
            _put_le(out, o + 12, wire, 4)
        f = o + head
        out[f:f + HDR_BYTES] = template
        ip_total = min(wire - 14, 65535)
        udp_len = min(ip_total - 20, 65535)
        out[f + 16] = ip_total >> 8
        out[f + 17] = ip_total & 0xFF
        s = csum_base + ip_total
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        s = ~s & 0xFFFF
        out[f + 24] = s >> 8
        out[f + 25] = s & 0xFF
        out[f + 38] = udp_len >> 8
        out[f + 39] = udp_len & 0xFF
        out[f + HDR_BYTES:f + incl] = rec[slot, REC_META_BYTES:REC_META_BYTES + ln]
        for c in range(pad):
            out[f + incl + c] = 0
        if fmt == _FMT_PCAPNG:
            _put_le(out, o + need - 4, need, 4)
        o += need
        k += 1
    release(hdr, k)
    return k, o


def _template(src_ip: str, dst_ip: str, src_port: int, dst_port: int) -> tuple[np.ndarray, int]:
    """Ethernet + IPv4 + UDP header with length and checksum fields zero, and the one's
    complement sum of the IPv4 header as it stands (the writer adds the total length)."""
    ip_b = socket.inet_aton(dst_ip)
    if ip_b[0] >= 224:
        mac = bytes([1, 0, 0x5E, ip_b[1] & 0x7F, ip_b[2], ip_b[3]])   # multicast MAC
    else:
        mac = bytes.fromhex("020000000002")
    eth = mac + bytes.fromhex("020000000001") + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, 17, 0, socket.inet_aton(src_ip), ip_b)
    udp = struct.pack("!HHHH", src_port, dst_port, 0, 0)
    csum = sum(struct.unpack("!10H", ip))
    return np.frombuffer(eth + ip + udp, dtype=np.uint8).copy(), csum


class CaptureWriter:
    """Owns the ring, the file and the writer thread."""

    def __init__(self, path: str, slot_bytes: int, fmt: str | None = None, ring_records: int = 8192,
                 dst_ip: str = "127.0.0.1", dst_port: int = 26400, src_ip: str = "198.18.0.1",
                 src_port: int = 40000, idle_sleep_s: float = 0.0005, on_error: str = "degrade",
                 counters: np.ndarray | None = None):
        self.path = os.fspath(path)
        if on_error not in ON_ERROR:
            raise ConfigError("value not allowed", key="capture.on_error", value=on_error,
                              allowed=list(ON_ERROR))
        self.counters = counters if counters is not None else C.new_counters()
        self.err = np.zeros(2, dtype=np.int64)
        self.err[E_STOP] = on_error == "stop"
        store_release_flag(self.err, E_ERRNO, 0)   # compiled (or loaded) now, not when failing
        self.lost_records = 0
        fmt = fmt or ("pcapng" if self.path.endswith(".pcapng") else "pcap")
        if fmt not in FORMATS:
            raise ConfigError("capture format must be pcap or pcapng", format=fmt)
        if slot_bytes < 1 or slot_bytes > 65535 - HDR_BYTES:
            raise ConfigError("capture slot size out of range", slot_bytes=slot_bytes, max_bytes=65535 - HDR_BYTES)
        self.fmt = fmt
        self.ring = Ring.create(ring_records, np.dtype((np.void, record_bytes(slot_bytes))), policy="drop-newest")
        release_now(self.ring.hdr, 0)               # likewise
        raw = self.ring.data.view(np.uint8).reshape(ring_records, record_bytes(slot_bytes))
        self.rec = raw
        self.meta = raw.view(np.int64)
        self.template, self.csum_base = _template(src_ip, dst_ip, src_port, dst_port)
        self.out = np.empty(max(_WRITE_BATCH_BYTES, 2 * record_bytes(slot_bytes) + 64), dtype=np.uint8)
        self.idle_sleep_s = idle_sleep_s
        self.written_records = 0
        self.written_bytes = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        try:
            # a new file, never through a symlink; no Python buffer between the ring and the disk
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o644)
            header = self._file_header(slot_bytes)
            self.good_bytes = 0   # file offset after the last whole record
            self._write_all(header)
            self.good_bytes = len(header)   # (counted, not lseek: the path may be a FIFO)
        except OSError as exc:
            if getattr(self, "fd", None) is not None:
                os.close(self.fd)
            self.ring.close()
            raise ConfigError("cannot create capture file", key="capture.path", path=self.path,
                              reason=exc.strerror) from exc
        self.thread = threading.Thread(target=self._main, name="tickpath-capture", daemon=True)
        self.thread.start()

    def _file_header(self, slot_bytes: int) -> bytes:
        if self.fmt == "pcap":
            return struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
        shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
        opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)      # if_tsresol = 10^-9
        body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 0) + opts
        idb = struct.pack("<II", 1, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
        return shb + idb

    def _write_all(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]   # a short write goes on where it stopped

    def _drain_once(self) -> int:
        fmt = _FMT_PCAPNG if self.fmt == "pcapng" else _FMT_PCAP
        k, used = drain_records(self.ring.hdr, self.meta, self.rec, fmt, self.template,
                                self.csum_base, self.out)
        if used:
            try:
                self._write_all(memoryview(self.out)[:used])
            except OSError:
                self.lost_records += k
                raise
            self.good_bytes += used
            self.written_records += k
            self.written_bytes += used
        return k

    def _fail(self, exc: BaseException) -> None:
        """Surface a writer failure at once (module docstring) and keep the file readable."""
        self.error = exc
        try:   # a partial record at the end would make readers refuse the whole file
            if stat.S_ISREG(os.fstat(self.fd).st_mode):
                os.ftruncate(self.fd, self.good_bytes)
        except OSError:
            pass
        self.counters[C.CAPTURE_ERRORS] += 1    # only this thread writes the slot
        code = getattr(exc, "errno", None) or errno.EIO
        store_release_flag(self.err, E_ERRNO, code)

    def _main(self):
        try:
            while True:
                if self._drain_once() == 0:
                    if self._stop.is_set() and available_now(self.ring.hdr) == 0:
                        break
                    time.sleep(self.idle_sleep_s)
        except BaseException as exc:  # noqa: BLE001 - surfaced through counters and the flag
            self._fail(exc)
            # records still in the ring (and any the poll adds before it sees the flag) are
            # dropped, counted in stats; the ring never fills up behind a dead writer
            while not (self._stop.is_set() and available_now(self.ring.hdr) == 0):
                n = int(available_now(self.ring.hdr))
                if n:
                    release_now(self.ring.hdr, n)
                    self.lost_records += n
                else:
                    time.sleep(self.idle_sleep_s)

    def close(self) -> None:
        """Drain what the ring holds and close the file (idempotent). A writer failure was
        surfaced when it happened (counter, flag, stats()): it is not raised again here, so
        the runtime's stats are still written."""
        if self.thread is not None:
            self._stop.set()
            self.thread.join()
            self.thread = None
            os.close(self.fd)
            self.ring.close()

    def stats(self) -> dict:
        return {"path": self.path, "format": self.fmt, "written_records": self.written_records,
                "written_bytes": self.written_bytes, "lost_records": self.lost_records,
                "on_error": "stop" if self.err[E_STOP] else "degrade",
                "error": None if self.error is None else str(self.error)}


@njit(nogil=True, cache=True)
def available_now(hdr):
    return available(hdr)


@njit(nogil=True, cache=True)
def release_now(hdr, n):
    release(hdr, n)


@njit(nogil=True, cache=True)
def store_release_flag(arr, i, v):
    store_release(arr, i, v)


class CaptureBackend:
    """A frame backend that captures what `inner` receives (see module docstring); its poll
    and loop wrap the inner poll (runtime/backends/wrapped.py), never the inner's own loop."""
    kind = FRAMES

    def __init__(self, inner, path: str, slot_bytes: int, fmt: str | None = None,
                 ring_records: int = 8192, dst_ip: str | None = None, dst_port: int | None = None,
                 on_error: str = "degrade"):
        if getattr(inner, "kind", None) != FRAMES:
            raise ConfigError("capture wraps frame backends only", backend=type(inner).__name__)
        if ring_records < 2 or ring_records & (ring_records - 1):
            raise ConfigError("capture ring_records must be a power of two >= 2", ring_records=ring_records)
        self.inner = inner
        self.wrapped = wrap_poll(inner, "capture")
        self.poll, self.loop = self.wrapped.poll, self.wrapped.loop
        self.path, self.slot_bytes, self.fmt, self.ring_records = path, slot_bytes, fmt, ring_records
        self.dst_ip, self.dst_port = dst_ip, dst_port
        if on_error not in ON_ERROR:
            raise ConfigError("value not allowed", key="capture.on_error", value=on_error,
                              allowed=list(ON_ERROR))
        self.on_error = on_error
        self.writer: CaptureWriter | None = None
        self.state = None
        self.counters = getattr(inner, "counters", None)

    def open(self, *args, counters=None, **kw):
        self.inner.open(*args, counters=counters, **kw)
        self.counters = getattr(self.inner, "counters", None)
        if self.counters is None:
            self.counters = counters if counters is not None else C.new_counters()
        slot_bytes = args[0].shape[1] if args and hasattr(args[0], "shape") else self.slot_bytes
        addr = self.dst_ip or getattr(self.inner, "address", None) or "127.0.0.1"
        port = self.dst_port if self.dst_port is not None else int(getattr(self.inner, "port", 0) or 0)
        try:
            self.writer = CaptureWriter(self.path, slot_bytes, self.fmt, self.ring_records,
                                        dst_ip=addr, dst_port=port, on_error=self.on_error,
                                        counters=self.counters)
        except BaseException:
            self.inner.close()   # nothing half-open left behind
            raise
        w = self.writer
        self.state = CaptureState(self.inner.state, w.ring.hdr, w.meta, w.rec, self.counters, w.err)
        return self

    def __getattr__(self, name):
        # attributes the runtime reads off a backend (port, address, notes, ...) come from the inner one
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def stats(self) -> dict:
        s = dict(self.inner.stats())
        cap = self.writer.stats() if self.writer is not None else {}
        cap["dropped"] = int(self.counters[C.CAPTURE_DROPPED]) if self.counters is not None else 0
        s["capture"] = cap
        return s

    def close(self) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
        finally:
            self.writer = None
            self.inner.close()
            self.state = None
