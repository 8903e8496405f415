"""`tickpath stats` (live counters of a running instance, from its /dev/shm stats file) and
`tickpath soak` (A/B lines with loss and a retransmission server, checked message by
message). Registered through add_subcommands(subparsers), like the other folders' CLIs.
"""
from __future__ import annotations

import json
import os
import signal
import sys

from tickpath.runtime.ipc import livestats
from tickpath.runtime.core.errors import ResourceError, TickpathError


def _cmd_stats(args) -> int:
    uid = os.geteuid() if args.uid is None else args.uid
    pids = [args.pid] if args.pid else livestats.running(uid=uid)
    if not pids:
        raise ResourceError("no running tickpath instance publishes stats",
                            directory=livestats.dir_for(uid))
    if args.pid:   # say plainly that the instance is gone, not "file not found"
        path = livestats.path_for(args.pid, uid=uid)
        if not os.path.lexists(path):
            raise ResourceError("no running tickpath instance with this pid publishes stats",
                                pid=args.pid, path=path)
        if not livestats._alive(args.pid):
            raise ResourceError("tickpath instance is not running (stale stats file left behind)",
                                pid=args.pid, path=path)
    out = {}
    for pid in pids:
        try:
            snap = livestats.read(livestats.path_for(pid, uid=uid), uid=uid)
        except TickpathError as exc:
            if args.pid:
                raise
            out[pid] = {"pid": pid, "error": str(exc)}   # one bad file does not end the listing
            continue
        if not args.all:
            snap["counters"] = {k: v for k, v in snap["counters"].items() if v}
        out[pid] = snap
    print(json.dumps(out if len(out) > 1 else out[pids[0]], indent=2))
    return 0


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


def add_subcommands(sub) -> None:
    s = sub.add_parser("stats", help="live counters of a running tickpath instance")
    s.add_argument("--pid", type=int, help="the instance (default: every running one)")
    s.add_argument("--all", action="store_true", help="include zero counters")
    s.add_argument("--uid", type=int, help="the instances of this user (default: yours)")
    s.set_defaults(func=_cmd_stats)
    s = sub.add_parser("soak", help="A/B lines with loss + retransmission, every message checked")
    s.add_argument("--minutes", type=float, default=0.0, help="run length (overrides --messages)")
    s.add_argument("--messages", type=int, default=1_000_000)
    s.add_argument("--rate", type=float, default=100_000, help="messages per second")
    s.add_argument("--loss-a", type=float, default=0.01)
    s.add_argument("--loss-b", type=float, default=0.01)
    s.add_argument("--burst", type=int, default=1)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--server-mode", default="ok", choices=["ok", "refuse", "slow", "silent"])
    s.set_defaults(func=_cmd_soak)


def main(argv=None) -> int:   # until runtime/cli.py registers this module
    import argparse
    p = argparse.ArgumentParser(prog="tickpath")
    add_subcommands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
