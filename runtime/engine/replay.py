"""Replay: run a capture (pcap/pcapng) or a NASDAQ ITCH 5.0 binary file through the same
pipeline as the live runtime (decoder → books → indicators), as fast as possible or at the
recorded pace.

Deterministic: a packet's receive time is the one recorded in the capture (for an ITCH file,
each message's own ITCH timestamp), the MoldUDP64 state and the books start empty, so the
same file always gives the same event records, byte for byte (`events_xxh3_128` in the
summary; `events_out` writes them). Latency is not recorded: a file has no send times.

Input (replay_input.py): the path is opened once and sniffed from the same stream, so pipes
and FIFOs replay whole; a file that is neither pcap, pcapng nor ITCH is refused. A capture is
read whole (runtime/feed/pcap.py; a damaged tail is read up to its last whole record, with a
warning) and its UDP payloads located by a numba walk over the frames; frames that are not
IPv4/UDP (or not for `udp_port`) are counted FRAMES_NOT_FEED, frames cut short by the
snaplen FRAMES_DROPPED. An ITCH file streams in blocks (runtime/feed/itchfile.py), and its
messages are decoded straight from the block buffer (no MoldUDP64 packets in between), so a
whole trading day replays in bounded memory at the pipeline's own speed.

Where the time goes, and what was done about it (bench/RESULTS.md has the figures): the
event digest is XXH3-128 of the 64-byte events, hashed right after each block is filled
(~3.5 ns an event; sha256 took ~53 ns, as much as the books, and 40 % of a run on one CPU);
events_out is written by a worker thread from one of two event buffers while the jitted
loop fills the other; per-block work is one jitted call per 8 k messages (the event block
stays in L2 between the decoder writing it and the books reading it); nothing is packed,
copied or allocated per message. `digest=False` (`--no-digest`) skips the digest: the
summary's events_xxh3_128 is then None.

With two or more CPUs, an ITCH file at max pace without `--events-out` replays on two
threads (replay_threads.py): one reads and decodes blocks ahead, this one books them, in
order, with the same results byte for byte (0.70-0.86x the one-thread time on the bench
flows, bench/RESULTS.md).

Recorded pace: message (or packet) k is released at start + (t_k - t_0) / speed, in integer
nanoseconds that cannot overflow (scaled_offset_ns; speed within SPEED_MIN..SPEED_MAX).
`--bbo PATH` writes every top-of-book change (runtime/book/bbo.py, runtime/engine/bbo_out.py).
"""
from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xxhash
from numba import njit

from tickpath.runtime.book.bbo import BBO_DTYPE, bbo_note, new_tops
from tickpath.runtime.book.layout import unreliable_report, validate_book_config
from tickpath.runtime.book.orderbook import (
    book_apply,
    book_prefetch,
)
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine import pipeline as P
from tickpath.runtime.engine.indicator_log import books_block, fold_log, new_log
from tickpath.runtime.engine.pipeline import (
    Pipeline,
    finish_tops,
    new_touched,
    process_events_tops_after,
)
from tickpath.runtime.engine import replay_threads
from tickpath.runtime.engine.replay_input import open_input
from tickpath.runtime.feed import pcap
from tickpath.runtime.feed.decoder import decode_packet, new_mold_state
from tickpath.runtime.feed.itchfile import ItchFile, decode_messages, frame_messages
from tickpath.runtime.feed.netheaders import LINK_ETHERNET, LINK_RAW_IPV4, udp_payload
from tickpath.runtime.sys.byteorder import load_be48
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.sys.libc import libc_usleep

PACE_MAX = 0
PACE_RECORDED = 1
SPEED_MIN = 1e-3               # 1000x slower than recorded
SPEED_MAX = 1e6                # a day in under 0.1 s: "as fast as possible" is --pace max
SPEED_UNITS = 1_000_000        # speed is kept as an integer number of millionths
BATCH_EVENTS = 1 << 13         # events per jitted call and digest block: 512 KiB, stays in L2
BATCH_PACKETS = 512
_KIND_ETH = LINK_ETHERNET     # capture link kinds, as netheaders names them
_KIND_IP = LINK_RAW_IPV4
_R = ord("R")
_OFFSET_CAP_NS = 1 << 62       # a wait longer than this (146 years) is saturated
_NO_LATENCY = 1 << 62          # P_LAT_MIN_SEQ: no event is recorded


def detect_format(path: str) -> str:
    """"pcap" or "itch" by content (ConfigError for anything else); opens the file once."""
    inp = open_input(path)
    inp.close()
    return inp.format


@njit(nogil=True, cache=True, _nrt=False)
def scaled_offset_ns(elapsed_ns, speed_units):
    """elapsed_ns / (speed_units / 1e6) in integer ns, saturated at 2^62: no product can
    overflow (speed_units <= 1e12, so the remainder times 1e6 stays below 1e18)."""
    if elapsed_ns <= 0 or speed_units <= 0:
        return np.int64(0)
    q = elapsed_ns // speed_units
    r = elapsed_ns % speed_units
    if q >= _OFFSET_CAP_NS // SPEED_UNITS:
        return np.int64(_OFFSET_CAP_NS)
    return q * SPEED_UNITS + (r * SPEED_UNITS) // speed_units


@njit(nogil=True, cache=True, _nrt=False)
def locate_udp(data, offsets, lengths, orig_lengths, kind, udp_port, out_off, out_len, counters):
    """For each captured frame, where its UDP payload lies in data (-1 when it is not one we
    replay; runtime/feed/netheaders.py parses the headers, every read length-checked)."""
    for i in range(offsets.shape[0]):
        out_off[i] = -1
        out_len[i] = 0
        o = offsets[i]
        n = lengths[i]
        if o < 0 or n < 0 or o + n > data.shape[0]:
            counters[C.FRAMES_DROPPED] += 1
            continue
        if n < orig_lengths[i]:
            counters[C.FRAMES_DROPPED] += 1   # cut by the snaplen: the tail is lost
            continue
        p, plen, _dport, _vlan = udp_payload(data, o, n, kind, udp_port)
        if p < 0:
            counters[C.FRAMES_NOT_FEED] += 1    # not IPv4/UDP, a fragment, or another port
            continue
        out_off[i] = p
        out_len[i] = plen
        counters[C.FRAMES] += 1


@njit(nogil=True, cache=True, _nrt=False)
def _wait_until(t_ns, stop):
    """Sleep/spin until t_ns (CLOCK_REALTIME); False if the stop flag was raised meanwhile."""
    while True:
        now = realtime_ns()
        if now >= t_ns:
            return True
        if stop[0] != 0:
            return False
        if t_ns - now > 200_000:
            libc_usleep(100)


@njit(nogil=True, inline="always")
def _paced(pace, t_ns, stop):
    """Wait for the recorded time t_ns (pace = [mode, wall_start_ns, first_t_ns, speed
    units]); False if stopped. At max pace: True at once."""
    if pace[0] != PACE_RECORDED:
        return True
    return _wait_until(pace[1] + scaled_offset_ns(t_ns - pace[2], pace[3]), stop)


@njit(nogil=True, cache=True, _nrt=False)
def _process_bbo(pipe, events, n, tops, rows, k, symbols, touched, marks):
    """process_events_tops_after's work (books, the trade indicators per trade, the top
    indicators once per call for each book touched; no latency, no out ring: replay uses
    neither) with a top-of-book row after each change. Returns the row count. The
    indicators are pipeline.py's own helpers (tests/runtime/engine/test_replay_bbo.py checks
    both paths leave the same outputs)."""
    books, out, counters = pipe.books, pipe.out, pipe.counters
    n_loc = min(out.shape[0], touched.shape[0], marks.shape[0])
    n_touched = 0
    for i in range(n):
        ev = events[i]
        if ev.msg_type == _R and ev.locate < symbols.shape[0]:
            symbols[ev.locate] = ev.ref2
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if loc >= 0 and loc < n_loc:
            P.trade_indicators(pipe, ev.msg_type, loc)
            n_touched = P.mark_touched(touched, marks, loc, n_touched)
            k = bbo_note(books, tops, loc, ev, rows, k)
    P.tops_after(books, out, touched, n_touched, marks)
    return k


@njit(nogil=True, cache=True, _nrt=False)
def _process(pipe, events, n, bbo_on, tops, rows, k, symbols, touched, marks):
    if bbo_on:
        return _process_bbo(pipe, events, n, tops, rows, k, symbols, touched, marks)
    # nothing reads `out` inside a block on this path: its tops once per block (pipeline.py)
    process_events_tops_after(pipe, events, n, touched, marks)
    return k


@njit(nogil=True, cache=True, _nrt=False)
def replay_itch(buf, pos, first, n, first_seq, last_ts, events, pipe, bbo_on, tops, rows,
                symbols, touched, marks, pace, stop):
    """Decode messages [first, first + n) of an ITCH block straight from its buffer into
    events[0:] and run them through the pipeline (n <= events.shape[0]). Returns (events
    written, top-of-book rows written), or (-1, rows) when stopped."""
    counters = pipe.counters
    if pace[0] != PACE_RECORDED:
        m, _done = decode_messages(buf, pos, first, n, first_seq, last_ts, events, counters)
        return m, _process(pipe, events, m, bbo_on, tops, rows, 0, symbols, touched, marks)
    m = 0
    k = 0
    for j in range(first, first + n):   # one message at a time, each at its recorded time
        if stop[0] != 0:
            return -1, k
        if j + 1 < pos.shape[0] and pos[j + 1] - pos[j] >= 2 + 11 and pos[j + 1] <= buf.shape[0]:
            if not _paced(pace, load_be48(buf, pos[j] + 7), stop):
                return -1, k
        e, _done = decode_messages(buf, pos, j, 1, first_seq, last_ts, events[m:], counters)
        k = _process(pipe, events[m:], e, bbo_on, tops, rows[k:], 0, symbols, touched,
                     marks) + k
        m += e
    return m, k


@njit(nogil=True, cache=True, _nrt=False)
def replay_packets(buf, offsets, lengths, recv_ns, a, b, mold, session, events, pipe,
                   bbo_on, tops, rows, symbols, touched, marks, pace, stop):
    """Decode packets [a, b) of a capture into events[0:] and run them through the pipeline;
    stops before a packet whose worst case would not fit. Returns (events, packets done,
    rows), or events = -1 when stopped."""
    counters = pipe.counters
    m = 0
    k = 0
    i = a
    paced = pace[0] == PACE_RECORDED
    while i < b:
        if stop[0] != 0:
            return -1, i - a, k
        o = offsets[i]
        ln = lengths[i]
        if o >= 0:   # negative: not a feed frame (counted by locate_udp)
            if ln < 0 or o + ln > buf.shape[0]:
                counters[C.PACKETS] += 1
                counters[C.MALFORMED_PACKETS] += 1
            else:
                if m + 1 + ln // 2 > events.shape[0]:
                    break                    # its worst case may not fit: the next call
                if not _paced(pace, recv_ns[i], stop):
                    return -1, i - a, k
                e = decode_packet(buf[o:o + ln], recv_ns[i], mold, session, events, m,
                                  counters)
                if paced:
                    k = _process(pipe, events[m:], e - m, bbo_on, tops, rows[k:], 0,
                                 symbols, touched, marks) + k
                m = e
        i += 1
    if not paced:
        k = _process(pipe, events, m, bbo_on, tops, rows, 0, symbols, touched, marks)
    return m, i - a, k


def check_speed(speed) -> int:
    """--speed as integer millionths; ConfigError naming replay.speed outside the range."""
    try:
        v = float(speed)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and SPEED_MIN <= v <= SPEED_MAX):
        raise ConfigError("speed out of range (a factor of the recorded pace)",
                          key="replay.speed", value=speed, allowed=f"{SPEED_MIN:g}..{SPEED_MAX:g}")
    return int(round(v * SPEED_UNITS))


class _Digest:
    """XXH3-128 of the events, and the events_out file, over two buffers in turn: the loop
    fills one while a worker thread writes the other to events_out. The hash runs inline,
    right after the loop filled the block (still in L2): at ~18 GB/s it costs less than
    handing the block to a thread did (measured on one CPU: 21 ms per 1 M events through
    the worker, ~4 inline). A fingerprint for comparing runs, not a seal: XXH3 is not
    cryptographic, and needs none here."""

    def __init__(self, events_out: str | None, enabled: bool = True):
        self.sha = xxhash.xxh3_128() if enabled else None
        self.bufs = [np.zeros(BATCH_EVENTS, dtype=EVENT_DTYPE) for _ in range(2)]
        self.pending = [None, None]
        self.turn = 0
        self.out = open(events_out, "wb") if events_out else None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="replay-out") if self.out else None

    def next_buffer(self) -> np.ndarray:
        """The buffer to fill now (waits until the worker is done with it)."""
        self.turn ^= 1
        fut = self.pending[self.turn]
        if fut is not None:
            fut.result()
            self.pending[self.turn] = None
        return self.bufs[self.turn]

    def hash(self, events: np.ndarray) -> None:
        """Add events (a block of the two-thread path, in order) to the digest only."""
        if self.sha is not None and len(events):
            self.sha.update(memoryview(events).cast("B"))

    def submit(self, m: int) -> None:
        """The current buffer's first m events are complete: hash them and write them out
        (in order)."""
        if m <= 0:
            return
        view = memoryview(self.bufs[self.turn][:m]).cast("B")
        if self.sha is not None:
            self.sha.update(view)
        if self.out is not None:
            # one worker thread: blocks are written in the order they were submitted
            self.pending[self.turn] = self.pool.submit(self.out.write, view)

    def finish(self) -> str:
        for fut in self.pending:
            if fut is not None:
                fut.result()
        if self.out is not None:
            self.pool.shutdown()
            self.out.close()
        return self.sha.hexdigest() if self.sha is not None else None


MIN_ADD_BYTES = 2 + 36   # the shortest message that adds a live order: length prefix + 'A'
MIN_ORDERS_TABLE = 1 << 10


def orders_bound(max_orders: int, inp) -> int:
    """The order table for this input: max_orders, or fewer when the input's size bounds
    the live orders it can hold (each took an A or F message of >= 38 bytes; U replaces one).
    A table sized for a day (4 M orders, ~200 MB) costs ~0.4 s of page zeroing on a small
    file, where only a few thousand slots are ever touched; a pipe or gzip has no known
    size and gets max_orders. A power of two, as the book's hash wants."""
    if inp.gzipped or inp.file_bytes <= 0:
        return max_orders
    need = max(inp.file_bytes // MIN_ADD_BYTES, MIN_ORDERS_TABLE)
    return min(max_orders, 1 << (need - 1).bit_length())


class Replayer:
    """One replay run: the pipeline, the decoder state and the event sink (see module doc)."""

    def __init__(self, path, *, pace: str = "max", speed: float = 1.0, udp_port: int = 0,
                 session: str | None = None, instruments: int = 8192, max_orders: int = 1 << 20,
                 max_levels: int = 4096, events_out: str | None = None,
                 chunk_bytes: int = 4 << 20, bbo: str | None = None, digest: bool = True):
        self.path = os.fspath(path)
        if pace not in ("max", "recorded"):
            raise ConfigError("pace must be max or recorded", key="replay.pace", value=pace)
        self.speed_units = check_speed(speed)
        if isinstance(udp_port, bool) or not isinstance(udp_port, int) or \
                not 0 <= udp_port <= 65535:
            raise ConfigError("UDP port out of range", key="replay.port", value=udp_port,
                              allowed="0..65535")
        self.pace_mode = PACE_RECORDED if pace == "recorded" else PACE_MAX
        self.udp_port, self.chunk_bytes = int(udp_port), chunk_bytes
        validate_book_config(instruments, max_orders, max_levels)   # refused before any open
        self.input = open_input(self.path)
        try:
            self.max_orders = orders_bound(max_orders, self.input)
            # no prefault: a file touches part of the table and little of the level arena,
            # and faulting all of it first measured slower than the faults the run takes
            self.pipe = Pipeline(n_locates=instruments, max_orders=self.max_orders,
                                 max_levels=max_levels, prefault_pages=False)
        except BaseException:
            self.input.close()
            raise
        self.pipe.params[P.P_LAT_MIN_SEQ] = _NO_LATENCY   # a file has no send times
        self.format = self.input.format
        self.mold, self.session = new_mold_state(session, 1 if self.format == "itch" else 0)
        self.pace = np.zeros(4, dtype=np.int64)
        self.stop = np.zeros(1, dtype=np.int64)
        self.events_out = events_out
        self.bbo_path = bbo
        self.digest_on = bool(digest)
        self.tops = new_tops(instruments)
        self.rows = np.zeros(BATCH_EVENTS if bbo else 1, dtype=BBO_DTYPE)
        self.symbols = np.zeros(instruments, dtype=np.uint64)
        self.touched, self.marks = new_touched(instruments)
        self.updates = np.zeros(instruments, dtype=np.int64)   # two threads: indicator_log.py
        self.n_events = 0
        self.itch_stats: dict = {}
        self.warnings: list[str] = []

    def _start_pace(self, first_t_ns: int) -> None:
        # the loop's clock (CLOCK_REALTIME), read from Python: a call of the jitted
        # realtime_ns here compiled it in every process (~0.2 s of each replay's start)
        self.pace[:] = (self.pace_mode, time.clock_gettime_ns(time.CLOCK_REALTIME), first_t_ns,
                        self.speed_units)

    # --- the two sources ---------------------------------------------------------------------
    def _run_pcap(self, digest, bbo, progress):
        raw = self.input.stream.read()
        cap = pcap.parse_capture(self.path, raw, damaged_tail="warn")
        del raw
        if cap.damaged_tail:
            off, left, what = cap.damaged_tail
            self.warnings.append(f"the capture ends inside a {what} at byte {off}: "
                                 f"{left} bytes not read ({len(cap)} whole records replayed)")
        n = len(cap)
        off = np.empty(n, dtype=np.int64)
        ln = np.empty(n, dtype=np.int64)
        kind = _KIND_ETH if cap.linktype == pcap.LINKTYPE_ETHERNET else _KIND_IP
        locate_udp(cap.data, cap.offsets, cap.lengths, cap.orig_lengths, kind, self.udp_port,
                   off, ln, self.pipe.counters)
        if n:
            self._start_pace(int(cap.ts_ns[0]))
        a = 0
        while a < n:
            sink = digest.next_buffer()
            m, done, k = replay_packets(cap.data, off, ln, cap.ts_ns, a, min(n, a + BATCH_PACKETS),
                                        self.mold, self.session, sink, self.pipe.arrays,
                                        bbo is not None, self.tops, self.rows, self.symbols,
                                        self.touched, self.marks, self.pace, self.stop)
            if m < 0:
                return
            self._emit(digest, m, bbo, k)
            a += done
            if progress:
                progress(a, n)

    def _two_threads(self) -> bool:
        """Decode on a second thread (replay_threads.py): an ITCH file at max pace, no
        --events-out, two or more CPUs allowed."""
        return (self.format == "itch" and self.pace_mode == PACE_MAX and not self.events_out
                and replay_threads.cpus_allowed() >= 2)

    def _process_block(self, events, m, log=None):
        """One decoded block through the pipeline; its top-of-book row count. With a log
        (two threads, no --bbo): the books only, the trades noted in the log and the
        changes counted in self.updates (indicator_log.py)."""
        if log is not None:
            books_block(self.pipe.arrays, events, m, self.updates, log)
            return 0
        return _process(self.pipe.arrays, events, m, self.bbo_path is not None, self.tops,
                        self.rows, 0, self.symbols, self.touched, self.marks)

    def _run_itch(self, digest, bbo, progress):
        if self._two_threads():
            replay_threads.run_itch(self, digest, bbo, progress, self._process_block)
            return
        f = ItchFile(self.path, chunk_bytes=self.chunk_bytes, source=self.input)
        self.itch_stats = f.stats
        last_ts = np.zeros(1, dtype=np.int64)
        cb = (lambda done: progress(done, f.file_bytes or None)) if progress else None
        started = False
        for chunk in f.chunks(cb):
            if not started:
                started = True
                if chunk.n and chunk.pos[1] - chunk.pos[0] >= 13:
                    o = int(chunk.pos[0]) + 7
                    self._start_pace(int.from_bytes(chunk.buf[o:o + 6].tobytes(), "big"))
                else:
                    self._start_pace(0)
            for a in range(0, chunk.n, BATCH_EVENTS):
                sink = digest.next_buffer()
                m, k = replay_itch(chunk.buf, chunk.pos, a, min(BATCH_EVENTS, chunk.n - a),
                                   chunk.first_index + 1, last_ts, sink, self.pipe.arrays,
                                   bbo is not None, self.tops, self.rows, self.symbols,
                                   self.touched, self.marks, self.pace, self.stop)
                if m < 0:
                    self._emit(digest, 0, bbo, k)
                    return
                self._emit(digest, m, bbo, k)

    def _emit(self, digest, m, bbo, k) -> None:
        digest.submit(m)
        self.n_events += m
        if bbo is not None and k > 0:
            bbo.write(self.rows[:k], self.symbols)

    def _warm(self, sink) -> None:
        """Resolve the jitted calls before the clock starts: numba loads a function's cached
        code on its first call (~40 ms for the replay loop, measured inside elapsed_s until
        now). Each is called over nothing, with the run's own argument types: no effect."""
        bbo_on = self.bbo_path is not None
        none64 = np.zeros(1, dtype=np.int64)
        if self.format == "pcap":
            locate_udp(np.zeros(0, np.uint8), none64[:0], np.zeros(0, np.int32),
                       np.zeros(0, np.int32), _KIND_ETH, 0, none64[:0], none64[:0],
                       self.pipe.counters)
            replay_packets(np.zeros(0, np.uint8), none64[:0], none64[:0], none64[:0], 0, 0,
                           self.mold, self.session, sink, self.pipe.arrays, bbo_on, self.tops,
                           self.rows, self.symbols, self.touched, self.marks, self.pace,
                           self.stop)
        else:
            frame_messages(np.zeros(1, np.uint8), 0, np.zeros(2, np.int64))
            if self._two_threads():   # its two calls, each on its own; never replay_itch
                decode_messages(np.zeros(1, np.uint8), np.zeros(2, np.int64), 0, 0, 1,
                                np.zeros(1, dtype=np.int64), sink, C.new_counters())
                if bbo_on:
                    self._process_block(sink, 0)
                else:   # the books part here, the indicators' on the decode thread
                    log = new_log(1)
                    self._process_block(sink, 0, log)
                    fold_log(self.pipe.arrays, log)
                    finish_tops(self.pipe.arrays, self.updates[:0])
            else:   # loading it costs 11 ms: only where it runs
                replay_itch(np.zeros(1, np.uint8), none64, 0, 0, 1, np.zeros(1, np.int64),
                            sink, self.pipe.arrays, bbo_on, self.tops, self.rows, self.symbols,
                            self.touched, self.marks, self.pace, self.stop)

    def run(self, progress=None) -> dict:
        """Replay the whole input; progress(done, total) after each block. Returns a summary."""
        from tickpath.runtime.engine.bbo_out import BboWriter
        digest = _Digest(self.events_out, self.digest_on)
        bbo = BboWriter(self.bbo_path) if self.bbo_path else None
        t_warm = time.perf_counter()
        self._warm(digest.bufs[0])
        t0 = time.perf_counter()
        try:
            if self.format == "pcap":
                self._run_pcap(digest, bbo, progress)
            else:
                self._run_itch(digest, bbo, progress)
            sha = digest.finish()
        finally:
            self.input.close()
            if bbo is not None:
                bbo.close()
        elapsed_s = time.perf_counter() - t0
        c = C.as_dict(self.pipe.counters)
        bad = unreliable_report(self.pipe.books)
        if bad:
            self.warnings.append(f"{len(bad)} instrument book(s) unreliable (a configured bound "
                                 f"was reached; their tops were not trustworthy): locates "
                                 f"{sorted(bad)[:10]}{' ...' if len(bad) > 10 else ''}")
        tail = self.itch_stats.get("truncated_tail_bytes", 0)
        if tail:
            self.warnings.append(f"the file ends inside a message ({tail} bytes not decoded)")
        summary = {"file": self.path, "format": self.format, "events": self.n_events,
                   "max_orders": self.max_orders,
                   "events_xxh3_128": sha, "elapsed_s": elapsed_s,
                   "warm_s": t0 - t_warm,   # loading the compiled code, before the clock
                   "messages_per_s": c["messages"] / elapsed_s if elapsed_s > 0 else 0.0,
                   "counters": {k: v for k, v in c.items() if v},
                   "itch_file": dict(self.itch_stats),
                   "book_unreliable": {str(k): v for k, v in bad.items()},
                   "warnings": list(self.warnings)}
        if bbo is not None:
            summary["bbo"] = {"path": self.bbo_path, "rows": bbo.rows}
        return summary

    def request_stop(self) -> None:
        self.stop[0] = 1


def replay(path, **kw) -> dict:
    """Replay a file (see Replayer for the options); returns the summary."""
    return Replayer(path, **kw).run()


def warn(summary: dict, stream=None) -> None:
    """The summary's warnings, one line each (the slow path's log), on stderr by default."""
    for w in summary.get("warnings", ()):
        print(f"warning: {w}", file=stream or sys.stderr)
