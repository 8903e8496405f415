"""The runtime's plan as the host checks see it: hot cores, the feed's interface, and how much
memory the buffers pin — taken from the runtime's own configuration, read by the runtime's
one reader (runtime/config/schema.py). Nothing here parses TOML or checks a key: a file
`tickpath run` refuses, `tickpath host audit --config` refuses with the same message.

What the audit sees is what the runtime would run with: a key the file leaves out is at its
default (cores.rx "auto" is the core the runtime would choose, hugepages "auto" audits the
pages it would try). `RuntimePlan` is the value the checks read; `CONFIG_KEYS` lists the
runtime keys it comes from, so the runtime owner can see them at one look.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from tickpath.runtime.core.event import EVENT_BYTES

# (section, key, type, meaning) — everything hostconfig reads from the runtime config
CONFIG_KEYS = (
    ("cores", "rx", "[cpu] | \"auto\"", "CPU of the busy-polling receive thread (the hot core)"),
    ("nic", "interface", "str", "the feed's network interface"),
    ("buffers", "frame_bytes", "int", "bytes per frame slot in the frame buffer"),
    ("buffers", "frames", "int", "frame slots in the frame buffer"),
    ("buffers", "ring_capacity", "int", "event records in the out ring (64 bytes each)"),
    ("buffers", "hugepages", "auto | require | off", "back the buffers with 2 MiB huge pages"),
)
HUGEPAGE_2M_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class RuntimePlan:
    """What the plan checks audit. Built from a runtime config (`plan_from_config`); the checks
    take any set of hot cores, so a test may build one directly."""
    rx_cores: list[int] = field(default_factory=list)
    interface: str | None = None
    frame_bytes: int | None = None
    frames: int | None = None
    ring_capacity: int | None = None
    hugepages: bool = False

    def buffer_bytes(self) -> int | None:
        """Bytes the runtime pins (frame buffer + out ring), or None if not known."""
        if self.frame_bytes is None or self.frames is None:
            return None
        return self.frame_bytes * self.frames + (self.ring_capacity or 0) * EVENT_BYTES

    def hugepages_2m_needed(self) -> int | None:
        b = self.buffer_bytes()
        return None if b is None else math.ceil(b / HUGEPAGE_2M_BYTES)


def plan_from_config(cfg) -> RuntimePlan:
    """The plan of a loaded runtime config (runtime/config/sections.RuntimeConfig)."""
    rx = cfg.cores.rx
    cores = _auto_rx(cfg.nic.interface) if rx == "auto" else list(rx)
    b = cfg.buffers
    return RuntimePlan(rx_cores=sorted(set(cores)), interface=cfg.nic.interface or None,
                       frame_bytes=b.frame_bytes, frames=b.frames, ring_capacity=b.ring_capacity,
                       hugepages=b.hugepages != "off")   # auto uses them when reserved: audit it


def plan_from_dict(table: dict) -> RuntimePlan:
    """The plan of a runtime config given as parsed TOML (checked by the runtime's reader)."""
    from tickpath.runtime.config import schema
    return plan_from_config(schema.merge(table))


def load_plan(path: str) -> RuntimePlan:
    """The plan of a runtime config file (read by the runtime's reader)."""
    from tickpath.runtime.config import schema
    return plan_from_config(schema.load(path))


def _auto_rx(interface: str) -> list[int]:
    """The core the runtime would choose for cores.rx = "auto" (runtime/sys/placement)."""
    from tickpath.runtime.sys.placement import choose_cores
    return choose_cores(1, interface or None)
