"""The `tickpath` command as a user runs it: info, demo (short), run with a config file."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
TICKPATH = [sys.executable, "-m", "tickpath.runtime.cli"]


def _run(*args, timeout=300):
    return subprocess.run([*TICKPATH, *args], capture_output=True, text=True, timeout=timeout)


def test_info_json_reports_every_section():
    r = _run("info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    t = d["topology"]
    assert t["cpus_online"] and t["nodes"] and "lo" in t["nics"]
    assert "hugepages" in next(iter(t["nodes"].values()))
    assert "isolated" in t and "nohz_full" in t and "smt_groups" in t
    assert "usable" in d["afxdp"] and "bpf_path" in d["afxdp"]
    assert d["kernels"]["name"] in ("numba", "cupy") and d["kernels"]["reason"]
    assert "present" in d["xdma"]


def test_info_human_output():
    r = _run("info")
    assert r.returncode == 0, r.stderr
    for word in ("NUMA nodes", "NICs", "AF_XDP", "indicator kernels", "XDMA"):
        assert word in r.stdout


def test_demo_short_writes_json_and_hgrm(tmp_path):
    js, hg = tmp_path / "s.json", tmp_path / "l.hgrm"
    r = _run("demo", "--seconds", "1", "--rate", "20000", "--instruments", "30", "--quiet",
             "--loop-seconds", "5", "--json", str(js), "--hgrm", str(hg), timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "latency p50" in r.stdout and "ratio" in r.stdout
    s = json.loads(js.read_text())
    tp, py = s["results"]
    assert tp["received"] == tp["sent"]["sent_messages"] > 20_000
    assert py["received"] == py["sent"]["sent_messages"]
    assert tp["latency_ns"]["count"] > 0 and py["latency_ns"]["count"] > 0
    assert s["machine"]["cpu_model"]
    assert "Percentile" in hg.read_text() and (tmp_path / "l.python.hgrm").exists()
    # the closed loop: the market maker quoted against the venue, every order timed wall to wall
    loop = s["closed_loop"]
    assert "error" not in loop, loop
    assert loop["orders_sent"] > 0 and loop["risk_rejects"] >= 0 and loop["venue_alive"]
    # enters name their trigger (replaces go out without a ClOrdID); the first second is warm-up
    w = loop["w2w"]
    assert w["with_trigger"] > 0 and loop["w2w_ns"]["samples"] == w["with_trigger"] - w["warmup_excluded"]
    assert loop["in_process_t2t_ns"]["count"] > 0
    assert "closed loop" in r.stdout and "wall to wall" in r.stdout.lower()
    assert (tmp_path / "l.t2t.hgrm").exists() and (tmp_path / "s.pnl.png").exists()
    assert (tmp_path / "s.latency.png").exists()


def test_run_with_config_receives_and_stops_on_sigterm(tmp_path):
    with socket.socket() as s:  # a free UDP port is very likely free for TCP probe too
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "rt.toml"
    cfg.write_text(f'[feed]\nport = {port}\n[idle]\nstrategy = "backoff"\n[book]\ninstruments = 64\nmax_orders = 4096\n')
    p = subprocess.Popen([*TICKPATH, "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert "tickpath run" in line, line + p.stderr.read()
        from tickpath.runtime.feed import itch
        from tickpath.runtime.feed import moldudp64
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        msgs = [itch.encode_add(1, 0, 1000 + i, 100 + i, "B", 10, b"TEST", 1_000_000) for i in range(5)]
        tx.sendto(moldudp64.mold_packet("SESSIONX01", 1, msgs), ("127.0.0.1", port))
        tx.close()
        time.sleep(1.5)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    stats = json.loads(out[out.index("{"):])
    assert stats["counters"]["messages"] == 5 and stats["counters"]["book_adds"] == 5


def test_run_refuses_a_bad_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[feed]\nprot = 1\n")
    r = _run("run", "--config", str(cfg))
    assert r.returncode == 2 and "unknown key" in r.stderr and "feed.prot" in r.stderr
