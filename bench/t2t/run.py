"""The tick-to-trade bench: for each responder path, a fresh `tickpath venue` with the same
seeded market, the same open-loop triggers, and the venue's own clock at both ends.

Paths: `floor` (the C reflector: floor.c), `kernel` and `kernel-busypoll` (tickpath trade on
the kernel socket backend, SO_BUSY_POLL on or off, with the responder strategy), `fpga-emu`
(tickpath trade on the FPGA backend, reading event records from `tickpath fpga emulate`, which
takes the venue's ITCH on its UDP port and parses it as the card would), `python` (a
plain-Python responder). `afxdp` is reported as skipped with the reason (the venue sends ITCH
on loopback, where AF_XDP cannot attach). Each path runs `repeats` times; each run gives the wall-to-wall percentiles
(bench/t2t/w2w.py), loss, and for tickpath the in-process tick-to-trade (event received ->
send() returned) from `tickpath trade`'s own summary. The ratio to the floor is the median
p50 of a path over the median p50 of the floor, in the same run.

Placement: the venue on one CPU, the responder's receive thread on another (2 CPUs: the
venue's network and matching threads and the trigger sender share the first). Stated in the
summary with the load average and the CPU model.
"""
from __future__ import annotations

import json
import math
import os
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
from tickpath.bench.t2t.tap import Tap
from tickpath.bench.t2t import triggers as TR
from tickpath.bench.t2t import venue_proc as VP
from tickpath.bench.t2t import w2w

PATHS = ("floor", "kernel", "kernel-busypoll", "afxdp", "fpga-emu", "python")
SKIPPED = {
    "afxdp": "the venue publishes ITCH on loopback, where an XDP program cannot attach; "
             "AF_XDP needs the venue behind a veth pair (not built yet)",
}


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
    out_dir: str | None = None
    quiet: bool = False


def _udp(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", port))
    s.setblocking(False)
    return s


def _trade_config(path: str, ready_file: str, ouch: tuple, password: str, marker: dict, p: T2TParams,
                  sc: Scenario, port: int, card_dir: str = "") -> str:
    host, oport = ouch
    busy = 50 if path == "kernel-busypoll" else 0
    backend = (f'kind = "fpga-emu"\n[backend.fpga]\ndevice_dir = "{card_dir}"' if path == "fpga-emu"
               else f"kind = \"kernel\"\nbusy_poll_us = {busy}")
    rate = int(sc.trigger_rate_per_s * 4) + 100
    rx = f"[{p.rx_cpu}]" if p.rx_cpu is not None else '"auto"'
    return f"""
[feed]
address = "127.0.0.1"
port = {port}
first_seq = 0
[backend]
{backend}
[cores]
rx = {rx}
[idle]
strategy = "busy-spin"
[buffers]
frames = {p.frames}
[book]
instruments = {sc.instruments + 8}
[venue]
ouch = "{host}:{oport}"
user = "TP"
password = "{password}"
ready_file = "{ready_file}"
[strategy]
name = "tickpath.bench.t2t.responder"
[strategy.params]
symbols = {json.dumps([i['symbol'] for i in marker['instruments']])}
answer_symbol = "{marker['symbol']}"
answer_price = {marker['answer_price']}
answer_qty = 1
[risk]
max_order_qty = 10
max_notional = 0.0
price_collar_pct = 0.0
max_position = 0
max_total_position = 0
max_open_orders = 0
max_orders_per_s = {rate}
max_orders_per_100ms = {rate}
max_msgs_per_s = {rate * 2}
max_msgs_per_100ms = {rate * 2}
max_loss = 0.0
max_venue_rejects_per_s = 0
max_breaches = 0
[trading]
seconds = {p.seconds + p.settle_s + 1.5}
drain_s = 0.5
live_interval_s = 1.0
"""


def _responder_tickpath(path, venue, marker, p, sc, port, workdir, card_dir=""):
    ready_file = os.path.join(workdir, "venue.ready")
    with open(ready_file, "w") as f:
        f.write(json.dumps(venue.ready) + "\n")
    cfg = os.path.join(workdir, f"{path}.toml")
    with open(cfg, "w") as f:
        f.write(_trade_config(path, ready_file, venue.ouch(), venue.password("TP"), marker, p, sc, port,
                              card_dir))
    out_json = os.path.join(workdir, f"{path}.json")
    proc = subprocess.Popen([sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg,
                             "--json", out_json, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900     # a cold cache compiles the loop first
    err = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        err.append(line)
        if line.startswith('{"ready"'):
            return proc, out_json
    proc.kill()
    raise RuntimeError(f"tickpath trade did not start: {''.join(err)[-1500:]}")


def precompile(path: str, p: T2TParams, sc: Scenario) -> dict:
    """`tickpath trade --compile-only` for this path's config, before any venue or clock
    starts: a cold cache compiles for minutes, which inside a run would leave the venue's
    flow (and its timestamp log) running with nobody answering."""
    workdir = tempfile.mkdtemp(prefix=f"tickpath-t2t-compile-{path}-")
    quiet = VP.VenueRun().quiet_symbols
    marker = {"instruments": [{"symbol": s} for s in quiet], "symbol": quiet[0], "answer_price": 10_000}
    emu = None
    try:
        card_dir = ""
        if path == "fpga-emu":    # the backend opens the card's files to learn the loop's types
            card_dir = os.path.join(workdir, "card")
            os.mkdir(card_dir)
            emu = spawn_fpga_emulator(card_dir, p.itch_port, p.venue_cpu)
        cfg = os.path.join(workdir, f"{path}.toml")
        with open(cfg, "w") as f:   # no venue: --compile-only connects to nothing
            f.write(_trade_config(path, "", ("127.0.0.1", 9), "-", marker, p, sc, p.itch_port, card_dir))
        out = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg,
                              "--compile-only"], capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(f"tickpath trade --compile-only failed for {path}: {out.stderr[-1500:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop_fpga_emulator(emu)


def _finish_tickpath(proc, out_json, timeout_s):
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return {"error": "tickpath trade did not finish"}
    rest = proc.stderr.read()
    if not os.path.exists(out_json):
        return {"error": f"tickpath trade exited {proc.returncode}: {rest[-800:]}"}
    with open(out_json) as f:
        return json.load(f)


def run_once(path: str, sc: Scenario, p: T2TParams, repeat: int) -> dict:
    """One venue, one responder, one trigger schedule."""
    port = p.itch_port + repeat % 7
    venue = VP.VenueProcess(VP.VenueRun(instruments=sc.instruments, rate_msgs_per_s=sc.venue_rate_msgs_per_s,
                                        seed=p.seed, itch_port=port, cpu=p.venue_cpu,
                                        storm_s=sc.storm_s, storm_factor=sc.storm_factor))
    res: dict = {"path": path, "scenario": sc.name, "repeat": repeat}
    workdir = tempfile.mkdtemp(prefix=f"tickpath-t2t-{path}-")
    udp = tcp = resp = trader = tap = emu = storm = None
    try:
        marker = TR.marker_for(venue.ready["refdata"], venue.quiet_symbols)
        host, oport = venue.ouch()
        try:
            tap = Tap(oport)
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
            trader, out_json = _responder_tickpath(path, venue, marker, p, sc, port, workdir, card_dir)
            responder_user = VP.TICKPATH_USER
        time.sleep(p.settle_s)
        plan = TR.TriggerPlan(rate_per_s=sc.trigger_rate_per_s, seconds=p.seconds, warmup=p.warmup,
                              linger=0, burst=sc.burst)
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
            res["tickpath"] = _finish_tickpath(trader, out_json, 60)
        else:
            res["responder"] = resp.wait(30)
        trig.close()
    except FL.FloorUnavailable as exc:
        res["skipped"] = str(exc)
    finally:
        if tap is not None:
            tap.close()
            res["tap"] = {"segments": tap.segments, "answers": len(tap.answers),
                          "duplicates": tap.duplicates, "resyncs": tap.resyncs}
        if storm is not None:
            storm.cancel()
        stop_fpga_emulator(emu)
        stopped = venue.stop()
        venue.cleanup()
        for s in (udp, tcp):
            if s is not None:
                s.close()
    if "skipped" in res:
        return res
    m = w2w.match(stopped["log"], VP.TRIGGER_USER, responder_user, p.warmup,
                  tap.answers if tap is not None else None)
    lat = m.pop("latency_ns")
    res["w2w"] = m
    res["w2w_ns"] = w2w.stats(lat)
    res["_hist"] = w2w.histogram(lat)
    res["venue_rc"] = stopped["returncode"]
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


def aggregate(runs: list[dict]) -> dict:
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


def sweep(p: T2TParams, rates, p99_bound_ns: float, progress=print) -> dict:
    """Per path, raise the trigger rate (the given ones, then doubling) until a trigger goes
    unanswered or p99 passes the bound: the highest clean rate is the path's figure."""
    from dataclasses import replace
    steps: dict = {}
    for path in p.paths:
        if path in SKIPPED:
            steps[path] = {"skipped": SKIPPED[path]}
            continue
        todo = sorted(rates)
        best, out = None, []
        while todo and len(out) < 8:
            r = todo.pop(0)
            sc = replace(SCENARIOS[p.scenarios[0]], name=f"sweep@{r:g}/s", trigger_rate_per_s=r)
            res = run_once(path, sc, p, len(out))
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
                                     "share the venue CPU on a 2-CPU host"},
               "scenarios": {}}
    hists = {}
    scs = scenarios or [SCENARIOS[s] for s in p.scenarios]
    summary["compile"] = {}
    for path in p.paths:   # one loop per path serves every scenario (array sizes are not types)
        if path in ("kernel", "kernel-busypoll", "fpga-emu"):
            progress(f"t2t: compiling (or loading) tickpath trade for {path} …")
            summary["compile"][path] = precompile(path, p, scs[0])["compile_s"]
    for sc in scs:
        sname = sc.name
        per_path = {}
        for path in p.paths:
            if path in SKIPPED:
                per_path[path] = {"skipped": SKIPPED[path]}
                progress(f"t2t {sname} {path}: skipped — {SKIPPED[path]}")
                continue
            runs = []
            for k in range(p.repeats):
                r = run_once(path, sc, p, k)
                if "skipped" in r:
                    progress(f"t2t {sname} {path}: skipped — {r['skipped']}")
                    runs = [r]
                    break
                h = r.pop("_hist")
                hists.setdefault((sname, path), []).append(h)
                s = r["w2w_ns"]
                progress(f"t2t {sname} {path} #{k + 1}: p50 {s.get('p50', float('nan')) / 1e3:.1f} µs  "
                         f"p99 {s.get('p99', float('nan')) / 1e3:.1f} µs  unanswered {r['w2w']['unanswered']} "
                         f"of {r['w2w']['triggers_measured']}")
                runs.append(r)
            per_path[path] = {"runs": runs, "aggregate": aggregate(runs) if "skipped" not in runs[0] else {},
                              **({"skipped": runs[0]["skipped"]} if "skipped" in runs[0] else {})}
        floor = per_path.get("floor", {}).get("aggregate", {}).get("p50", {}).get("median")
        for path, v in per_path.items():
            agg = v.get("aggregate") or {}
            if floor and agg.get("p50"):
                agg["ratio_to_floor_p50"] = round(agg["p50"]["median"] / floor, 3)
        summary["scenarios"][sname] = per_path
    summary["_hists"] = {f"{s}/{p_}": _merge(hs) for (s, p_), hs in hists.items()}
    return summary


def _merge(hs: list[np.ndarray]) -> np.ndarray:
    out = np.zeros_like(hs[0])
    for h in hs:
        out += h
    return out
