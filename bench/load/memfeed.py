"""A feed backend from memory, for timing the live trade loop without a socket.

`MemFeed(packets)` hands `tickpath trade`'s generated loop (runtime/trading/live.py) the
packets of a `MoldPackets` one per poll, as a quiet-enough feed arrives, and ends the loop
(poll returns -1) after the last one. Everything else is the real loop: frame decode a
message at a time, books, the strategy's step per run, the OUCH send path. So the loop's
cost per message can be measured on any flow shape (bench/micro/test_trade_loop_bench.py),
free of the kernel, the venue and the other CPU's noise that the wall-to-wall bench carries.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.backends.registry import FRAMES


@njit(nogil=True, cache=True, _nrt=False)
def memfeed_poll(bstate, payload, lengths, recv_ns):
    """One packet into slot 0 (its receive time: 1 ns); -1 once every packet was handed over."""
    buf, offsets, lens, cursor = bstate
    k = cursor[0]
    if k >= offsets.shape[0]:
        return -1
    o = offsets[k]
    n = lens[k]
    if n > payload.shape[1] or o < 0 or o + n > buf.shape[0]:
        return -1     # a packet that cannot be a frame: stop rather than read past it
    for j in range(n):
        payload[0, j] = buf[o + j]
    lengths[0] = n
    recv_ns[0] = 1
    cursor[0] = k + 1
    return 1


class MemFeed:
    """The backend shape loop_module wants (kind, poll); `state()` starts the feed over."""

    kind = FRAMES
    poll = staticmethod(memfeed_poll)

    def __init__(self, packets):
        self.buf = packets.buf
        self.offsets = packets.offsets.astype(np.int64)
        self.lengths = packets.lengths.astype(np.int64)

    def state(self):
        return (self.buf, self.offsets, self.lengths, np.zeros(1, np.int64))
