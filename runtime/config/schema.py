"""The one reader of the runtime configuration: a TOML file (example: runtime/example.toml)
checked key by key against the typed sections of sections.py, so an unknown key, a wrong
type or an impossible value is refused at load time with the key and the reason — never
discovered in the loop. `load(path)` and `merge(table, base=None)` return a frozen
`RuntimeConfig`; the runtime, `tickpath trade` (trading/config.py) and `tickpath host audit
--config` (hostconfig/plan.py) all call them, nothing else parses the file.

Sections: [feed] [nic] [backend] (+ [backend.<table>], whose keys the backend owns: listed
through the "tickpath.backend_tables" entry points, so this module names no backend module)
[cores] [idle] [buffers] [book] [indicators] [faults] [capture] [lines] [recovery] [run].
Checks run on a plain nested dict; the frozen sections are built from it last.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import re
import tomllib
from typing import Any, Mapping

from tickpath.runtime.config import sections as S
from tickpath.runtime.config.sections import RuntimeConfig
from tickpath.runtime.core.errors import ConfigError

# section -> key -> (allowed TOML types, default): derived from the typed sections
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    name: {k: (S.toml_types(name, k), S.default_value(name, k)) for k in cls.__dataclass_fields__}
    for name, cls in S.SECTIONS.items()}


def defaults() -> RuntimeConfig:
    """Every key at its default (no file)."""
    return RuntimeConfig()


def _default_tables() -> dict:
    return {s: {k: copy.deepcopy(dict(v[1]) if isinstance(v[1], Mapping) else v[1])
                for k, v in keys.items()} for s, keys in SCHEMA.items()}


def _check_value(section: str, key: str, value):
    types, _ = SCHEMA[section][key]
    if isinstance(value, bool) and bool not in types:
        raise ConfigError("wrong type", key=f"{section}.{key}", value=value,
                          expected="/".join(t.__name__ for t in types))
    if not isinstance(value, types):
        if float in types and isinstance(value, int):
            return float(value)
        raise ConfigError("wrong type", key=f"{section}.{key}", value=value,
                          expected="/".join(t.__name__ for t in types))
    return value


def _pos(cfg, section, key, lo=1, hi=None):
    v = cfg[section][key]
    if v < lo or (hi is not None and v > hi):
        raise ConfigError("value out of range", key=f"{section}.{key}", value=v,
                          allowed=f"{lo}..{hi if hi is not None else 'inf'}")


def validate(cfg: dict) -> dict:
    """Range and consistency checks on the nested dict; returns it (normalised)."""
    _pos(cfg, "feed", "port", 0, 65535)
    _pos(cfg, "feed", "first_seq", 0, (1 << 62) - 1)
    _pos(cfg, "feed", "max_gap_msgs", 0, (1 << 62) - 1)
    _pos(cfg, "feed", "reset_packets", 1, 1000)
    _pos(cfg, "buffers", "frames", 1, 1024)
    _pos(cfg, "buffers", "frame_bytes", 64, 65536)
    _pos(cfg, "buffers", "ring_capacity", 0)
    rc = cfg["buffers"]["ring_capacity"]
    if rc and rc & (rc - 1):
        raise ConfigError("ring capacity must be a power of two (or 0 for none)",
                          key="buffers.ring_capacity", value=rc)
    hp = cfg["buffers"]["hugepages"]
    if isinstance(hp, bool):
        cfg["buffers"]["hugepages"] = "require" if hp else "off"
    elif hp not in ("auto", "require", "off"):
        raise ConfigError("value not allowed", key="buffers.hugepages", value=hp,
                          allowed=["auto", "require", "off", True, False])
    _pos(cfg, "book", "instruments", 1, 65536)
    _pos(cfg, "book", "max_orders", 2)
    _pos(cfg, "book", "max_levels", 1, 4096)
    _pos(cfg, "indicators", "ema_period", 1, 256)
    _pos(cfg, "indicators", "rsi_period", 1, 256)
    _pos(cfg, "cores", "fifo_priority", 1, 99)
    if cfg["run"]["seconds"] < 0:
        raise ConfigError("value out of range", key="run.seconds", value=cfg["run"]["seconds"])
    rx = cfg["cores"]["rx"]
    if isinstance(rx, str):
        if rx != "auto":
            raise ConfigError("value not allowed", key="cores.rx", value=rx, allowed='"auto" or [cpu]')
    elif len(rx) != 1 or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in rx):
        raise ConfigError("cores.rx must list one CPU id (one receive thread)", key="cores.rx", value=rx)
    for k in ("drop_rate", "burst_rate", "duplicate_rate", "reorder_rate", "truncate_rate", "delay_rate"):
        cfg["faults"][k] = float(cfg["faults"][k])
    _check_faults(cfg["faults"])
    cap = cfg["capture"]
    if cap["format"] not in ("auto", "pcap", "pcapng"):
        raise ConfigError("value not allowed", key="capture.format", value=cap["format"],
                          allowed=["auto", "pcap", "pcapng"])
    if cap["on_error"] not in ("degrade", "stop"):
        raise ConfigError("value not allowed", key="capture.on_error", value=cap["on_error"],
                          allowed=["degrade", "stop"])
    rr = cap["ring_records"]
    if rr < 2 or rr & (rr - 1):
        raise ConfigError("capture ring must be a power of two >= 2", key="capture.ring_records", value=rr)
    _pos(cfg, "lines", "b_port", 0, 65535)
    srv = cfg["recovery"]["server"]
    # ASCII digits only: str.isdigit() takes "²", which int() then refuses with a traceback
    if srv and (srv.count(":") != 1 or not re.fullmatch(r"[0-9]{1,5}", srv.rsplit(":", 1)[1])
                or not 1 <= int(srv.rsplit(":", 1)[1]) <= 65535):
        raise ConfigError("recovery.server must be IPv4:port with a port 1..65535",
                          key="recovery.server", value=srv)
    if srv:
        try:
            ipaddress.IPv4Address(srv.rsplit(":", 1)[0])
        except ValueError as exc:
            raise ConfigError("recovery.server must be IPv4:port", key="recovery.server",
                              value=srv) from exc
    _bounds(cfg)
    _check_backend_tables(cfg["backend"])
    from tickpath.runtime.backends.registry import backend_names
    known = backend_names()
    if cfg["backend"]["kind"] not in known:
        raise ConfigError("unknown backend", key="backend.kind", value=cfg["backend"]["kind"],
                          allowed=known)
    return cfg


def _check_faults(f: dict) -> None:
    """The fault injector's own checks (rates in [0, 1], sizes): FaultConfig owns them."""
    from tickpath.runtime.backends.faults import FaultConfig
    FaultConfig.from_table(f)   # raises ConfigError naming the key


# (section, key, lo, hi): integers the OS or numba takes as C ints, and sizes with a ceiling
_INT_BOUNDS = (
    ("backend", "busy_poll_us", 0, (1 << 31) - 1), ("backend", "rcvbuf_bytes", 0, (1 << 31) - 1),
    ("buffers", "ring_capacity", 0, 1 << 30), ("book", "max_orders", 2, 1 << 30),
    ("capture", "ring_records", 2, 1 << 24), ("lines", "reorder_capacity", 1, 1 << 24),
    ("lines", "slot_bytes", 8, 65535), ("lines", "wait_ns", 0, 60_000_000_000),
    ("lines", "stale_ns", 1_000_000, 3_600_000_000_000),
    ("recovery", "timeout_ns", 100_000, 60_000_000_000), ("recovery", "retries", 0, 100),
    ("recovery", "deadline_ns", 1_000_000, 3_600_000_000_000),
    ("recovery", "max_outstanding", 1, 4096), ("recovery", "max_request_msgs", 1, 0xFFFE),
    ("idle", "spins", 0, 1 << 31), ("idle", "yields", 0, 1 << 31),
    ("idle", "max_park_ns", 0, 1_000_000_000), ("run", "warmup_seq", 0, (1 << 62) - 1),
)


def physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 40


def memory_asked(cfg: dict) -> dict[str, int]:
    """Bytes the large preallocations of cfg take, by the keys that size them (estimates
    from the record sizes; small arrays left out)."""
    fb = cfg["buffers"]["frame_bytes"]
    out = {"buffers.ring_capacity": cfg["buffers"]["ring_capacity"] * 64,
           "book.max_orders": cfg["book"]["max_orders"] * 2 * 64,   # hashed slots, ~64 B each
           "buffers.frames x buffers.frame_bytes": cfg["buffers"]["frames"] * fb * 4}
    if cfg["capture"]["path"]:
        out["capture.ring_records"] = cfg["capture"]["ring_records"] * (16 + fb)
    if cfg["lines"]["enabled"]:
        out["lines.reorder_capacity x lines.slot_bytes"] = (
            cfg["lines"]["reorder_capacity"] * (cfg["lines"]["slot_bytes"] + 32))
    f = cfg["faults"]
    if any(f[k] for k in ("drop_rate", "burst_rate", "duplicate_rate", "reorder_rate",
                          "truncate_rate", "delay_rate")):
        out["faults.hold_frames"] = (f["hold_frames"] + 2 * cfg["buffers"]["frames"]) * fb
    return out


def _bounds(cfg: dict) -> None:
    """Integer ranges, and what memory a configuration may ask for: no more than the
    machine has (a clear error at load, not a MemoryError or ENOMEM at start)."""
    for section, key, lo, hi in _INT_BOUNDS:
        _pos(cfg, section, key, lo, hi)
    asked = memory_asked(cfg)
    have = physical_memory_bytes()
    for key, n in asked.items():
        if n > have:
            raise ConfigError("configuration asks for more memory than the machine has",
                              key=key, asked_bytes=n, machine_bytes=have)
    if sum(asked.values()) > have:
        raise ConfigError("configuration asks for more memory than the machine has, in all",
                          asked_bytes=sum(asked.values()), machine_bytes=have,
                          largest=max(asked, key=asked.get))


def _check_backend_tables(backend: dict) -> None:
    """[backend.afxdp] and [backend.fpga] are refused at load time on an unknown key, with the
    key's full name; each backend owns its list (looked up only when the table is not empty)."""
    from tickpath.runtime.backends.registry import table_keys
    for table in ("afxdp", "fpga"):
        if backend[table]:
            _refuse_unknown(f"backend.{table}", backend[table], table_keys(table))


def _refuse_unknown(section: str, table: dict, known: set) -> None:
    for key in table:
        if key not in known:
            raise ConfigError("unknown key", key=f"{section}.{key}", known=sorted(known))


def merge(overrides: dict, base: RuntimeConfig | None = None) -> RuntimeConfig:
    """Defaults (or base) updated from a nested dict; unknown sections/keys refused."""
    cfg = base.to_dict() if base is not None else _default_tables()
    if not isinstance(overrides, dict):
        raise ConfigError("configuration must be a table", got=type(overrides).__name__)
    for section, table in overrides.items():
        if section not in SCHEMA:
            raise ConfigError("unknown section", section=section, known=sorted(SCHEMA))
        if not isinstance(table, dict):
            raise ConfigError("section must be a table", section=section)
        for key, value in table.items():
            if key not in SCHEMA[section]:
                raise ConfigError("unknown key", key=f"{section}.{key}",
                                  known=sorted(SCHEMA[section]))
            cfg[section][key] = _check_value(section, key, value)
    return S.build(validate(cfg))


def read_toml(path: str, what: str = "runtime config") -> dict:
    """The parsed TOML document at path; ConfigError naming the file when it cannot be."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}", path=path, reason=exc.strerror) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} is not valid TOML", path=path, reason=str(exc)) from exc


def load(path: str) -> RuntimeConfig:
    return merge(read_toml(path))
