"""The C receive floor (`floor-recv`) as a path of `tickpath bench`: it builds, receives every
message of a low-rate run with the pipeline's latency definition, sits next to another path
with a "× floor" ratio in summary.json and report.md, and is skipped with the reason when
there is no C compiler. `floor-recv-veth` is the same floor on a veth link between two
namespaces (root only), and a path on that link gets its ratio over it too."""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import time

import numpy as np
import pytest
from tickpath.bench.harness import backends as B
from tickpath.bench.harness import report as R
from tickpath.bench.harness import run as H
from tickpath.bench.refs import cbuild
from tickpath.bench.refs import floor_recv as FR

RATE = 20_000.0
DAY_NS = 86_400_000_000_000

needs_cc = pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler on this host")


def _packet(seq: int, ts_list: list[int], session: bytes = b"TESTSESS01") -> bytes:
    """A MoldUDP64 packet of ITCH 'S' (system event, 12 bytes) messages with these timestamps."""
    body = b""
    for ts in ts_list:
        msg = b"S" + struct.pack(">HH", 0, 0) + ts.to_bytes(6, "big") + b"O"
        body += struct.pack(">H", len(msg)) + msg
    return session + struct.pack(">QH", seq, len(ts_list)) + body


@needs_cc
def test_latency_is_the_pipelines_definition_and_bad_packets_are_counted():
    midnight = time.clock_gettime_ns(time.CLOCK_REALTIME)
    midnight -= midnight % DAY_NS
    p = FR.FloorRecvProcess(n_expected=8, deadline_s=10.0, midnight_ns=midnight, warmup_seq=2, cpu=None)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            now = time.clock_gettime_ns(time.CLOCK_REALTIME) - midnight
            tx.sendto(_packet(1, [now, now]), p.dest)               # seq 1 warm-up, seq 2 recorded
            tx.sendto(b"short", p.dest)                              # under a MoldUDP64 header
            tx.sendto(_packet(3, [now, now])[:-3], p.dest)           # seq 4 cut short: malformed
            tx.sendto(_packet(6, [now - 1_000_000, now]), p.dest)    # seq 5 missing: one gap
            tx.sendto(_packet(5, [now]), p.dest)                     # behind: a duplicate
            tx.sendto(_packet(8, [now, 0, now]), p.dest)             # a zero timestamp is not recorded
            res = p.result(10.0)
    finally:
        p.close()
    assert res["received"] == 8                                      # 2 + 1 + 2 + 3
    assert res["malformed"] == 2 and res["gaps"] == 1 and res["gap_messages"] == 1
    assert res["duplicates"] == 1 and res["packets"] == 6
    lat = res["latency_ns"]
    assert res["recorded"] == len(lat) == 6                          # seq 2, 3, 6, 7, 8, 10
    assert np.all(lat > 0) and np.all(lat < 10e9)
    assert lat[2] > lat[3] + 900_000       # the message stamped 1 ms earlier waited 1 ms more
    assert res["cpu_s"] > 0


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    if cbuild.compiler() is None:
        pytest.skip("no C compiler on this host")
    params = H.BenchParams(backends=["floor-recv", "python"], rates=[RATE], seconds=0.5, repeats=2,
                           instruments=50, sockperf=False).check()
    s = H.run_bench(params, progress=None, log=lambda *_: None)
    out = tmp_path_factory.mktemp("bench-out")
    R.write_all(s, str(out))
    return s, out


def test_floor_receives_every_message_and_reports_latency(bench):
    s, _ = bench
    assert s["backends"]["floor-recv"]["status"] == "ran"
    runs = [r for r in s["runs"] if r["backend"] == "floor-recv"]
    assert len(runs) == 2
    for r in runs:
        assert r["status"] == "ok", r.get("error")
        sent = r["sent"]["sent_messages"]
        assert sent == r["messages_planned"] and sent > RATE * 0.5, r
        assert r["lost"] == 0 and r["received"] == sent, r
        assert r["gaps"] == 0 and r["duplicates"] == 0 and r["malformed"] == 0
        lat = r["latency_ns"]
        assert lat["count"] == r["received"] - r["warmup_messages_excluded"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 60e9
        assert r["rx_cpu_s"] > 0 and r["receiver_cpu"] != r["sender_cpu"]


def test_ratio_to_the_floor_in_summary_and_report(bench):
    s, out = bench
    py = s["backends"]["python"]["rates"]["20000"]
    fl = s["backends"]["floor-recv"]["rates"]["20000"]
    assert fl["p50_x_floor"] == pytest.approx(1.0)
    assert py["p50_x_floor"] == pytest.approx(py["p50"]["median"] / fl["p50"]["median"], rel=1e-2)
    assert py["p99_x_floor"] == pytest.approx(py["p99"]["median"] / fl["p99"]["median"], rel=1e-2)
    js = json.loads((out / "summary.json").read_text())
    assert js["backends"]["python"]["rates"]["20000"]["p50_x_floor"] == py["p50_x_floor"]
    md = (out / "report.md").read_text()
    assert "p50 × floor" in md
    assert f"| {py['p50_x_floor']:.2f}× |" in md and "| 1.00× |" in md


def test_no_ratio_column_without_the_floor():
    s = {"backends": {"kernel": {"status": "ran", "rates": {"20000": {"p50": {"median": 5000.0}}}}}}
    H.add_floor_ratios(s)
    assert "p50_x_floor" not in s["backends"]["kernel"]["rates"]["20000"]


def test_a_veth_path_gets_its_ratio_over_the_floor_on_its_link_too():
    med = lambda v: {"p50": {"median": v}, "p99": {"median": 10 * v}}   # noqa: E731
    s = {"backends": {n: {"status": "ran", "rates": {"20000": med(v)}} for n, v in
                      (("floor-recv", 4000.0), ("floor-recv-veth", 5000.0), ("afxdp", 4500.0),
                       ("kernel", 4400.0))}}
    H.add_floor_ratios(s)
    b = {n: v["rates"]["20000"] for n, v in s["backends"].items()}
    assert b["afxdp"]["p50_x_floor"] == 1.125 and b["afxdp"]["p50_x_link_floor"] == 0.9
    assert b["afxdp"]["p99_x_link_floor"] == 0.9 and b["floor-recv-veth"]["p50_x_link_floor"] == 1.0
    assert "p50_x_link_floor" not in b["kernel"] and b["kernel"]["p50_x_floor"] == 1.1
    del s["backends"]["floor-recv-veth"]     # that floor did not run: no link ratio at all
    for agg in b.values():
        agg.pop("p50_x_link_floor", None)
        agg.pop("p99_x_link_floor", None)
    H.add_floor_ratios(s)
    assert "p50_x_link_floor" not in b["afxdp"] and b["afxdp"]["p50_x_floor"] == 1.125


def test_the_floor_on_the_veth_link_receives_everything_over_it(tmp_path):
    why = B.bench_backends()["floor-recv-veth"].check()
    if why:
        pytest.skip(f"floor-recv-veth cannot run here: {why}")
    params = H.BenchParams(backends=["floor-recv-veth"], rates=[RATE], seconds=0.5, repeats=1,
                           instruments=50, sockperf=False).check()
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    s = H.run_bench(params, progress=None, log=lambda *_: None)
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert sorted(after.split()) == sorted(before.split())   # its namespaces are gone
    b = s["backends"]["floor-recv-veth"]
    assert b["status"] == "ran" and any("veth" in n for n in b["notes"])
    (r,) = [r for r in s["runs"] if r["backend"] == "floor-recv-veth"]
    assert r["status"] == "ok", r.get("error")
    assert r["lost"] == 0 and r["received"] == r["sent"]["sent_messages"] > RATE * 0.4
    assert b["rates"]["20000"]["p50_x_link_floor"] == pytest.approx(1.0)
    R.write_all(s, str(tmp_path))
    assert "(1.00× veth floor)" not in (tmp_path / "report.md").read_text()  # no loopback floor ran


def test_the_veth_floor_is_skipped_with_the_reason_without_namespaces(monkeypatch):
    monkeypatch.setattr(B.netns, "unavailable_reason", lambda: "network namespaces need root")
    assert B.bench_backends()["floor-recv-veth"].check() == "network namespaces need root"


def test_no_compiler_skips_the_floor_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(cbuild.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    why = B.bench_backends()["floor-recv"].check()
    assert why is not None and "no C compiler" in why
    params = H.BenchParams(backends=["floor-recv"], rates=[RATE], seconds=0.2, repeats=1,
                           instruments=10, sockperf=False).check()
    s = H.run_bench(params, progress=None, log=lambda *_: None)
    assert s["backends"]["floor-recv"]["status"] == "skipped"
    assert "no C compiler" in s["backends"]["floor-recv"]["reason"]
    assert s["runs"] == []


def test_a_compiler_that_fails_is_a_reason_too(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    why = FR.check()
    assert why is not None and "failed to build floor_recv.c" in why
