"""`tickpath replay` of an ITCH file on two threads: one reads and decodes, one books.

The one-thread replay spends ~20 % of an event on reading the file, framing and decoding it
and the rest on books and indicators (bench/RESULTS.md). With a second CPU the two halves
overlap: a decode thread reads blocks of the file (itchfile.ItchFile), frames them and
decodes BLOCK_EVENTS messages at a time (16 k; 8 k with --bbo) into one of N_BUFFERS event
buffers; the calling thread runs each filled buffer through the pipeline (books, indicators,
top-of-book rows) in order and hands it back. The decode thread also hashes each block into
the digest (the pipeline only reads events, and the books thread is the busier of the two).
Both jitted calls release the GIL (nogil), so the threads run at once; the hand-offs are two
queues, one put and one get a block. Without --bbo the books thread does not compute the
indicators either: it logs what they need and the decode thread folds each block's log in
when it takes that buffer back, a block behind (indicator_log.py); whatever is still logged
when the decoder ends is folded by the calling thread, in order, and the books' top-of-book
indicators are written once from the final books (pipeline.finish_tops), before run_itch
returns.

Same results as the one-thread path, byte for byte: the events are decoded in file order
into whole buffers and processed in that order (the digest, the books and the BBO rows are
the same; tests/runtime/engine/test_replay_threads.py compares them). The decoder keeps its
own counters (one writer per array) and they are added to the pipeline's at the end.

Used only where it can help: an ITCH file, at max pace, without --events-out (its writer
thread owns the event buffers), with two or more CPUs allowed; everything else takes the
one-thread path. A stop request ends the decode thread at its next block.
"""
from __future__ import annotations

import os
import queue
import threading

import numpy as np

from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.indicator_log import fold_log, new_log
from tickpath.runtime.engine.pipeline import finish_tops
from tickpath.runtime.feed.itchfile import ItchFile, decode_messages

N_BUFFERS = 4      # decoded blocks in flight: the decoder may run 3 blocks ahead
# events a block without --bbo (1 MiB): each block costs the books thread two queue
# hand-offs (~20 us on a VM); twice the replay's 8 k took shallow 28-30 -> 25-28 ms and
# deep 37-39 -> 35-36 a million messages, wide even (bench/RESULTS.md, fourteenth session)
BLOCK_EVENTS = 1 << 14
_DONE = None       # the decode thread's last word when the file ended (or a stop came)


def cpus_allowed() -> int:
    """CPUs this process may run on (the two-thread path wants two)."""
    return len(os.sched_getaffinity(0))


class _Decoder(threading.Thread):
    """Reads, frames and decodes the file into free buffers; posts (buffer, events) in order,
    then _DONE, or the exception that stopped it. A buffer that comes back with a filled
    indicator log (logs not None) has that log folded into the pipeline first."""

    def __init__(self, replayer, bufs, progress, digest, logs):
        super().__init__(name="replay-decode", daemon=True)
        self.rp = replayer
        self.bufs = bufs
        self.logs = logs
        self.arrays = replayer.pipe.arrays
        self.digest = digest
        self.free: queue.Queue = queue.Queue()
        self.ready: queue.Queue = queue.Queue()
        for i in range(len(bufs)):
            self.free.put(i)
        self.counters = C.new_counters()
        self.abort = False
        self.file = ItchFile(replayer.path, chunk_bytes=replayer.chunk_bytes,
                             source=replayer.input)
        self.progress = progress

    def run(self):
        try:
            f = self.file
            cb = (lambda done: self.progress(done, f.file_bytes or None)) if self.progress else None
            last_ts = np.zeros(1, dtype=np.int64)
            for chunk in f.chunks(cb):
                for a in range(0, chunk.n, len(self.bufs[0])):
                    i = self.free.get()
                    if self.logs is not None:   # block order: buffers come back in order
                        fold_log(self.arrays, self.logs[i])
                    if self.abort or self.rp.stop[0] != 0:
                        self.ready.put(_DONE)
                        return
                    m, _ = decode_messages(chunk.buf, chunk.pos, a,
                                           min(len(self.bufs[i]), chunk.n - a),
                                           chunk.first_index + 1, last_ts, self.bufs[i],
                                           self.counters)
                    # hashed here, in file order: the books thread is the busier one, and
                    # the pipeline only reads the events
                    self.digest.hash(self.bufs[i][:m])
                    self.ready.put((i, m))
            self.ready.put(_DONE)
        except BaseException as exc:   # handed to the calling thread, which raises it
            self.ready.put(exc)


def run_itch(replayer, digest, bbo, progress, process) -> None:
    """Replay the file on two threads; `process(events, m, log)` runs one decoded block
    through the pipeline and returns its BBO row count (the Replayer's own jitted call);
    log is None with --bbo, else the block's IndicatorLog to fill."""
    # with --bbo a block's rows must fit the Replayer's (one a event): its block size;
    # the digest's two buffers are idle on this path (it hashes via digest.hash): reused
    n_ev = len(digest.bufs[0]) if bbo is not None else BLOCK_EVENTS
    bufs = [b for b in digest.bufs if len(b) == n_ev]
    bufs += [np.zeros(n_ev, dtype=EVENT_DTYPE) for _ in range(N_BUFFERS - len(bufs))]
    # without --bbo, the indicators fold on the decode thread (its rows need them per event)
    logs = None if bbo is not None else [new_log(len(bufs[0])) for _ in bufs]
    dec = _Decoder(replayer, bufs, progress, digest, logs)
    replayer.itch_stats = dec.file.stats
    dec.start()
    try:
        while True:
            item = dec.ready.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            i, m = item
            k = process(bufs[i], m, None if logs is None else logs[i])
            replayer.n_events += m
            if bbo is not None and k > 0:
                bbo.write(replayer.rows[:k], replayer.symbols)
            dec.free.put(i)
    finally:
        dec.abort = True
        for _ in range(N_BUFFERS):   # wake a decoder waiting for a buffer: it sees abort
            dec.free.put(0)
        dec.join()
        replayer.pipe.counters += dec.counters
        while logs is not None and not dec.free.empty():   # logs the decoder did not fold
            fold_log(dec.arrays, logs[dec.free.get_nowait()])   # in order; a folded one is empty
    if logs is not None:   # the books' tops and counts, once, from the final books
        finish_tops(replayer.pipe.arrays, replayer.updates)
