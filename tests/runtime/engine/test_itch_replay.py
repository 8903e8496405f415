"""NASDAQ ITCH 5.0 binary files (made here from the synthetic market): streaming reads across
block boundaries in bounded memory, deterministic replay through the pipeline, the CLI, the
sender publishing a file over loopback, and the bad inputs (truncated last message, corrupt or
cut gzip, foreign pcap link type, truncated pcap records)."""
from __future__ import annotations

import gzip
import json
import os
import time

import numpy as np
import pytest
import xxhash
from tickpath.runtime.feed import itchfile
from tickpath.bench.load.market import generate
from tickpath.runtime.config import schema as config
from tickpath.runtime.feed import pcap
from tickpath.runtime.engine import replay
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE

N_MSGS, N_INSTR = 30_000, 25
SMALL_CHUNK = 140_000     # a few blocks for a ~1 MB file: messages cross block boundaries


@pytest.fixture(scope="module")
def market():
    return generate(21, N_MSGS, N_INSTR)


@pytest.fixture(scope="module")
def itch_gz(tmp_path_factory, market):
    p = tmp_path_factory.mktemp("itch") / "01302019.NASDAQ_ITCH50.gz"
    itchfile.write_itch_file(p, market.messages())
    return p


# SMALL_CHUNK: every fill a whole block; 600 kB: the first fill stops at FIRST_FILL_BYTES,
# the next ones fill the block (a message may straddle the switch)
@pytest.mark.parametrize("chunk, min_reads", [(SMALL_CHUNK, 5), (600_000, 3)])
@pytest.mark.parametrize("compress", [True, False])
def test_streaming_read_gives_every_message_in_bounded_memory(tmp_path, market, compress,
                                                              chunk, min_reads):
    p = tmp_path / ("f.gz" if compress else "f.itch")
    itchfile.write_itch_file(p, market.messages(), compress=compress)
    f = itchfile.ItchFile(p, chunk_bytes=chunk)
    got, bufs, done = [], set(), []
    for ch in f.chunks(progress=done.append):
        got += [ch.message(k) for k in range(ch.n)]
        bufs.add(id(ch.buf))
        assert ch.buf.nbytes == chunk
    assert got == market.messages()
    assert len(bufs) == 1 and len(done) >= min_reads     # one block buffer, reused
    assert done[-1] == os.path.getsize(p) and f.stats["gzip"] == compress
    assert f.stats == {"messages": N_MSGS, "bytes": sum(len(m) + 2 for m in got),
                       "truncated_tail_bytes": 0, "gzip": compress}


def test_mold_packets_carry_the_file_bytes(market, itch_gz):
    ch = next(itchfile.ItchFile(itch_gz).chunks())
    pk, ts = itchfile.chunk_to_mold(ch, "S1")
    assert pk.msg_count.sum() == ch.n and pk.first_seq[0] == 1 and np.all(pk.lengths <= 1472)
    msgs = []
    for k in range(pk.n_packets):
        b = pk.packet(k)
        assert b[:10] == b"S1".ljust(10) and int.from_bytes(b[10:18], "big") == pk.first_seq[k]
        o = 20
        for _ in range(int.from_bytes(b[18:20], "big")):
            n = int.from_bytes(b[o:o + 2], "big")
            msgs.append(b[o + 2:o + 2 + n])
            o += 2 + n
        assert o == len(b)
        assert ts[k] == int.from_bytes(msgs[pk.msg_first[k] - 0][5:11], "big")
    assert msgs == market.messages()[:ch.n]


def test_replay_of_an_itch_file_is_deterministic(tmp_path, market, itch_gz):
    o1, o2 = tmp_path / "a.bin", tmp_path / "b.bin"
    r1 = replay.replay(itch_gz, instruments=N_INSTR + 1, max_orders=1 << 16, events_out=str(o1))
    r2 = replay.replay(itch_gz, instruments=N_INSTR + 1, max_orders=1 << 16, events_out=str(o2))
    assert o1.read_bytes() == o2.read_bytes() and r1["events_xxh3_128"] == r2["events_xxh3_128"]
    # the digest is XXH3-128 of exactly the events written, in order
    assert r1["events_xxh3_128"] == xxhash.xxh3_128(o1.read_bytes()).hexdigest()
    ev = np.frombuffer(o1.read_bytes(), EVENT_DTYPE)
    assert len(ev) == N_MSGS == r1["counters"]["messages"] == r1["counters"]["events"]
    assert np.array_equal(ev["seq"], np.arange(1, N_MSGS + 1))
    assert np.array_equal(ev["msg_type"], market.types)
    assert "gaps" not in r1["counters"] and "malformed_packets" not in r1["counters"]


def test_replay_at_recorded_pace_takes_the_recorded_time(tmp_path, market):
    # the order flow only (the synthetic preamble is stamped an hour before the open)
    msgs = generate(3, 3_000, 5, mean_gap_ns=20_000.0).messages()[2 * 5 + 3:]   # ~ 60 ms
    p = tmp_path / "paced.gz"
    itchfile.write_itch_file(p, msgs)
    ts = [int.from_bytes(m[5:11], "big") for m in msgs]
    span_s = (ts[-1] - ts[0]) / 1e9
    assert 0.03 < span_s < 0.2
    fast = replay.replay(p, instruments=8, max_orders=1 << 14)
    paced = replay.replay(p, instruments=8, max_orders=1 << 14, pace="recorded", speed=2.0)
    assert paced["events_xxh3_128"] == fast["events_xxh3_128"]
    assert paced["elapsed_s"] >= span_s / 2 * 0.9


def test_truncated_last_message_is_reported_not_decoded(tmp_path, market):
    raw = b"".join(len(m).to_bytes(2, "big") + m for m in market.messages()[:1000])
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(raw[:-7]))
    r = replay.replay(p, instruments=N_INSTR + 1, max_orders=1 << 14)
    assert r["counters"]["messages"] == 999
    assert r["itch_file"]["truncated_tail_bytes"] == len(market.message(999)) + 2 - 7


@pytest.mark.parametrize("compress", [True, False])
def test_truncated_tail_after_the_first_fill_is_reported(tmp_path, market, compress):
    """The first fill stops at FIRST_FILL_BYTES without the stream ending: only a read that
    returns nothing ends it, so a file cut after the first fill is read to its last whole
    message and its tail reported."""
    raw = b"".join(len(m).to_bytes(2, "big") + m for m in market.messages())
    assert len(raw) > 2 * itchfile.FIRST_FILL_BYTES
    p = tmp_path / ("cut.gz" if compress else "cut.itch")
    p.write_bytes(gzip.compress(raw[:-7]) if compress else raw[:-7])
    f = itchfile.ItchFile(p)
    n = sum(ch.n for ch in f.chunks())
    assert n == N_MSGS - 1
    assert f.stats["truncated_tail_bytes"] == len(market.message(N_MSGS - 1)) + 2 - 7


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_gzip_is_a_clear_error(tmp_path, market, damage):
    data = bytearray(gzip.compress(b"".join(len(m).to_bytes(2, "big") + m for m in market.messages())))
    if damage == "flip":
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0x5A
    else:
        data = data[:len(data) * 2 // 3]
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="corrupt gzip stream") as e:
        replay.replay(p, instruments=N_INSTR + 1, max_orders=1 << 14)
    assert "bad.gz" in str(e.value)


def test_pcap_with_foreign_link_type_is_refused(tmp_path):
    import struct
    p = tmp_path / "wifi.pcap"
    p.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105) +
                  struct.pack("<IIII", 1, 0, 4, 4) + b"abcd")
    with pytest.raises(ConfigError, match="unsupported pcap link type.*linktype=105"):
        replay.replay(p)


def test_pcap_with_truncated_record_is_read_up_to_it_with_a_warning(tmp_path):
    """A capture whose writer died mid-record: the reader alone refuses it, replay reads the
    whole records and warns (issue 19: a full disk left such a file)."""
    from tickpath.bench.load.market import pack_mold
    pk = pack_mold(generate(4, 300, 5), "S")
    frames = [pcap.udp_frame(pk.packet(k), 26400) for k in range(pk.n_packets)]
    for name, write in (("t.pcapng", pcap.write_pcapng), ("t.pcap", pcap.write_pcap)):
        p = tmp_path / name
        write(p, frames, list(range(len(frames))))
        p.write_bytes(p.read_bytes()[:-10])
        with pytest.raises(ConfigError, match="truncated capture"):
            pcap.read_capture(p)
        r = replay.replay(p, instruments=8, max_orders=1 << 12)
        assert r["counters"]["frames"] == pk.n_packets - 1
        assert r["counters"]["messages"] == 300 - int(pk.msg_count[-1])
        assert len(r["warnings"]) == 1 and "not read" in r["warnings"][0], r["warnings"]


def test_capture_frames_that_are_not_the_feed_are_counted(tmp_path, market):
    from tickpath.bench.load.market import pack_mold
    pk = pack_mold(generate(4, 500, 5), "S")
    frames = [pcap.udp_frame(pk.packet(k), 26400) for k in range(pk.n_packets)]
    frames.insert(1, pcap.udp_frame(b"other", 999))
    frames.insert(2, b"\x00" * 10)                                  # runt
    frames.insert(3, bytes(12) + b"\x86\xdd" + bytes(60))          # IPv6
    p = tmp_path / "mixed.pcap"
    pcap.write_pcap(p, frames, list(range(len(frames))))
    r = replay.replay(p, udp_port=26400, instruments=8, max_orders=1 << 12)
    assert r["counters"]["frames_not_feed"] == 3 and r["counters"]["frames"] == pk.n_packets
    assert r["counters"]["messages"] == 500


def test_cli_replay(tmp_path, itch_gz, capsys):
    from tickpath.runtime.cli import main
    assert main(["replay", str(itch_gz), "--json", "--no-progress", "--instruments", "32",
                 "--max-orders", "65536"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "itch" and out["counters"]["messages"] == N_MSGS
    assert main(["replay", str(tmp_path / "missing.gz"), "--no-progress"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_publish_itch_file_over_loopback(tmp_path, market, itch_gz):
    from tickpath.bench.load.itchsend import publish_itch_file
    from tickpath.runtime.engine.runner import Runtime
    cfg = config.merge({"feed": {"port": 0}, "cores": {"rx": [max(os.sched_getaffinity(0))]},
                        "idle": {"strategy": "backoff"},
                        "book": {"instruments": N_INSTR + 1, "max_orders": 1 << 16}})
    with Runtime(cfg) as rt:
        rt.open().start()
        res = publish_itch_file(itch_gz, "127.0.0.1", rt.backend.port, rate_msgs_per_s=200_000,
                                chunk_bytes=SMALL_CHUNK, max_seconds=20)
        deadline = time.monotonic() + 10
        while rt.pipe.counters[C.MESSAGES] < N_MSGS and time.monotonic() < deadline:
            time.sleep(0.01)
        rt.stop()
        c = rt.pipe.counters
        assert res["sent_messages"] == N_MSGS and res["send_errors"] == 0
        assert c[C.MESSAGES] == N_MSGS and c[C.GAPS] == 0 and c[C.MALFORMED_PACKETS] == 0


def test_publish_at_recorded_pace_spreads_packets_over_the_recorded_time(tmp_path):
    import socket as so

    from tickpath.bench.load.itchsend import publish_itch_file
    msgs = generate(8, 2_000, 5, mean_gap_ns=30_000.0).messages()[2 * 5 + 3:]
    ts = [int.from_bytes(m[5:11], "big") for m in msgs]
    span_s = (ts[-1] - ts[0]) / 1e9
    p = tmp_path / "paced.itch"
    itchfile.write_itch_file(p, msgs)
    rx = so.socket(so.AF_INET, so.SOCK_DGRAM)
    rx.setsockopt(so.SOL_SOCKET, so.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    import threading
    got, arrival = [], []

    def receive():   # timestamps packets as they arrive, while the sender runs
        try:
            while True:
                got.append(rx.recv(2048))
                arrival.append(time.monotonic())
        except OSError:
            pass

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    try:
        res = publish_itch_file(p, "127.0.0.1", rx.getsockname()[1], speed=1.0, max_seconds=10)
        deadline = time.monotonic() + 5
        while len(got) < res["sent_packets"] and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        rx.close()
        t.join(5)
    assert res["sent_messages"] == len(msgs) and len(got) == res["sent_packets"]
    assert arrival[-1] - arrival[0] >= span_s * 0.8
    # recorded pace leaves the file's timestamps as they are
    assert int.from_bytes(got[0][20 + 2 + 5:20 + 2 + 11], "big") == ts[0]


def test_publish_refuses_port_zero(tmp_path):
    """A destination port of 0 is refused before anything is read or sent (issue 19, finding 11)."""
    import subprocess
    import sys
    f = tmp_path / "x.itch"
    f.write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "publish-itch", str(f), "--to",
                        "127.0.0.1:0"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "port 1..65535" in r.stderr


def test_a_plain_file_gets_an_order_table_its_size_can_fill_and_the_same_books(tmp_path, market):
    """A raw file's size bounds its live orders (each took >= 38 bytes): the table is sized
    to that, the gzip of the same bytes (size unknown) keeps max_orders, and both replays
    give the same events, counters and tops."""
    raw, gz = tmp_path / "day.itch", tmp_path / "day.gz"
    itchfile.write_itch_file(raw, market.messages(), compress=False)
    itchfile.write_itch_file(gz, market.messages(), compress=True)
    a = replay.replay(raw, instruments=N_INSTR + 1, max_orders=1 << 20, bbo=str(tmp_path / "a.csv"))
    b = replay.replay(gz, instruments=N_INSTR + 1, max_orders=1 << 20, bbo=str(tmp_path / "b.csv"))
    bound = os.path.getsize(raw) // replay.MIN_ADD_BYTES
    assert bound <= a["max_orders"] < 2 * bound and b["max_orders"] == 1 << 20
    assert a["events_xxh3_128"] == b["events_xxh3_128"] and a["counters"] == b["counters"]
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    # a smaller max_orders is kept (a bound the user set), and bad ones are still refused
    assert replay.replay(raw, instruments=N_INSTR + 1, max_orders=1 << 12)["max_orders"] == 1 << 12
    with pytest.raises(ConfigError, match="power of two"):
        replay.replay(raw, max_orders=3000)


def test_a_file_of_nothing_but_adds_fits_its_sized_table(tmp_path):
    """The worst case for the bound: every message an add of the shortest kind, none removed."""
    from tickpath.runtime.feed import itch
    n = 5000
    msgs = [itch.encode_add(1, 0, 1000 + k, 1 + k, "B" if k % 2 else "S", 100, "AAA",
                            1_000_000 + (k % 50) * 100) for k in range(n)]
    p = tmp_path / "adds.itch"
    itchfile.write_itch_file(p, msgs, compress=False)
    assert os.path.getsize(p) == n * replay.MIN_ADD_BYTES
    r = replay.replay(p, instruments=4)
    assert r["max_orders"] >= n and r["counters"]["book_adds"] == n
    assert "book_full" not in r["counters"] and not r["book_unreliable"]
