"""Issue 19 findings 1 and 3 over real sockets on loopback, against the A/B runtime
(RuntimeAB: lines A and B, a retransmission client):
1. one line-A datagram numbered 2^40 ahead (and a far-ahead heartbeat) used to freeze the
   loop walking the jump; now it is counted seq_suspect and the feed goes on;
3. a forged retransmission answer from another port used to be accepted (a fake Add Order,
   ref 666, entered the book); now the recovery socket is connected to the server and only
   the server's answer is taken.
Every wait is bounded; the loop is compiled before any clock starts (first start compiles).
"""
from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.engine.loop import ITERATIONS
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.lines.runner import RuntimeAB

SESSION = "HOSTILE001"
START_TIMEOUT_S = 900   # the first start compiles the A/B loop (minutes on the shared box)


def _cpu() -> int:
    return min(os.sched_getaffinity(0))


def _cfg(**over) -> dict:
    base = {"feed": {"address": "127.0.0.1", "port": 0, "session": SESSION},
            "lines": {"enabled": True, "b_address": "127.0.0.1", "b_port": 0, "wait_ns": 1_000_000},
            "buffers": {"ring_capacity": 1 << 14, "ring_policy": "wait", "hugepages": "off"},
            "book": {"instruments": 8, "max_orders": 1 << 14},
            "cores": {"rx": [_cpu()]}, "idle": {"strategy": "backoff", "max_park_ns": 200_000}}
    for sec, kv in over.items():
        base.setdefault(sec, {}).update(kv)
    return config.merge(base)


def _add(ref: int) -> bytes:
    return itch.encode_add(1, 0, 1000 + ref, ref, "B", 100, "TEST", 10_000 + ref)


def _pkt(seq: int, refs) -> bytes:
    return M.mold_packet(SESSION, seq, [_add(r) for r in refs])


class Collector:
    """Out-ring consumer: every event's (seq, msg_type, order_ref)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def __call__(self, ev):
        with self.lock:
            self.rows.extend(zip(ev["seq"].tolist(), ev["msg_type"].tolist(),
                                 ev["order_ref"].tolist()))

    def refs(self):
        with self.lock:
            return [r for _, t, r in self.rows if t == ord("A")]


def _wait(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def _started(rt) -> None:
    rt.start(cpu=_cpu())
    # the first pass compiles: wait for the loop to run before any test clock starts
    assert _wait(lambda: rt.ctrl[ITERATIONS] > 0, START_TIMEOUT_S)


def test_far_ahead_datagram_on_line_a_does_not_freeze_the_runtime():
    rt = RuntimeAB(_cfg())
    got = Collector()
    try:
        rt.open()
        rt.add_consumer(got, "collector")
        _started(rt)
        a, b = ("127.0.0.1", rt.backend.port), ("127.0.0.1", rt.line_b.port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            # warm-up packet: the loop has compiled once it is delivered
            tx.sendto(_pkt(1, [1]), a)
            assert _wait(lambda: rt.pipe.counters[C.MESSAGES] >= 1, START_TIMEOUT_S)
            seq = 2
            for k in range(50):
                refs = list(range(seq, seq + 4))
                p = _pkt(seq, refs)
                tx.sendto(p, a)
                tx.sendto(p, b)
                seq += 4
                if k == 10:   # the attack: one datagram 2^40 ahead, one heartbeat 2^31 ahead
                    tx.sendto(_pkt(seq + (1 << 40), [999_999]), a)
                    tx.sendto(M.mold_heartbeat(SESSION, seq + (1 << 31)), b)
                time.sleep(0.001)
        assert _wait(lambda: rt.pipe.counters[C.ARB_FIRST_A] + rt.pipe.counters[C.ARB_FIRST_B]
                     >= seq - 1, 30), rt.stats()["lines"]
        t0 = time.monotonic()
        rt.stop(timeout_s=5)
        assert time.monotonic() - t0 < 5
        c = rt.pipe.counters
        assert c[C.SEQ_SUSPECT] == 2 and c[C.SEQ_RESETS] == 0
        assert c[C.UNRECOVERABLE] == 0 and c[C.GAPS] == 0
        assert _wait(lambda: len(got.refs()) == seq - 1, 10)
        assert got.refs() == list(range(1, seq))      # every message once, in order
    finally:
        rt.close()


def test_forged_retransmission_answer_from_another_port_is_not_taken():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        server.bind(("127.0.0.1", 0))
        spoofer.bind(("127.0.0.1", 0))
        server.settimeout(30)
        srv = f"127.0.0.1:{server.getsockname()[1]}"
        rt = RuntimeAB(_cfg(recovery={"server": srv, "bind_address": "127.0.0.1",
                                      "deadline_ns": 20_000_000_000, "timeout_ns": 5_000_000_000}))
        got = Collector()
        try:
            rt.open()
            rt.add_consumer(got, "collector")
            _started(rt)
            a, b = ("127.0.0.1", rt.backend.port), ("127.0.0.1", rt.line_b.port)
            tx.sendto(_pkt(1, [1]), a)
            assert _wait(lambda: rt.pipe.counters[C.MESSAGES] >= 1, START_TIMEOUT_S)
            tx.sendto(_pkt(2, [2, 3]), a)
            tx.sendto(_pkt(8, [8, 9]), a)              # 4..7 lost on both lines
            tx.sendto(_pkt(8, [8, 9]), b)
            req, peer = server.recvfrom(64)            # the runtime asks the server
            first, count = int.from_bytes(req[10:18], "big"), int.from_bytes(req[18:20], "big")
            assert (first, count) == (4, 4)
            # the attacker answers first, from another port, with a fake Add Order ref 666
            spoofer.sendto(_pkt(4, [666, 666, 666, 666]), peer)
            time.sleep(0.2)
            assert rt.pipe.counters[C.RECOVERED] == 0
            server.sendto(_pkt(4, [4, 5, 6, 7]), peer)   # the real answer
            assert _wait(lambda: rt.pipe.counters[C.RECOVERED] == 4, 10), rt.stats()["lines"]
            assert _wait(lambda: len(got.refs()) == 9, 10)
            rt.stop(timeout_s=5)
            assert got.refs() == list(range(1, 10)) and 666 not in got.refs()
            assert rt.pipe.counters[C.UNRECOVERABLE] == 0
        finally:
            rt.close()


def test_recovery_server_that_is_not_ipv4_port_is_refused_naming_the_key():
    from tickpath.runtime.core.errors import ConfigError
    for bad in ("127.0.0.1:²", "127.0.0.1:0", "127.0.0.1:70000", "localhost:9", "1.2.3.4"):
        with pytest.raises(ConfigError) as ei:
            _cfg(recovery={"server": bad})
        assert "recovery.server" in str(ei.value)
