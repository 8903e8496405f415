"""`tickpath trade --config FILE.toml` and `tickpath kill [--pid N]` (heavy imports inside the
commands, so `tickpath --help` stays fast)."""
from __future__ import annotations

import json
import sys


def _cmd_trade(args) -> int:
    from tickpath.runtime.trading import config as TC
    from tickpath.runtime.trading.live import compile_trade, run_trade
    cfg, tcfg = TC.load(args.config)
    if args.compile_only:
        print(json.dumps(compile_trade(cfg, tcfg)))
        return 0
    if args.seconds is not None:
        tcfg["trading"]["seconds"] = float(args.seconds)
    summary = run_trade(cfg, tcfg, json_path=args.json, hgrm_path=args.hgrm, quiet=args.quiet)
    return 0 if summary["counters"]["impossible_transitions"] == 0 else 1


def _cmd_kill(args) -> int:
    from tickpath.runtime.core.errors import ResourceError
    from tickpath.runtime.trading import killswitch as K
    pids = [args.pid] if args.pid else K.running()
    if not pids:
        raise ResourceError("no running `tickpath trade` of this user has a kill switch file",
                            dir=K.kill_dir())
    out = [K.trip_pid(p) for p in pids]
    print(json.dumps(out if len(out) > 1 else out[0]))
    return 0


def add_subcommands(sub) -> None:
    s = sub.add_parser("trade", help="feed -> books -> strategy -> pre-trade risk -> OUCH 5.0 order entry")
    s.add_argument("--config", required=True, metavar="FILE.toml",
                   help="runtime sections plus [venue] [strategy] [risk] [trading] "
                        "(runtime/trading/example.toml documents every key)")
    s.add_argument("--seconds", type=float, default=None, help="run this long (overrides [trading] seconds)")
    s.add_argument("--json", metavar="PATH", help="also write the final summary here")
    s.add_argument("--hgrm", metavar="PATH", help="tick-to-trade HdrHistogram percentile distribution")
    s.add_argument("--quiet", action="store_true", help="no live line on stderr")
    s.add_argument("--compile-only", action="store_true",
                   help="compile (or load from the cache) the strategy and the loop, then exit; "
                        "connects to nothing (a deploy step: the first real start is then fast)")
    s.set_defaults(func=_cmd_trade)

    s = sub.add_parser("kill", help="trip the kill switch of a running `tickpath trade` (all of this "
                                    "user's when no --pid): no new orders, every open order cancelled")
    s.add_argument("--pid", type=int, default=0)
    s.set_defaults(func=_cmd_kill)
