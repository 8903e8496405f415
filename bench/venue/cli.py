"""`tickpath venue`: run the exchange simulator from the command line or a TOML file
(venue.toml beside this file documents every key). The first line on stdout is the ready
JSON a script can read; progress goes to stderr; the summary is printed (and written with
--json) at the end: SIGINT, SIGTERM or --seconds.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from tickpath.runtime.core.errors import ConfigError

KEYS = {"instruments": int, "rate": float, "seed": int, "seconds": float, "itch_to": str,
        "ouch_host": str, "ouch_port": int, "retransmit_port": int, "session": str,
        "self_match_prevention": bool, "max_orders": int, "history_mib": int, "store_mib": int,
        "max_queue_kib": int, "band": float, "idle": str, "multicast_ttl": int,
        "multicast_if": str, "quiet_symbols": list, "storm_seconds": float, "storm_factor": float,
        "storm_at": float}


def add_venue_parser(sub) -> None:
    s = sub.add_parser("venue", help="exchange simulator: OUCH 5.0/SoupBinTCP in, ITCH 5.0/MoldUDP64 out")
    s.add_argument("--config", metavar="FILE.toml", help="a [venue] table, [[user]] and [[instrument]] tables")
    s.add_argument("--ouch-port", type=int, help="OUCH listening port (default: a free one)")
    s.add_argument("--ouch-host", help="OUCH listening address (default 127.0.0.1)")
    s.add_argument("--itch-to", metavar="HOST:PORT", help="ITCH destination, unicast or multicast (default 127.0.0.1:26400)")
    s.add_argument("--instruments", type=int, help="generated instruments (default 300)")
    s.add_argument("--rate", type=float, help="background order flow, events/s (default 100000)")
    s.add_argument("--storm-seconds", type=float, help="a message storm this long (default: none)")
    s.add_argument("--storm-factor", type=float, help="the storm's flow, times --rate (default 10)")
    s.add_argument("--storm-at", type=float, metavar="SECONDS",
                   help="the storm starts this long after the start (default: on SIGUSR1)")
    s.add_argument("--seed", type=int)
    s.add_argument("--seconds", type=float, help="run this long (default: until SIGINT/SIGTERM)")
    s.add_argument("--user", action="append", metavar="NAME:PASSWORD", help="repeatable; default TEST1:tickpath")
    s.add_argument("--no-self-match-prevention", action="store_true")
    s.add_argument("--quiet-symbol", action="append", metavar="SYMBOL",
                   help="listed but left out of the background flow (repeatable; tick-to-trade triggers)")
    s.add_argument("--ready-file", metavar="PATH", help="also write the ready JSON here")
    s.add_argument("--json", metavar="PATH", help="write the summary here")
    s.add_argument("--timestamps", metavar="PATH.npz", help="write the tick-to-trade timestamp log")
    s.add_argument("--hgrm", metavar="PREFIX", help="write PREFIX-response.hgrm and PREFIX-itch.hgrm")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=cmd_venue)


def _hostport(text: str) -> tuple[str, int]:
    """A destination: port 0 is refused (it would send nowhere anyone listens)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError("expected HOST:PORT with a port 1..65535", key="venue.itch_to", value=text)
    return host, int(port)


def params_from(args):
    from tickpath.bench.venue.venue import VenueParams
    cfg, users, instruments = {}, None, None
    if args.config:
        import tomllib
        try:
            with open(args.config, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("cannot read the venue config", path=args.config, reason=str(exc)) from exc
        cfg = doc.get("venue", {})
        unknown = set(cfg) - set(KEYS)
        if unknown or set(doc) - {"venue", "user", "instrument"}:
            raise ConfigError("unknown venue config keys", keys=sorted(unknown | (set(doc) - {"venue", "user", "instrument"})))
        for k, typ in KEYS.items():
            if k in cfg and not isinstance(cfg[k], typ) and not (typ is float and isinstance(cfg[k], int)):
                raise ConfigError("venue config value of the wrong type", key=k, value=cfg[k], expected=typ.__name__)
        if "user" in doc:
            users = [(u["name"], u["password"]) for u in doc["user"]]
        instruments = doc.get("instrument")
    for k in ("ouch_port", "ouch_host", "itch_to", "instruments", "rate", "seed", "seconds",
              "storm_seconds", "storm_factor", "storm_at"):
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    if args.user:
        users = []
        for u in args.user:
            name, sep, pw = u.partition(":")
            if not sep:
                raise ConfigError("--user takes NAME:PASSWORD", value=u)
            users.append((name, pw))
    if getattr(args, "quiet_symbol", None):
        cfg["quiet_symbols"] = list(args.quiet_symbol)
    if args.no_self_match_prevention:
        cfg["self_match_prevention"] = False
    p = VenueParams()
    p.instruments = cfg.get("instruments", p.instruments)
    p.refdata = instruments
    p.rate_msgs_per_s = float(cfg.get("rate", p.rate_msgs_per_s))
    p.seed = cfg.get("seed", p.seed)
    p.itch_to = _hostport(cfg["itch_to"]) if "itch_to" in cfg else p.itch_to
    p.ouch_host = cfg.get("ouch_host", p.ouch_host)
    p.ouch_port = cfg.get("ouch_port", p.ouch_port)
    p.retransmit_port = cfg.get("retransmit_port", p.retransmit_port)
    p.session = cfg.get("session", p.session)
    p.self_match_prevention = cfg.get("self_match_prevention", p.self_match_prevention)
    p.max_orders = cfg.get("max_orders", p.max_orders)
    p.history_bytes = cfg.get("history_mib", p.history_bytes >> 20) << 20
    p.store_bytes = cfg.get("store_mib", p.store_bytes >> 20) << 20
    p.max_queue_bytes = cfg.get("max_queue_kib", p.max_queue_bytes >> 10) << 10
    p.band = cfg.get("band", p.band)
    p.idle = cfg.get("idle", p.idle)
    p.multicast_ttl = cfg.get("multicast_ttl", p.multicast_ttl)
    p.multicast_if = cfg.get("multicast_if", p.multicast_if)
    p.quiet_symbols = [str(s) for s in cfg.get("quiet_symbols", p.quiet_symbols)]
    p.storm_s = float(cfg.get("storm_seconds", p.storm_s))
    p.storm_factor = float(cfg.get("storm_factor", p.storm_factor))
    p.storm_at_s = float(cfg.get("storm_at", p.storm_at_s))
    if users:
        p.users = users
    return p, cfg.get("seconds")


def cmd_venue(args) -> int:
    from tickpath.bench.venue.venue import Venue
    params, seconds = params_from(args)
    venue = Venue(params)
    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    old[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda signum, frame: venue.storm_now())
    venue.start()
    ready = json.dumps(venue.ready())
    if args.ready_file:                    # first: a reader of stdout may look for it at once
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(ready + "\n")
        os.replace(args.ready_file + ".tmp", args.ready_file)
    print(ready, flush=True)
    t0 = time.monotonic()
    try:
        while not stop.is_set():
            left = None if seconds is None else seconds - (time.monotonic() - t0)
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
            if not args.quiet:
                s = venue.summary()
                print(f"  {time.monotonic() - t0:6.1f} s  itch {s['itch']['messages']:,}  "
                      f"bg {s['background']['events']:,}  client {s['engine']['client_commands']:,}  "
                      f"exec {s['engine']['executions']:,}  live {s['live_orders']:,}  "
                      f"sessions {s['sessions']['logins']}", file=sys.stderr, flush=True)
    finally:
        summary = venue.stop()
        for s, h in old.items():
            signal.signal(s, h)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if args.timestamps:
        venue.write_timestamps(args.timestamps)
    if args.hgrm:
        from tickpath.runtime.engine import latency as LAT
        for name, h in venue.histograms().items():
            with open(f"{args.hgrm}-{name}.hgrm", "w") as f:
                f.write(LAT.hgrm_text(h))
    print(json.dumps(summary, indent=2))
    return 0
