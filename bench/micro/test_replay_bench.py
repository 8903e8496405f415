"""Replay and capture speed: an ITCH 5.0 file through decoder → books → indicators (messages
per second), and the hot-path cost of capturing a batch of frames into the capture ring.
Run: .venv/bin/pytest bench/micro/test_replay_bench.py --benchmark-only"""
from __future__ import annotations

import numpy as np
import pytest
from tickpath.runtime.feed import itchfile
from tickpath.bench.load.market import generate
from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.capture import CaptureWriter, capture_frames
from tickpath.runtime.engine.replay import Replayer
from tickpath.runtime.ipc.ring import release

N_MSGS = 300_000


@pytest.fixture(scope="module")
def itch_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("bench") / "day.NASDAQ_ITCH50.gz"
    itchfile.write_itch_file(p, generate(1, N_MSGS, 200).messages())
    Replayer(p, instruments=256, max_orders=1 << 18).run()     # compile outside the timing
    return p


def test_replay_itch_file_bench(benchmark, itch_path):
    def run():
        return Replayer(itch_path, instruments=256, max_orders=1 << 18).run()
    r = benchmark.pedantic(run, rounds=5, iterations=1)
    assert r["counters"]["messages"] == N_MSGS
    benchmark.extra_info["messages"] = N_MSGS
    if benchmark.stats:  # None when timing is off (--benchmark-disable)
        benchmark.extra_info["messages_per_s_median"] = N_MSGS / benchmark.stats.stats.median


@pytest.mark.parametrize("frame_bytes", [300, 1400])
def test_capture_batch_bench(benchmark, tmp_path, frame_bytes):
    """32 frames per poll into the capture ring (the writer thread is asleep; the ring is
    emptied by hand after each batch so every frame is copied, none dropped)."""
    w = CaptureWriter(str(tmp_path / "b.pcap"), 2048, ring_records=64, idle_sleep_s=3600)
    payload = np.full((32, 2048), 7, np.uint8)
    lengths = np.full(32, frame_bytes, np.int32)
    recv = np.arange(32, dtype=np.int64)
    counters = C.new_counters()

    def batch():
        capture_frames(w.ring.hdr, w.meta, w.rec, payload, lengths, recv, 32, counters)
        release(w.ring.hdr, 32)

    batch()
    benchmark(batch)
    assert counters[C.CAPTURE_DROPPED] == 0
    w.ring.hdr[:] = w.ring.hdr   # keep the ring alive until here
