"""What `tickpath replay` reads: the file opened once, its format sniffed from the same
stream, so a pipe, a FIFO or `<(zcat day.gz)` replays whole (nothing read twice, nothing
reopened, no seek).

`open_input(path)` opens the path (or standard input for "-") once, reads a head block,
and looks inside: gzip (1f 8b) is unwrapped and the head of the decompressed stream is read;
then a classic pcap or pcapng magic makes it a capture, and a run of well-formed ITCH 5.0
messages ([u16 length][known type] with the type's length) makes it an ITCH file. Anything
else -- a README, zeros, an empty file -- is refused with a ConfigError saying what was
found. The head is handed back in front of the rest of the stream (`Prefixed`), so the
reader sees every byte exactly once.
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import sys
import zlib
from dataclasses import dataclass

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed.itch import KIND_BY_TYPE, KIND_UNKNOWN, LENGTH_BY_TYPE
from tickpath.runtime.feed.itchfile import Prefixed

HEAD_BYTES = 64 << 10
GZIP_MAGIC = b"\x1f\x8b"
_PCAP_MAGICS = (0xA1B2C3D4, 0xA1B23C4D)
_PCAPNG_SHB = 0x0A0D0D0A
SNIFF_MESSAGES = 64        # ITCH messages checked in the head (all of them if fewer)
_SPARE_BYTES = 32          # a message may be longer than its spec length by this much


def _read_head(stream, n: int) -> bytes:
    """Up to n bytes (fewer only at the end: a pipe hands out what it has)."""
    parts, have = [], 0
    while have < n:
        chunk = stream.read(n - have)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def sniff_itch(head: bytes) -> str:
    """'' when head starts like an ITCH 5.0 file, else why not (for the error message)."""
    o = 0
    checked = 0
    while checked < SNIFF_MESSAGES and o + 3 <= len(head):
        ln = struct.unpack_from(">H", head, o)[0]
        t = head[o + 2]
        if ln == 0:
            return f"a zero message length at byte {o}"
        if KIND_BY_TYPE[t] == KIND_UNKNOWN:
            return f"message type {t:#04x} at byte {o + 2} is not an ITCH 5.0 type"
        spec = int(LENGTH_BY_TYPE[t])
        if not spec <= ln <= spec + _SPARE_BYTES:
            return (f"message type {chr(t)!r} at byte {o + 2} has length {ln}, "
                    f"ITCH 5.0 says {spec}")
        o += 2 + ln
        checked += 1
    if checked == 0:
        return f"{len(head)} bytes, not one ITCH message header"
    return ""


def sniff(head: bytes) -> tuple[str, str]:
    """(format, reason): format is "pcap", "itch" or "" (then reason says why)."""
    if not head:
        return "", "the file is empty"
    if len(head) >= 4:
        for endian in "<>":
            magic = struct.unpack(endian + "I", head[:4])[0]
            if magic in _PCAP_MAGICS or magic == _PCAPNG_SHB:
                return "pcap", ""
    why = sniff_itch(head)
    return ("itch", "") if not why else ("", why)


@dataclass
class Input:
    """An opened replay input: `stream` yields the (decompressed) content from byte 0."""
    path: str
    format: str              # "pcap" or "itch"
    gzipped: bool
    stream: io.RawIOBase     # read once, front to back
    raw: Prefixed            # the file's own bytes (compressed ones for gzip): progress
    file_bytes: int          # size of a regular file; 0 when unknown (a pipe)
    _owned: object = None

    def close(self) -> None:
        for s in (self.stream, self._owned):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass


def open_input(path: str | os.PathLike) -> Input:
    """Open once and sniff (module docstring); ConfigError naming the path on any refusal."""
    path = os.fspath(path)
    try:
        f = sys.stdin.buffer if path == "-" else open(path, "rb", buffering=0)
        st = os.fstat(f.fileno())
    except OSError as exc:
        raise ConfigError("cannot read replay file", path=path, reason=exc.strerror) from exc
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError("replay input is a directory", path=path)
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    head = b""
    try:
        head = _read_head(f, HEAD_BYTES)
        raw = Prefixed(head, f)
        gzipped = head[:2] == GZIP_MAGIC
        stream = raw
        inner = head
        if gzipped:
            g = gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 20), mode="rb")
            inner = _read_head(g, HEAD_BYTES)
            stream = Prefixed(inner, g)
    except (OSError, EOFError, zlib.error) as exc:
        f.close()
        raise ConfigError("corrupt gzip stream" if head[:2] == GZIP_MAGIC else
                          "cannot read replay file", path=path,
                          reason=str(exc) or type(exc).__name__) from exc
    fmt, why = sniff(inner)
    if not fmt:
        f.close()
        raise ConfigError("not a pcap, pcapng or ITCH 5.0 file" + (" (inside gzip)" if gzipped
                          else ""), path=path, found=why)
    return Input(path, fmt, gzipped, stream, raw, size, f if f is not sys.stdin.buffer else None)
