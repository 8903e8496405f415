"""The runtime configuration as typed, frozen sections: one dataclass per TOML table.

`schema.load(path)` / `schema.merge(table)` are the one reader: they check every key against
these classes (an unknown key, a wrong type or an impossible value is refused naming
section.key) and return a `RuntimeConfig` — `cfg.feed.port`, `cfg.buffers.frames`. The
runtime, `tickpath trade` and `tickpath host audit --config` all read through it.

Field annotations are the TOML types a key takes ("float" also takes an integer; a key whose
TOML spelling is wider than its loaded type says so in `toml` metadata: `hugepages = true`
loads as "require"). Sections are immutable: a changed value is a new config
(`schema.merge({"run": {"seconds": 5}}, base=cfg)`, validated again).

Compatibility: a section also reads like a mapping (`cfg["feed"]["port"]`, `.get`, `.items`)
for callers written against the dict this module replaced; new code uses attributes.
Only the standard library is imported here (`tickpath --help` must stay fast).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

# annotation -> the TOML value types the key accepts
_TOML_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "bool": (bool,), "float": (float, int),
    "Mapping[str, Any]": (dict,),
}


def _key(default, *, toml: tuple[type, ...] | None = None):
    """A key whose accepted TOML types differ from its annotation's."""
    return field(default=default, metadata={"toml": toml} if toml else {})


def _table():
    """A backend sub-table ([backend.afxdp]): keys the backend itself owns, read-only."""
    return field(default_factory=lambda: MappingProxyType({}), metadata={"toml": (dict,)})


class Section:
    """Read-only mapping face of a section (the compatibility accessor)."""

    def __getitem__(self, key: str):
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in self.__dataclass_fields__ else default

    def __contains__(self, key) -> bool:
        return key in self.__dataclass_fields__

    def __iter__(self):
        return iter(self.__dataclass_fields__)

    def keys(self):
        return self.__dataclass_fields__.keys()

    def items(self):
        return [(k, getattr(self, k)) for k in self.__dataclass_fields__]

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
                for k, v in self.items()}


@dataclass(frozen=True)
class Feed(Section):
    address: str = "127.0.0.1"     # unicast address to bind, or multicast group
    port: int = 26400
    session: str = ""              # "" = adopt the first packet's session
    first_seq: int = 1             # 1: a late join is a gap; 0: adopt the first seq
    max_gap_msgs: int = 1 << 20    # a larger jump is not believed on one packet; 0 = off
    reset_packets: int = 3         # consistent far-ahead packets in a row = session reset


@dataclass(frozen=True)
class Nic(Section):
    interface: str = ""            # multicast join / AF_XDP interface; "" = any


@dataclass(frozen=True)
class Backend(Section):
    kind: str = "kernel"           # a registered backend: kernel | afxdp | fpga | fpga-emu
    busy_poll_us: int = 0          # SO_BUSY_POLL (kernel backend)
    rcvbuf_bytes: int = 8 << 20
    afxdp: Mapping[str, Any] = _table()   # AfxdpConfig's keys (queue_id, mode, ...)
    fpga: Mapping[str, Any] = _table()    # device_dir, card, channel


@dataclass(frozen=True)
class Cores(Section):
    rx: tuple[int, ...] | str = _key("auto", toml=(list, str))   # (cpu,) or "auto"
    others_off_rx: bool = True     # the process's other threads kept off the rx CPU while it runs
    sched_fifo: bool = False
    fifo_priority: int = 50
    mlockall: bool = False


@dataclass(frozen=True)
class Idle(Section):
    strategy: str = "backoff"      # busy-spin | spin-yield | backoff
    spins: int = 1000
    yields: int = 10
    max_park_ns: int = 200_000


@dataclass(frozen=True)
class Buffers(Section):
    frames: int = 32               # frame slots = datagrams per recvmmsg batch
    frame_bytes: int = 2048
    ring_capacity: int = 0         # out ring for consumers (events); 0 = none
    ring_policy: str = "drop-newest"
    hugepages: str = _key("auto", toml=(str, bool))   # auto | require | off (true = require)
    numa_node: int = -1            # -1: the NIC's node (or none)


@dataclass(frozen=True)
class Book(Section):
    instruments: int = 1024        # locate codes 0..instruments-1
    max_orders: int = 1 << 20
    max_levels: int = 4096


@dataclass(frozen=True)
class Indicators(Section):
    ema_period: int = 20
    rsi_period: int = 14


@dataclass(frozen=True)
class Faults(Section):                # runtime/backends/faults.py: off while every rate is 0
    seed: int = 1
    drop_rate: float = 0.0
    burst_rate: float = 0.0        # chance that a frame starts a burst of losses
    burst_len: int = 8
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_window: int = 4
    reorder_timeout_ns: int = 1_000_000
    truncate_rate: float = 0.0
    delay_rate: float = 0.0
    delay_ns: int = 0
    hold_frames: int = 256

    def any_rate(self) -> bool:
        return any((self.drop_rate, self.burst_rate, self.duplicate_rate, self.reorder_rate,
                    self.truncate_rate, self.delay_rate))


@dataclass(frozen=True)
class Capture(Section):               # runtime/backends/capture.py: "" = no capture
    path: str = ""
    format: str = "auto"           # auto (by extension) | pcap | pcapng
    ring_records: int = 8192
    on_error: str = "degrade"      # a writer error: degrade (capture off) | stop the run


@dataclass(frozen=True)
class Lines(Section):                 # A/B arbitration (runtime/lines/arbiter.py)
    enabled: bool = False          # [feed] is line A; line B below
    b_address: str = "127.0.0.1"
    b_port: int = 26401
    reorder_capacity: int = 1 << 16    # messages held out of order
    slot_bytes: int = 64           # longest message held (ITCH's longest is 50)
    wait_ns: int = 200_000         # how long a hole waits for the other line
    stale_ns: int = 2_000_000_000  # both lines silent this long: stale feed


@dataclass(frozen=True)
class Recovery(Section):              # MoldUDP64 retransmission (runtime/lines/recovery.py)
    server: str = ""               # "host:port"; "" = none (gaps at the deadline)
    bind_address: str = "0.0.0.0"
    timeout_ns: int = 20_000_000
    retries: int = 3
    deadline_ns: int = 250_000_000
    max_outstanding: int = 16
    max_request_msgs: int = 1000


@dataclass(frozen=True)
class Run(Section):
    seconds: float = 0.0           # 0 = until SIGINT/SIGTERM
    warmup_seq: int = 0            # messages below this seq are not in the latency


@dataclass(frozen=True)
class RuntimeConfig:
    """The whole runtime configuration; `cfg["feed"]` reads like the old dict (compatibility)."""
    feed: Feed = field(default_factory=Feed)
    nic: Nic = field(default_factory=Nic)
    backend: Backend = field(default_factory=Backend)
    cores: Cores = field(default_factory=Cores)
    idle: Idle = field(default_factory=Idle)
    buffers: Buffers = field(default_factory=Buffers)
    book: Book = field(default_factory=Book)
    indicators: Indicators = field(default_factory=Indicators)
    faults: Faults = field(default_factory=Faults)
    capture: Capture = field(default_factory=Capture)
    lines: Lines = field(default_factory=Lines)
    recovery: Recovery = field(default_factory=Recovery)
    run: Run = field(default_factory=Run)

    def __getitem__(self, section: str) -> Section:
        if section not in self.__dataclass_fields__:
            raise KeyError(section)
        return getattr(self, section)

    def get(self, section: str, default=None):
        return getattr(self, section) if section in self.__dataclass_fields__ else default

    def __iter__(self):
        return iter(self.__dataclass_fields__)

    def keys(self):
        return self.__dataclass_fields__.keys()

    def to_dict(self) -> dict:
        """Plain nested dicts (JSON, or a base for `schema.merge`)."""
        return {s: getattr(self, s).to_dict() for s in self.__dataclass_fields__}


SECTIONS: dict[str, type[Section]] = {
    f.name: f.default_factory for f in dataclasses.fields(RuntimeConfig)}   # type: ignore[misc]


def toml_types(section: str, key: str) -> tuple[type, ...]:
    """The TOML value types section.key accepts."""
    f = SECTIONS[section].__dataclass_fields__[key]
    return f.metadata.get("toml") or _TOML_TYPES[f.type]


def default_value(section: str, key: str):
    f = SECTIONS[section].__dataclass_fields__[key]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def build(table: dict) -> RuntimeConfig:
    """A RuntimeConfig from a complete, validated nested dict (schema.merge's last step)."""
    parts = {}
    for name, cls in SECTIONS.items():
        vals = dict(table[name])
        for k, v in vals.items():
            if isinstance(v, dict):
                vals[k] = MappingProxyType(dict(v))
            elif isinstance(v, list):
                vals[k] = tuple(v)
        parts[name] = cls(**vals)
    return RuntimeConfig(**parts)
