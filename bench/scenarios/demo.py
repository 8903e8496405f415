"""`tickpath demo`: the main job on its embedded default. A seeded synthetic ITCH 5.0 market
is sent open loop over MoldUDP64 on loopback and received by the runtime (kernel-socket
backend, pinned busy-polling thread, books, indicators), then the same feed is sent to the
plain-Python blocking receiver in the same run, and both are reported side by side.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from tickpath.runtime.config import schema as config
from tickpath.runtime.engine import latency
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core import counters as C
from tickpath.runtime.engine.pipeline import utc_midnight_ns
from tickpath.runtime.engine.runner import Runtime

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.sender import Sender

SESSION = "TICKDEMO01"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pick_cpus() -> tuple[int | None, int | None]:
    """(sender, receiver): the receiver gets the last allowed CPU, the sender the one before."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, cpus[0]
    return cpus[-2], cpus[-1]


def build_feed(seed: int, n_messages: int, instruments: int, msgs_per_packet: int):
    market = generate(seed, n_messages, instruments)
    return market, pack_mold(market, SESSION, max_messages_per_packet=msgs_per_packet)


class _Progress:
    """A live line: rate, loss, p99 so far (rich when on a terminal, plain lines otherwise)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.last = 0.0

    def show(self, label: str, sent: int, got: int, hist: np.ndarray | None, t0: float):
        if self.quiet or time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        el = max(time.monotonic() - t0, 1e-9)
        if got < 0:  # the baseline runs in another process: only the sender's side is live
            print(f"  {label}: {el:5.1f} s  sent {sent:>9,}  (receiver reports at the end)", flush=True)
            return
        p99 = latency.percentile(hist, 99) / 1000
        print(f"  {label}: {el:5.1f} s  sent {sent:>9,}  received {got:>9,}  "
              f"rate {got / el:>9,.0f} msg/s  in flight/lost {sent - got:>6,}  p99 {p99:8.1f} µs",
              flush=True)


def run_tickpath(packets, n_msgs: int, rate: float, rx_cpu, tx_cpu, instruments: int,
                 warmup_seq: int, idle: str, quiet: bool, seconds_cap: float) -> dict:
    cfg = config.merge({
        "feed": {"port": 0, "session": SESSION},
        "cores": {"rx": [rx_cpu] if rx_cpu is not None else "auto"},
        "idle": {"strategy": idle},
        "book": {"instruments": instruments + 1, "max_orders": 1 << 20, "max_levels": 128},
        "run": {"warmup_seq": warmup_seq},
    })
    prog = _Progress(quiet)
    with Runtime(cfg) as rt:
        rt.open().start()
        sender = Sender(packets, "127.0.0.1", rt.backend.port, rate, cpu=tx_cpu, max_seconds=seconds_cap)
        cpu0 = rt.rx_cpu_seconds() or 0.0
        t0 = time.monotonic()
        sender.start()
        while not sender.done():
            time.sleep(0.1)
            rt.check()
            prog.show("tickpath", int(sender.progress[1]), int(rt.pipe.counters[C.MESSAGES]), rt.pipe.hist, t0)
        # drain: wait until everything sent was walked, or 1 s
        drain_end = time.monotonic() + 1.0
        while rt.pipe.counters[C.MESSAGES] < sender.stats()["sent_messages"] and time.monotonic() < drain_end:
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu_s = (rt.rx_cpu_seconds() or 0.0) - cpu0
        rt.stop()
        st = rt.stats()
        sender.close()
        hist = rt.pipe.hist.copy()
    c = st["counters"]
    return {"name": "tickpath (kernel backend, numba loop)", "sent": sender.stats(),
            "received": c["messages"], "gaps": c["gaps"], "gap_messages": c["gap_messages"],
            "duplicates": c["duplicates"], "malformed": c["malformed_packets"] + c["malformed_messages"],
            "drops": st["backend_stats"]["kernel_drops"] + c["frames_dropped"] + c["ring_dropped"],
            "book_unknown_order": c["book_unknown_order"], "elapsed_s": elapsed,
            "throughput_msgs_per_s": c["messages"] / elapsed, "latency_ns": latency.summary(hist),
            "hist": hist, "process_cpu_s": cpu_s, "counters": c, "notes": st["notes"] + st["backend_stats"]["notes"]}


def run_python(packets, n_msgs: int, rate: float, rx_cpu, tx_cpu, warmup_msgs: int, quiet: bool,
               seconds_cap: float) -> dict:
    """The plain-Python baseline in its own interpreter (its own GIL), same feed, same cores."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "baseline.npz")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickpath.bench.refs.pyreceiver", "-" if rx_cpu is None else str(rx_cpu),
             str(n_msgs), str(seconds_cap + 5), str(utc_midnight_ns()), out],
            stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"python baseline did not start (said {line!r})")
            port = int(line)
            sender = Sender(packets, "127.0.0.1", port, rate, cpu=tx_cpu, max_seconds=seconds_cap)
            t0 = time.monotonic()
            sender.start()
            prog = _Progress(quiet)
            while not sender.done():
                time.sleep(0.1)
                prog.show("python  ", int(sender.progress[1]), -1, None, t0)
            proc.wait(seconds_cap + 15)
            elapsed = time.monotonic() - t0
            sender.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not os.path.exists(out):
            raise RuntimeError(f"python baseline returned no result (exit {proc.returncode})")
        z = np.load(out)
        res = {k: z[k] for k in z.files}
    lat = res["latency_ns"][warmup_msgs:]
    hist = latency.new_histogram()
    latency.record_all(hist, np.ascontiguousarray(lat, dtype=np.int64))
    received = int(res["received"])
    return {"name": "plain Python (blocking socket + struct)", "sent": sender.stats(),
            "received": received, "gaps": int(res["gaps"]), "gap_messages": int(res["gap_messages"]),
            "duplicates": int(res["duplicates"]), "malformed": int(res["malformed"]), "drops": None,
            "elapsed_s": elapsed, "throughput_msgs_per_s": received / elapsed,
            "latency_ns": latency.summary(hist), "hist": hist, "process_cpu_s": float(res["cpu_seconds"])}


def run_demo(seconds: float = 10.0, rate: float = 100_000, instruments: int = 300, seed: int = 1,
             msgs_per_packet: int = 4, baseline: bool = True, idle: str = "busy-spin",
             quiet: bool = False, loop_seconds: float = 10.0) -> dict:
    if seconds <= 0 or rate <= 0 or instruments <= 0 or not 1 <= msgs_per_packet <= 64:
        raise ConfigError("demo parameters out of range", seconds=seconds, rate=rate,
                          instruments=instruments, msgs_per_packet=msgs_per_packet)
    n_msgs = int(rate * seconds) + 2 * instruments + 3
    tx_cpu, rx_cpu = pick_cpus()
    print(f"tickpath demo: {n_msgs:,} ITCH messages, {instruments} instruments, {rate:,.0f} msg/s, "
          f"{seconds:g} s per receiver; sender cpu {tx_cpu}, receiver cpu {rx_cpu}; seed {seed}", flush=True)
    t = time.monotonic()
    _market, packets = build_feed(seed, n_msgs, instruments, msgs_per_packet)
    print(f"  feed: {packets.n_packets:,} MoldUDP64 packets built in {time.monotonic() - t:.1f} s", flush=True)
    warmup_msgs = 2 * instruments + 3 + int(rate * min(0.5, seconds / 10))
    cap = seconds * 3 + 30
    results = [run_tickpath(packets, n_msgs, rate, rx_cpu, tx_cpu, instruments, warmup_msgs + 1,
                            idle, quiet, cap)]
    if baseline:
        results.append(run_python(packets, n_msgs, rate, rx_cpu, tx_cpu, warmup_msgs, quiet, cap))
    loop = None
    if loop_seconds > 0:
        from tickpath.bench.t2t.closed_loop import run_closed_loop
        print(f"  closed loop: tickpath venue ({rate:,.0f} background msg/s) <-> tickpath trade "
              f"(kernel backend, market-making example), {loop_seconds:g} s", flush=True)
        try:
            loop = run_closed_loop(seconds=loop_seconds, rate=rate, instruments=instruments, seed=seed,
                                   rx_cpu=rx_cpu, venue_cpu=tx_cpu, idle=idle)
        except Exception as exc:   # why: the market-data half of the demo still reports
            loop = {"error": f"{type(exc).__name__}: {exc}"}
    return {"machine": {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "kernel": platform.release(),
                        "load_avg_1m": os.getloadavg()[0]},
            "params": {"seconds": seconds, "rate_msgs_per_s": rate, "instruments": instruments,
                       "seed": seed, "messages": n_msgs, "msgs_per_packet": msgs_per_packet,
                       "packets": packets.n_packets, "sender_cpu": tx_cpu, "receiver_cpu": rx_cpu,
                       "idle": idle, "warmup_messages_excluded": warmup_msgs},
            "results": results, "closed_loop": loop}


def print_report(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    res = summary["results"]
    t = Table(title="tickpath demo — send→indicator latency, same feed, same run")
    t.add_column("metric")
    for r in res:
        t.add_column(r["name"], justify="right")
    if len(res) == 2:
        t.add_column("ratio python/tickpath", justify="right")

    def row(label, key, fmt="{:,}", ratio=False):
        vals = [r[key] if not callable(key) else key(r) for r in res]
        cells = ["n/a" if v is None else fmt.format(v) for v in vals]
        if len(res) == 2:
            cells.append(f"{vals[1] / vals[0]:.1f}×" if ratio and vals[0] and vals[1] else "")
        t.add_row(label, *cells)

    row("messages sent", lambda r: r["sent"]["sent_messages"])
    row("messages received", "received")
    row("lost (sent − received)", lambda r: r["sent"]["sent_messages"] - r["received"])
    row("sequence gaps", "gaps")
    row("duplicates", "duplicates")
    row("malformed", "malformed")
    row("drops (kernel + ring)", "drops")
    row("throughput msg/s", "throughput_msgs_per_s", "{:,.0f}")
    row("receiver CPU s (thread/process)", "process_cpu_s", "{:.2f}")
    for p in ("p50", "p90", "p99", "p99.9", "p99.99", "max"):
        row(f"latency {p} µs", lambda r, p=p: r["latency_ns"][p] / 1000, "{:,.1f}", ratio=True)
    c = Console()
    c.print(t)
    m = summary["machine"]
    c.print(f"machine: {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}, load {m['load_avg_1m']:.2f}; "
            f"warm-up excluded: first {summary['params']['warmup_messages_excluded']:,} messages. "
            "Latency is from each packet's scheduled send time (open loop), so sender lateness counts.")
    if m["load_avg_1m"] > 1.5:
        c.print("[yellow]note: the machine was busy (load > 1.5 on its CPUs): tails (p99.9+) "
                "measure the neighbours, not the code.[/yellow]")
    for r in res:
        for n in r.get("notes", []):
            c.print(f"note ({r['name']}): {n}")


def print_closed_loop(loop: dict | None) -> None:
    from rich.console import Console
    from rich.table import Table
    if loop is None:
        return
    c = Console()
    if "error" in loop:
        c.print(f"[red]closed loop failed: {loop['error']}[/red]")
        return
    w, s = loop.get("w2w", {}), loop.get("w2w_ns", {})
    t = Table(title="closed loop — market maker vs tickpath venue (tick-to-trade, µs)")
    t.add_column("")
    for k in ("p50", "p90", "p99", "p99.9", "max", "samples"):
        t.add_column(k, justify="right")
    if s.get("samples"):
        t.add_row(f"wall to wall ({w.get('answer_timestamps')})",
                  *[f"{s[k] / 1e3:,.1f}" for k in ("p50", "p90", "p99", "p99.9", "max")], f"{s['samples']:,}")
    ip = loop["in_process_t2t_ns"]
    if ip.get("count"):
        t.add_row("in process (event received → send() returned)",
                  *[f"{ip[k] / 1e3:,.1f}" for k in ("p50", "p90", "p99", "p99.9", "max")], f"{ip['count']:,}")
    ic = loop.get("in_process_call_ns", {})
    if ic.get("count"):   # the software's part: on loopback send() returns after the venue's TCP receive ran
        t.add_row("in process (event received → send() called)",
                  *[f"{ic[k] / 1e3:,.1f}" for k in ("p50", "p90", "p99", "p99.9", "max")], f"{ic['count']:,}")
    c.print(t)
    pnl = loop["pnl"]
    c.print(f"orders sent {loop['orders_sent']:,} (cancels {loop['cancels_sent']:,}), fills {loop['fills']:,} "
            f"({loop['filled_shares']:,} shares), risk rejects {loop['risk_rejects']:,}; final gross position "
            f"{pnl['gross_position']:,} shares, P&L realised {pnl['realised']:+,.2f} marked {pnl['unrealised']:+,.2f} "
            f"net {pnl['net']:+,.2f} $")
    ks = loop.get("kill_switch", {})
    if not loop.get("venue_alive", True) or ks.get("reason") not in (None, "manual"):
        c.print(f"[yellow]kill switch: {ks.get('reason')} — venue alive at the end: {loop.get('venue_alive')}[/yellow]")
    c.print("Wall to wall: the trigger's ITCH packet send time (venue clock) to the order at the venue's "
            "host, per order, matched exactly by the ClOrdID (the trigger's sequence number); orders are "
            "answers to the feed, not scheduled, so this is the strategy's reaction time under an open-loop "
            "feed (the feed itself is CO-safe). On a shared 2-vCPU VM the hypervisor owns the tail.")


def write_outputs(summary: dict, json_path: str | None, hgrm_path: str | None) -> None:
    loop = summary.get("closed_loop") or {}
    if json_path:
        out = {k: v for k, v in summary.items() if k not in ("results", "closed_loop")}
        out["results"] = [{k: v for k, v in r.items() if k != "hist"} for r in summary["results"]]
        out["closed_loop"] = {k: v for k, v in loop.items() if not k.startswith("_")}
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2, default=float)
    if hgrm_path:
        with open(hgrm_path, "w") as f:
            f.write(latency.hgrm_text(summary["results"][0]["hist"]))
        if len(summary["results"]) > 1:
            base, ext = os.path.splitext(hgrm_path)
            with open(f"{base}.python{ext or '.hgrm'}", "w") as f:
                f.write(latency.hgrm_text(summary["results"][1]["hist"]))
        if "_w2w_hist" in loop:
            base, ext = os.path.splitext(hgrm_path)
            with open(f"{base}.t2t{ext or '.hgrm'}", "w") as f:
                f.write(latency.hgrm_text(loop["_w2w_hist"]))
    target = json_path or hgrm_path
    if target and loop.get("series"):
        from tickpath.bench.t2t.closed_loop import plot
        base = os.path.splitext(target)[0]
        plot(loop, f"{base}.pnl.png")
        _plot_latency(summary, f"{base}.latency.png")


def _plot_latency(summary: dict, path: str) -> None:
    """HdrHistogram-style percentile plot: market data (both receivers) and tick-to-trade."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tickpath.bench.harness.report import nines_axis, plot_percentiles
    curves = [(r["name"], r["hist"]) for r in summary["results"] if r.get("hist") is not None]
    loop = summary.get("closed_loop") or {}
    if "_w2w_hist" in loop:
        curves.append(("tick-to-trade wall to wall", loop["_w2w_hist"]))
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, h in curves:
        plot_percentiles(ax, h, name)
    nines_axis(ax)
    ax.set_ylabel("µs")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
