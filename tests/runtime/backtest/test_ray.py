"""Fan-out on Ray: the same summaries as a serial run (fill-log hashes equal), a bad file
reported with its name while the rest run, an unreachable cluster and a missing Ray as clear
one-line errors. Skipped, with the reason, where Ray is not installed."""
from __future__ import annotations

import builtins
import importlib.util
import sys

import pytest

from tickpath.runtime.backtest import fanout
from tickpath.runtime.core.errors import ConfigError

CFG = {"strategy": {"name": "touch", "params": {"symbol": "ORCL", "qty": 100, "timer_ns": 200_000}},
       "backtest": {"feed_latency": 2_000, "entry_latency": "exponential:5000",
                    "response_latency": 4_000, "instruments": 16, "max_orders": 1 << 16}}


def test_without_ray_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'tickpath\[cluster\]'"):
        fanout.run_ray([("x.itch", CFG)])


def test_ray_equals_serial(day_file, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra tickpath[cluster]")
    a, _ = day_file(name="a.itch", n_steps=3000, seed=21)
    b, _ = day_file(name="b.itch", n_steps=3000, seed=22)
    bad = tmp_path / "bad.itch.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\x00" * 100)
    jobs = [(a, CFG), (str(bad), CFG), (b, CFG)]
    serial = fanout.run_serial(jobs)
    par = fanout.run_ray(jobs, timeout_s=600)
    assert [r["file"] for r in par] == [a, str(bad), b]
    assert "error" in par[1] and "bad.itch.gz" in par[1]["file"]
    for s, p in zip(serial, par):
        if "error" in s:
            continue
        assert p["fill_log_sha256"] == s["fill_log_sha256"] and p["fills"] == s["fills"] > 0
        assert p["pnl"] == s["pnl"] and p["risk"] == s["risk"]
    assert fanout.merge(par) == fanout.merge(serial)


def test_unreachable_cluster_is_a_clear_error(monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra tickpath[cluster]")
    # something answers TCP but Ray cannot join it (here: ray.init's own failure, whatever kind)
    monkeypatch.setattr(fanout, "check_reachable", lambda address: None)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(ConnectionError("GCS timed out")))
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster.*GCS timed out"):
        fanout.run_ray([("x.itch", CFG)], address="198.18.0.99:6379")


def test_a_closed_port_is_refused_at_once_and_other_address_forms_are_left_to_ray():
    import socket
    with socket.socket() as s:              # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for addr in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConfigError, match="no TCP connection within"):
            fanout.check_reachable(addr)
    if importlib.util.find_spec("ray") is not None:   # and run_ray stops there, before ray.init
        with pytest.raises(ConfigError, match="cannot reach the Ray cluster.*no TCP connection"):
            fanout.run_ray([("x.itch", CFG)], address=f"127.0.0.1:{port}")
    for addr in (None, "", "auto", "local", "head-without-port"):
        fanout.check_reachable(addr)        # Ray resolves these itself
    with socket.socket() as srv:            # something answers: not refused
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        fanout.check_reachable(f"127.0.0.1:{srv.getsockname()[1]}")


def test_ray_progress_per_file_and_no_compile_in_workers(day_file):
    """--ray shows a bar per file (the tasks report through an actor, the bars end full), and
    a worker loads the strategy's loop from the on-disk cache the driver wrote: it compiles
    nothing (ray#23664 is workers recompiling every task)."""
    pytest.importorskip("ray", reason="Ray is the optional extra tickpath[cluster]")
    a, _ = day_file(name="pa.itch", n_steps=3000, seed=31)
    b, _ = day_file(name="pb.itch", n_steps=3000, seed=32)
    jobs = [(a, CFG), (b, CFG)]
    fanout.run_serial(jobs[:1])          # the driver compiles (or loads) and the cache is written
    seen = {}

    def factory(path):
        seen[path] = []
        return lambda done, total: seen[path].append((done, total))
    par = fanout.run_ray(jobs, timeout_s=600, progress_factory=factory)
    assert [r["file"] for r in par] == [a, b] and all("error" not in r for r in par)
    for path in (a, b):
        done, total = seen[path][-1]
        assert total > 0 and done == total
    for r in par:
        assert r["loop_cache"]["misses"] == 0 and r["loop_cache"]["hits"] >= 1, r["loop_cache"]
