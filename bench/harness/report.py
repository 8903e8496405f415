"""What `tickpath bench` leaves in its output directory, readable without opening the JSON:

* summary.json — machine, parameters, every run, per-(backend, rate) medians with spread
  (and p50_x_floor / p99_x_floor when floor-recv ran), skipped/failed backends with reasons,
  sweep, sockperf, and (--compare) the ratios;
* one .hgrm per run (HdrHistogram percentile distribution, µs);
* report.md — the tables (one per rate), notes, sweep and sockperf sections;
* latency_percentiles_<rate>.png — latency against percentile on a log "nines" axis, every
  backend on one chart (repeats merged), and throughput_vs_p99.png (from the sweep, or
  from the rate table when there was no sweep). matplotlib's Agg backend: no display.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
from tickpath.runtime.engine import latency

from tickpath.bench.harness.run import SUMMARY, hgrm_name

COMPARE_KEYS = ("p50", "p99", "p99.9", "throughput_msgs_per_s", "rx_cpu_s")


def _us(ns) -> str:
    return "n/a" if ns is None or (isinstance(ns, float) and math.isnan(ns)) else f"{ns / 1e3:,.1f}"


def _med(agg: dict, key: str):
    v = agg.get(key)
    return None if not v else v.get("median")


def compare(summary: dict, old_dir: str) -> dict:
    """Ratios new/old per (backend, rate) and metric, from OLD_DIR/summary.json."""
    path = os.path.join(old_dir, SUMMARY)
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as exc:
        from tickpath.runtime.core.errors import ConfigError
        raise ConfigError("cannot read the run to compare with", path=path, reason=str(exc)) from None
    out = {"old_dir": os.path.abspath(old_dir), "old_started_utc": old.get("started_utc"),
           "old_machine": old.get("machine", {}).get("cpu_model"), "ratios": {}}
    for name, b in summary["backends"].items():
        ob = old.get("backends", {}).get(name, {})
        for rate, agg in b.get("rates", {}).items():
            oagg = ob.get("rates", {}).get(rate)
            if not oagg:
                continue
            row = {}
            for k in COMPARE_KEYS:
                new_v, old_v = _med(agg, k), _med(oagg, k)
                row[k] = {"new": new_v, "old": old_v,
                          "ratio": (new_v / old_v) if new_v is not None and old_v else None}
            out["ratios"].setdefault(name, {})[rate] = row
    return out


def write_all(summary: dict, out_dir: str, compare_dir: str | None = None) -> list[str]:
    """Write every output; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    hists = summary.pop("hists", {})
    if compare_dir:
        summary["compare"] = compare(summary, compare_dir)
    written = []
    for (name, rate, rep), h in hists.items():
        p = os.path.join(out_dir, hgrm_name(name, rate, rep))
        with open(p, "w") as f:
            f.write(latency.hgrm_text(h))
        written.append(p)
    written += plots(summary, hists, out_dir)
    summary["plots"] = [os.path.basename(p) for p in written if p.endswith(".png")]
    p = os.path.join(out_dir, "report.md")
    with open(p, "w") as f:
        f.write(markdown(summary))
    written.append(p)
    p = os.path.join(out_dir, SUMMARY)
    with open(p, "w") as f:
        json.dump(_no_nan(summary), f, indent=1, default=_json_default, allow_nan=False)
    written.append(p)
    summary["hists"] = hists
    return written


def _no_nan(o):
    """Strict JSON: NaN/inf (an empty histogram's percentiles) become null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _no_nan(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_no_nan(v) for v in o]
    if isinstance(o, np.floating) and not np.isfinite(o):
        return None
    return o


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --- markdown ---------------------------------------------------------------------------------

def markdown(s: dict) -> str:
    m, p = s["machine"], s["params"]
    cu = p.get("cpus_used", {})
    lines = ["# tickpath bench", "",
             f"{s['started_utc']} — {m['cpu_model']}, {m['cpus']} CPUs, kernel {m['kernel']}, "
             f"Python {m.get('python')}. Sender on CPU {cu.get('sender')}, receiver on CPU "
             f"{cu.get('receiver')}, helper processes on CPU {cu.get('helper')}.",
             f"Feed: seed {p['seed']}, {p['instruments']} instruments, {p['msgs_per_packet']} msgs/packet, "
             f"{p['seconds']:g} s per run, {p['repeats']} runs per rate. Latency = completion − scheduled "
             "send time (open loop; sender lateness counts), warm-up excluded. Medians over runs; "
             "[min–max] is the spread. Figures are comparable only within this run.", ""]
    if p.get("placement_note"):
        lines += [f"**Placement:** {p['placement_note']}.", ""]
    lines += _noise_lines(s)
    rates = list(dict.fromkeys(f"{r:.0f}" for r in p["rates"]))
    for rate in rates:
        # the floor's column only when the floor ran at this rate (its own row reads 1.00×)
        floor_col = any("p50_x_floor" in b.get("rates", {}).get(rate, {}) for b in s["backends"].values())
        fx_head, fx_rule, fx_pad = (" p50 × floor |", "---|", " |") if floor_col else ("", "", "")
        lines += [f"## {float(rate):,.0f} msg/s", "",
                  "| backend | ok runs | lost | gaps | msg/s received | p50 µs |" + fx_head + " p90 µs | "
                  "p99 µs [min–max] | p99.9 µs | p99.99 µs | max µs | rx CPU s | rx CPU % |",
                  "|---|---|---|---|---|---|" + fx_rule + "---|---|---|---|---|---|---|"]
        for name, b in s["backends"].items():
            agg = b.get("rates", {}).get(rate)
            if b["status"] == "skipped":
                lines.append(f"| {name} | skipped: {b['reason']} |" + " |" * 11 + fx_pad)
                continue
            if not agg or not agg.get("ok_runs"):
                why = (agg or {}).get("failed") or [b.get("reason", "")]
                lines.append(f"| {name} | failed: {str(why[0])[:160]} |" + " |" * 11 + fx_pad)
                continue
            p99 = agg["p99"]
            fx = ""
            if floor_col:   # a veth path's ratio over the floor on its own link follows
                lx = agg.get("p50_x_link_floor")
                fx = f" {_fmt(agg.get('p50_x_floor'), '{:.2f}×')}" + \
                     (f" ({lx:.2f}× veth floor)" if lx is not None else "") + " |"
            lines.append(
                f"| {name} | {agg['ok_runs']}/{agg['runs']} | {agg['lost_total']:,} | {_med(agg, 'gaps'):,.0f} | "
                f"{_med(agg, 'throughput_msgs_per_s'):,.0f} | {_us(_med(agg, 'p50'))} |{fx} {_us(_med(agg, 'p90'))} | "
                f"{_us(p99['median'])} [{_us(p99['min'])}–{_us(p99['max'])}] | {_us(_med(agg, 'p99.9'))} | "
                f"{_us(_med(agg, 'p99.99'))} | {_us(_med(agg, 'max'))} | "
                f"{_fmt(_med(agg, 'rx_cpu_s'), '{:.2f}')} | {_fmt(_med(agg, 'rx_cpu_pct'), '{:.0f}')} |")
        if floor_col:
            lines.append("")
            lines.append("p50 × floor: the path's median p50 over `floor-recv`'s (the C receive floor: recvmmsg "
                         "spin, ITCH timestamp only) at this rate, in this run; p99's is in summary.json. "
                         "In brackets, for a path on the veth link: over `floor-recv-veth`'s, the same "
                         "floor on that link.")
        lines.append("")
        fig = f"latency_percentiles_{rate}.png"
        if fig in s.get("plots", []):
            lines += [f"![latency by percentile at {float(rate):,.0f} msg/s]({fig})", ""]
    lines += _backend_notes(s)
    lines += _stage_lines(s)
    lines += _sweep_lines(s)
    lines += _sockperf_lines(s)
    lines += _compare_lines(s)
    audit = m.get("hostconfig_audit", {})
    if audit.get("verdicts"):
        lines += ["## Host audit (tickpath.hostconfig)", "",
                  "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(audit["verdicts"].items())), ""]
        lines += [f"- {x}" for x in audit.get("not_ok", [])] + [""]
    return "\n".join(lines) + "\n"


def _fmt(v, f):
    return "n/a" if v is None else f.format(v)


def _noise_lines(s: dict) -> list[str]:
    m = s["machine"]
    worst = max((r["noise"]["other_cores_avg"] for r in s["runs"]), default=0.0)
    txt = (f"Load average {m['load_avg_1m_start']:.2f} at start, {m.get('load_avg_1m_end', float('nan')):.2f} "
           f"at end; other processes took up to {worst:.2f} cores on average during a run.")
    if s.get("noisy") or m["load_avg_1m_start"] > 1.0:
        return [f"**Noisy machine:** {txt} Tails (p99.9 and above) measure the neighbours as much "
                "as the code; runs marked noisy are flagged in summary.json.", ""]
    return [txt, ""]


def _backend_notes(s: dict) -> list[str]:
    out = ["## Backends", ""]
    for name, b in s["backends"].items():
        head = f"- **{name}** ({b['summary']}): {b['status']}"
        if b.get("reason"):
            head += f" — {b['reason']}"
        out.append(head)
        w = b.get("warmup_run")
        if w:
            res = (f"p99 {_us(w['p99_ns'])} µs, lost {w['lost']}" if w["status"] == "ok"
                   else f"failed: {w['error']}")
            out.append(f"  - warm-up run (discarded, not in any figure): {res}")
        notes = list(b.get("notes", []))
        for r in s["runs"]:
            if r["backend"] == name:
                notes += [n for n in r.get("notes", []) if n not in notes]
        out += [f"  - {n}" for n in notes]
    if not s["params"].get("stages"):
        out += ["", "Latency by stage: not recorded (run with --stages for send→receive and "
                "receive→consumer; the runtime itself keeps one send→indicators histogram).", ""]
    else:
        out += [""]
    return out


def _stage_lines(s: dict) -> list[str]:
    rows = {}
    for r in s["runs"]:
        if r["status"] == "ok" and r.get("stages_ns"):
            rows.setdefault((r["backend"], r["rate_msgs_per_s"]), []).append(r)
    if not s["params"].get("stages"):
        return []
    out = ["## Latency by stage (--stages)", "",
           "send→receive = backend receive stamp − scheduled send (sender lateness, kernel/veth path, "
           "wakeup); receive→consumer = consumer thread's clock − receive stamp (decode, book, indicators, "
           "the out-ring hop). Medians over runs, µs. Publishing to the ring and the consumer thread cost "
           "CPU: these runs are not comparable with runs without --stages.", "",
           "| backend | rate | send→receive p50 | p99 | receive→consumer p50 | p99 | end-to-end p50 | p99 | "
           "stage samples dropped |", "|---|---|---|---|---|---|---|---|---|"]
    for (name, rate), rs in rows.items():
        def med(stage, key, rs=rs):
            return float(np.median([r["stages_ns"][stage][key] for r in rs]))
        e2e50 = float(np.median([r["latency_ns"]["p50"] for r in rs]))
        e2e99 = float(np.median([r["latency_ns"]["p99"] for r in rs]))
        dropped = sum(r["stages_ns"].get("samples_dropped", 0) for r in rs)
        out.append(f"| {name} | {rate:,.0f} | {_us(med('send_to_receive', 'p50'))} | "
                   f"{_us(med('send_to_receive', 'p99'))} | {_us(med('receive_to_consumer', 'p50'))} | "
                   f"{_us(med('receive_to_consumer', 'p99'))} | {_us(e2e50)} | {_us(e2e99)} | {dropped:,} |")
    return out + [""]


def _sweep_lines(s: dict) -> list[str]:
    if not s.get("sweep"):
        return []
    out = ["## Saturation sweep", "",
           f"Rate ×1.5 a step until loss or p99 > {s['params']['p99_bound_us']:g} µs; the highest clean rate "
           "is run once more to confirm it.", "",
           "| backend | highest clean rate msg/s | confirmed | steps (rate: p99 µs, lost) |", "|---|---|---|---|"]
    for name, sw in s["sweep"].items():
        steps = "; ".join(f"{st['rate_msgs_per_s']:,.0f}: {_us(st['p99_ns'])}, {st['lost']}"
                          + (" (confirm)" if st.get("confirmation") else "") for st in sw["steps"])
        best = sw["highest_clean_rate_msgs_per_s"]
        out.append(f"| {name} | {'none' if best is None else f'{best:,.0f}'} | {sw['confirmed']} | {steps} |")
    out.append("")
    if "throughput_vs_p99.png" in s.get("plots", []):
        out += ["![throughput vs p99](throughput_vs_p99.png)", ""]
    return out


def _sockperf_lines(s: dict) -> list[str]:
    sp = s.get("sockperf")
    if not sp:
        return []
    if sp["status"] != "ok":
        return ["## C reference (sockperf)", "", f"{sp['status']}: {sp.get('reason') or sp.get('error')}", ""]
    out = ["## C reference (sockperf, kernel UDP on loopback)", "",
           f"sockperf {sp['version']}, {sp['message_bytes']}-byte messages; {sp['what']}. Compare with the "
           "`kernel` rows (which also decode, update books and indicators).", "",
           "| run | p50 µs | p99 µs | p99.9 µs | max µs | observations |", "|---|---|---|---|---|---|"]
    rows = [("ping-pong", sp["ping_pong"])] + [(f"under-load {float(k):,.0f} msg/s", v)
                                               for k, v in sp["under_load"].items()]
    for label, r in rows:
        if r["status"] != "ok":
            out.append(f"| {label} | failed: {r['error'][:120]} | | | | |")
            continue
        out.append(f"| {label} | {r.get('p50_us', float('nan')):.2f} | {r.get('p99_us', float('nan')):.2f} | "
                   f"{r.get('p99.9_us', float('nan')):.2f} | {r.get('max_us', float('nan')):.2f} | "
                   f"{r.get('observations', 'n/a')} |")
    return out + [""]


def _compare_lines(s: dict) -> list[str]:
    c = s.get("compare")
    if not c:
        return []
    out = ["## Compared with a previous run", "",
           f"Old run: {c['old_dir']} ({c['old_started_utc']}, {c['old_machine']}). Ratio = new / old "
           "(latency: < 1 is better; throughput: > 1 is better).", "",
           "| backend | rate | " + " | ".join(COMPARE_KEYS) + " |", "|---|---|" + "---|" * len(COMPARE_KEYS)]
    for name, rates in c["ratios"].items():
        for rate, row in rates.items():
            cells = [_fmt(row[k]["ratio"], "{:.2f}×") for k in COMPARE_KEYS]
            out.append(f"| {name} | {float(rate):,.0f} | " + " | ".join(cells) + " |")
    return out + [""]


# --- plots --------------------------------------------------------------------------------------

def percentile_curve(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(percentile, latency ns) at each non-empty bucket's upper edge."""
    counts = hist[:latency.OVERFLOW]
    nz = np.nonzero(counts)[0]
    if len(nz) == 0:
        return np.zeros(0), np.zeros(0)
    cum = np.cumsum(counts)[nz]
    total = cum[-1]
    pct = 100.0 * cum / total
    vals = np.array([latency.bucket_high(int(b)) for b in nz], dtype=np.float64)
    return pct, vals


NINES = (50, 90, 99, 99.9, 99.99)


def plot_percentiles(ax, hist: np.ndarray, label: str) -> bool:
    """One latency-by-percentile curve (µs) on the "nines" axis; False when it has no points."""
    pct, vals = percentile_curve(hist)
    keep = pct < 100.0
    if not keep.any():
        return False
    ax.plot(1.0 / (1.0 - pct[keep] / 100.0), vals[keep] / 1e3, label=label)
    return True


def nines_axis(ax, nines=NINES) -> None:
    """Log axes with the percentile ticks (10 = 90 %, 100 = 99 %, ...), grid and legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1.0 / (1.0 - q / 100.0) for q in nines], [f"{q:g}%" for q in nines])
    ax.set_xlabel("percentile")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def plots(s: dict, hists: dict, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    nines = [50, 90, 99, 99.9, 99.99, 99.999]
    for rate in dict.fromkeys(float(r) for r in s["params"]["rates"]):
        fig, ax = plt.subplots(figsize=(8, 5))
        drew = False
        for name in s["backends"]:
            hs = [h for (n, r, _), h in hists.items() if n == name and r == rate]
            if not hs:
                continue
            pct, vals = percentile_curve(np.sum(hs, axis=0))
            keep = pct < 100.0
            x = 1.0 / (1.0 - pct[keep] / 100.0)   # the "nines" axis: 10 = 90 %, 100 = 99 %
            if len(x):
                ax.plot(x, vals[keep] / 1e3, label=f"{name} ({len(hs)} runs)")
                drew = True
        if not drew:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1.0 / (1.0 - q / 100.0) for q in nines], [f"{q:g}%" for q in nines])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency µs (send → indicators)")
        ax.set_title(f"latency by percentile at {rate:,.0f} msg/s — {s['machine']['cpu_model']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        p = os.path.join(out_dir, f"latency_percentiles_{rate:.0f}.png")
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(p)
    fig, ax = plt.subplots(figsize=(8, 5))
    drew = False
    src = "sweep" if s.get("sweep") else "rate table"
    for name in s["backends"]:
        if s.get("sweep"):
            pts = [(st["throughput_msgs_per_s"], st["p99_ns"]) for st in s["sweep"].get(name, {}).get("steps", [])
                   if st["status"] == "ok" and not st.get("confirmation")]
        else:
            pts = [(r["throughput_msgs_per_s"], r["latency_ns"]["p99"]) for r in s["runs"]
                   if r["backend"] == name and r["status"] == "ok"]
        if pts:
            # step order (offered rate rising): a saturated step receives less and bends back
            ax.plot([a for a, _ in pts], [b / 1e3 for _, b in pts], marker="o", label=name)
            drew = True
    if drew:
        ax.set_yscale("log")
        ax.set_xlabel("received msg/s")
        ax.set_ylabel("p99 latency µs")
        if s.get("sweep"):
            ax.axhline(s["params"]["p99_bound_us"], color="grey", ls="--", lw=1, label="p99 bound")
        ax.set_title(f"throughput vs p99 ({src})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        p = os.path.join(out_dir, "throughput_vs_p99.png")
        fig.savefig(p, dpi=110, bbox_inches="tight")
        written.append(p)
    plt.close(fig)
    return written
