"""The part of the runtime's TOML configuration that host checks read — defined here only.

The runtime owns its config file; the audit needs a few of its keys to check the plan
itself (hot cores, the feed's interface, how much memory the buffers pin). `CONFIG_KEYS`
lists them so the runtime owner can align the file with one look. Missing sections are
fine (the checks that need them say "not applicable"); wrong types are a ConfigError.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_BYTES

# (section, key, type, meaning) — everything hostconfig reads from the runtime config
CONFIG_KEYS = (
    ("cores", "rx", "list[int]", "CPUs of the busy-polling receive threads (the hot cores)"),
    ("nic", "interface", "str", "the feed's network interface"),
    ("buffers", "frame_bytes", "int", "bytes per frame slot in the frame buffer"),
    ("buffers", "frames", "int", "frame slots in the frame buffer"),
    ("buffers", "ring_capacity", "int", "event records in the out ring (64 bytes each)"),
    ("buffers", "hugepages", "bool", "back the buffers with 2 MiB huge pages"),
)
HUGEPAGE_2M_BYTES = 2 * 1024 * 1024


@dataclass
class RuntimePlan:
    rx_cores: list[int] = field(default_factory=list)
    interface: str | None = None
    frame_bytes: int | None = None
    frames: int | None = None
    ring_capacity: int | None = None
    hugepages: bool = False

    def buffer_bytes(self) -> int | None:
        """Bytes the runtime pins (frame buffer + out ring), or None if not configured."""
        if self.frame_bytes is None or self.frames is None:
            return None
        return self.frame_bytes * self.frames + (self.ring_capacity or 0) * EVENT_BYTES

    def hugepages_2m_needed(self) -> int | None:
        b = self.buffer_bytes()
        return None if b is None else math.ceil(b / HUGEPAGE_2M_BYTES)


def _get(cfg: dict, section: str, key: str, typ):
    sec = cfg.get(section, {})
    if not isinstance(sec, dict):
        raise ConfigError("config section is not a table", section=section)
    if key not in sec:
        return None
    v = sec[key]
    # why the bool check: in Python True is an int, and `frames = true` is a mistake
    if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ConfigError("config value must be an integer", key=f"{section}.{key}", value=v)
    if typ is int and v <= 0:
        raise ConfigError("config value must be positive", key=f"{section}.{key}", value=v)
    if typ in (str, bool) and not isinstance(v, typ):
        raise ConfigError(f"config value must be a {typ.__name__}", key=f"{section}.{key}",
                          value=v)
    return v


def plan_from_dict(cfg: dict) -> RuntimePlan:
    """The plan from a runtime config dict (the keys in CONFIG_KEYS; others are ignored here,
    the runtime validates them when it loads the same file)."""
    raw_rx = cfg.get("cores", {}).get("rx") if isinstance(cfg.get("cores", {}), dict) else None
    rx = None if isinstance(raw_rx, str) else _get(cfg, "cores", "rx", list)
    if isinstance(raw_rx, str):
        if cfg["cores"]["rx"] != "auto":
            raise ConfigError("cores.rx must be a list of CPU ids or \"auto\"", value=cfg["cores"]["rx"])
        rx = _auto_rx(cfg)
    if rx is not None:
        if not isinstance(rx, list) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in rx):
            raise ConfigError("cores.rx must be a list of CPU ids", value=rx)
    buffers = cfg.get("buffers", {}) if isinstance(cfg.get("buffers", {}), dict) else {}
    ring = buffers.get("ring_capacity")
    hp = buffers.get("hugepages")
    if isinstance(hp, str):
        if hp not in ("auto", "require", "off"):
            raise ConfigError("buffers.hugepages must be auto, require, off or a bool", value=hp)
        hugepages = hp != "off"   # auto uses them when reserved: audit whether they are
    else:
        hugepages = bool(_get(cfg, "buffers", "hugepages", bool) or False)
    return RuntimePlan(
        rx_cores=sorted(set(rx or [])),
        interface=_get(cfg, "nic", "interface", str) or None,
        frame_bytes=_get(cfg, "buffers", "frame_bytes", int),
        frames=_get(cfg, "buffers", "frames", int),
        ring_capacity=ring if ring == 0 else _get(cfg, "buffers", "ring_capacity", int),
        hugepages=hugepages,
    )


def _auto_rx(cfg: dict) -> list[int]:
    """The cores the runtime would choose for cores.rx = "auto" (shared logic, runtime/placement)."""
    from tickpath.runtime.sys.placement import choose_cores
    return choose_cores(1, cfg.get("nic", {}).get("interface") or None)


def load_plan(path: str) -> RuntimePlan:
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("cannot read runtime config", path=path, reason=exc.strerror)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("runtime config is not valid TOML", path=path, reason=str(exc))
    return plan_from_dict(cfg)
