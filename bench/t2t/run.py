"""The tick-to-trade bench: for each responder path, a fresh `tickpath venue` with the same
seeded market, the same open-loop triggers, and the venue's own clock at both ends.

Paths: `floor` (the C reflector: floor.c), `kernel` and `kernel-busypoll` (tickpath trade on
the kernel socket backend, SO_BUSY_POLL on or off, with the responder strategy), `fpga-emu`
(tickpath trade on the FPGA backend, reading event records from `tickpath fpga emulate`, which
takes the venue's ITCH on its UDP port and parses it as the card would), `python` (a
plain-Python responder), all on loopback; and over a veth pair between two network namespaces
(bench/t2t/veth.py: the venue on one side, tickpath trade on the other) `afxdp` (the AF_XDP
backend, which cannot attach to loopback) and `kernel-veth` (the socket backend on the same
wire, its like-for-like comparison). A veth path that cannot run here (not root, no
namespaces, no AF_XDP) is skipped with the reason, as the receive bench does; one link serves
every veth run and is removed at the end (and at exit). Each path runs `repeats` times; each run gives the wall-to-wall percentiles
(bench/t2t/w2w.py), loss, and for tickpath the in-process tick-to-trade (event received ->
send() returned) from `tickpath trade`'s own summary. The ratio to the floor is the median
p50 of a path over the median p50 of the floor, in the same run.

Placement: the venue on one CPU, the responder's receive thread on another (2 CPUs: the
venue's network and matching threads and the trigger sender share the first). Stated in the
summary with the load average and the CPU model.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

from tickpath.bench.harness.backends import spawn_fpga_emulator, stop_fpga_emulator
from tickpath.bench.t2t import floor as FL
from tickpath.bench.t2t import trade_proc as TP
from tickpath.bench.t2t import veth as VE
from tickpath.bench.t2t.tap import PACKET_HOST, Tap
from tickpath.bench.t2t import triggers as TR
from tickpath.bench.t2t import venue_proc as VP
from tickpath.bench.t2t import w2w
from tickpath.runtime.sys import placement

PATHS = ("floor", "kernel", "kernel-busypoll", "kernel-veth", "afxdp", "fpga-emu", "python")


@dataclass
class Scenario:
    name: str
    trigger_rate_per_s: float = 1000.0
    burst: int = 1
    venue_rate_msgs_per_s: float = 100_000.0
    instruments: int = 300
    storm_s: float = 0.0              # > 0: the background flow at storm_factor x for this long,
    storm_factor: float = 10.0        # started halfway through the triggers


SCENARIOS = {
    "steady": Scenario("steady"),
    "open-burst": Scenario("open-burst", trigger_rate_per_s=1000.0, burst=8),
    # a message storm: the background flow at 10x the steady rate for 1 s, mid-run
    "storm": Scenario("storm", storm_s=1.0, storm_factor=10.0),
    "wide": Scenario("wide", instruments=5000),
}


@dataclass
class T2TParams:
    paths: tuple = ("floor", "kernel", "python")
    scenarios: tuple = ("steady",)
    seconds: float = 5.0
    repeats: int = 2
    warmup: int = 300
    # after the responder is up, before the first trigger: its feed socket (or the emulated
    # card's FIFO) filled while it started; the triggers wait until that backlog is drained
    settle_s: float = 1.0
    seed: int = 1
    venue_cpu: int | None = 0
    rx_cpu: int | None = 1
    itch_port: int = 26420
    frames: int = 32         # datagrams per recvmmsg batch in tickpath trade (the runtime default)
    afxdp_mode: str = "skb"  # XDP attach mode on the veth: skb (generic), as the receive bench
    out_dir: str | None = None
    quiet: bool = False


def _udp(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", port))
    s.setblocking(False)
    return s


def run_once(path: str, sc: Scenario, p: T2TParams, repeat: int, veth: VE.VethLoop | None = None) -> dict:
    """One venue, one responder, one trigger schedule. `veth`: the link a veth path runs over
    (the venue in its tx namespace, tickpath trade in its rx namespace)."""
    port = p.itch_port + repeat % 7
    on_veth = path in VE.VETH_PATHS
    if on_veth and veth is None:
        raise ValueError(f"the {path} path needs the bench's veth link")
    vrun = VP.VenueRun(instruments=sc.instruments, rate_msgs_per_s=sc.venue_rate_msgs_per_s,
                       seed=p.seed, itch_port=port, cpu=p.venue_cpu,
                       storm_s=sc.storm_s, storm_factor=sc.storm_factor)
    if on_veth:
        vrun.itch_host, vrun.ouch_host = veth.responder_host, veth.venue_host
    venue = VP.VenueProcess(vrun, preexec=veth.preexec_venue(p.venue_cpu) if on_veth else None)
    res: dict = {"path": path, "scenario": sc.name, "repeat": repeat}
    workdir = tempfile.mkdtemp(prefix=f"tickpath-t2t-{path}-")
    udp = tcp = resp = trader = tap = emu = storm = trig = None
    # the tap and the trigger sender (this process's threads, woken per packet) stay off the
    # responder's CPU: on it they would preempt the loop being measured
    moved = placement.keep_off(p.rx_cpu) if p.rx_cpu is not None else {}
    wire = f"veth tap ({veth.venue_if}, arrival)" if on_veth else "loopback tap"
    venue_side = veth.in_venue_ns if on_veth else contextlib.nullcontext
    try:
        marker = TR.marker_for(venue.ready["refdata"], venue.quiet_symbols)
        host, oport = venue.ouch()
        try:
            with venue_side():   # the tap listens on the venue's end of the wire
                tap = Tap(oport, veth.venue_if, PACKET_HOST) if on_veth else Tap(oport)
            tap.start()
        except (PermissionError, OSError) as exc:
            res["tap"] = f"unavailable ({exc}): answers timed by the venue's read stamps"
        if path in ("floor", "python"):
            udp = _udp(port)
            user = "FLOOR"
            tcp = FL.login(host, oport, user, venue.password(user))
            if path == "floor":
                resp = FL.Floor(FL.build(), udp, tcp, marker, p.seconds + p.settle_s + 1.0, p.rx_cpu)
            else:
                resp = _python_responder(udp, tcp, marker, p.seconds + p.settle_s + 1.0, p.rx_cpu)
            responder_user = VP.FLOOR_USER
        else:
            card_dir = ""
            if path == "fpga-emu":   # the emulated card takes the venue's ITCH; trade reads its records
                card_dir = os.path.join(workdir, "card")
                os.mkdir(card_dir)
                emu = spawn_fpga_emulator(card_dir, port, p.venue_cpu)
            trader, out_json = TP.start(path, venue, marker, p, sc, port, workdir, card_dir,
                                        veth if on_veth else None)
            responder_user = VP.TICKPATH_USER
        time.sleep(p.settle_s)
        plan = TR.TriggerPlan(rate_per_s=sc.trigger_rate_per_s, seconds=p.seconds, warmup=p.warmup,
                              linger=0, burst=sc.burst)
        with venue_side():       # the trigger session reaches the venue inside its namespace
            trig = TR.TriggerSender(host, oport, "TRIG", venue.password("TRIG"), marker, plan)
        trig.start()
        if sc.storm_s > 0:     # halfway through the triggers (the warm-up is over by then)
            storm = threading.Timer(0.05 + p.seconds / 2, venue.storm)
            storm.start()
        trig.join(p.seconds + 30)
        res["trigger_sender"] = {"sent": trig.sent, "late_ms_max": round(trig.late_ns_max / 1e6, 3),
                                 "error": trig.error}
        time.sleep(0.3)   # the last answers on their way
        if trader is not None:
            res["tickpath"] = TP.finish(trader, out_json, 60)
        else:
            res["responder"] = resp.wait(30)
    except FL.FloorUnavailable as exc:
        res["skipped"] = str(exc)
    finally:
        if trig is not None:
            trig.close()
        if tap is not None:
            tap.close()
            res["tap"] = {"segments": tap.segments, "answers": len(tap.answers),
                          "duplicates": tap.duplicates, "resyncs": tap.resyncs, "where": wire}
        if storm is not None:
            storm.cancel()
        TP.kill(trader)        # only on an error path is it still running
        stop_fpga_emulator(emu)
        stopped = venue.stop()
        venue.cleanup()
        for s in (udp, tcp):
            if s is not None:
                s.close()
        shutil.rmtree(workdir, ignore_errors=True)
        placement.restore(moved)
    if "skipped" in res:
        return res
    m = w2w.match(stopped["log"], VP.TRIGGER_USER, responder_user, p.warmup,
                  tap.answers if tap is not None else None, wire)
    lat = m.pop("latency_ns")
    res["w2w"] = m
    res["w2w_ns"] = w2w.stats(lat)
    res["_hist"] = w2w.histogram(lat)
    res["venue_rc"] = stopped["returncode"]
    if on_veth:
        res["wire"] = "veth"
    return res


def _python_responder(udp, tcp, marker, seconds, cpu):
    class _P:
        def __init__(self):
            args = [sys.executable, "-m", "tickpath.bench.t2t.pyresponder", str(udp.fileno()), str(tcp.fileno()),
                    str(marker["locate_lo"]), str(marker["locate_hi"]), str(marker["shares"]), f"{seconds:.3f}",
                    FL.order_packet(marker["symbol"], marker["answer_price"]).hex()]
            pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         pass_fds=(udp.fileno(), tcp.fileno()), preexec_fn=pre)

        def wait(self, timeout_s):
            out, err = self.proc.communicate(timeout=timeout_s)
            if self.proc.returncode != 0:
                return {"error": err[-500:]}
            return json.loads(out.strip().splitlines()[-1])
    return _P()


def aggregate(runs: list[dict], p: T2TParams | None = None) -> dict:
    ok = [r for r in runs if "w2w_ns" in r and r["w2w_ns"].get("samples")]
    if not ok:
        return {"runs": len(runs), "ok_runs": 0}
    out = {"runs": len(runs), "ok_runs": len(ok)}
    for k in ("p50", "p90", "p99", "p99.9", "max", "mean", "std"):
        vals = [r["w2w_ns"][k] for r in ok]
        out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    out["unanswered"] = sum(r["w2w"]["unanswered"] for r in ok)
    out["answered_twice"] = sum(r["w2w"]["answered_twice"] for r in ok)
    out["samples"] = sum(r["w2w_ns"]["samples"] for r in ok)
    inproc = [r["tickpath"]["tick_to_trade_ns"]["p50"] for r in ok
              if isinstance(r.get("tickpath"), dict) and "tick_to_trade_ns" in r["tickpath"]]
    if inproc:
        out["in_process_p50_ns"] = {"median": statistics.median(inproc), "min": min(inproc), "max": max(inproc)}
    call = [r["tickpath"]["tick_to_send_call_ns"]["p50"] for r in ok
            if isinstance(r.get("tickpath"), dict) and r["tickpath"].get("tick_to_send_call_ns", {}).get("count")]
    if call:   # the same, to send() called: the software's own part, without the syscall
        out["in_process_call_p50_ns"] = {"median": statistics.median(call), "min": min(call), "max": max(call)}
    bare = [r["tickpath"]["bare_send_ns"]["p50"] for r in ok
            if isinstance(r.get("tickpath"), dict) and r["tickpath"].get("bare_send_ns", {}).get("samples")]
    polls = [r["tickpath"]["feed"]["polls"] for r in ok
             if isinstance(r.get("tickpath"), dict) and r["tickpath"].get("feed", {}).get("polls")]
    if polls and p is not None:   # the receive loop's iterations: how much of its CPU it was given
        run_s = p.seconds + p.settle_s + 1.5     # [trading] seconds of the trade config
        rate = [x / run_s for x in polls]
        out["loop_polls_per_s"] = {"median": statistics.median(rate), "min": min(rate), "max": max(rate)}
    if bare:   # send() alone on the same socket: what in-process tick-to-trade is read against
        out["bare_send_p50_ns"] = {"median": statistics.median(bare), "min": min(bare), "max": max(bare)}
    return out


def machine() -> dict:
    from tickpath.bench.harness.run import machine_info
    info = machine_info()
    info["loadavg"] = os.getloadavg()
    return info


def run_rates(p: T2TParams, rates, progress=print) -> dict:
    """Every scenario at every trigger rate."""
    from dataclasses import replace
    scs = [replace(SCENARIOS[s], name=f"{s}@{r:g}/s", trigger_rate_per_s=r) for s in p.scenarios for r in rates]
    return run(p, progress, scs)


def skip_reason(path: str) -> str | None:
    """Why a path cannot run here (the veth paths: root, namespaces, AF_XDP), else None."""
    return VE.unavailable_reason(path) if path in VE.VETH_PATHS else None


@contextlib.contextmanager
def _veth_for(paths, skipped: dict):
    """The veth link when a runnable veth path is asked for (else None); removed at the end."""
    if not any(pth in VE.VETH_PATHS and pth not in skipped for pth in paths):
        yield None
        return
    link = VE.VethLoop().open()
    try:
        yield link
    finally:
        link.close()


def sweep(p: T2TParams, rates, p99_bound_ns: float, progress=print) -> dict:
    """Per path, raise the trigger rate (the given ones, then doubling) until a trigger goes
    unanswered or p99 passes the bound: the highest clean rate is the path's figure."""
    from dataclasses import replace
    steps: dict = {}
    skipped = {pth: why for pth in p.paths if (why := skip_reason(pth))}
    with _veth_for(p.paths, skipped) as veth:
        for path in p.paths:
            if path in skipped:
                steps[path] = {"skipped": skipped[path]}
                continue
            if path in TP.TICKPATH_PATHS:   # compiled before the first venue of its steps starts
                TP.precompile(path, p, SCENARIOS[p.scenarios[0]], veth if path in VE.VETH_PATHS else None)
            todo = sorted(rates)
            best, out = None, []
            while todo and len(out) < 8:
                r = todo.pop(0)
                sc = replace(SCENARIOS[p.scenarios[0]], name=f"sweep@{r:g}/s", trigger_rate_per_s=r)
                res = run_once(path, sc, p, len(out), veth)
                if "skipped" in res:
                    steps[path] = {"skipped": res["skipped"]}
                    break
                res.pop("_hist", None)
                s, m = res["w2w_ns"], res["w2w"]
                clean = m["unanswered"] == 0 and s.get("p99", math.inf) <= p99_bound_ns
                out.append({"trigger_rate_per_s": r, "p50_ns": s.get("p50"), "p99_ns": s.get("p99"),
                            "unanswered": m["unanswered"], "clean": clean})
                progress(f"t2t sweep {path} @ {r:g}/s: p99 {s.get('p99', math.nan) / 1e3:.1f} µs, "
                         f"unanswered {m['unanswered']}")
                if not clean:
                    break
                best = r
                if not todo:
                    todo = [r * 2]
            if path not in steps:
                steps[path] = {"steps": out, "highest_clean_rate_per_s": best}
    summary = run(p, progress, [replace(SCENARIOS[p.scenarios[0]], trigger_rate_per_s=min(rates))])
    summary["sweep"] = steps
    return summary


def run(p: T2TParams, progress=print, scenarios: list | None = None) -> dict:
    summary = {"params": dict(p.__dict__), "machine": machine(),
               "placement": {"venue_cpu": p.venue_cpu, "responder_rx_cpu": p.rx_cpu,
                             "note": "the venue's matching and network threads and the trigger sender "
                                     "share the venue CPU on a 2-CPU host; the bench's own threads "
                                     "(wire tap, trigger sender) and tickpath trade's threads other "
                                     "than its loop are kept off the responder CPU"},
               "scenarios": {}}
    hists = {}
    scs = scenarios or [SCENARIOS[s] for s in p.scenarios]
    skipped = {pth: why for pth in p.paths if (why := skip_reason(pth))}
    summary["compile"] = {}
    with _veth_for(p.paths, skipped) as veth:
        if veth is not None:
            summary["veth"] = {**veth.describe(), "afxdp_mode": p.afxdp_mode,
                               "note": "kernel-veth and afxdp: the venue and tickpath trade in two network "
                                       "namespaces joined by a veth pair (one more hop than loopback); "
                                       "answers stamped as they arrive on the venue's end"}
        for path in p.paths:   # one loop per path serves every scenario (array sizes are not types)
            if path in TP.TICKPATH_PATHS and path not in skipped:
                progress(f"t2t: compiling (or loading) tickpath trade for {path} …")
                summary["compile"][path] = TP.precompile(path, p, scs[0],
                                                         veth if path in VE.VETH_PATHS else None)["compile_s"]
        for sc in scs:
            summary["scenarios"][sc.name] = _scenario(sc, p, skipped, veth, hists, progress)
    summary["_hists"] = {f"{s}/{p_}": _merge(hs) for (s, p_), hs in hists.items()}
    return summary


def _scenario(sc: Scenario, p: T2TParams, skipped: dict, veth, hists: dict, progress) -> dict:
    """Every path of one scenario, `repeats` runs each; the ratio to the floor's median p50."""
    sname = sc.name
    # rounds alternate the paths (round k runs every path once): a neighbour's load that comes
    # and goes on a shared host lands on every path alike, not on the one that ran then
    runs: dict = {path: [] for path in p.paths if path not in skipped}
    done: dict = {}                 # path -> why it stopped early (skipped)
    for k in range(p.repeats):
        for path in runs:
            if path in done:
                continue
            r = run_once(path, sc, p, k, veth)
            if "skipped" in r:
                progress(f"t2t {sname} {path}: skipped — {r['skipped']}")
                done[path] = r["skipped"]
                continue
            h = r.pop("_hist")
            hists.setdefault((sname, path), []).append(h)
            s = r["w2w_ns"]
            progress(f"t2t {sname} {path} #{k + 1}: p50 {s.get('p50', float('nan')) / 1e3:.1f} µs  "
                     f"p99 {s.get('p99', float('nan')) / 1e3:.1f} µs  unanswered {r['w2w']['unanswered']} "
                     f"of {r['w2w']['triggers_measured']}")
            runs[path].append(r)
    per_path = {}
    for path in p.paths:
        if path in skipped or path in done:
            why = skipped.get(path) or done[path]
            per_path[path] = {"skipped": why, "runs": runs.get(path, []), "aggregate": {}}
            if path in skipped:
                progress(f"t2t {sname} {path}: skipped — {why}")
            continue
        per_path[path] = {"runs": runs[path], "aggregate": aggregate(runs[path], p)}
    floor = per_path.get("floor", {}).get("aggregate", {}).get("p50", {}).get("median")
    for path, v in per_path.items():
        agg = v.get("aggregate") or {}
        if floor and agg.get("p50"):
            agg["ratio_to_floor_p50"] = round(agg["p50"]["median"] / floor, 3)
    return per_path


def _merge(hs: list[np.ndarray]) -> np.ndarray:
    out = np.zeros_like(hs[0])
    for h in hs:
        out += h
    return out
