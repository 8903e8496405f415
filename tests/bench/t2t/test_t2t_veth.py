"""`tickpath bench --t2t` over the veth pair: the venue in one network namespace, tickpath trade
in another, on the AF_XDP backend (`afxdp`) and on the kernel socket backend over the same wire
(`kernel-veth`); the tap on the venue's end of the veth times the answers. Needs root (skipped
with the reason otherwise). Speed is not asserted here (the results file says what was
measured).

Cost: one venue per path (2 s of triggers at 200/s, ~6 s each with start-up and settle), plus
the compile of the two trade loops when the cache is cold for this source version (the kernel
loop is shared with the loopback `kernel` path; measured ~20 s for the afxdp loop and 1-5 min
for the kernel one on this 2-vCPU box, seconds when cached)."""
from __future__ import annotations

import ipaddress
import os
import subprocess

import pytest

from tickpath.bench.t2t import run as T
from tickpath.bench.t2t import veth as VE

BENCH_NET = ipaddress.ip_network("198.18.0.0/15")


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_afxdp_and_kernel_veth_answer_triggers_over_the_veth():
    why = VE.unavailable_reason("afxdp")
    if why:
        pytest.skip(f"the afxdp tick-to-trade path cannot run here: {why}")
    before = _netns_names()
    p = T.T2TParams(paths=("kernel-veth", "afxdp"), seconds=2.0, repeats=1, warmup=50, itch_port=26490)
    s = T.run_rates(p, [200.0], progress=lambda *a: None)
    # compiled (or loaded) in the responder's namespace before any venue started
    assert set(s["compile"]) == {"kernel-veth", "afxdp"} and all(c["total"] > 0 for c in s["compile"].values())
    v = s["veth"]
    assert v["afxdp_mode"] == "skb" and v["responder_if"] == "vrx" and v["venue_if"] == "vtx"
    assert all(ipaddress.ip_address(v[k]) in BENCH_NET for k in ("venue_addr", "responder_addr"))
    per = s["scenarios"]["steady@200/s"]
    for path, kind in (("kernel-veth", "kernel"), ("afxdp", "afxdp")):
        r = per[path]["runs"][0]
        assert r["wire"] == "veth" and r["tickpath"]["backend"] == kind, r.get("tickpath", {}).get("error")
        w = r["w2w"]
        assert w["triggers_measured"] >= 300 and w["answered"] > 0, w
        assert w["answered_twice"] == 0 and w["stray_answers"] == 0, w
        assert w["answer_timestamps"].startswith("veth tap (vtx"), w["answer_timestamps"]
        assert r["tap"]["answers"] >= w["answered"] and r["tap"]["where"].startswith("veth tap")
        assert r["w2w_ns"]["samples"] == w["answered"] and r["w2w_ns"]["p50"] > 0
        assert r["tickpath"]["counters"]["risk_rejects"] == 0
        a = per[path]["aggregate"]
        assert a["ok_runs"] == 1 and a["answered_twice"] == 0 and a["p50"]["median"] > 0
        assert a["in_process_p50_ns"]["median"] > 0
    xdp = per["afxdp"]["runs"][0]["tickpath"]["backend_stats"]
    assert xdp["xdp_mode"] == "skb" and xdp["frames"] > 0     # the feed came through the XSK
    # every namespace the bench made is gone (the venue and trade processes with them)
    assert _netns_names() <= before


def test_veth_paths_skip_with_the_reason_when_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    p = T.T2TParams(paths=("kernel-veth", "afxdp"), seconds=1.0, repeats=1)
    s = T.run_rates(p, [200.0], progress=lambda *a: None)
    per = s["scenarios"]["steady@200/s"]
    for path in ("kernel-veth", "afxdp"):
        assert "root" in per[path]["skipped"], per[path]
    assert s["compile"] == {} and "veth" not in s     # nothing compiled, no link made
