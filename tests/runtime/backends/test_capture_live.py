"""Capture from real loopback traffic: sender → kernel socket → CaptureBackend (ring → writer
thread → pcap/pcapng) → the same frames come back from the file, `tickpath replay` of the file
gives exactly the live events, and the FPGA emulator's pcap input accepts it."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.sender import Sender
from tickpath.runtime.config import schema as config
from tickpath.runtime.feed import pcap
from tickpath.runtime.engine import replay
from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.capture import CaptureBackend, CaptureWriter, capture_frames
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import pop_into
from tickpath.runtime.engine.runner import Runtime
from tickpath.runtime.backends.socket import SocketBackend

SESSION = "CAPTSESS01"
N_INSTR = 30


@pytest.fixture(scope="module")
def feed():
    return pack_mold(generate(5, 12_000, N_INSTR), SESSION, max_messages_per_packet=4)


def _cfg(path, fmt="auto"):
    return config.merge({
        "feed": {"port": 0, "session": SESSION}, "cores": {"rx": [max(os.sched_getaffinity(0))]},
        "idle": {"strategy": "backoff"}, "book": {"instruments": N_INSTR + 1, "max_orders": 1 << 16},
        "buffers": {"ring_capacity": 1 << 15, "ring_policy": "wait"},
        "capture": {"path": str(path), "format": fmt}})


def _run_live(cfg, feed):
    """Send the feed through a capturing Runtime; returns (live events, sender buf, stats)."""
    with Runtime(cfg) as rt:
        assert isinstance(rt.backend, CaptureBackend)
        rt.open().start()
        s = Sender(feed, "127.0.0.1", rt.backend.port, 40_000, max_seconds=30)
        s.start()
        got = np.zeros(20_000, EVENT_DTYPE)
        n = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
            if s.done() and rt.pipe.counters[C.MESSAGES] >= s.stats()["sent_messages"]:
                n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
                break
            time.sleep(0.002)
        s.close()
        rt.stop()
        assert s.stats()["sent_messages"] == feed.msg_count.sum()
        frames = int(rt.pipe.counters[C.FRAMES])
        dropped = int(rt.pipe.counters[C.CAPTURE_DROPPED])
        buf = s.buf.copy()
    return got[:n], buf, frames, dropped


@pytest.mark.parametrize("ext", ["pcap", "pcapng"])
def test_capture_of_live_traffic_replays_to_the_same_events(tmp_path, feed, ext):
    path = tmp_path / f"live.{ext}"
    live, sent_buf, frames, dropped = _run_live(_cfg(path), feed)
    assert dropped == 0 and frames == feed.n_packets
    cap = pcap.read_capture(path)
    assert len(cap) == frames and cap.linktype == pcap.LINKTYPE_ETHERNET
    payloads = [p for _t, _port, p in pcap.udp_payloads(cap)]
    sent = [sent_buf[o:o + n].tobytes() for o, n in zip(feed.offsets, feed.lengths)]
    assert payloads == sent                      # byte for byte, in order (loopback keeps order)
    assert np.all(np.diff(cap.ts_ns) >= 0) and cap.ts_ns[0] > 1_600_000_000 * 10**9
    out1, out2 = tmp_path / "ev1.bin", tmp_path / "ev2.bin"
    r1 = replay.replay(path, instruments=N_INSTR + 1, max_orders=1 << 16, events_out=str(out1))
    r2 = replay.replay(path, instruments=N_INSTR + 1, max_orders=1 << 16, events_out=str(out2))
    assert out1.read_bytes() == out2.read_bytes() and r1["events_xxh3_128"] == r2["events_xxh3_128"]
    # same events as the live runtime produced, receive timestamps included
    assert out1.read_bytes() == live.tobytes()
    assert r1["counters"]["messages"] == feed.msg_count.sum()


def test_fpga_emulator_reads_the_capture(tmp_path, feed):
    from tickpath.fpga.emulator import inputs as fp
    path = tmp_path / "live.pcapng"
    _run_live(_cfg(path), feed)
    src = fp.PcapSource(str(path))
    assert len(src.cap) == feed.n_packets and src.kind == fp.dp.KIND_ETHERNET


def test_writer_falling_behind_is_counted_not_blocking(tmp_path):
    # a 4-record ring and a writer that sleeps: the producer never waits, drops are counted
    w = CaptureWriter(str(tmp_path / "slow.pcap"), 64, ring_records=4, idle_sleep_s=0.2)
    try:
        payload = np.arange(16 * 64, dtype=np.uint64).astype(np.uint8).reshape(16, 64)
        lengths = np.full(16, 40, np.int32)
        recv = np.arange(16, dtype=np.int64) + 10**18
        counters = C.new_counters()
        time.sleep(0.05)   # the writer is now asleep
        capture_frames(w.ring.hdr, w.meta, w.rec, payload, lengths, recv, 16, counters)
        assert counters[C.CAPTURE_DROPPED] == 12
    finally:
        w.close()
    cap = pcap.read_capture(tmp_path / "slow.pcap")
    assert len(cap) == 4
    assert [p for *_x, p in pcap.udp_payloads(cap)] == [payload[i, :40].tobytes() for i in range(4)]


def test_oversized_datagram_is_written_as_a_snaplen_cut(tmp_path):
    w = CaptureWriter(str(tmp_path / "cut.pcapng"), 64, ring_records=8)
    payload = np.full((2, 64), 7, np.uint8)
    lengths = np.array([-1, 10], np.int32)      # -1: the socket reported MSG_TRUNC
    counters = C.new_counters()
    capture_frames(w.ring.hdr, w.meta, w.rec, payload, lengths, np.array([1, 2], np.int64), 2, counters)
    w.close()
    cap = pcap.read_capture(tmp_path / "cut.pcapng")
    assert list(cap.lengths) == [42 + 64, 42 + 10] and cap.orig_lengths[0] > cap.lengths[0]
    r = replay.replay(tmp_path / "cut.pcapng", instruments=4, max_orders=64)
    assert r["counters"]["frames_dropped"] == 1 and r["counters"]["frames"] == 1


def test_capture_config_is_validated(tmp_path):
    from tickpath.runtime.core.errors import ConfigError
    with pytest.raises(ConfigError, match="capture.format"):
        _cfg(tmp_path / "x.pcap", fmt="erf")
    with pytest.raises(ConfigError, match="capture.ring_records"):
        config.merge({"capture": {"path": "x.pcap", "ring_records": 1000}})
    with pytest.raises(ConfigError, match="cannot create capture file"):
        CaptureBackend(SocketBackend(port=0), str(tmp_path / "no" / "such" / "dir.pcap"), 2048).open(
            np.zeros((4, 2048), np.uint8))
