"""The same pipeline on frames from an AF_XDP socket: `backend.kind = "afxdp"` in the config,
a veth pair in test-made namespaces, and the events must equal an offline decode of the bytes
sent — the same check the kernel-socket backend passes."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.sender import Sender
from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed.decoder import decode_buffer, new_mold_state
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import pop_into
from tickpath.runtime.engine.runner import Runtime

from netns import VethPair, netns_unavailable_reason  # noqa: E402

SESSION = "XDPSESS001"
PORT = 26411


def test_runtime_on_afxdp_equals_offline_decode():
    why = netns_unavailable_reason()
    if why:
        pytest.skip(why)
    feed = pack_mold(generate(5, 12_000, 20), SESSION, max_messages_per_packet=3)
    with VethPair() as v:
        cfg = config.merge({
            "feed": {"address": v.ip_rx, "port": PORT, "session": SESSION},
            "nic": {"interface": v.if_rx},
            "backend": {"kind": "afxdp", "afxdp": {"mode": "skb", "n_frames": 4096}},
            "idle": {"strategy": "backoff"}, "book": {"instruments": 21, "max_orders": 1 << 14},
            "buffers": {"ring_capacity": 1 << 15, "ring_policy": "wait"},
        })
        with v.inside(v.ns_rx):
            rt = Runtime(cfg)
            rt.open()
        try:
            rt.start()
            with v.inside(v.ns_tx):
                s = Sender(feed, v.ip_rx, PORT, 30_000, max_seconds=30)
            s.start()
            got = np.zeros(20_000, EVENT_DTYPE)
            n = 0
            deadline = time.monotonic() + 40
            want = int(feed.msg_count.sum())
            while time.monotonic() < deadline:
                n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
                if s.done() and rt.pipe.counters[C.MESSAGES] >= want:
                    n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
                    break
                time.sleep(0.002)
            s.close()
            rt.stop()
            st = rt.stats()
        finally:
            rt.close()
    ref = np.zeros(want + feed.n_packets, EVENT_DTYPE)
    mold, sess = new_mold_state(SESSION)
    m = decode_buffer(s.buf, feed.offsets, feed.lengths, 0, feed.n_packets,
                      np.zeros(feed.n_packets, np.int64), mold, sess, ref, 0, C.new_counters())
    c = st["counters"]
    assert c["messages"] == want and c["gaps"] == 0 and c["frames"] == feed.n_packets
    got = got[:n].copy()
    got["ts_recv"] = 0
    assert n == m and got.tobytes() == ref[:m].tobytes()
    assert st["backend_stats"]  # XDP statistics merged in
