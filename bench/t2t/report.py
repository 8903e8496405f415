"""Outputs of `tickpath bench --t2t`: summary.json, one .hgrm per scenario and path, report.md
(the tail table with the ratio to the C floor and what each figure rests on), a PNG of the
latency-by-percentile curves per scenario, and `--compare OLD_DIR` beside this run.
"""
from __future__ import annotations

import json
import math
import os


from tickpath.bench.harness.report import _json_default, nines_axis, plot_percentiles
from tickpath.runtime.engine import latency

COLS = ("p50", "p90", "p99", "p99.9", "max", "mean", "std")


def _us(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v / 1e3:,.1f}"


def rows(summary: dict):
    for sname, per in summary["scenarios"].items():
        for path, v in per.items():
            yield sname, path, v


def markdown(summary: dict, old: dict | None = None) -> str:
    m = summary["machine"]
    out = ["# tickpath bench --t2t — wall-to-wall tick-to-trade", "",
           f"{m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, load average at start "
           f"{', '.join(f'{x:.2f}' for x in m.get('loadavg', ()))}. Placement: {json.dumps(summary['placement'])}.",
           f"Trigger packet sent (venue clock, before sendto) → answering order at the venue's host "
           f"(the loopback tap — for the veth paths the tap on the venue's end of the veth — or the venue's "
           f"read stamp where the tap could not run). Medians over "
           f"{summary['params']['repeats']} runs of {summary['params']['seconds']} s each; the first "
           f"{summary['params']['warmup']} triggers of a run are warm-up and left out, and the first "
           f"trigger goes out {summary['params'].get('settle_s', 0)} s after the responder is up "
           f"(the backlog its socket or card collected while it started is drained by then).", ""]
    out.append("| scenario | path | runs | samples | unanswered | twice | " + " | ".join(f"{c} µs" for c in COLS)
               + " | ×floor (p50) | in-process p50 µs | to send() call p50 µs | bare send() p50 µs | rx loop polls/s (M) |"
               + (" old p50 µs |" if old else ""))
    out.append("|" + "---|" * (len(COLS) + 11 + (1 if old else 0)))
    for sname, path, v in rows(summary):
        if v.get("skipped"):
            out.append(f"| {sname} | {path} | skipped: {v['skipped']} |")
            continue
        a = v.get("aggregate", {})
        if not a.get("ok_runs"):
            errs = "; ".join(str(r.get("error") or r.get("tickpath", {}).get("error") or "")[:80] for r in v.get("runs", []))
            out.append(f"| {sname} | {path} | failed: {errs} |")
            continue
        ip = a.get("in_process_p50_ns", {}).get("median")
        call = a.get("in_process_call_p50_ns", {}).get("median")
        bare = a.get("bare_send_p50_ns", {}).get("median")
        polls = a.get("loop_polls_per_s", {})
        polls_txt = f"{polls['median'] / 1e6:.2f} [{polls['min'] / 1e6:.2f}–{polls['max'] / 1e6:.2f}]" if polls else ""
        line = (f"| {sname} | {path} | {a['ok_runs']}/{a['runs']} | {a['samples']:,} | {a['unanswered']} | "
                f"{a['answered_twice']} | " + " | ".join(_us(a[c]["median"]) for c in COLS)
                + f" | {a.get('ratio_to_floor_p50', '')} | {_us(ip)} | {_us(call)} | {_us(bare)} | {polls_txt} |")
        if old:
            oa = old.get("scenarios", {}).get(sname, {}).get(path, {}).get("aggregate", {})
            line += f" {_us(oa.get('p50', {}).get('median'))} |"
        out.append(line)
    if summary.get("veth"):
        v = summary["veth"]
        out += ["", f"**Wire of the veth paths** (kernel-veth, afxdp): the venue in namespace {v['venue_ns']} "
                f"({v['venue_addr']} on {v['venue_if']}), tickpath trade in {v['responder_ns']} "
                f"({v['responder_addr']} on {v['responder_if']}), joined by a veth pair: the ITCH and the "
                f"orders cross the veth, one more hop than loopback; AF_XDP in {v['afxdp_mode']} mode. "
                "Compare afxdp with kernel-veth (same wire, same placement); their ×floor is against "
                "the loopback floor."]
    out += ["", "What the figures rest on: p99.9 of N samples rests on N/1000 of them; a run's "
            "percentiles are exact (every sample kept), the table gives the median run. "
            "`unanswered` are triggers the path never answered (lost packets, or two triggers in "
            "one batch: a strategy sees one book update). The floor and the plain-Python path "
            "answer the ITCH message itself; tickpath's strategy answers a book update. In-process is "
            "the trigger's receive stamp to send() returned; on loopback send() also runs the "
            "venue's TCP receive, so it returns after the order is on the wire (it can exceed wall "
            "to wall); `to send() call` stops before the syscall: the software's own part. `rx loop polls/s`: "
            "tickpath trade's receive-loop iterations per second of its run (median [min–max] of the runs): "
            "the busy-spinning loop's share of its CPU (compare runs of one path only: a kernel poll is a "
            "recvmmsg syscall, an AF_XDP poll reads a ring) — a run whose figure collapses was starved by "
            "other work on that CPU, and its latencies say so more than the code does. Runs alternate "
            "the paths (round k runs each path once).",
            "On a 2-vCPU VM shared with other work the tail is the hypervisor's and the neighbours' "
            "more than the code's: compare paths within a run, not across machines."]
    return "\n".join(out) + "\n"


def write_all(summary: dict, out_dir: str, compare_dir: str | None = None) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    hists = summary.pop("_hists", {})
    old = None
    if compare_dir:
        with open(os.path.join(compare_dir, "summary.json")) as f:
            old = json.load(f)
    written = []
    p = os.path.join(out_dir, "summary.json")
    with open(p, "w") as f:
        json.dump(summary, f, indent=2, default=_json_default)
    written.append(p)
    for key, h in hists.items():
        p = os.path.join(out_dir, f"t2t_{key.replace('/', '_')}.hgrm")
        with open(p, "w") as f:
            f.write(latency.hgrm_text(h))
        written.append(p)
    p = os.path.join(out_dir, "report.md")
    with open(p, "w") as f:
        f.write(markdown(summary, old))
    written.append(p)
    written += plots(summary, hists, out_dir)
    return written


def plots(summary: dict, hists: dict, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for sname in summary["scenarios"]:
        fig, ax = plt.subplots(figsize=(8, 5))
        drew = False
        for key, h in hists.items():
            s, path = key.rsplit("/", 1)
            if s != sname:
                continue
            drew = plot_percentiles(ax, h, path) or drew
        if drew:
            nines_axis(ax)
            ax.set_ylabel("wall-to-wall µs (trigger sent → order at the venue)")
            ax.set_title(f"tick-to-trade, {sname} — {summary['machine'].get('cpu_model', '')}")
            p = os.path.join(out_dir, f"t2t_{sname.replace('/', '_')}.png")
            fig.savefig(p, dpi=110, bbox_inches="tight")
            written.append(p)
        plt.close(fig)
    return written
