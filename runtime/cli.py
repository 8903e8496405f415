"""The `tickpath` command: info, demo, run, replay-free core commands, bench, host, fpga.

Slow path only: parses arguments, builds objects, prints reports. Subcommands owned by other
folders (host → hostconfig, fpga → fpga, bench → bench) register themselves through their
`add_subcommands(subparsers)`; a folder that fails to import is reported, not fatal.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time

from tickpath.runtime.core.errors import TickpathError


def _cmd_info(args) -> int:
    from tickpath.runtime.sys import info
    data = info.gather()
    if args.interface and isinstance(data.get("afxdp"), dict):
        try:
            from tickpath.runtime.backends.afxdp.probe import probe
            data["afxdp"] = probe(args.interface)
        except ImportError:
            pass
    if args.json:
        print(info.to_json(data))
    else:
        info.print_info(data)
        if args.interface:
            print(json.dumps(data["afxdp"].get("interface", {}), indent=2, default=str))
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


def _cmd_run(args) -> int:
    from tickpath.runtime.config import schema as config
    from tickpath.runtime.core import counters as C
    from tickpath.runtime.engine import latency
    from tickpath.runtime.ipc import livestats
    from tickpath.runtime.ipc.livestats import LiveStats
    from tickpath.runtime.engine.loop import STOP
    from tickpath.runtime.lines.runner import make_runtime
    cfg = config.load(args.config) if args.config else config.defaults()
    if args.seconds is not None:
        cfg["run"]["seconds"] = args.seconds
    stop = {"flag": False, "signal": None, "signal_ns": 0, "rt": None}

    def on_signal(signum, frame):
        if stop["flag"]:
            # a second signal forces exit: os._exit, because SystemExit would unwind through
            # the same cleanup (a capture flush, a thread join) that is already stuck
            print(f"tickpath run: second {signal.Signals(signum).name}, forced exit", file=sys.stderr, flush=True)
            try:   # the live stats file is the one thing a forced exit would leave behind
                os.unlink(livestats.path_for(os.getpid()))
            except OSError:
                pass
            os._exit(130)
        stop.update(flag=True, signal=signal.Signals(signum).name, signal_ns=time.monotonic_ns())
        rt_ = stop["rt"]
        if rt_ is not None:   # stop the loop now, not after the main thread's next 50 ms nap
            rt_.ctrl[STOP] = 1
            rt_.pipe.stop[0] = 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rt = stop["rt"] = make_runtime(cfg)
    live = None
    if getattr(rt, "live", None) is None:
        # `tickpath stats --pid` reads the counters while we run: the loop's array is the file
        live = LiveStats()
        live.counters[:] = rt.pipe.counters
        rt.pipe.counters = live.counters
    with rt:
        rt.open().start()
        port = getattr(rt.backend, "port", cfg["feed"]["port"])
        print(f"tickpath run: backend {cfg['backend']['kind']} on cpu {rt.cpu}, feed "
              f"{cfg['feed']['address']}:{port}; Ctrl-C stops", flush=True)
        t0 = time.monotonic()
        last = 0.0
        while not stop["flag"] and rt.running:
            time.sleep(0.05)
            if cfg["run"]["seconds"] and time.monotonic() - t0 >= cfg["run"]["seconds"]:
                break
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                c = rt.pipe.counters
                print(f"  {last - t0:6.1f} s  messages {int(c[C.MESSAGES]):,}  events {int(c[C.EVENTS]):,}  gaps {int(c[C.GAPS]):,}  "
                      f"p99 {latency.percentile(rt.pipe.hist, 99) / 1000:.1f} µs", flush=True)
        rt.stop()
        st = rt.stats()
    if live is not None:
        live.close()
    # when the loop stopped, on CLOCK_MONOTONIC (system-wide: comparable with another process's)
    st["lifecycle"] = {"signal": stop["signal"], "signal_monotonic_ns": stop["signal_ns"],
                       "loop_stopped_monotonic_ns": rt.stopped_ns,
                       "stop_latency_ms": round((rt.stopped_ns - stop["signal_ns"]) / 1e6, 3)
                       if stop["signal_ns"] else None}
    print(json.dumps({k: v for k, v in st.items()}, indent=2, default=str))
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tickpath", description="low-latency market-data runtime")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="what the runtime sees on this host")
    s.add_argument("--json", action="store_true")
    s.add_argument("--interface", help="also probe AF_XDP modes of this interface")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("demo", help="the main job: ITCH feed → runtime → books/indicators, vs plain Python")
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

    s = sub.add_parser("run", help="run the runtime alone against a feed")
    s.add_argument("--config", metavar="FILE.toml")
    s.add_argument("--seconds", type=float)
    s.set_defaults(func=_cmd_run)

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench_command")
    s = bsub.add_parser("ring", help="SPSC ring between two pinned threads / processes vs queue.Queue")
    s.add_argument("--cpus", help="producer,consumer CPU ids (e.g. 0,1)")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_bench_ring)
    _optional(bench, "tickpath.bench.cli", "add_bench_arguments", parent_sub=bsub)

    for mod in ("tickpath.hostconfig.cli", "tickpath.fpga.cli", "tickpath.runtime.engine.cli",
                "tickpath.runtime.lines.cli", "tickpath.runtime.trading.cli",
                "tickpath.runtime.trading.audit.cli", "tickpath.runtime.backtest.cli",
                "tickpath.bench.cli"):
        _optional(sub, mod, "add_subcommands")
    return p


def _optional(target, module: str, fn: str, parent_sub=None) -> None:
    try:
        m = importlib.import_module(module)
    except ImportError as exc:
        if getattr(exc, "name", "") != module:
            print(f"tickpath: {module} unavailable: {exc}", file=sys.stderr)
        return
    if parent_sub is not None:
        getattr(m, fn)(target, parent_sub)
    else:
        getattr(m, fn)(target)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except TickpathError as exc:
        print(f"tickpath: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
