"""`tickpath bench [options]`: the side-by-side benchmark (bench/harness.py) from the command
line. runtime/cli.py calls `add_bench_arguments(bench_parser, bench_subparsers)`; the options
live on `tickpath bench` itself, so `tickpath bench ring` (a subcommand) keeps working.

    tickpath bench --backends python,kernel,kernel-busypoll,afxdp,fpga-emu \
                   --rates 50k,100k,200k --seconds 10 --out DIR [--sweep] [--compare OLD_DIR]
"""
from __future__ import annotations

import argparse

from tickpath.bench.harness import DEFAULT_ORDER


def add_bench_arguments(bench_parser: argparse.ArgumentParser, bench_subparsers=None) -> None:
    g = bench_parser.add_argument_group("side-by-side receive-path benchmark")
    g.add_argument("--backends", default=",".join(DEFAULT_ORDER),
                   help=f"comma list of receive paths (default: {','.join(DEFAULT_ORDER)})")
    g.add_argument("--rates", default="50k,100k,200k", help="messages per second, e.g. 50k,100k,1.5M")
    g.add_argument("--seconds", type=float, default=10.0, help="seconds of traffic per run")
    g.add_argument("--repeats", type=int, default=2, help="runs per rate (spread is reported)")
    g.add_argument("--out", metavar="DIR", default="bench-out", help="output directory")
    g.add_argument("--force", action="store_true", help="write into a directory holding another run")
    g.add_argument("--sweep", action="store_true", help="raise the rate until loss or p99 > bound")
    g.add_argument("--p99-bound-us", type=float, default=1000.0, help="p99 bound for --sweep, µs")
    g.add_argument("--compare", metavar="OLD_DIR", help="put a previous run's numbers beside this one")
    g.add_argument("--cpus", metavar="TX,RX[,AUX]", help="sender, receiver and helper CPU ids")
    g.add_argument("--instruments", type=int, default=300)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--msgs-per-packet", type=int, default=4)
    g.add_argument("--stages", action="store_true",
                   help="also record send→receive and receive→consumer latency (out ring + a consumer "
                        "thread: costs CPU, so not comparable with runs without)")
    g.add_argument("--no-sockperf", action="store_true", help="do not run sockperf even if installed")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    g.add_argument("--list", action="store_true", help="list the registered receive paths and exit")
    from tickpath.bench.t2t.cli import add_arguments as add_t2t_arguments
    add_t2t_arguments(g)
    bench_parser.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from tickpath.bench.harness import backends as B
    from tickpath.bench.harness import run as harness
    from tickpath.bench.harness import report

    if args.t2t:
        from tickpath.bench.t2t.cli import cmd_t2t
        return cmd_t2t(args)
    if args.list:
        for name, e in B.bench_backends().items():
            why = e.check()
            print(f"{name:>16}  {'ok' if why is None else 'skipped: ' + why}  — {e.summary}")
        return 0
    params = harness.BenchParams(
        backends=harness.parse_backends(args.backends), rates=harness.parse_rates(args.rates),
        seconds=args.seconds, repeats=args.repeats, instruments=args.instruments, seed=args.seed,
        msgs_per_packet=args.msgs_per_packet, sweep=args.sweep, p99_bound_us=args.p99_bound_us,
        cpus=args.cpus, sockperf=not args.no_sockperf, stages=args.stages).check()
    harness.parse_cpus(args.cpus)                       # refuse bad --cpus before any traffic
    harness.prepare_out_dir(args.out, params, args.force)
    if args.compare:
        report.compare({"backends": {}}, args.compare)  # an unreadable OLD_DIR fails now, not at the end
    summary = harness.run_bench(params, progress=harness.progress_printer(args.quiet))
    paths = report.write_all(summary, args.out, args.compare)
    _print_table(summary)
    print(f"wrote {len(paths)} files to {args.out}: report.md, summary.json, "
          f"{sum(p.endswith('.hgrm') for p in paths)} .hgrm, {sum(p.endswith('.png') for p in paths)} .png")
    failed = [n for n, b in summary["backends"].items() if b["status"] == "failed"]
    return 1 if failed else 0


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="tickpath bench — medians over runs (µs)")
    for col in ("backend", "rate msg/s", "ok", "lost", "p50", "p99", "p99 spread", "p99.9", "rx CPU s"):
        t.add_column(col, justify="right")
    for name, b in summary["backends"].items():
        if b["status"] == "skipped" or not b.get("rates"):
            t.add_row(name, "", b["status"], b.get("reason", "")[:60], "", "", "", "", "")
            continue
        for rate, agg in b["rates"].items():
            if not agg.get("ok_runs"):
                t.add_row(name, f"{float(rate):,.0f}", "0", "failed", "", "", "", "", "")
                continue
            sp = agg["p99"]["spread_pct"]
            t.add_row(name, f"{float(rate):,.0f}", f"{agg['ok_runs']}/{agg['runs']}", f"{agg['lost_total']:,}",
                      f"{agg['p50']['median'] / 1e3:,.1f}", f"{agg['p99']['median'] / 1e3:,.1f}",
                      "n/a" if sp is None else f"{sp:.0f} %", f"{agg['p99.9']['median'] / 1e3:,.1f}",
                      f"{agg['rx_cpu_s']['median']:.2f}" if agg["rx_cpu_s"]["median"] is not None else "n/a")
    con = Console(width=max(Console().width, 120))
    con.print(t)
    if summary.get("noisy"):
        con.print("[yellow]note: other processes took CPU during some runs (see report.md)[/yellow]")


def add_subcommands(subparsers) -> None:
    """bench/'s top-level commands: `tickpath venue` (the exchange simulator)."""
    from tickpath.bench.venue.cli import add_venue_parser
    add_venue_parser(subparsers)
