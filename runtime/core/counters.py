"""Counter slots: one int64 array per pipeline, indexed by these constants.

Everything that can be lost, damaged or refused has a slot here, so "nothing lost silently"
is a property of one array that stats, reports and tests read. Hot loops only add to slots.
"""
from __future__ import annotations

import numpy as np

# decoder (MoldUDP64 + ITCH)
PACKETS = 0            # MoldUDP64 packets seen
MESSAGES = 1           # ITCH messages walked (any type)
EVENTS = 2             # event records produced
HEARTBEATS = 3         # packets with message count 0
END_OF_SESSION = 4     # packets with message count 0xFFFF
GAPS = 5               # sequence gaps detected (events)
GAP_MESSAGES = 6       # messages missing in those gaps
DUPLICATES = 7         # messages with seq < expected (already seen)
MALFORMED_PACKETS = 8  # packets shorter than the header / lengths running past the end
MALFORMED_MESSAGES = 9 # zero-length or too-short messages for their type
UNKNOWN_TYPES = 10     # message types the spec does not define
SKIPPED_TYPES = 11     # spec types we walk over but do not turn into events
WRONG_SESSION = 12     # packets from another MoldUDP64 session
EVENTS_DROPPED = 13    # events not written because the output batch was full
# backend
FRAMES = 16            # frames received
FRAMES_DROPPED = 17    # frames the backend knows it lost (kernel/ring drops)
FRAMES_NOT_FEED = 18   # frames that were not for the feed (AF_XDP: non-UDP etc.)
RECV_ERRORS = 19       # transient receive errors
POLLS = 20             # calls to poll
EMPTY_POLLS = 21       # polls that returned nothing
# books
BOOK_ADDS = 24
BOOK_UNKNOWN_ORDER = 25   # references to orders not in the book
BOOK_FULL = 26            # adds refused because the order table was full
BOOK_LEVELS_FULL = 27     # price levels beyond capacity
BOOK_BAD_LOCATE = 28      # locate code beyond the configured instruments
BOOK_OVERFILL = 29        # executions/cancels of more shares than remained (clamped)
BOOK_BAD_ADD = 30         # adds refused as malformed: duplicate ref, side not B/S, 0 shares
BOOK_UNRELIABLE = 31      # instruments whose book a bound made unreliable (once each)
# out ring / consumers
RING_DROPPED = 32         # drop-newest policy dropped a record
RING_WAITS = 33           # wait policy spun on a full ring
LATENCY_RECORDED = 34
LATENCY_OVERFLOW = 35     # latencies above the histogram's range
STALE_FEED = 36           # heartbeat timeouts
# A/B arbitration and MoldUDP64 retransmission (runtime/arbiter.py, runtime/recovery.py)
ARB_FIRST_A = 37          # messages delivered from line A (it brought them first)
ARB_FIRST_B = 38          # messages delivered from line B
ARB_DUP_A = 39            # copies on line A of messages already had (A was second)
ARB_DUP_B = 40            # copies on line B of messages already had
ARB_MISSING_BOTH = 41     # messages neither line brought within the arbitration wait
RECOVERED = 42            # messages delivered from the retransmission server
UNRECOVERABLE = 43        # messages given up at the deadline (delivered as gap events)
UNRECOVERABLE_GAPS = 44   # gap events the arbiter delivered
RETRANS_REQUESTS = 45     # request packets sent (first tries)
RETRANS_RETRIES = 46      # request packets re-sent after a timeout
RETRANS_WRONG_SESSION = 47  # responses from another session
RETRANS_UNASKED = 48      # response messages for sequences never asked for
RETRANS_TRUNCATED = 49    # responses shorter than their header / messages past the end
RETRANS_DUPLICATES = 50   # asked-for messages that a line brought in the meantime
REORDER_OVERFLOW = 51     # messages beyond the reorder window or too long to hold
# capture (runtime/capture.py)
CAPTURE_DROPPED = 52      # frames not captured: the capture writer fell behind (ring full)
# hostile or damaged input (issue 19)
SEQ_SUSPECT = 53          # packets beyond the gap window, not adopted (damage or spoof; dropped)
SEQ_RESETS = 54           # consistent runs of far-ahead packets adopted as a session reset
HOLES_UNTRACKED = 55      # missing runs the full hole table could not take at once
CAPTURE_ERRORS = 56       # capture writer errors (disk full...): capture stopped or degraded
N_COUNTERS = 64

NAMES = {
    v: k.lower()
    for k, v in dict(globals()).items()
    if k.isupper() and isinstance(v, int) and k != "N_COUNTERS"
}


def new_counters() -> np.ndarray:
    return np.zeros(N_COUNTERS, dtype=np.int64)


def as_dict(counters: np.ndarray) -> dict:
    """Counter array → {name: value}, every named slot included (zeros too)."""
    return {name: int(counters[i]) for i, name in sorted(NAMES.items())}
