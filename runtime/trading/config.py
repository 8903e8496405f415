"""`tickpath trade`'s configuration: the runtime's sections (runtime/config/schema.py: [feed],
[backend], [cores], [idle], [buffers], [book], ...) plus four of its own, validated here with
the same rules — an unknown key, a wrong type or an impossible value is refused at load time,
naming section.key:

    [venue]     ouch = "HOST:PORT", user, password, session, state_file, timeouts, ready_file
    [strategy]  name = "market_maker" | "pkg.module:Name", [strategy.params] (the strategy's keys)
    [risk]      every pre-trade check and breaker (risk.py RISK_KEYS; 0 turns one off)
    [trading]   order table size, buffers, timer, audit log, live line, seconds

runtime/trading/example.toml documents every key.
"""
from __future__ import annotations

import copy
import tomllib

from tickpath.runtime.config import schema
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading.risk import validate_risk

TRADING_SCHEMA = {
    "venue": {
        "ouch": ((str,), ""),                 # HOST:PORT of the OUCH 5.0 / SoupBinTCP 4.1 port
        "user": ((str,), ""),
        "password": ((str,), ""),
        "session": ((str,), ""),              # "" = the venue's current session
        "state_file": ((str,), ""),           # last sequence number received (re-login exactly once)
        "connect_timeout_s": ((float, int), 5.0),
        "heartbeat_timeout_ms": ((int,), 5000),
        "busy_poll_us": ((int,), 0),
        "reconnect_attempts": ((int,), 3),    # after a lost session; 0 = stay down
        "ready_file": ((str,), ""),           # `tickpath venue --ready-file`: symbols by locate
    },
    "strategy": {
        "name": ((str,), "market_maker"),
        "params": ((dict,), {}),
    },
    "trading": {
        "order_capacity": ((int,), 1 << 14),  # own-order table (power of two)
        "intents": ((int,), 256),             # intents one strategy call may write
        "outbox": ((int,), 1024),
        "responses": ((int,), 256),           # responses per poll
        "timer_ms": ((int,), 0),              # on_timer period, 0 = none
        "first_uref": ((int,), 0),            # 0: 10 000 x seconds since UTC midnight (rises across restarts)
        "audit_path": ((str,), ""),           # "" = no audit log
        "audit_ring_records": ((int,), 1 << 16),
        "audit_flush_ms": ((float, int), 10.0),
        "live_interval_s": ((float, int), 1.0),
        "seconds": ((float, int), 0.0),       # 0 = until SIGINT/SIGTERM (or [run] seconds)
        "drain_s": ((float, int), 2.0),       # at the end: how long to wait for cancels to be answered
    },
}


def _check(section: str, table: dict, out: dict) -> None:
    if not isinstance(table, dict):
        raise ConfigError("section must be a table", section=section)
    for k, v in table.items():
        if k not in TRADING_SCHEMA[section]:
            raise ConfigError("unknown key", key=f"{section}.{k}", known=sorted(TRADING_SCHEMA[section]))
        types = TRADING_SCHEMA[section][k][0]
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            raise ConfigError("wrong type", key=f"{section}.{k}", value=v,
                              expected="/".join(t.__name__ for t in types))
        out[k] = float(v) if float in types and not isinstance(v, bool) else v


def split(raw: dict) -> tuple[dict, dict]:
    """(runtime part, trading part) of a parsed TOML document."""
    if not isinstance(raw, dict):
        raise ConfigError("configuration must be a table")
    rt = {k: v for k, v in raw.items() if k not in TRADING_SCHEMA and k != "risk"}
    tr = {k: raw[k] for k in (*TRADING_SCHEMA, "risk") if k in raw}
    return rt, tr


def validate_trading(tr: dict, require_venue: bool = True) -> dict:
    out = {s: {k: copy.deepcopy(v[1]) for k, v in keys.items()} for s, keys in TRADING_SCHEMA.items()}
    for s in TRADING_SCHEMA:
        if s in tr:
            _check(s, tr[s], out[s])
    out["risk"] = validate_risk(tr.get("risk", {}) or {})
    v, t = out["venue"], out["trading"]
    if require_venue:
        o = v["ouch"]
        if o.count(":") != 1 or not o.rsplit(":", 1)[1].isdigit() or not 0 < int(o.rsplit(":", 1)[1]) < 65536:
            raise ConfigError("venue.ouch must be HOST:PORT", key="venue.ouch", value=o)
        if not v["user"] or len(v["user"]) > 6 or len(v["password"]) > 10:
            raise ConfigError("venue.user (1-6 characters) and venue.password (<= 10) required",
                              key="venue.user", value=v["user"])
    if len(v["session"]) > 10:
        raise ConfigError("SoupBinTCP sessions are at most 10 characters", key="venue.session", value=v["session"])
    for k in ("connect_timeout_s",):
        if v[k] <= 0:
            raise ConfigError("must be positive", key=f"venue.{k}", value=v[k])
    if v["heartbeat_timeout_ms"] < 1000:
        raise ConfigError("heartbeat timeout below the 1 s heartbeat interval",
                          key="venue.heartbeat_timeout_ms", value=v["heartbeat_timeout_ms"])
    for k in ("busy_poll_us", "reconnect_attempts"):
        if v[k] < 0:
            raise ConfigError("negative value", key=f"venue.{k}", value=v[k])
    oc = t["order_capacity"]
    if oc < 64 or oc & (oc - 1) or oc > 1 << 24:
        raise ConfigError("order table size must be a power of two in 64..16M",
                          key="trading.order_capacity", value=oc)
    for k in ("intents", "outbox", "responses"):
        if not 2 <= t[k] <= 1 << 20:
            raise ConfigError("value out of range", key=f"trading.{k}", value=t[k], allowed="2..1048576")
    rr = t["audit_ring_records"]
    if rr < 2 or rr & (rr - 1):
        raise ConfigError("audit ring must be a power of two >= 2", key="trading.audit_ring_records", value=rr)
    for k in ("timer_ms", "seconds", "drain_s"):
        if t[k] < 0:
            raise ConfigError("negative value", key=f"trading.{k}", value=t[k])
    for k in ("audit_flush_ms", "live_interval_s"):
        if t[k] <= 0:
            raise ConfigError("must be positive", key=f"trading.{k}", value=t[k])
    if not 0 <= t["first_uref"] <= 0xFFFFFFFF:
        raise ConfigError("value out of range", key="trading.first_uref", value=t["first_uref"])
    if not isinstance(out["strategy"]["params"], dict):
        raise ConfigError("must be a table", key="strategy.params")
    return out


def load(path: str, require_venue: bool = True) -> tuple[dict, dict]:
    """(runtime config, trading config) from a TOML file, both validated."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("cannot read config", path=path, reason=exc.strerror) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config is not valid TOML", path=path, reason=str(exc)) from exc
    return from_dict(raw, require_venue)


def from_dict(raw: dict, require_venue: bool = True) -> tuple[dict, dict]:
    rt, tr = split(raw)
    return schema.merge(rt), validate_trading(tr, require_venue)
