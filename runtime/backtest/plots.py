"""PNG plots of one backtest (matplotlib, Agg): equity and net inventory over simulated time,
and the distribution of fill latency (strategy send → exchange fill)."""
from __future__ import annotations

import os


def write_plots(summary: dict, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(summary["file"]))[0]
    paths = []
    series = summary.get("equity_series")
    if series:
        eq, t_ns, net = series
        t_s = [x / 1e9 for x in t_ns]
        fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
        a1.plot(t_s, eq)
        a1.set_ylabel("equity (P&L, $)")
        a1.set_title(f"{stem}: P&L marked to market (sample every {summary['risk']['sample_interval_s']} s)")
        a2.step(t_s, net, where="post")
        a2.set_ylabel("net inventory (shares)")
        a2.set_xlabel("exchange time (s since midnight)")
        p = os.path.join(out_dir, f"{stem}_pnl_inventory.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    lat = summary.get("fill_latency_ns")
    lat_values = summary.get("_fill_latencies_ns")
    if lat and lat_values:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.hist([v / 1e3 for v in lat_values], bins=50)
        ax.set_xlabel("fill latency: order sent → filled (µs)")
        ax.set_ylabel("fills")
        ax.set_title(f"{stem}: fill latency (p50 {lat['p50'] / 1e3:.1f} µs, p99 {lat['p99'] / 1e3:.1f} µs)")
        p = os.path.join(out_dir, f"{stem}_fill_latency.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths
