"""`tickpath bench --t2t` end to end on loopback: a real venue, the C floor and tickpath trade
(kernel backend, and the FPGA backend on the emulated card; the responder strategy) answering
the same open-loop triggers; the venue's log pairs every answer with its trigger. Speed is
not asserted here (bench/RESULTS.md)."""
from __future__ import annotations

import os
import shutil

import pytest

from tickpath.bench.t2t import floor as FL
from tickpath.bench.t2t import report
from tickpath.bench.t2t import run as T


def test_floor_and_tickpath_answer_every_trigger(tmp_path):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the floor cannot be built here")
    p = T.T2TParams(paths=("floor", "kernel", "fpga-emu"), seconds=2.0, repeats=1, warmup=50,
                    itch_port=26470)
    s = T.run_rates(p, [200.0], progress=lambda *a: None)
    per = s["scenarios"]["steady@200/s"]
    # compiled (or loaded) before any venue or clock started: one entry per tickpath path
    assert set(s["compile"]) == {"kernel", "fpga-emu"} and all(c["total"] > 0 for c in s["compile"].values())
    fl = per["floor"]["runs"][0]
    assert fl["w2w"]["triggers_measured"] >= 300 and fl["w2w"]["unanswered"] == 0
    assert fl["w2w"]["answered_twice"] == 0 and fl["w2w"]["stray_answers"] == 0
    assert fl["w2w_ns"]["samples"] == fl["w2w"]["answered"] and fl["w2w_ns"]["p50"] > 0
    tp = per["kernel"]["runs"][0]
    # tickpath answers a book update, packet by packet: two triggers of one instrument in one
    # packet are one answer (counted); 16 instruments round-robin make that rare
    assert tp["w2w"]["answered"] >= 0.8 * tp["w2w"]["triggers_measured"], tp["w2w"]
    assert tp["w2w"]["stray_answers"] == 0 and tp["w2w"]["answered_twice"] == 0
    assert tp["tickpath"]["counters"]["risk_rejects"] == 0
    assert tp["tickpath"]["tick_to_trade_ns"]["count"] >= tp["w2w"]["answered"]
    call, ret = tp["tickpath"]["tick_to_send_call_ns"], tp["tickpath"]["tick_to_trade_ns"]
    assert call["count"] == ret["count"] and 0 < call["p50"] <= ret["p50"]   # before send() vs after
    assert per["kernel"]["aggregate"]["ratio_to_floor_p50"] > 0
    assert per["kernel"]["aggregate"]["bare_send_p50_ns"]["median"] > 0   # send() alone, same run
    fp = per["fpga-emu"]["runs"][0]
    assert fp["tickpath"]["backend"] == "fpga-emu" and fp["tickpath"]["feed"]["events"] == 0
    assert fp["w2w"]["answered"] >= 0.8 * fp["w2w"]["triggers_measured"], fp["w2w"]
    assert fp["w2w"]["stray_answers"] == 0 and fp["w2w"]["answered_twice"] == 0
    out = tmp_path / "out"
    written = report.write_all(s, str(out))
    names = {os.path.basename(w) for w in written}
    assert {"summary.json", "report.md", "t2t_steady@200_s.png"} <= names
    assert any(n.endswith("_floor.hgrm") for n in names) and any(n.endswith("_kernel.hgrm") for n in names)


def test_no_compiler_skips_the_floor_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(FL.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FL.FloorUnavailable, match="no C compiler"):
        FL.build()
