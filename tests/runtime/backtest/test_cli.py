"""`tickpath backtest` end to end: JSON summary per file and in total, PNG plots, a grid
table sorted by a metric, and bad input as one clear line (no traceback)."""
from __future__ import annotations

import builtins
import json
import sys

import pytest

from tickpath.runtime.cli import main

TOML = """
[strategy]
name = "touch"
[strategy.params]
symbol = "ORCL"
qty = 100
timer_ns = 200000
[backtest]
entry_latency = 4000
feed_latency = "uniform:1000,3000"
response_latency = 2000
instruments = 16
max_orders = 65536
sample_ns = 10000000
"""


def test_backtest_json_and_plots(day_file, tmp_path, capsys):
    path, _ = day_file(n_steps=3000, seed=41)
    bad = tmp_path / "bad.itch.gz"
    bad.write_bytes(b"\x1f\x8bnot gzip at all")
    cfg = tmp_path / "bt.toml"
    cfg.write_text(TOML)
    out = tmp_path / "summary.json"
    rc = main(["backtest", path, str(bad), "--config", str(cfg), "--json", str(out),
               "--plots", str(tmp_path / "plots"), "--quiet"])
    assert rc == 1                                  # one file failed, the other ran
    s = json.loads(out.read_text())
    assert s["total"]["files_ok"] == 1 and s["total"]["files_failed"] == 1
    good = s["files"][0]
    assert good["fills"] > 0 and len(good["fill_log_sha256"]) == 64
    assert "corrupt gzip" in s["files"][1]["error"]
    pngs = good["plots"]
    assert len(pngs) == 2 and all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "bad.itch.gz" in capsys.readouterr().err


def test_grid_table(day_file, tmp_path, capsys):
    path, _ = day_file(n_steps=2000, seed=42)
    cfg = tmp_path / "bt.toml"
    cfg.write_text(TOML)
    out = tmp_path / "grid.json"
    rc = main(["backtest", path, "--config", str(cfg), "--grid", "strategy.params.qty=100,200",
               "--grid", "backtest.queue_model=l3_fifo,risk_averse", "--sort", "fills", "--json", str(out)])
    assert rc == 0
    g = json.loads(out.read_text())
    assert len(g["grid"]) == 4
    vals = [row["fills"] for row in g["grid"]]
    assert vals == sorted(vals, reverse=True)


@pytest.mark.parametrize("args,msg", [
    (["--grid", "strategy.params.nope=1,2"], "grid key does not exist"),
    (["--set", "backtest.feed_latency=hgrm:/nonexistent.hgrm"], "cannot read latency histogram"),
])
def test_bad_input_one_line(day_file, tmp_path, capsys, args, msg):
    path, _ = day_file(n_steps=200, seed=43)
    cfg = tmp_path / "bt.toml"
    cfg.write_text(TOML)
    rc = main(["backtest", path, "--config", str(cfg), "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err


def test_ray_missing_says_how_to_install(day_file, tmp_path, capsys, monkeypatch):
    path, _ = day_file(n_steps=200, seed=44)
    cfg = tmp_path / "bt.toml"
    cfg.write_text(TOML)
    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    rc = main(["backtest", path, "--config", str(cfg), "--ray", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'tickpath[cluster]'" in err and "Traceback" not in err


def test_example_config_is_valid():
    import os
    import tomllib

    import tickpath.runtime.backtest as bt
    from tickpath.runtime.backtest.runner import _latencies, normalise
    with open(os.path.join(os.path.dirname(bt.__file__), "example.toml"), "rb") as f:
        cfg = normalise(tomllib.load(f))
    assert cfg["strategy"]["symbols"] == ["AAPL"] and cfg["backtest"]["queue_model"] == "l3_fifo"
    assert all(len(t) for t in _latencies(cfg["backtest"], "."))
