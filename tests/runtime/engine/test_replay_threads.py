"""`tickpath replay` of an ITCH file on two threads (runtime/engine/replay_threads.py) gives
what the one-thread path gives, byte for byte; a decode error reaches the caller; a stop ends
the decode thread; and the two-thread path is taken only where it should be."""
from __future__ import annotations

import gzip
import threading

import numpy as np
import pytest

from tickpath.bench.load.market import generate
from tickpath.runtime.book.orderbook import level_at
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.engine import replay, replay_threads
from tickpath.runtime.feed import itchfile

N_MSGS, N_INSTR = 40_000, 40
SMALL_CHUNK = 150_000     # several file blocks, each several decode blocks or fewer


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    p = tmp_path_factory.mktemp("threads") / "day.itch"
    itchfile.write_itch_file(p, generate(5, N_MSGS, N_INSTR, levels_per_side=30).messages(),
                             compress=False)
    return p


def _run(path, monkeypatch, threads, **kw):
    """One replay; asserts which path ran. Returns (summary, replayer)."""
    used = []
    real = replay_threads.run_itch

    def spy(*a, **k):
        used.append(True)
        return real(*a, **k)

    monkeypatch.setattr(replay_threads, "run_itch", spy)
    monkeypatch.setattr(replay_threads, "cpus_allowed", lambda: 2 if threads else 1)
    rp = replay.Replayer(path, instruments=N_INSTR + 1, max_orders=1 << 16,
                         chunk_bytes=SMALL_CHUNK, **kw)
    s = rp.run()
    assert bool(used) == threads
    assert not [t for t in threading.enumerate() if t.name == "replay-decode"]
    return s, rp


def _depth(rp):
    """Every level of every book, best first (the whole book, not only its top)."""
    out = []
    for loc in range(N_INSTR + 1):
        for side in (0, 1):
            k = 0
            while True:
                lv = level_at(rp.pipe.books, loc, side, k)
                if lv[0] == 0 and lv[1] == 0:
                    break
                out.append((loc, side) + tuple(int(x) for x in lv))
                k += 1
    return out


def test_two_threads_give_the_one_thread_results(day, tmp_path, monkeypatch):
    one, rp1 = _run(day, monkeypatch, False, bbo=str(tmp_path / "one.csv"))
    two, rp2 = _run(day, monkeypatch, True, bbo=str(tmp_path / "two.csv"))
    assert one["events"] == two["events"] == N_MSGS
    assert one["events_xxh3_128"] == two["events_xxh3_128"]
    assert one["counters"] == two["counters"] and one["itch_file"] == two["itch_file"]
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    assert one["bbo"]["rows"] == two["bbo"]["rows"] > 1000
    assert _depth(rp1) == _depth(rp2) and len(_depth(rp1)) > 100
    assert np.array_equal(rp1.pipe.out, rp2.pipe.out, equal_nan=True)   # the indicators


def test_indicators_folded_on_the_decode_thread_equal_the_one_thread_ones(day, monkeypatch):
    """Without --bbo the two-thread path logs the indicators' part and folds it a block
    behind (indicator_log.py): out, books, counters and digest as the one-thread path."""
    one, rp1 = _run(day, monkeypatch, False)
    two, rp2 = _run(day, monkeypatch, True)
    assert one["events_xxh3_128"] == two["events_xxh3_128"] and one["counters"] == two["counters"]
    assert _depth(rp1) == _depth(rp2)
    assert np.isfinite(rp1.pipe.out[1:, 0]).sum() > N_INSTR // 2   # trades reached the EMAs
    assert rp1.pipe.out[:, 7].sum() > N_MSGS // 2                   # and updates were counted
    assert np.isfinite(rp2.pipe.out[1:, 3]).sum() > N_INSTR // 2    # mids from the final books
    assert not rp2.updates.any()                                    # all written out
    assert np.array_equal(rp1.pipe.out, rp2.pipe.out, equal_nan=True)


def test_events_out_or_recorded_pace_or_one_cpu_keep_one_thread(day, tmp_path, monkeypatch):
    _run(day, monkeypatch, False, events_out=str(tmp_path / "ev.bin"))
    monkeypatch.setattr(replay_threads, "cpus_allowed", lambda: 2)
    rp = replay.Replayer(day, instruments=N_INSTR + 1, events_out=str(tmp_path / "e2.bin"))
    assert not rp._two_threads()
    rp.input.close()
    rp = replay.Replayer(day, instruments=N_INSTR + 1, pace="recorded", speed=1e6)
    assert not rp._two_threads()
    rp.input.close()


def test_a_decode_error_reaches_the_caller(tmp_path, monkeypatch):
    raw = bytearray(gzip.compress(b"".join(len(m).to_bytes(2, "big") + m
                                           for m in generate(3, 20_000, 10).messages())))
    for i in range(len(raw) // 2, len(raw) // 2 + 64):    # damage inside the deflate stream
        raw[i] ^= 0x5A
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(raw))
    monkeypatch.setattr(replay_threads, "cpus_allowed", lambda: 2)
    with pytest.raises(ConfigError, match="corrupt gzip"):
        replay.Replayer(p, instruments=11, chunk_bytes=SMALL_CHUNK).run()
    assert not [t for t in threading.enumerate() if t.name == "replay-decode"]


def test_a_stop_ends_the_decode_thread(day, monkeypatch):
    monkeypatch.setattr(replay_threads, "cpus_allowed", lambda: 2)
    rp = replay.Replayer(day, instruments=N_INSTR + 1, chunk_bytes=SMALL_CHUNK)
    rp.request_stop()
    s = rp.run()
    assert s["events"] == 0
    assert not [t for t in threading.enumerate() if t.name == "replay-decode"]
