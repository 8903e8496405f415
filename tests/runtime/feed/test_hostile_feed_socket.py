"""Issue 19 finding 2 over a real socket: a single-line `tickpath run` runtime (make_runtime,
kernel socket backend on loopback) receives one spoofed datagram numbered 2^62 - 2 from
another sender; before, the decoder adopted it and the next 10,000 legitimate messages gave
0 events (all "duplicates") until restart. Now it is counted seq_suspect and every
legitimate message decodes. The receive loop is compiled (or loaded) before the clock starts.
"""
from __future__ import annotations

import os
import socket
import time

import pytest

from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.engine.loop import ITERATIONS
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.feed.decoder import MAX_SEQ, MOLD_MAX_GAP
from tickpath.runtime.lines.runner import make_runtime

SESSION = "SPOOF00001"
START_TIMEOUT_S = 900


def _cfg(**feed):
    return config.merge({
        "feed": {"address": "127.0.0.1", "port": 0, "session": SESSION, **feed},
        "cores": {"rx": [max(os.sched_getaffinity(0))]}, "idle": {"strategy": "backoff"},
        "book": {"instruments": 8, "max_orders": 1 << 15}, "buffers": {"hugepages": "off"}})


def _wait(cond, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cond():
        time.sleep(0.005)
    return cond()


def _pkt(seq: int, n: int) -> bytes:
    return M.mold_packet(SESSION, seq, [itch.encode_delete(1, 0, 0, seq + i) for i in range(n)])


def test_one_spoofed_datagram_does_not_black_out_a_single_line():
    rt = make_runtime(_cfg())
    assert rt.mold[MOLD_MAX_GAP] == 1 << 20          # the [feed] gap window reached the decoder
    with rt:
        rt.open().start()
        assert _wait(lambda: rt.ctrl[ITERATIONS] > 0, START_TIMEOUT_S)
        dest = ("127.0.0.1", rt.backend.port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as feed, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:
            feed.sendto(_pkt(1, 10), dest)
            assert _wait(lambda: rt.pipe.counters[C.EVENTS] >= 10, START_TIMEOUT_S)
            spoofer.sendto(_pkt(MAX_SEQ - 1, 1), dest)   # the finding's 2^62 - 2
            assert _wait(lambda: rt.pipe.counters[C.SEQ_SUSPECT] == 1, 10)
            seq = 11
            for k in range(1000):                      # 10,000 legitimate messages
                feed.sendto(_pkt(seq, 10), dest)
                seq += 10
                if k % 50 == 49:
                    time.sleep(0.002)                  # inside the receive buffer
            assert _wait(lambda: rt.pipe.counters[C.MESSAGES] >= seq - 1, 30)
        rt.stop()
        c = rt.pipe.counters
        assert c[C.EVENTS] == seq - 1 and c[C.DUPLICATES] == 0
        assert c[C.SEQ_SUSPECT] == 1 and c[C.SEQ_RESETS] == 0 and c[C.GAPS] == 0
        assert rt.backend.kernel_drops() == 0


def test_gap_window_off_in_the_config_keeps_the_old_rule():
    rt = make_runtime(_cfg(max_gap_msgs=0))
    try:
        assert rt.mold[MOLD_MAX_GAP] == 0
    finally:
        rt.close()
