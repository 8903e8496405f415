"""NASDAQ TotalView-ITCH 5.0 binary files, read streaming, and turned into MoldUDP64 packets.

NASDAQ publishes a trading day as one file of ITCH messages, each prefixed by its 2-byte
big-endian length (e.g. `01302019.NASDAQ_ITCH50.gz`, gzip-compressed, several GB). A day
does not fit comfortably in memory, so `ItchFile.chunks()` reads fixed-size blocks (through
gzip when the file starts with the gzip magic 1f 8b), frames the complete messages of each
block with a numba walk, and carries the partial message at the end of a block into the
next one: memory stays at one block plus one message, whatever the file size.

The MoldUDP64 message block is the same [u16 length][message] layout as the file, so a
packet is a 20-byte header followed by a run of the file's bytes copied as is
(`chunk_to_mold`): that is how `tickpath replay` feeds the file to the decoder and how the
sender publishes it (bench/itchsend.py).

`ItchFile(..., source=...)` reads an already opened stream instead of the path (replay opens
its input once, so a pipe works: runtime/engine/replay_input.py). `decode_messages` decodes a
chunk's messages straight from the block buffer into event records -- the same per-message
decoder as the MoldUDP64 path (runtime/feed/decoder.py), without packing packets first.

Bad input: a last message cut short (the file ends inside it) is counted in
`truncated_tail_bytes` and reported, never decoded; a corrupt gzip stream is a ConfigError
naming the file and how far it got.
"""
from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed.decoder import _decode_message  # the decoder's one message step
from tickpath.runtime.sys.byteorder import load_be48

from tickpath.runtime.feed.moldudp64 import MoldPackets

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_CHUNK_BYTES = 4 << 20
# the first block is filled only this far (>= two of the longest messages): its messages
# reach the reader after a 256 KiB read instead of a 4 MiB one. Measured: the replay's
# books thread waited 1.25-1.5 ms for its first block of a 4 MiB chunk (fourteenth session)
FIRST_FILL_BYTES = 256 << 10
MAX_MESSAGE_BYTES = 0xFFFF          # the u16 length prefix
_PREFIX = mold.LENGTH_PREFIX_BYTES


_BLOCKS: dict = {}   # chunk_bytes -> [(buf, pos)] of finished readers (a chunk is valid
                     # only until its reader's next one, so a finished reader's block is free)


def _take_block(chunk_bytes: int):
    """A block buffer and its position array: a finished reader's (its pages are mapped:
    a backtest reads file after file, and fresh ones were ~1,500 page faults each) or new."""
    try:
        return _BLOCKS.get(chunk_bytes, []).pop()
    except IndexError:
        return (np.empty(chunk_bytes, dtype=np.uint8),
                np.empty(chunk_bytes // 2 + 1, dtype=np.int64))


def _give_block(chunk_bytes: int, buf, pos) -> None:
    pool = _BLOCKS.setdefault(chunk_bytes, [])
    if len(pool) < 2:
        pool.append((buf, pos))


@dataclass
class ItchChunk:
    """Complete messages of one block: message k's prefix starts at buf[pos[k]]."""
    buf: np.ndarray          # uint8 view of the reader's block buffer (valid until the next chunk)
    pos: np.ndarray          # int64[n + 1]; pos[n] = end of the last message
    n: int
    first_index: int         # index of message 0 in the whole file

    def message(self, k: int) -> bytes:
        return self.buf[self.pos[k] + _PREFIX:self.pos[k + 1]].tobytes()


@njit(nogil=True, cache=True, _nrt=False)
def frame_messages(buf, n_bytes, pos):
    """Positions of the complete length-prefixed messages in buf[0:n_bytes]; returns
    (n messages, bytes consumed). pos needs n_bytes // 2 + 1 slots (2 bytes per empty message)."""
    n = 0
    o = 0
    while o + 2 <= n_bytes and n + 1 < pos.shape[0]:
        ln = (np.int64(buf[o]) << 8) | np.int64(buf[o + 1])
        if o + 2 + ln > n_bytes:
            break
        pos[n] = o
        n += 1
        o += 2 + ln
    pos[n] = o
    return n, o


@njit(nogil=True, cache=True, _nrt=False)
def decode_messages(buf, pos, first, n, first_seq, last_ts, events, counters):
    """Decode messages [first, first + n) of a chunk (message k at buf[pos[k]:pos[k+1]], its
    2-byte length first) into events[0:]; message k is sequence number first_seq + k. An
    event's receive time is its message's own ITCH timestamp (last_ts[0] carries the last
    one for messages too short to hold one). Returns (events written, messages done): it
    stops early when events is full. Lengths come from frame_messages, which checked them
    against the buffer; they are checked again here (numba does not bounds-check)."""
    ev = 0
    k = first
    end = min(first + n, pos.shape[0] - 1)
    ts = last_ts[0]
    n_bytes = buf.shape[0]
    while k < end and ev < events.shape[0]:
        o = pos[k]
        length = pos[k + 1] - o - _PREFIX
        if o < 0 or length <= 0 or pos[k + 1] > n_bytes:
            counters[C.MALFORMED_MESSAGES] += 1
        else:
            if length >= itch.TIMESTAMP_OFFSET + 6:
                ts = load_be48(buf, o + _PREFIX + itch.TIMESTAMP_OFFSET)
            ev = _decode_message(buf, o + _PREFIX, length, first_seq + k, ts, events, ev,
                                 counters)
        k += 1
    counters[C.MESSAGES] += k - first
    counters[C.EVENTS] += ev
    last_ts[0] = ts
    return ev, k - first


class Prefixed(io.RawIOBase):
    """head, then the rest of stream: a read-once stream with its first bytes given back
    (how a format is sniffed from a pipe without losing what the sniff read)."""

    def __init__(self, head: bytes, stream):
        self._head = memoryview(head)
        self._stream = stream
        self.bytes_read = 0      # bytes served so far (progress)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            n = self._stream.readinto(b) or 0
        self.bytes_read += n
        return n

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class ItchFile:
    """A streaming reader (see module docstring). `stats` fills in as it reads.
    source: an opened input (replay_input.Input: .stream, .raw, .gzipped, .file_bytes)
    read instead of opening path; it is read once and closed at the end."""

    def __init__(self, path: str | os.PathLike, chunk_bytes: int = DEFAULT_CHUNK_BYTES, *,
                 source=None):
        self.path = os.fspath(path)
        if chunk_bytes < 2 * (MAX_MESSAGE_BYTES + _PREFIX):
            raise ConfigError("chunk_bytes must hold two of the longest messages",
                              chunk_bytes=chunk_bytes, min_bytes=2 * (MAX_MESSAGE_BYTES + _PREFIX))
        self.source = source
        if source is not None:
            self.file_bytes, self.gzipped = source.file_bytes, source.gzipped
        else:
            try:
                self.file_bytes = os.path.getsize(self.path)
                with open(self.path, "rb") as f:
                    self.gzipped = f.read(2) == GZIP_MAGIC
            except OSError as exc:
                raise ConfigError("cannot read ITCH file", path=self.path,
                                  reason=exc.strerror) from exc
        self.chunk_bytes = int(chunk_bytes)
        self.stats = {"messages": 0, "bytes": 0, "truncated_tail_bytes": 0, "gzip": self.gzipped}

    def _open(self):
        """(stream of the content, raw file stream whose position is the progress)."""
        if self.source is not None:
            return self.source.stream, self.source.raw
        raw = open(self.path, "rb")
        return (gzip.GzipFile(fileobj=raw, mode="rb") if self.gzipped else raw), raw

    def chunks(self, progress=None):
        """Yield ItchChunk per block; `progress(file_bytes_read)` is called after each read
        (compressed bytes for a gzip file, so it reaches file_bytes at the end)."""
        stream, raw = self._open()
        where = (lambda: raw.bytes_read) if isinstance(raw, Prefixed) else raw.tell
        buf, pos = _take_block(self.chunk_bytes)
        view = memoryview(buf)
        have = 0
        index = 0
        limit = min(len(buf), FIRST_FILL_BYTES)
        try:
            while True:
                got = 0
                ended = False
                try:   # fill the block: a pipe or gzip hands out less than asked
                    while have + got < limit:
                        g = stream.readinto(view[have + got:limit])
                        if not g:
                            ended = True
                            break
                        got += g
                except (OSError, EOFError, zlib.error) as exc:
                    # gzip.BadGzipFile is an OSError; EOFError: the stream ends mid-member
                    raise ConfigError("corrupt gzip stream", path=self.path,
                                      decompressed_bytes=self.stats["bytes"] + have,
                                      reason=str(exc) or type(exc).__name__) from exc
                have += got
                n, used = frame_messages(buf, have, pos)
                if n:
                    yield ItchChunk(buf, pos[:n + 1], int(n), index)
                    index += n
                    self.stats["messages"] = index
                self.stats["bytes"] += used
                if progress is not None:
                    progress(where())
                if ended:   # the stream ended inside this block
                    self.stats["truncated_tail_bytes"] = have - used
                    return
                # carry the partial message to the front (at most one message long)
                buf[:have - used] = buf[used:have]
                have -= used
                limit = len(buf)
        finally:
            stream.close()
            raw.close()
            _give_block(self.chunk_bytes, buf, pos)


@njit(nogil=True, cache=True)   # its slice copy needs numba's runtime
def _pack_runs(src, pos, n, session, first_seq, max_payload, max_count, out, pkt_off,
               pkt_len, pkt_seq, pkt_first, pkt_count, ts_off, pkt_ts):
    """Greedy packets of consecutive messages; returns (packets, bytes used)."""
    k = 0
    o = 0
    i = 0
    while i < n:
        j = i
        size = mold.HEADER_BYTES
        while j < n and j - i < max_count:
            ln = pos[j + 1] - pos[j]
            if size + ln > max_payload and j > i:
                break
            size += ln
            j += 1
        pkt_off[k] = o
        pkt_seq[k] = first_seq + i
        pkt_first[k] = i
        pkt_count[k] = j - i
        pkt_len[k] = size
        for c in range(mold.SESSION_BYTES):
            out[o + c] = session[c]
        s = first_seq + i
        for c in range(8):
            out[o + mold.SEQ_OFFSET + c] = (s >> (8 * (7 - c))) & 0xFF
        out[o + mold.COUNT_OFFSET] = ((j - i) >> 8) & 0xFF
        out[o + mold.COUNT_OFFSET + 1] = (j - i) & 0xFF
        run = pos[j] - pos[i]
        out[o + mold.HEADER_BYTES:o + mold.HEADER_BYTES + run] = src[pos[i]:pos[j]]
        q = o + mold.HEADER_BYTES
        pkt_ts[k] = -1
        for m in range(i, j):
            ln = pos[m + 1] - pos[m] - 2
            ts_off[m] = q + 2 + itch.TIMESTAMP_OFFSET if ln >= itch.TIMESTAMP_OFFSET + 6 else -1
            if pkt_ts[k] < 0 and ln >= itch.TIMESTAMP_OFFSET + 6:
                t = np.int64(0)
                for c in range(6):
                    t = (t << 8) | np.int64(out[q + 2 + itch.TIMESTAMP_OFFSET + c])
                pkt_ts[k] = t
            q += ln + 2
        o += size
        k += 1
        i = j
    return k, o


def chunk_to_mold(chunk: ItchChunk, session: str | bytes = "ITCHFILE", *,
                  max_payload_bytes: int = mold.MTU1500_PAYLOAD_BYTES,
                  max_messages_per_packet: int = mold.MAX_MESSAGES_PER_PACKET):
    """(MoldPackets, pkt_ts_ns) for one chunk: sequence numbers continue the file's message
    index (message i of the file is seq i + 1); pkt_ts_ns is each packet's first ITCH
    timestamp (ns since midnight, -1 if none). A message longer than a packet goes alone."""
    sess = np.frombuffer(mold.session_bytes(session), dtype=np.uint8)
    n = chunk.n
    if not 1 <= max_messages_per_packet <= mold.MAX_MESSAGES_PER_PACKET:
        raise ConfigError("max_messages_per_packet out of range",
                          max_messages_per_packet=max_messages_per_packet)
    run_bytes = int(chunk.pos[n] - chunk.pos[0])
    out = np.empty(run_bytes + mold.HEADER_BYTES * max(n, 1), dtype=np.uint8)
    z = [np.empty(max(n, 1), dtype=np.int64) for _ in range(6)]
    ts_off = np.empty(max(n, 1), dtype=np.int64)
    k, used = _pack_runs(chunk.buf, chunk.pos, n, sess, chunk.first_index + mold.FIRST_SEQ,
                         max_payload_bytes, max_messages_per_packet, out, *z[:5], ts_off, z[5])
    pk = MoldPackets(buf=out[:used], offsets=z[0][:k], lengths=z[1][:k], first_seq=z[2][:k],
                     msg_first=z[3][:k], msg_count=z[4][:k], ts_offsets=ts_off[:n],
                     session=bytes(sess))
    return pk, z[5][:k]


def write_itch_file(path: str | os.PathLike, messages, compress: bool | None = None) -> int:
    """Write messages (bytes each) as an ITCH binary file; gzip if compress (default: the
    name ends in .gz). Returns the message count. For tests and examples."""
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    opener = gzip.open if compress else open
    n = 0
    with opener(path, "wb") as f:
        for m in messages:
            if not 0 < len(m) <= MAX_MESSAGE_BYTES:
                raise ConfigError("ITCH message length out of range", index=n, length=len(m))
            f.write(len(m).to_bytes(2, "big") + m)
            n += 1
    return n
