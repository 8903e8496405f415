"""`tickpath stats`: live counters of a running instance, from its /dev/shm stats file.
Registered as a "tickpath.commands" entry point (`add_stats`; runtime/cli.py says how);
`tickpath soak`, which drives the A/B lines under loss, is bench/'s (bench/cli.py).
"""
from __future__ import annotations

import json
import os

from tickpath.runtime.core.errors import ResourceError, TickpathError


def _cmd_stats(args) -> int:
    from tickpath.runtime.ipc import livestats   # numpy: not for `tickpath --help`
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


def add_stats(sub) -> None:
    s = sub.add_parser("stats", help="live counters of a running tickpath instance")
    s.add_argument("--pid", type=int, help="the instance (default: every running one)")
    s.add_argument("--all", action="store_true", help="include zero counters")
    s.add_argument("--uid", type=int, help="the instances of this user (default: yours)")
    s.set_defaults(func=_cmd_stats)
