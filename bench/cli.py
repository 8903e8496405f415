"""The commands bench/ owns, each a "tickpath.commands" entry point (pyproject.toml; the
root, runtime/cli.py, reads them and names no bench module):

    tickpath bench [options]     the side-by-side receive benchmark (bench/harness), or --t2t
    tickpath bench ring          SPSC ring vs Python queues (bench/scenarios/ring_bench.py)
    tickpath demo                feed -> runtime vs plain Python, then the closed loop
    tickpath soak                A/B lines under loss with a retransmission server
    tickpath publish-itch FILE   an ITCH 5.0 file sent as MoldUDP64 (bench/load/itchsend.py)
    tickpath venue               the exchange simulator (bench/venue/cli.py)

The bench options live on `tickpath bench` itself, so `tickpath bench ring` (a subcommand)
keeps working next to them:

    tickpath bench --backends floor-recv,python,kernel,kernel-busypoll,afxdp,fpga-emu \
                   --rates 50k,100k,200k --seconds 10 --out DIR [--sweep] [--compare OLD_DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

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
    for col in ("backend", "rate msg/s", "ok", "lost", "p50", "p50 × floor", "p99", "p99 spread", "p99.9",
                "rx CPU s"):
        t.add_column(col, justify="right")
    for name, b in summary["backends"].items():
        if b["status"] == "skipped" or not b.get("rates"):
            t.add_row(name, "", b["status"], b.get("reason", "")[:60], "", "", "", "", "", "")
            continue
        for rate, agg in b["rates"].items():
            if not agg.get("ok_runs"):
                t.add_row(name, f"{float(rate):,.0f}", "0", "failed", "", "", "", "", "", "")
                continue
            sp = agg["p99"]["spread_pct"]
            fx = agg.get("p50_x_floor")
            lx = agg.get("p50_x_link_floor")
            fx_cell = ("n/a" if fx is None else f"{fx:.2f}×") + ("" if lx is None else f" ({lx:.2f}× veth)")
            t.add_row(name, f"{float(rate):,.0f}", f"{agg['ok_runs']}/{agg['runs']}", f"{agg['lost_total']:,}",
                      f"{agg['p50']['median'] / 1e3:,.1f}", fx_cell,
                      f"{agg['p99']['median'] / 1e3:,.1f}",
                      "n/a" if sp is None else f"{sp:.0f} %", f"{agg['p99.9']['median'] / 1e3:,.1f}",
                      f"{agg['rx_cpu_s']['median']:.2f}" if agg["rx_cpu_s"]["median"] is not None else "n/a")
    con = Console(width=max(Console().width, 120))
    con.print(t)
    if summary.get("noisy"):
        con.print("[yellow]note: other processes took CPU during some runs (see report.md)[/yellow]")


def add_venue(subparsers) -> None:
    """`tickpath venue` (the exchange simulator)."""
    from tickpath.bench.venue.cli import add_venue_parser
    add_venue_parser(subparsers)


def add_bench(subparsers) -> None:
    """`tickpath bench [options]` and `tickpath bench ring`."""
    bench = subparsers.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench_command")
    s = bsub.add_parser("ring", help="SPSC ring between two pinned threads / processes vs queue.Queue")
    s.add_argument("--cpus", help="producer,consumer CPU ids (e.g. 0,1)")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_bench_ring)
    add_bench_arguments(bench, bsub)


def _cmd_bench_ring(args) -> int:
    from tickpath.bench.scenarios import ring_bench
    from tickpath.bench.scenarios.demo import cpu_model
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else [None, None]
    if len(cpus) != 2:
        raise SystemExit("--cpus takes two CPU ids: producer,consumer")
    res = ring_bench.run(tuple(cpus), repeats=args.repeats)
    res["cpu_model"] = cpu_model()
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"SPSC ring vs Python queues — {res['cpu_model']}, cpus {cpus}, {args.repeats} runs each")
    for col in ("path", "median items/s", "min", "max", "all delivered in order"):
        t.add_column(col, justify="right")
    base = res["throughput"]["queue.Queue"]["median"]
    for name, r in res["throughput"].items():
        t.add_row(name, f"{r['median'] / 1e6:,.2f} M ({r['median'] / base:,.0f}× Queue)",
                  f"{r['min'] / 1e6:,.2f} M", f"{r['max'] / 1e6:,.2f} M", str(r["all_delivered_in_order"]))
    Console().print(t)
    for name, r in res["round_trip_ns"].items():
        print(f"round trip ({name}): p50 {r['p50']:.0f} ns  p99 {r['p99']:.0f} ns  p99.9 {r['p99.9']:.0f} ns  "
              f"({r['samples']:,} samples)")
    return 0


def _cmd_demo(args) -> int:
    from tickpath.bench.scenarios.demo import print_closed_loop, print_report, run_demo, write_outputs
    summary = run_demo(seconds=args.seconds, rate=args.rate, instruments=args.instruments,
                       seed=args.seed, msgs_per_packet=args.msgs_per_packet,
                       baseline=not args.no_baseline, idle=args.idle, quiet=args.quiet,
                       loop_seconds=args.loop_seconds)
    print_report(summary)
    print_closed_loop(summary["closed_loop"])
    write_outputs(summary, args.json, args.hgrm)
    lost = [r["sent"]["sent_messages"] - r["received"] for r in summary["results"]]
    return 1 if lost[0] != 0 else 0


def add_demo(subparsers) -> None:
    s = subparsers.add_parser("demo", help="the main job: ITCH feed → runtime → books/indicators, vs plain Python")
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--rate", type=float, default=100_000, help="messages per second")
    s.add_argument("--instruments", type=int, default=300)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--msgs-per-packet", type=int, default=4)
    s.add_argument("--idle", default="busy-spin", choices=["busy-spin", "spin-yield", "backoff"])
    s.add_argument("--no-baseline", action="store_true", help="skip the plain-Python receiver")
    s.add_argument("--loop-seconds", type=float, default=10.0,
                   help="the closed loop (venue <-> market maker) this long; 0 skips it")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    s.add_argument("--hgrm", metavar="PATH", help="write the HdrHistogram percentile distribution")
    s.set_defaults(func=_cmd_demo)


def _cmd_soak(args) -> int:
    from tickpath.bench.scenarios.soak import run_soak
    stop = {"n": 0}

    def on_signal(signum, frame):   # a second signal forces exit
        stop["n"] += 1
        if stop["n"] > 1:
            os._exit(130)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    n = int(args.minutes * 60 * args.rate) if args.minutes else args.messages
    res = run_soak(n_messages=n, rate_msgs_per_s=args.rate, loss_a=args.loss_a, loss_b=args.loss_b,
                   burst=args.burst, seed=args.seed, server_mode=args.server_mode)
    print(json.dumps(res, indent=2, default=str))
    ok = res["delivered_messages"] + res["gap_messages"] == n and res["out_of_order"] == 0
    return 0 if ok else 1


def add_soak(subparsers) -> None:
    s = subparsers.add_parser("soak", help="A/B lines with loss + retransmission, every message checked")
    s.add_argument("--minutes", type=float, default=0.0, help="run length (overrides --messages)")
    s.add_argument("--messages", type=int, default=1_000_000)
    s.add_argument("--rate", type=float, default=100_000, help="messages per second")
    s.add_argument("--loss-a", type=float, default=0.01)
    s.add_argument("--loss-b", type=float, default=0.01)
    s.add_argument("--burst", type=int, default=1)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--server-mode", default="ok", choices=["ok", "refuse", "slow", "silent"])
    s.set_defaults(func=_cmd_soak)


def _cmd_publish(args) -> int:
    from tickpath.bench.load.itchsend import publish_itch_file
    from tickpath.runtime.engine.cli import progress_bar
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SystemExit("--to takes HOST:PORT with a port 1..65535 (a destination, so not 0)")
    bar, cb = progress_bar(not args.no_progress and sys.stderr.isatty(), f"publish {args.file}")
    kw = {"rate_msgs_per_s": args.rate if args.pace == "rate" else None, "speed": args.speed,
          "session": args.session, "max_seconds": args.max_seconds, "progress": cb}
    if bar:
        with bar:
            res = publish_itch_file(args.file, host, int(port), **kw)
    else:
        res = publish_itch_file(args.file, host, int(port), **kw)
    print(json.dumps(res, indent=2))
    return 0 if res["send_errors"] == 0 else 1


def add_publish_itch(subparsers) -> None:
    s = subparsers.add_parser("publish-itch", help="send an ITCH 5.0 file as MoldUDP64 at a rate or its recorded pace")
    s.add_argument("file")
    s.add_argument("--to", required=True, metavar="HOST:PORT")
    s.add_argument("--pace", choices=("rate", "recorded"), default="rate")
    s.add_argument("--rate", type=float, default=100_000, help="messages per second (--pace rate)")
    s.add_argument("--speed", type=float, default=1.0, help="recorded pace: this many times faster")
    s.add_argument("--session", default="ITCHFILE")
    s.add_argument("--max-seconds", type=float, default=3600.0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_publish)
