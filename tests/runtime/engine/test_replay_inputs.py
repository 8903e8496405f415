"""tickpath replay's input and pacing (issue 19): pipes and FIFOs replay whole, files that
are not a capture or ITCH are refused, recorded pace cannot overflow, --speed is bounded,
and pcap/pcapng values no capture holds are clear errors."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

from tickpath.bench.load.market import generate, pack_mold
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.book.orderbook import n_live_orders
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine import replay
from tickpath.runtime.engine.pipeline import OUT_UPDATES
from tickpath.runtime.feed import itchfile, pcap

N_MSGS, N_INSTR = 5_000, 8
KW = dict(instruments=N_INSTR + 1, max_orders=1 << 14)


@pytest.fixture(scope="module")
def market():
    return generate(31, N_MSGS, N_INSTR)


@pytest.fixture(scope="module")
def files(tmp_path_factory, market):
    d = tmp_path_factory.mktemp("inputs")
    itchfile.write_itch_file(d / "day.itch", market.messages())
    itchfile.write_itch_file(d / "day.gz", market.messages())
    pk = pack_mold(market, "S")
    pcap.write_pcap(d / "day.pcap", [pcap.udp_frame(pk.packet(k), 26400)
                                     for k in range(pk.n_packets)], list(range(pk.n_packets)))
    return d


def _through_fifo(tmp_path, src, **kw):
    """Replay src's bytes written into a FIFO by another thread (a reader that opened the
    path twice would lose bytes or hang: the old bug)."""
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    data = src.read_bytes()

    def writer():
        with open(fifo, "wb") as w:
            for a in range(0, len(data), 7919):   # many small writes: short reads
                w.write(data[a:a + 7919])

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        return replay.replay(fifo, **kw)
    finally:
        t.join(10)
        assert not t.is_alive()


@pytest.mark.parametrize("name", ["day.itch", "day.gz", "day.pcap"])
def test_a_fifo_replays_whole_and_equals_the_file(tmp_path, files, name):
    whole = replay.replay(files / name, **KW)
    piped = _through_fifo(tmp_path, files / name, **KW)
    assert piped["counters"]["messages"] == whole["counters"]["messages"] == N_MSGS
    assert piped["events_xxh3_128"] == whole["events_xxh3_128"]
    assert piped["format"] == ("pcap" if name.endswith("pcap") else "itch")


def test_cli_replays_process_substitution_and_stdin(files):
    """The report's reproduction: `tickpath replay <(cat feed.itch)` gave 1,083 of 2,000."""
    exe = os.path.join(os.path.dirname(sys.executable), "tickpath")
    f = files / "day.itch"
    for cmd in (f"{exe} replay <(cat {f}) --json --no-progress --instruments 16",
                f"cat {f} | {exe} replay - --json --no-progress --instruments 16"):
        out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert f'"messages": {N_MSGS}' in out.stdout


@pytest.mark.parametrize("content,why", [
    (b"# tickpath\n\nA low-latency trading runtime.\n" * 20, "not an ITCH 5.0 type"),
    (bytes(4096), "zero message length"),
    (b"", "empty"),
    (gzip.compress(b"just some text, compressed\n" * 50), "inside gzip"),
    (b"\x00\x0c", "bytes, not one ITCH message header"),
])
def test_a_file_that_is_no_capture_nor_itch_is_refused(tmp_path, content, why):
    p = tmp_path / "README"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match="not a pcap, pcapng or ITCH 5.0 file") as e:
        replay.replay(p, **KW)
    assert why in str(e.value) and "README" in str(e.value)


@pytest.mark.parametrize("speed", [1e-7, 1e300, float("inf"), float("nan"), 0, -1])
def test_speed_out_of_range_is_a_clear_error(tmp_path, files, speed, capsys):
    with pytest.raises(ConfigError, match="replay.speed"):
        replay.Replayer(files / "day.itch", pace="recorded", speed=speed, **KW)
    from tickpath.runtime.cli import main
    assert main(["replay", str(files / "day.itch"), "--pace", "recorded", "--speed",
                 repr(speed), "--no-progress"]) == 2
    assert "replay.speed" in capsys.readouterr().err


def test_recorded_pace_offsets_cannot_overflow():
    """(recv - first) * 1e6 overflowed int64 after 2.56 h: a 3 h capture at speed 1000 took
    0.04 s instead of 10.8 s. The offset is now exact integer math, checked against Python's
    unbounded integers, and saturates instead of wrapping."""
    h3 = 3 * 3600 * 10**9
    assert replay.scaled_offset_ns(h3, replay.check_speed(1000)) == 10_800_000_000
    assert replay.scaled_offset_ns(16 * 3600 * 10**9, replay.check_speed(1.0)) == 16 * 3600 * 10**9
    rng = np.random.default_rng(5)
    for _ in range(2000):
        d = int(rng.integers(0, 1 << 62))
        u = int(rng.integers(10**3, 10**12 + 1))
        want = min(d * 10**6 // u, 1 << 62)
        assert replay.scaled_offset_ns(d, u) == want, (d, u)
    assert replay.scaled_offset_ns(-5, 10**6) == 0
    assert replay.scaled_offset_ns((1 << 63) - 1, 10**3) == 1 << 62


def test_pcap_orig_len_beyond_2_31_is_a_clear_error(tmp_path):
    p = tmp_path / "big.pcap"
    p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                  + struct.pack("<IIII", 1, 0, 4, 1 << 31) + b"abcd")
    with pytest.raises(ConfigError, match="pcap record length out of range.*orig_len=2147483648"):
        pcap.read_capture(p)
    with pytest.raises(ConfigError, match="out of range"):
        replay.replay(p, **KW)


def test_pcapng_timestamp_overflow_is_a_clear_error(tmp_path):
    p = tmp_path / "ts.pcapng"
    pcap.write_pcapng(p, [pcap.udp_frame(b"x" * 40, 26400)], [(1 << 64) - 1])
    with pytest.raises(ConfigError, match="pcapng timestamp out of range"):
        pcap.read_capture(p)
    with pytest.raises(ConfigError, match="pcapng timestamp out of range"):
        replay.replay(p, **KW)


def test_an_itch_file_cut_inside_its_first_message_is_itch_with_a_warning(tmp_path):
    p = tmp_path / "cut.itch"
    p.write_bytes(b"\x00\x0cS\x00\x00")       # a system event header, then the file ends
    r = replay.replay(p, **KW)
    assert r["format"] == "itch" and r["events"] == 0
    assert r["itch_file"]["truncated_tail_bytes"] == 5 and "ends inside a message" in r["warnings"][0]


def test_no_digest_replays_the_same_books(files):
    a = replay.Replayer(files / "day.itch", **KW)
    ra = a.run()
    b = replay.Replayer(files / "day.itch", digest=False, **KW)
    rb = b.run()
    assert rb["events_xxh3_128"] is None and ra["events_xxh3_128"]
    assert ra["counters"] == rb["counters"] and ra["events"] == rb["events"] == N_MSGS
    assert np.array_equal(a.pipe.out, b.pipe.out, equal_nan=True)


@pytest.mark.parametrize("name", ["day.itch", "day.pcap"])
def test_warming_the_jitted_calls_changes_nothing(files, name):
    """run() calls the loop over nothing before its clock starts (numba's cache load out of
    elapsed_s): that call must leave no trace in the counters, books or indicators."""
    r = replay.Replayer(files / name, **KW)
    r._warm(np.zeros(4, EVENT_DTYPE))
    assert not r.pipe.counters.any()
    assert n_live_orders(r.pipe.books) == 0 and not r.pipe.books.sides["n_levels"].any()
    assert not r.pipe.out[:, OUT_UPDATES].any()
    r.input.close()
    fresh = replay.Replayer(files / name, **KW).run()
    warmed = replay.Replayer(files / name, **KW)
    warmed._warm(np.zeros(4, EVENT_DTYPE))
    assert warmed.run()["events_xxh3_128"] == fresh["events_xxh3_128"]
