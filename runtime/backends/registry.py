"""The backend contract and the registry of backends by alias.

A backend is a Python object that opens a receive path and hands the hot loop two things:
a jitted `poll` function and a `state` tuple (numpy arrays / ints numba can type). The loop
is compiled once per poll function, so there is no runtime branching on backend kind.

Two kinds (`kind` attribute):

* "frames" — the backend receives raw UDP payloads (MoldUDP64 packets):
      n = poll(state, payload, lengths, recv_ns)
  fills slots [0, n) of the frame buffer: payload is uint8[n_slots, slot_bytes], lengths
  int32[n_slots] (bytes of payload in each slot), recv_ns int64[n_slots] (CLOCK_REALTIME
  receive time). n never exceeds n_slots. 0 = nothing now. Negative = fatal, -errno.
* "events" — the backend delivers already decoded 64-byte event records (the FPGA):
      n = poll(state, events)
  fills events[0:n] (EVENT_DTYPE array). Negative = fatal (device gone: -ENODEV / -EIO).

Construction: `BackendInfo.from_config(cfg)` with the whole runtime config (each backend
reads its own keys), so nothing outside a backend's module branches on its kind.

Where backends come from: the "tickpath.backends" entry points (pyproject.toml), one per
alias, each naming the module that registers it — so the runtime names no folder above it
(fpga/ registers "fpga" and "fpga-emu" itself). A module is imported only when its backend is
asked for, and one that fails to import raises its ImportError, never "unknown backend".
"tickpath.backend_tables" entry points name the keys of each [backend.<table>] sub-table
(runtime/config checks them without importing the backend).
Python side: `open(...)` raises BackendError (or PrivilegeError / ResourceError) naming what
is missing — never deep inside the loop; `stats() -> dict` merges backend counters;
`close()` releases everything and is idempotent. `requires` says what the backend needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from tickpath.runtime.core.errors import ConfigError

FRAMES = "frames"
EVENTS = "events"


@dataclass(frozen=True)
class BackendInfo:
    name: str
    kind: str                 # FRAMES or EVENTS
    factory: Callable         # factory(its own table) -> backend object (not yet opened)
    from_config: Callable     # from_config(the runtime config dict) -> backend (not yet opened):
                              # the one constructor shape the runtime uses for every backend
    requires: str             # privileges / kernel features / devices it needs
    summary: str


@runtime_checkable
class Backend(Protocol):
    """What the runtime needs of every backend (the contract above, as a type). `poll` is a
    jitted function; `loop` is the backend's own cached receive loop (or None where none can
    be cached: a wrapper around a poll a new process cannot import by name); `state` is valid after `open`."""

    kind: str
    poll: Any
    loop: Any
    state: Any

    def open(self, buffer, *args, **kwargs) -> "Backend": ...

    def stats(self) -> dict: ...

    def close(self) -> None: ...


_REGISTRY: dict[str, BackendInfo] = {}


def register_backend(info: BackendInfo) -> BackendInfo:
    if info.kind not in (FRAMES, EVENTS):
        raise ConfigError("backend kind must be frames or events", name=info.name, kind=info.kind)
    _REGISTRY[info.name] = info
    return info


BACKEND_GROUP = "tickpath.backends"
TABLE_GROUP = "tickpath.backend_tables"


def _entry_points(group: str) -> dict:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group=group)}


def backend_names() -> list[str]:
    """Every installed backend alias (nothing imported)."""
    return sorted(set(_entry_points(BACKEND_GROUP)) | set(_REGISTRY))


def _load(name: str) -> None:
    ep = _entry_points(BACKEND_GROUP).get(name)
    if ep is not None and name not in _REGISTRY:
        ep.load()   # importing the module registers the backend; an ImportError propagates


def backends() -> dict[str, BackendInfo]:
    """Every installed backend, each module imported (a broken one raises its ImportError)."""
    for name in _entry_points(BACKEND_GROUP):
        _load(name)
    return dict(_REGISTRY)


def get_backend(name: str) -> BackendInfo:
    _load(name)
    if name not in _REGISTRY:
        raise ConfigError("unknown backend", backend=name, known=backend_names())
    return _REGISTRY[name]


def table_keys(table: str) -> set[str]:
    """The keys [backend.<table>] may hold, as the owning backend declares them (a dataclass,
    whose fields are the keys, or a sequence of names)."""
    ep = _entry_points(TABLE_GROUP).get(table)
    if ep is None:
        raise ConfigError("no backend reads this table", table=f"backend.{table}",
                          known=sorted(_entry_points(TABLE_GROUP)))
    obj = ep.load()
    fields = getattr(obj, "__dataclass_fields__", None)
    return set(fields) if fields is not None else set(obj)
