"""Fault injection around a frame backend: each fault does what it says, counts what it did,
loses nothing it did not choose to lose, and is reproducible from its seed; the [faults]
config section is validated and makes Runtime wrap its backend."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from numba import njit
from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.registry import FRAMES
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.backends.faults import FaultBackend, FaultConfig

N_SLOTS, SLOT_BYTES = 8, 64


@njit(nogil=True)
def array_poll(state, payload, lengths, recv_ns):
    frames, flens, cursor, per_poll = state
    n = 0
    while n < per_poll[0] and n < payload.shape[0] and cursor[0] < frames.shape[0]:
        k = cursor[0]
        payload[n, :flens[k]] = frames[k, :flens[k]]
        lengths[n] = flens[k]
        recv_ns[n] = 1000 + k
        cursor[0] += 1
        n += 1
    return n


class ArrayBackend:
    """Frames from memory: frame k carries its index k in its first 4 bytes."""
    kind = FRAMES
    poll = array_poll

    def __init__(self, n_frames, per_poll=N_SLOTS):
        self.frames = np.zeros((n_frames, SLOT_BYTES), np.uint8)
        self.frames[:, :4] = np.arange(n_frames, dtype="<u4").view(np.uint8).reshape(n_frames, 4)
        self.frames[:, 4:] = 0xAB
        self.flens = np.full(n_frames, 48, np.int32)
        self.state = (self.frames, self.flens, np.zeros(1, np.int64), np.array([per_poll], np.int64))
        self.closed = False

    def open(self, payload=None, counters=None):
        return self

    def stats(self):
        return {"cursor": int(self.state[2][0])}

    def close(self):
        self.closed = True


def _drain(fb, quiet_s=0.0, max_polls=100_000):
    """Poll until the inner backend is exhausted and nothing is held; returns [(index, len)]."""
    payload = np.zeros((N_SLOTS, SLOT_BYTES), np.uint8)
    lengths = np.zeros(N_SLOTS, np.int32)
    recv = np.zeros(N_SLOTS, np.int64)
    out = []
    t_end = None
    for _ in range(max_polls):
        n = fb.poll(fb.state, payload, lengths, recv)
        for i in range(n):
            idx = int(payload[i, :4].view("<u4")[0]) if lengths[i] >= 4 else -1
            out.append((idx, int(lengths[i])))
        if n == 0 and fb.inner.state[2][0] == len(fb.inner.frames) and fb.live[2] == 0:
            if t_end is None:
                t_end = time.monotonic()
            if time.monotonic() - t_end >= quiet_s:
                break
    return out


def _fb(n_frames=5000, **kw):
    return FaultBackend(ArrayBackend(n_frames), FaultConfig(**kw), N_SLOTS, SLOT_BYTES).open(
        np.zeros((N_SLOTS, SLOT_BYTES), np.uint8))


def test_no_faults_passes_everything_in_order():
    out = _drain(_fb())
    assert out == [(k, 48) for k in range(5000)]


def test_drop_fraction_is_seeded_and_counted():
    a, b, c = _fb(seed=7, drop_rate=0.1), _fb(seed=7, drop_rate=0.1), _fb(seed=8, drop_rate=0.1)
    oa, ob, oc = _drain(a), _drain(b), _drain(c)
    assert oa == ob and oa != oc                       # same seed, same losses
    st = a.fault_stats()
    assert st["seen"] == 5000 and st["dropped"] == 5000 - len(oa)
    assert 350 < st["dropped"] < 650
    idx = [i for i, _ in oa]
    assert idx == sorted(idx)                          # dropping never reorders


def test_bursts_lose_consecutive_runs():
    fb = _fb(seed=3, burst_rate=0.01, burst_len=5)
    idx = [i for i, _ in _drain(fb)]
    missing = sorted(set(range(5000)) - set(idx))
    assert fb.fault_stats()["burst_dropped"] == len(missing) > 0
    runs, start = [], missing[0]
    for prev, cur in zip(missing, missing[1:] + [None]):
        if cur != prev + 1:
            runs.append(prev - start + 1)
            start = cur
    # back-to-back bursts merge into multiples of 5; a run at the very end may be cut
    assert all(r % 5 == 0 for r in runs[:-1])


def test_duplicates_are_extra_copies():
    fb = _fb(seed=4, duplicate_rate=0.2)
    idx = [i for i, _ in _drain(fb)]
    assert sorted(set(idx)) == list(range(5000))
    assert len(idx) - 5000 == fb.fault_stats()["duplicated"] > 600


def test_reorder_keeps_every_frame_within_the_window():
    fb = _fb(seed=5, reorder_rate=0.1, reorder_window=4, reorder_timeout_ns=10**9)
    idx = [i for i, _ in _drain(fb)]
    assert sorted(idx) == list(range(5000)) and idx != sorted(idx)
    st = fb.fault_stats()
    assert st["reordered"] > 300 and st["released"] == st["reordered"] and st["hold_full"] == 0
    # a reordered frame comes out at most window frames later (plus one poll batch of due frames)
    late = max(pos - k for pos, k in enumerate(idx))
    assert 0 < late <= 4 + N_SLOTS


def test_truncate_cuts_length():
    fb = _fb(n_frames=2000, seed=6, truncate_rate=0.25)
    out = _drain(fb)
    cut = [ln for _i, ln in out if ln < 48]
    assert len(out) == 2000 and len(cut) == fb.fault_stats()["truncated"] > 300
    assert all(0 <= ln < 48 for ln in cut)


def test_delay_holds_frames_for_delay_ns():
    fb = _fb(n_frames=200, seed=9, delay_rate=0.5, delay_ns=20_000_000)
    t0 = time.monotonic()
    out = _drain(fb, quiet_s=0.05)
    assert time.monotonic() - t0 >= 0.02
    assert sorted(i for i, _ in out) == list(range(200))
    assert fb.fault_stats()["delayed"] > 50


@pytest.mark.parametrize("table,key", [
    ({"drop_rate": 1.5}, "faults.drop_rate"),
    ({"reorder_window": 0}, "faults.reorder_window"),
    ({"delay_rate": 0.1}, "delay_ns"),
    ({"burst_len": True}, "faults.burst_len"),
])
def test_bad_fault_config_is_refused(table, key):
    with pytest.raises(ConfigError, match=key):
        config.merge({"faults": table})


def test_unknown_fault_key_is_refused():
    with pytest.raises(ConfigError, match="unknown key"):
        config.merge({"faults": {"loss": 0.1}})


def test_runtime_wraps_its_backend_and_the_decoder_sees_the_losses():
    from tickpath.bench.load.market import generate, pack_mold
    from tickpath.bench.load.sender import Sender
    from tickpath.runtime.engine.runner import Runtime
    feed = pack_mold(generate(2, 6000, 20), "FAULTSES01", max_messages_per_packet=4)
    cfg = config.merge({"feed": {"port": 0, "session": "FAULTSES01"},
                        "cores": {"rx": [max(os.sched_getaffinity(0))]},
                        "idle": {"strategy": "backoff"}, "book": {"instruments": 21, "max_orders": 1 << 15},
                        "faults": {"seed": 11, "drop_rate": 0.05}})
    with Runtime(cfg) as rt:
        assert isinstance(rt.backend, FaultBackend)
        rt.open().start()
        s = Sender(feed, "127.0.0.1", rt.backend.port, 40_000, max_seconds=20)
        s.start()
        deadline = time.monotonic() + 20
        st = {}
        while time.monotonic() < deadline:
            time.sleep(0.01)
            st = rt.backend.fault_stats()
            if s.done() and st["seen"] >= feed.n_packets:
                break
        s.close()
        rt.stop()
        c = rt.pipe.counters
        assert st["seen"] == feed.n_packets and st["dropped"] > 0
        assert c[C.PACKETS] == feed.n_packets - st["dropped"]
        assert c[C.GAP_MESSAGES] > 0 and c[C.MESSAGES] + c[C.GAP_MESSAGES] >= feed.msg_count.sum() - 4
        assert "faults" in rt.stats()["backend_stats"]
