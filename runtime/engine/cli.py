"""`tickpath run` (the runtime alone against a feed) and `tickpath replay FILE` (the
command-line face of runtime/engine/replay.py, with a rich progress bar): slow path only.
Registered as "tickpath.commands" entry points (`add_run`, `add_replay`; runtime/cli.py says
how); `publish-itch` is bench/'s (bench/cli.py).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time



def progress_bar(enabled: bool, label: str):
    """A rich progress bar on stderr and its update(done, total) callback; (None, None) when off."""
    if not enabled:
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), transient=False, file=sys.stderr)
    task = bar.add_task(label, total=None)
    return bar, (lambda done, total: bar.update(task, completed=done, total=total))


def _cmd_replay(args) -> int:
    from tickpath.runtime.engine.replay import Replayer, warn
    r = Replayer(args.file, pace=args.pace, speed=args.speed, udp_port=args.port,
                 session=args.session or None, instruments=args.instruments,
                 max_orders=args.max_orders, max_levels=args.max_levels,
                 events_out=args.events_out, bbo=args.bbo, digest=not args.no_digest)
    prev = signal.signal(signal.SIGINT, lambda *_: r.request_stop())
    bar, cb = progress_bar(not args.no_progress and sys.stderr.isatty(), f"replay {args.file}")
    try:
        if bar:
            with bar:
                summary = r.run(cb)
        else:
            summary = r.run()
    finally:
        signal.signal(signal.SIGINT, prev)
    warn(summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['format']} {summary['file']}: {summary['counters'].get('messages', 0):,} messages, "
              f"{summary['events']:,} events in {summary['elapsed_s']:.2f} s "
              f"({summary['messages_per_s'] / 1e6:.2f} M msgs/s)")
        if summary["events_xxh3_128"]:
            print(f"events xxh3-128 {summary['events_xxh3_128']}")
        for k, v in summary["counters"].items():
            print(f"  {k:24s} {v:,}")
        if "bbo" in summary:
            print(f"top of book: {summary['bbo']['rows']:,} rows -> {summary['bbo']['path']}")
    return 0


def add_replay(sub) -> None:
    s = sub.add_parser("replay", help="run a pcap/pcapng capture or a NASDAQ ITCH 5.0 file through the pipeline")
    s.add_argument("file", help="capture (.pcap/.pcapng) or ITCH 5.0 binary file (gzip or raw); "
                   "a pipe or '-' (standard input) works too")
    s.add_argument("--pace", choices=("max", "recorded"), default="max")
    s.add_argument("--speed", type=float, default=1.0,
                   help="recorded pace: this many times faster (0.001 .. 1e6)")
    s.add_argument("--port", type=int, default=0, help="capture: only this UDP port (0 = any)")
    s.add_argument("--session", default="", help="MoldUDP64 session to accept ('' = the first seen)")
    s.add_argument("--instruments", type=int, default=8192, help="locate codes 0..N-1 get books")
    s.add_argument("--max-orders", type=int, default=1 << 22)
    s.add_argument("--max-levels", type=int, default=4096,
                   help="price levels one side of one book may hold; a book past it is "
                        "marked unreliable (warned), never silently wrong")
    s.add_argument("--events-out", metavar="PATH", help="write the event records (64 B each)")
    s.add_argument("--bbo", metavar="PATH",
                   help="write every top-of-book change: CSV, or Parquet for *.parquet "
                        "(pyarrow: the parquet extra)")
    s.add_argument("--no-digest", action="store_true",
                   help="skip the events' digest (XXH3-128 of the 64-byte events, ~3.5 ns "
                        "an event)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_replay)


def _cmd_run(args) -> int:
    from tickpath.runtime.config import schema as config
    from tickpath.runtime.core import counters as C
    from tickpath.runtime.engine import latency
    from tickpath.runtime.engine.loop import STOP
    from tickpath.runtime.ipc import livestats
    from tickpath.runtime.ipc.livestats import LiveStats
    from tickpath.runtime.lines.runner import make_runtime
    cfg = config.load(args.config) if args.config else config.defaults()
    if args.seconds is not None:
        cfg = config.merge({"run": {"seconds": args.seconds}}, base=cfg)
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
    seconds = cfg.run.seconds
    with rt:
        rt.open().start()
        port = getattr(rt.backend, "port", cfg.feed.port)
        print(f"tickpath run: backend {cfg.backend.kind} on cpu {rt.cpu}, feed "
              f"{cfg.feed.address}:{port}; Ctrl-C stops", flush=True)
        t0 = time.monotonic()
        last = 0.0
        while not stop["flag"] and rt.running:
            time.sleep(0.05)
            if seconds and time.monotonic() - t0 >= seconds:
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


def add_run(sub) -> None:
    s = sub.add_parser("run", help="run the runtime alone against a feed")
    s.add_argument("--config", metavar="FILE.toml")
    s.add_argument("--seconds", type=float)
    s.set_defaults(func=_cmd_run)
