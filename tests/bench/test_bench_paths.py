"""The bench's other receive paths for real, briefly: AF_XDP on the bench's own veth link
(root + network namespaces, else skipped with the reason), the FPGA emulator process, and
the saturation sweep on the kernel backend."""
from __future__ import annotations

import subprocess

import pytest
from tickpath.bench.harness import backends as B
from tickpath.bench.harness import run as H
from tickpath.bench.harness import netns

RATE = 20_000.0


def _params(backends, **kw):
    return H.BenchParams(backends=backends, rates=[RATE], seconds=0.5, repeats=kw.pop("repeats", 2),
                         instruments=50, sockperf=False, **kw).check()


def _check_ok_runs(s, name):
    runs = [r for r in s["runs"] if r["backend"] == name]
    assert runs, s["backends"][name]
    for r in runs:
        assert r["status"] == "ok", r["error"]
        sent = r["sent"]["sent_messages"]
        assert sent == r["messages_planned"] and r["lost"] == sent - r["received"]
        assert r["received"] > 0.9 * sent, f"{name} received {r['received']} of {sent}"
        lat = r["latency_ns"]
        assert lat["count"] > 0.8 * (sent - r["warmup_messages_excluded"])
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 60e9
        assert r["rx_cpu_s"] > 0
    return runs


def test_afxdp_runs_on_the_bench_veth_link_and_cleans_up():
    why = B.bench_backends()["afxdp"].check()
    if why:
        pytest.skip(f"afxdp cannot run here: {why}")
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    s = H.run_bench(_params(["afxdp"]), log=lambda *_: None)
    assert s["backends"]["afxdp"]["status"] == "ran", s["backends"]["afxdp"]
    runs = _check_ok_runs(s, "afxdp")
    assert len(runs) == 2
    assert all(r["backend_stats"].get("xdp_mode") == "skb" for r in runs)
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    mine = [ln for ln in after.splitlines() if ln.startswith("tpb") and ln not in before]
    assert mine == [], f"bench namespaces left behind: {mine}"


def test_afxdp_is_skipped_with_a_reason_without_root(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    why = B.bench_backends()["afxdp"].check()
    assert why and "root" in why


def test_fpga_emulator_path_measures_from_the_card_counters():
    why = B.bench_backends()["fpga-emu"].check()
    if why:
        pytest.skip(f"fpga-emu cannot run here: {why}")
    s = H.run_bench(_params(["fpga-emu"], repeats=1), log=lambda *_: None)
    assert s["backends"]["fpga-emu"]["status"] == "ran", s["backends"]["fpga-emu"]
    (r,) = _check_ok_runs(s, "fpga-emu")
    assert r["counters"]["messages"] == r["received"]           # the emulator's MESSAGES counter
    assert r["aux_cpu_s"] > 0                                   # the emulator process did the decode


def test_sweep_climbs_until_the_bound_and_confirms():
    p = _params(["kernel"], repeats=1, p99_bound_us=1e6)       # a bound only loss can cross here
    cpus = H.parse_cpus(None)
    from tickpath.bench.scenarios.demo import build_feed
    _m, packets = build_feed(1, 60_000, 50, 4)
    session = B.bench_backends()["kernel"].open_session()
    try:
        sw = H.sweep_backend(session, "kernel", packets, H.BenchParams(**{**p.__dict__, "seconds": 0.3}),
                             cpus, 20_000.0, max_rate=46_000.0)
    finally:
        session.close()
    rates = [st["rate_msgs_per_s"] for st in sw["steps"]]
    assert rates[:3] == [20_000.0, 30_000.0, 45_000.0] or not sw["steps"][len(rates) - 1]["clean"]
    assert sw["steps"][-1].get("confirmation") is True or sw["highest_clean_rate_msgs_per_s"] is None
    if sw["highest_clean_rate_msgs_per_s"] is not None:
        best = sw["highest_clean_rate_msgs_per_s"]
        assert all(st["clean"] for st in sw["steps"] if st["rate_msgs_per_s"] <= best and not st.get("confirmation"))


def test_sweep_stops_at_the_first_unclean_step():
    """A receiver whose p99 is over the bound from the start: no clean rate, one step."""
    calls = []

    class Fake:
        def new_run(self, spec):
            calls.append(spec.rate_msgs_per_s)
            raise RuntimeError("saturated")

        def close(self):
            pass

    p = _params(["kernel"], repeats=1)
    _m, packets = __import__("tickpath.bench.scenarios.demo", fromlist=["build_feed"]).build_feed(1, 30_000, 50, 4)
    sw = H.sweep_backend(Fake(), "fake", packets, p, H.parse_cpus(None), 20_000.0)
    assert calls == [20_000.0] and sw["highest_clean_rate_msgs_per_s"] is None and sw["confirmed"] is None
    assert sw["steps"][0]["status"] == "failed" and "saturated" in sw["steps"][0]["error"]


def test_stages_split_send_to_receive_from_the_software_path(tmp_path):
    from tickpath.bench.harness import report as R
    s = H.run_bench(_params(["kernel"], repeats=1, stages=True), log=lambda *_: None)
    (r,) = _check_ok_runs(s, "kernel")
    st = r["stages_ns"]
    assert st is not None and st["records_seen"] > 0.8 * r["received"] - st["samples_dropped"]
    wire, soft = st["send_to_receive"], st["receive_to_consumer"]
    assert wire["count"] > 0 and soft["count"] == wire["count"]
    # each stage is a part of the end-to-end latency: its median cannot exceed the total's max
    assert 0 < wire["p50"] <= r["latency_ns"]["max"] * 1.01
    assert 0 < soft["p50"]
    R.write_all(s, str(tmp_path))
    md = (tmp_path / "report.md").read_text()
    assert "## Latency by stage (--stages)" in md and "| kernel | 20,000 |" in md
