"""`tickpath backtest FILE... --config FILE.toml`: each file through the simulated exchange
(serially or on Ray, a rich progress bar per file either way), a summary per file and in total
(JSON), PNG plots, `--grid KEY=V1,V2` sweeps sorted by `--sort METRIC`.

Bad input is reported, not a traceback: a bad file's error goes in its summary and the
other files still run (exit status 1 if any failed); a config or grid error, Ray missing or
unreachable: one line naming the problem, exit status 2.
"""
from __future__ import annotations

import json
import os
import sys

from tickpath.runtime.core.errors import ConfigError, TickpathError


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    import tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError("cannot read config", path=path, reason=exc.strerror) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config is not valid TOML", path=path, reason=str(exc)) from None


def _progress(enabled: bool):
    if not enabled:
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), transient=False)

    def factory(path):
        task = bar.add_task(f"backtest {os.path.basename(path)}", total=None)
        return lambda done, total: bar.update(task, completed=done, total=total)
    return bar, factory


def _cmd_backtest(args) -> int:
    from tickpath.runtime.backtest import fanout
    from tickpath.runtime.backtest.runner import normalise
    cfg = _load_config(args.config)
    for key in args.set or ():
        k, _, v = key.partition("=")
        pts = fanout.grid_points(cfg, fanout.parse_grid([f"{k}={v}"]))
        cfg = pts[0][1]
    grid = fanout.parse_grid(args.grid)
    points = fanout.grid_points(cfg, grid)
    base_dir = os.path.dirname(os.path.abspath(args.config)) if args.config else "."
    from tickpath.runtime.backtest.runner import _latencies
    for _, c in points:   # every grid point's config and latency models checked before anything runs
        _latencies(normalise(c)["backtest"], base_dir)
    jobs = [(f, c) for _, c in points for f in args.files]
    bar, factory = _progress(not args.quiet and sys.stderr.isatty())
    if args.ray or args.ray_address:
        def run(factory=None):
            return fanout.run_ray(jobs, base_dir, address=args.ray_address, progress_factory=factory)
    else:
        def run(factory=None):
            return fanout.run_serial(jobs, base_dir, factory)
    if bar is not None:   # a rich bar per file, serial or on Ray
        with bar:
            results = run(factory)
    else:
        results = run()
    by_point = []
    nf = len(args.files)
    for i, (pt, _) in enumerate(points):
        res = results[i * nf:(i + 1) * nf]
        by_point.append({"point": pt, "files": res, "total": fanout.merge(res)})
    if args.plots:
        from tickpath.runtime.backtest.plots import write_plots
        for bp in by_point:
            for r in bp["files"]:
                if "error" not in r:
                    r["plots"] = write_plots(r, args.plots)
    for bp in by_point:
        for r in bp["files"]:
            r.pop("equity_series", None)
            r.pop("_fill_latencies_ns", None)
    if grid:
        def key(bp):
            vals = [fanout.metric_of(r, args.sort) for r in bp["files"] if "error" not in r]
            vals = [v for v in vals if isinstance(v, (int, float))]
            return sum(vals) if vals else float("-inf")
        by_point.sort(key=key, reverse=True)
        table = [{"point": bp["point"], args.sort: key(bp)} for bp in by_point]
        out = {"grid": table, "sort": args.sort, "runs": by_point}
        if not args.quiet:
            for row in table:
                print(f"{row[args.sort]:>14.4f}  " + " ".join(f"{k}={v}" for k, v in row["point"].items()))
    else:
        out = {"files": by_point[0]["files"], "total": by_point[0]["total"]}
    for bp in by_point:
        for r in bp["files"]:
            if "error" in r:
                print(f"tickpath backtest: {r['file']}: {r['error']}", file=sys.stderr)
    text = json.dumps(out, indent=2, default=str)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    if not grid and not args.quiet:
        print(text)
    failed = sum(bp["total"]["files_failed"] for bp in by_point)
    return 1 if failed else 0


def _guarded(args) -> int:
    try:
        return _cmd_backtest(args)
    except TickpathError as exc:   # config, grid, latency model, strategy, Ray: one line
        print(f"tickpath backtest: {exc}", file=sys.stderr)
        return 2


def add_subcommands(sub) -> None:
    s = sub.add_parser("backtest", help="recorded ITCH files through a simulated exchange, same strategy code")
    s.add_argument("files", nargs="+", metavar="FILE", help="ITCH 5.0 binary (gz or not) or pcap/pcapng of MoldUDP64")
    s.add_argument("--config", metavar="FILE.toml", help="[strategy] and [backtest] sections")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one config key")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="sweep a parameter (repeatable: cartesian product)")
    s.add_argument("--sort", default="pnl.mark_to_market", help="metric the grid table is sorted by (dotted path)")
    s.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    s.add_argument("--plots", metavar="DIR", help="write PNG plots per file (P&L and inventory, fill latency)")
    s.add_argument("--ray", action="store_true", help="run each file as a Ray task on a local Ray started for the run")
    s.add_argument("--ray-address", metavar="ADDR", help="run on an existing Ray cluster")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_guarded)
