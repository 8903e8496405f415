"""`tickpath replay FILE` and `tickpath publish-itch FILE`: the command-line face of
runtime/replay.py and bench/itchsend.py, with a rich progress bar (slow path only)."""
from __future__ import annotations

import json
import signal
import sys


def _progress_bar(enabled: bool, label: str):
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
    bar, cb = _progress_bar(not args.no_progress and sys.stderr.isatty(), f"replay {args.file}")
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
        if summary["events_sha256"]:
            print(f"events sha256 {summary['events_sha256']}")
        for k, v in summary["counters"].items():
            print(f"  {k:24s} {v:,}")
        if "bbo" in summary:
            print(f"top of book: {summary['bbo']['rows']:,} rows -> {summary['bbo']['path']}")
    return 0


def _cmd_publish(args) -> int:
    from tickpath.bench.load.itchsend import publish_itch_file
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SystemExit("--to takes HOST:PORT with a port 1..65535 (a destination, so not 0)")
    bar, cb = _progress_bar(not args.no_progress and sys.stderr.isatty(), f"publish {args.file}")
    kw = {"rate_msgs_per_s": args.rate if args.pace == "rate" else None, "speed": args.speed,
          "session": args.session, "max_seconds": args.max_seconds, "progress": cb}
    if bar:
        with bar:
            res = publish_itch_file(args.file, host, int(port), **kw)
    else:
        res = publish_itch_file(args.file, host, int(port), **kw)
    print(json.dumps(res, indent=2))
    return 0 if res["send_errors"] == 0 else 1


def add_subcommands(sub) -> None:
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
                   help="skip the events' sha256 (64 bytes an event; a worker thread hashes them)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_replay)

    s = sub.add_parser("publish-itch", help="send an ITCH 5.0 file as MoldUDP64 at a rate or its recorded pace")
    s.add_argument("file")
    s.add_argument("--to", required=True, metavar="HOST:PORT")
    s.add_argument("--pace", choices=("rate", "recorded"), default="rate")
    s.add_argument("--rate", type=float, default=100_000, help="messages per second (--pace rate)")
    s.add_argument("--speed", type=float, default=1.0, help="recorded pace: this many times faster")
    s.add_argument("--session", default="ITCHFILE")
    s.add_argument("--max-seconds", type=float, default=3600.0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_publish)
