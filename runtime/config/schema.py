"""The runtime configuration: a TOML file (example: runtime/example.toml), validated against
one schema so an unknown key, a wrong type or an impossible value is refused at load time
with the key and the reason — never discovered in the loop.

Sections: [feed] [nic] [backend] [cores] [idle] [buffers] [book] [indicators] [faults]
[capture] [run].
The keys tickpath.hostconfig reads for its plan checks (cores.rx, nic.interface,
buffers.frame_bytes/frames/ring_capacity/hugepages) are part of this schema.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import re
import tomllib
from typing import Any

from tickpath.runtime.core.errors import ConfigError

# section -> key -> (allowed types, default)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "feed": {
        "address": ((str,), "127.0.0.1"),    # unicast address to bind, or multicast group
        "port": ((int,), 26400),
        "session": ((str,), ""),             # "" = adopt the first packet's session
        "first_seq": ((int,), 1),            # 1: a late join is a gap; 0: adopt the first seq
        "max_gap_msgs": ((int,), 1 << 20),   # a larger jump is not believed on one packet; 0 = off
        "reset_packets": ((int,), 3),        # consistent far-ahead packets in a row = session reset
    },
    "nic": {
        "interface": ((str,), ""),           # multicast join / AF_XDP interface; "" = any
    },
    "backend": {
        "kind": ((str,), "kernel"),          # kernel | afxdp | fpga | fpga-emu
        "busy_poll_us": ((int,), 0),         # SO_BUSY_POLL (kernel backend)
        "rcvbuf_bytes": ((int,), 8 << 20),
        "afxdp": ((dict,), {}),              # passed to AfxdpConfig (queue_id, mode, ...)
        "fpga": ((dict,), {}),               # device_dir, card, channel
    },
    "cores": {
        "rx": ((list, str), "auto"),         # [cpu] or "auto" (isolated, on the NIC's node)
        "sched_fifo": ((bool,), False),
        "fifo_priority": ((int,), 50),
        "mlockall": ((bool,), False),
    },
    "idle": {
        "strategy": ((str,), "backoff"),     # busy-spin | spin-yield | backoff
        "spins": ((int,), 1000),
        "yields": ((int,), 10),
        "max_park_ns": ((int,), 200_000),
    },
    "buffers": {
        "frames": ((int,), 32),              # frame slots = datagrams per recvmmsg batch
        "frame_bytes": ((int,), 2048),
        "ring_capacity": ((int,), 0),        # out ring for consumers (events); 0 = none
        "ring_policy": ((str,), "drop-newest"),
        "hugepages": ((str, bool), "auto"),  # auto | require | off (true = require)
        "numa_node": ((int,), -1),           # -1: the NIC's node (or none)
    },
    "book": {
        "instruments": ((int,), 1024),       # locate codes 0..instruments-1
        "max_orders": ((int,), 1 << 20),
        "max_levels": ((int,), 4096),
    },
    "indicators": {
        "ema_period": ((int,), 20),
        "rsi_period": ((int,), 14),
    },
    "faults": {                               # runtime/faults.py: off while every rate is 0
        "seed": ((int,), 1),
        "drop_rate": ((float, int), 0.0),
        "burst_rate": ((float, int), 0.0),   # chance that a frame starts a burst of losses
        "burst_len": ((int,), 8),
        "duplicate_rate": ((float, int), 0.0),
        "reorder_rate": ((float, int), 0.0),
        "reorder_window": ((int,), 4),
        "reorder_timeout_ns": ((int,), 1_000_000),
        "truncate_rate": ((float, int), 0.0),
        "delay_rate": ((float, int), 0.0),
        "delay_ns": ((int,), 0),
        "hold_frames": ((int,), 256),
    },
    "capture": {                              # runtime/capture.py: "" = no capture
        "path": ((str,), ""),
        "format": ((str,), "auto"),          # auto (by extension) | pcap | pcapng
        "ring_records": ((int,), 8192),
        "on_error": ((str,), "degrade"),     # a writer error: degrade (capture off) | stop the run
    },
    "lines": {                               # A/B arbitration (runtime/arbiter.py)
        "enabled": ((bool,), False),         # [feed] is line A; line B below
        "b_address": ((str,), "127.0.0.1"),
        "b_port": ((int,), 26401),
        "reorder_capacity": ((int,), 1 << 16),   # messages held out of order
        "slot_bytes": ((int,), 64),          # longest message held (ITCH's longest is 50)
        "wait_ns": ((int,), 200_000),        # how long a hole waits for the other line
        "stale_ns": ((int,), 2_000_000_000),  # both lines silent this long: stale feed
    },
    "recovery": {                            # MoldUDP64 retransmission (runtime/recovery.py)
        "server": ((str,), ""),              # "host:port"; "" = none (gaps at the deadline)
        "bind_address": ((str,), "0.0.0.0"),
        "timeout_ns": ((int,), 20_000_000),
        "retries": ((int,), 3),
        "deadline_ns": ((int,), 250_000_000),
        "max_outstanding": ((int,), 16),
        "max_request_msgs": ((int,), 1000),
    },
    "run": {
        "seconds": ((float, int), 0.0),      # 0 = until SIGINT/SIGTERM
        "warmup_seq": ((int,), 0),           # messages below this seq are not in the latency
    },
}


def defaults() -> dict:
    return {s: {k: copy.deepcopy(v[1]) for k, v in keys.items()} for s, keys in SCHEMA.items()}


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
    """Range and consistency checks; returns cfg (normalised)."""
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
    from tickpath.runtime.backends.faults import FaultConfig
    for k in ("drop_rate", "burst_rate", "duplicate_rate", "reorder_rate", "truncate_rate", "delay_rate"):
        cfg["faults"][k] = float(cfg["faults"][k])
    FaultConfig.from_table(cfg["faults"])   # raises ConfigError naming the key
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
    if cfg["backend"]["kind"] not in ("kernel", "afxdp", "fpga", "fpga-emu"):
        raise ConfigError("unknown backend", key="backend.kind", value=cfg["backend"]["kind"],
                          allowed=["kernel", "afxdp", "fpga", "fpga-emu"])
    return cfg


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
    key's full name; the backends own the list (imported only when the table is not empty)."""
    if backend["afxdp"]:
        from dataclasses import fields

        from tickpath.runtime.backends.afxdp.config import AfxdpConfig
        known = {f.name for f in fields(AfxdpConfig)}
        _refuse_unknown("backend.afxdp", backend["afxdp"], known)
    if backend["fpga"]:
        from tickpath.fpga.host.backend import CONFIG_KEYS
        _refuse_unknown("backend.fpga", backend["fpga"], set(CONFIG_KEYS))


def _refuse_unknown(section: str, table: dict, known: set) -> None:
    for key in table:
        if key not in known:
            raise ConfigError("unknown key", key=f"{section}.{key}", known=sorted(known))


def merge(overrides: dict, base: dict | None = None) -> dict:
    """Defaults (or base) updated from a nested dict; unknown sections/keys refused."""
    cfg = copy.deepcopy(base) if base is not None else defaults()
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
    return validate(cfg)


def load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("cannot read config", path=path, reason=exc.strerror) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config is not valid TOML", path=path, reason=str(exc)) from exc
    return merge(raw)
