"""The runtime on the FPGA path: `backend.kind = "fpga-emu"`, the emulator process presenting
xdma0_* nodes in a directory, the feed sent over UDP to the emulator; the event records
that reach the books (no software decoder on this path) equal the software decoder's output
for the same bytes, and the card's counters merge into the runtime's stats."""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import numpy as np

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.sender import Sender
from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed.decoder import decode_buffer, new_mold_state
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import pop_into
from tickpath.runtime.engine.runner import Runtime

from fpga_helpers import start_emulator, stop_emulator  # noqa: E402

SESSION = "FPGASESS01"


def test_runtime_on_fpga_emulator_equals_software_decode(tmp_path):
    feed = pack_mold(generate(9, 8_000, 16), SESSION, max_messages_per_packet=3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu = start_emulator(tmp_path, "--udp", f"127.0.0.1:{port}", "--fifo-depth", "65536")
    try:
        cfg = config.merge({
            "backend": {"kind": "fpga-emu", "fpga": {"device_dir": str(tmp_path)}},
            "idle": {"strategy": "backoff"}, "book": {"instruments": 17, "max_orders": 1 << 14},
            "buffers": {"ring_capacity": 1 << 14, "ring_policy": "wait"},
        })
        with Runtime(cfg) as rt:
            rt.open().start()
            snd = Sender(feed, "127.0.0.1", port, 20_000, max_seconds=30)
            snd.start()
            want = int(feed.msg_count.sum())
            got = np.zeros(want + 100, EVENT_DTYPE)
            n = 0
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and n < want:
                n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
                time.sleep(0.002)
            snd.close()
            rt.stop()
            st = rt.stats()
    finally:
        stop_emulator(emu)
    ref = np.zeros(want + feed.n_packets, EVENT_DTYPE)
    mold, sess = new_mold_state(SESSION)
    m = decode_buffer(snd.buf, feed.offsets, feed.lengths, 0, feed.n_packets,
                      np.zeros(feed.n_packets, np.int64), mold, sess, ref, 0, C.new_counters())
    assert n == m == want  # no gap events: nothing lost between sender, card and host
    got = got[:n].copy()
    got["ts_recv"] = 0
    assert got.tobytes() == ref[:m].tobytes()
    assert st["counters"]["book_adds"] > 0
    assert st["backend_stats"]  # the card's registers are merged into the stats
