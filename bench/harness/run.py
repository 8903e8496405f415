"""`tickpath bench`: the same seeded feed through every registered receive path, side by side.

For each backend (bench/backends.py registry) and each rate, `repeats` runs: a fresh
receiver, the open-loop sender (bench/sender.py: scheduled sends, latency from the
*scheduled* send time, so a late sender or a slow receiver cannot hide latency), a drain,
and the measurements: messages, loss, gaps, latency percentiles (warm-up excluded), CPU
time of the receive thread, and how much CPU *other* processes took meanwhile (the noisy
machine note). A receiver that fails is recorded as failed with its error; the rest go on.
A backend that cannot run here is listed as skipped with its reason, never left out.

`--sweep` raises each backend's rate (x1.5 a step) until loss appears or p99 crosses a
bound, confirms the highest clean rate with a second run, and reports it. sockperf, when
installed, runs in the same sitting as the C reference for the kernel UDP path. When the C
receive floor (`floor-recv`) ran, each path's median p50/p99 over the floor's at the same rate
is added to its aggregate (`p50_x_floor`, `p99_x_floor`): the "× floor" column of the report.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from dataclasses import asdict, dataclass

import numpy as np
import psutil
from tickpath.runtime.engine import latency
from tickpath.runtime.core.errors import ConfigError

from tickpath.bench.harness import backends as B
from tickpath.bench.scenarios.demo import SESSION, build_feed, cpu_model
from tickpath.bench.load.sender import Sender

SUMMARY = "summary.json"
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
SWEEP_FACTOR = 1.5
SWEEP_MAX_STEPS = 12
WARMUP_RUN_S = 0.5           # the discarded first run of each backend
DRAIN_S = 1.0                # after the last send, how long a receiver may take to catch up


def parse_rates(text: str) -> list[float]:
    """'50k,100k,1.5M' -> [50000.0, 100000.0, 1500000.0]; anything else is a ConfigError."""
    out = []
    for part in str(text).split(","):
        m = _RATE_RE.match(part)
        if not m:
            raise ConfigError("rate is not a number (e.g. 50000, 50k, 1.5M)", rate=part.strip(), rates=text)
        v = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
        if not 0 < v <= 50e6:
            raise ConfigError("rate out of range", rate=part.strip(), allowed="0 < rate <= 50M msg/s")
        out.append(v)
    return out


def parse_backends(text: str) -> list[str]:
    reg = B.bench_backends()
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ConfigError("no backend named", backends=text, known=",".join(reg))
    unknown = [n for n in names if n not in reg]
    if unknown:
        raise ConfigError("unknown backend", backends=",".join(unknown), known=",".join(reg))
    return list(dict.fromkeys(names))


def parse_cpus(text: str | None) -> tuple[int | None, int | None, int | None]:
    """'tx,rx[,aux]' -> CPU ids (checked against this process's affinity)."""
    allowed = sorted(os.sched_getaffinity(0))
    if not text:
        if len(allowed) < 2:
            return None, allowed[0], allowed[0]
        return allowed[-2], allowed[-1], allowed[-2] if len(allowed) < 3 else allowed[-3]
    try:
        ids = [int(c) for c in text.split(",")]
    except ValueError:
        raise ConfigError("--cpus takes tx,rx[,aux] CPU ids", cpus=text) from None
    if len(ids) not in (2, 3) or any(c not in allowed for c in ids):
        raise ConfigError("--cpus takes 2 or 3 CPU ids this process may run on", cpus=text,
                          allowed=",".join(map(str, allowed)))
    return ids[0], ids[1], ids[2] if len(ids) == 3 else ids[0]


@dataclass
class BenchParams:
    backends: list[str]
    rates: list[float]
    seconds: float = 10.0
    repeats: int = 2
    instruments: int = 300
    seed: int = 1
    msgs_per_packet: int = 4
    sweep: bool = False
    p99_bound_us: float = 1000.0
    cpus: str | None = None
    sockperf: bool = True
    stages: bool = False

    def check(self) -> BenchParams:
        if not self.seconds > 0 or self.seconds > 3600:
            raise ConfigError("seconds out of range", seconds=self.seconds, allowed="0 < s <= 3600")
        if not 1 <= self.repeats <= 100:
            raise ConfigError("repeats out of range", repeats=self.repeats, allowed="1..100")
        if not self.p99_bound_us > 0:
            raise ConfigError("p99 bound must be positive", p99_bound_us=self.p99_bound_us)
        if not 1 <= self.instruments <= 60000 or not 1 <= self.msgs_per_packet <= 64:
            raise ConfigError("feed shape out of range", instruments=self.instruments,
                              msgs_per_packet=self.msgs_per_packet)
        return self

    def fingerprint(self) -> dict:
        """What makes two runs the same run (the --out refusal compares this)."""
        d = asdict(self)
        d.pop("cpus")
        d.pop("sockperf")
        return d


def prepare_out_dir(out: str, params: BenchParams, force: bool) -> None:
    """Refuse a directory that holds a different run (or unknown files) unless force."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError("output path exists and is not a directory", out=out)
    if os.path.isdir(out) and os.listdir(out) and not force:
        path = os.path.join(out, SUMMARY)
        try:
            with open(path) as f:
                old = json.load(f).get("params", {}).get("fingerprint")
        except (OSError, ValueError):
            raise ConfigError("output directory is not empty and holds no bench summary; "
                              "use --force to write into it", out=out) from None
        if old != params.fingerprint():
            raise ConfigError("output directory holds a different bench run; use --force to "
                              "overwrite, or another --out", out=out,
                              old=json.dumps(old, sort_keys=True)[:300])
    os.makedirs(out, exist_ok=True)


# --- machine and noise -------------------------------------------------------------------

def machine_info() -> dict:
    info = {"cpu_model": cpu_model(), "cpus": os.cpu_count(),
            "allowed_cpus": sorted(os.sched_getaffinity(0)), "kernel": platform.release(),
            "python": platform.python_version(), "load_avg_1m_start": os.getloadavg()[0]}
    try:
        from tickpath.hostconfig.checks.base import Context, run_checks
        ctx = Context.build()
        res = [r for r in run_checks(ctx) if r.scope == "host"]
        counts: dict[str, int] = {}
        for r in res:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        info["hostconfig_audit"] = {"verdicts": counts,
                                    "not_ok": [f"{r.id}: {r.read}"[:160] for r in res
                                               if r.verdict not in ("ok", "n/a", "na")][:20]}
        topo = ctx.topo
        info["topology"] = {k: v for k, v in getattr(topo, "__dict__", {}).items()
                            if isinstance(v, (int, str, list, dict))} if topo is not None else None
        info["topology"] = json.loads(json.dumps(info["topology"], default=str))
    except Exception as exc:  # why: the audit is context for the report, never a reason to fail
        info["hostconfig_audit"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return info


class CpuWatch:
    """CPU seconds taken during a span by processes outside this bench's process tree."""

    def __init__(self):
        self.me = psutil.Process()
        self.sys0 = self._busy()
        self.own0 = self._own()
        self.t0 = time.monotonic()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    def _own(self) -> float:
        total = 0.0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                c = p.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
            except psutil.Error:
                pass
        return total

    def stop(self) -> dict:
        wall = max(time.monotonic() - self.t0, 1e-9)
        other = max(0.0, (self._busy() - self.sys0) - (self._own() - self.own0))
        return {"other_cpu_s": other, "other_cores_avg": other / wall, "load_avg_1m": os.getloadavg()[0]}


NOISY_OTHER_CORES = 0.25     # other processes averaging a quarter core: tails measure them


# --- one run -----------------------------------------------------------------------------

def _prefix_packets(packets, n_messages: int) -> tuple[int, int]:
    """(packets, messages) of the feed prefix that holds at most n_messages."""
    k = int(np.searchsorted(packets.msg_first, n_messages, side="left"))
    k = max(1, min(k, packets.n_packets))
    return k, int(packets.msg_count[:k].sum())


def run_one(session, name: str, packets, rate: float, seconds: float, params: BenchParams,
            cpus: tuple, progress=None) -> dict:
    tx_cpu, rx_cpu, aux_cpu = cpus
    warm = 2 * params.instruments + 3 + int(rate * min(0.5, seconds / 10))
    k, n_msgs = _prefix_packets(packets, int(rate * seconds) + warm)
    spec = B.RunSpec(rate_msgs_per_s=rate, n_messages=n_msgs, seconds=n_msgs / rate, rx_cpu=rx_cpu,
                     tx_cpu=tx_cpu, aux_cpu=aux_cpu, instruments=params.instruments,
                     warmup_messages=warm, session=SESSION, stages=params.stages)
    out = {"backend": name, "rate_msgs_per_s": rate, "status": "ok", "error": None,
           "messages_planned": n_msgs, "warmup_messages_excluded": warm,
           "sender_cpu": tx_cpu, "receiver_cpu": rx_cpu}
    run = sender = None
    watch = CpuWatch()
    try:
        run = session.new_run(spec)
        with run.sender_context():
            sender = Sender(packets, run.dest[0], run.dest[1], rate, cpu=tx_cpu,
                            max_seconds=spec.seconds * 3 + 10)
        delay_s = 0.05
        sender.start(0, k, delay_s=delay_s)
        t0 = time.monotonic() + delay_s          # the first scheduled send
        while not sender.done():
            time.sleep(0.02)
            got = run.messages()
            if progress:
                progress(name, rate, time.monotonic() - t0, int(sender.progress[1]), got, run.live_hist())
        sent = sender.stats()
        res = run.finish(sent["sent_messages"], time.monotonic() + DRAIN_S)
        # received over [first scheduled send, all received or drain end]
        elapsed = max(res.pop("drained_at", time.monotonic()) - t0, 1e-9)
        out.update({k2: v for k2, v in res.items()})
        out["sent"] = sent
        out["lost"] = sent["sent_messages"] - res["received"]
        out["elapsed_s"] = elapsed
        out["throughput_msgs_per_s"] = res["received"] / elapsed
        out["rx_cpu_pct"] = 100.0 * res["rx_cpu_s"] / elapsed if res["rx_cpu_s"] == res["rx_cpu_s"] else None
        out["latency_ns"] = latency.summary(res["hist"])
        out["stages_ns"] = res.get("stages_ns")   # None unless --stages and a runtime backend
        n = out["latency_ns"]["count"]
        notes = list(res.get("notes", []))
        if n < 1000:
            notes.append(f"only {n} latency samples: p99 and above are not meaningful")
        elif n < 10_000:
            notes.append(f"{n} latency samples: p99.9 rests on fewer than 10 values")
        elif n < 100_000:
            notes.append(f"{n} latency samples: p99.99 rests on fewer than 10 values")
        if sent["send_errors"]:
            notes.append(f"sender: {sent['send_errors']} send errors (counted as loss)")
        out["notes"] = notes
    except Exception as exc:   # why: one failing backend must not end the bench
        out["status"] = "failed"
        out["error"] = f"{type(exc).__name__}: {exc}"
        out.pop("hist", None)
    finally:
        if sender is not None:
            sender.close()
        if run is not None:
            try:
                run.close()
            except Exception as exc:
                out.setdefault("notes", []).append(f"close failed: {type(exc).__name__}: {exc}")
        out["noise"] = watch.stop()
        out["noisy"] = out["noise"]["other_cores_avg"] > NOISY_OTHER_CORES
    return out


# --- the bench -------------------------------------------------------------------------------

def _spread(vals: list[float]) -> dict:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return {"median": None, "min": None, "max": None, "spread_pct": None}
    med = float(np.median(v))
    return {"median": med, "min": float(min(v)), "max": float(max(v)),
            "spread_pct": 100.0 * (max(v) - min(v)) / med if med else None}


def aggregate(runs: list[dict]) -> dict:
    """Per (backend, rate): medians with min/max/spread across repeats, merged histogram."""
    ok = [r for r in runs if r["status"] == "ok"]
    agg = {"runs": len(runs), "ok_runs": len(ok),
           "failed": [r["error"] for r in runs if r["status"] == "failed"]}
    if not ok:
        return agg
    for key in ("p50", "p90", "p99", "p99.9", "p99.99", "max"):
        agg[key] = _spread([r["latency_ns"][key] for r in ok])
    for key in ("throughput_msgs_per_s", "rx_cpu_s", "rx_cpu_pct", "lost", "gaps", "received"):
        agg[key] = _spread([r.get(key) for r in ok])
    agg["lost_total"] = int(sum(r["lost"] for r in ok))
    agg["noisy"] = any(r["noisy"] for r in ok)
    return agg


def sweep_backend(session, name, packets, params, cpus, start_rate, progress=None,
                  max_rate: float | None = None) -> dict:
    """Raise the rate until loss or p99 > bound; the last clean rate is confirmed once more."""
    bound_ns = params.p99_bound_us * 1000
    steps, rate, best = [], start_rate, None
    limit = max_rate or packets.msg_first[-1] / params.seconds
    for _ in range(SWEEP_MAX_STEPS):
        if rate > limit:
            break
        r = run_one(session, name, packets, rate, params.seconds, params, cpus, progress)
        clean = r["status"] == "ok" and r["lost"] == 0 and r["latency_ns"]["p99"] <= bound_ns
        steps.append(_sweep_point(r, clean))
        if not clean:
            break
        best = rate
        rate *= SWEEP_FACTOR
    confirmed = None
    if best is not None:
        r = run_one(session, name, packets, best, params.seconds, params, cpus, progress)
        confirmed = r["status"] == "ok" and r["lost"] == 0 and r["latency_ns"]["p99"] <= bound_ns
        steps.append({**_sweep_point(r, confirmed), "confirmation": True})
    return {"highest_clean_rate_msgs_per_s": best, "confirmed": confirmed, "p99_bound_us": params.p99_bound_us,
            "steps": steps}


def _sweep_point(r: dict, clean: bool) -> dict:
    ok = r["status"] == "ok"
    return {"rate_msgs_per_s": r["rate_msgs_per_s"], "status": r["status"], "error": r["error"],
            "clean": clean, "lost": r.get("lost"),
            "throughput_msgs_per_s": r.get("throughput_msgs_per_s"),
            "p99_ns": r["latency_ns"]["p99"] if ok else None,
            "p50_ns": r["latency_ns"]["p50"] if ok else None}


def run_bench(params: BenchParams, progress=None, log=print) -> dict:
    """Everything except writing files: returns the summary (with histograms under 'hists')."""
    params.check()
    cpus = parse_cpus(params.cpus)
    machine = machine_info()
    top_rate = max(params.rates)
    n_max = int(top_rate * params.seconds * (SWEEP_FACTOR ** 4 if params.sweep else 1)) \
        + 2 * params.instruments + 3 + int(top_rate * 0.5) + 64
    t = time.monotonic()
    _market, packets = build_feed(params.seed, n_max, params.instruments, params.msgs_per_packet)
    log(f"tickpath bench: feed of {packets.msg_first[-1] + packets.msg_count[-1]:,} messages "
        f"({packets.n_packets:,} packets) built in {time.monotonic() - t:.1f} s; "
        f"sender cpu {cpus[0]}, receiver cpu {cpus[1]}, helper cpu {cpus[2]}")
    summary = {"tool": "tickpath bench", "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine,
               "params": {**asdict(params), "fingerprint": params.fingerprint(),
                          "cpus_used": {"sender": cpus[0], "receiver": cpus[1], "helper": cpus[2]}},
               "backends": {}, "runs": [], "sweep": {}, "sockperf": None}
    if cpus[0] == cpus[1]:
        summary["params"]["placement_note"] = "one CPU only: sender and receiver share it"
    hists = {}
    for name in params.backends:
        entry = B.bench_backends()[name]
        why = entry.check()
        if why:
            summary["backends"][name] = {"status": "skipped", "reason": why, "summary": entry.summary}
            log(f"  {name}: skipped: {why}")
            continue
        try:
            session = entry.open_session()
        except Exception as exc:
            summary["backends"][name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                                         "summary": entry.summary}
            log(f"  {name}: failed at setup: {exc}")
            continue
        summary["backends"][name] = {"status": "ran", "summary": entry.summary,
                                     "notes": list(getattr(session, "notes", [])), "rates": {}}
        try:
            # one untimed run first: compile caches, fresh links and cold pages stay out
            w = run_one(session, name, packets, min(params.rates), min(params.seconds, WARMUP_RUN_S),
                        params, cpus, None)
            w.pop("hist", None)
            summary["backends"][name]["warmup_run"] = {
                "status": w["status"], "error": w["error"], "lost": w.get("lost"),
                "p99_ns": w["latency_ns"]["p99"] if w["status"] == "ok" else None,
                "note": "discarded: the first run after setup, not in any figure"}
            for rate in params.rates:
                runs = []
                for rep in range(params.repeats):
                    r = run_one(session, name, packets, rate, params.seconds, params, cpus, progress)
                    r["repeat"] = rep
                    h = r.pop("hist", None)
                    if h is not None:
                        hists[(name, rate, rep)] = h
                        r["hgrm"] = hgrm_name(name, rate, rep)
                    runs.append(r)
                    summary["runs"].append(r)
                    log(_run_line(r))
                summary["backends"][name]["rates"][_rate_key(rate)] = aggregate(runs)
            if params.sweep:
                summary["sweep"][name] = sweep_backend(session, name, packets, params, cpus,
                                                       min(params.rates), progress)
                log(f"  {name}: highest clean rate "
                    f"{summary['sweep'][name]['highest_clean_rate_msgs_per_s']}")
        finally:
            session.close()
        failed = [r for r in summary["runs"] if r["backend"] == name and r["status"] == "failed"]
        if failed and len(failed) == sum(1 for r in summary["runs"] if r["backend"] == name):
            summary["backends"][name]["status"] = "failed"
            summary["backends"][name]["reason"] = failed[0]["error"]
    if params.sockperf:
        from tickpath.bench.refs import sockperf as sockperf_ref
        summary["sockperf"] = sockperf_ref.run(params.rates, min(params.seconds, 5.0), cpus)
    add_floor_ratios(summary)
    summary["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    summary["noisy"] = any(r.get("noisy") for r in summary["runs"])
    summary["hists"] = hists
    return summary


FLOOR = "floor-recv"          # the C receive floor (bench/refs/floor_recv.c)
# paths that receive over the bench's veth link, and the floor over that same link
VETH_FLOOR = "floor-recv-veth"
VETH_PATHS = ("afxdp", VETH_FLOOR)


def add_floor_ratios(summary: dict) -> None:
    """Each path's median p50 and p99 over the floor's at the same rate, in the same run
    (`p50_x_floor`, `p99_x_floor` in its aggregate); nothing when the floor did not run.
    A path on the veth link also gets `p50_x_link_floor` / `p99_x_link_floor`: over the
    floor on that link (the veth costs both the same hop), when that floor ran."""
    for floor_name, key_tail, names in ((FLOOR, "x_floor", None),
                                        (VETH_FLOOR, "x_link_floor", VETH_PATHS)):
        floor = summary["backends"].get(floor_name, {}).get("rates", {})
        for name, b in summary["backends"].items():
            if names is not None and name not in names:
                continue
            for rate, agg in b.get("rates", {}).items():
                f = floor.get(rate)
                for key in ("p50", "p99"):
                    mine = (agg.get(key) or {}).get("median")
                    base = (f or {}).get(key, {}).get("median") if f else None
                    if mine is not None and base:
                        agg[f"{key}_{key_tail}"] = round(mine / base, 3)


def _rate_key(rate: float) -> str:
    return f"{rate:.0f}"


def hgrm_name(name: str, rate: float, rep: int) -> str:
    return f"{name}-{rate:.0f}-r{rep}.hgrm"


def _run_line(r: dict) -> str:
    if r["status"] != "ok":
        return f"  {r['backend']:>16} {r['rate_msgs_per_s']:>10,.0f}/s  FAILED: {r['error']}"
    lat = r["latency_ns"]
    return (f"  {r['backend']:>16} {r['rate_msgs_per_s']:>10,.0f}/s  lost {r['lost']:>6,}  "
            f"p50 {lat['p50'] / 1e3:8.1f} µs  p99 {lat['p99'] / 1e3:8.1f} µs  "
            f"p99.9 {lat['p99.9'] / 1e3:8.1f} µs  rx cpu {r['rx_cpu_s']:.2f} s"
            + ("  (noisy)" if r["noisy"] else ""))


def progress_printer(quiet: bool = False):
    """A live line per second: backend, rate, elapsed, sent, received, live loss, p99."""
    state = {"last": 0.0}

    def show(name, rate, elapsed, sent, got, hist):
        if quiet or time.monotonic() - state["last"] < 1.0:
            return
        state["last"] = time.monotonic()
        p99 = f"{latency.percentile(hist, 99) / 1e3:8.1f} µs" if hist is not None else "   (at end)"
        live = f"{sent - got:>8,}" if got else "  (at end)"
        print(f"    {name:>16} @ {rate:>10,.0f}/s  {elapsed:5.1f} s  sent {sent:>10,}  received "
              f"{got:>10,}  in flight/lost {live}  p99 {p99}", flush=True)
    return show
