"""Fault injection as a wrapper around any frame backend (Aeron's loss interceptor idea):
drop a fraction of frames or bursts of them, duplicate, reorder within a window, truncate,
delay — seeded, so the same seed and the same input frames give the same faults.

`FaultBackend.poll` polls the inner backend into a private staging buffer, decides each
frame's fate with a xorshift64* generator, and writes the survivors into the runtime's frame
buffer. Frames chosen for reordering or delay wait in a fixed pool of `hold_frames` slots:
a reordered frame comes out after `1..reorder_window` later frames (or after
`reorder_timeout_ns` if the feed goes quiet), a delayed one after `delay_ns`. Held frames
that are due go out first; the inner backend is polled only when none were due and the pool
has room for a whole batch, so nothing is lost that the fault model did not choose to lose.
A frame that would be held while the pool is full goes out at once, counted HOLD_FULL.
The inner poll is bound at compile time by name, in a generated module that numba caches
(runtime/backends/wrapped.py), so a restart with faults on loads its loop from disk. Counts are in the wrapper's own `fault_counters` (F_* slots),
merged into stats().
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.backends.registry import FRAMES
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.backends.wrapped import wrap_poll

# fault counter slots
F_SEEN, F_DROPPED, F_BURST_DROPPED, F_DUPLICATED, F_REORDERED, F_TRUNCATED, F_DELAYED, \
    F_HOLD_FULL, F_RELEASED = range(9)
N_FAULT_COUNTERS = 12
FAULT_NAMES = ("seen", "dropped", "burst_dropped", "duplicated", "reordered", "truncated",
               "delayed", "hold_full", "released")

# float64 params slots
(P_DROP, P_BURST, P_BURST_LEN, P_DUP, P_REORDER, P_WINDOW, P_REORDER_TIMEOUT_NS, P_TRUNC,
 P_DELAY_RATE, P_DELAY_NS) = range(10)
N_PARAMS = 10
# int64 live-state slots
S_BURST_LEFT, S_SEEN, S_HELD = range(3)
_NEVER = np.int64(1) << 62
MAX_HOLD_FRAMES = 1 << 20        # frames the pool may hold (bounded memory; the config says so)
MAX_POOL_BYTES = 1 << 30


class FaultState(NamedTuple):
    """The wrapper poll's state, by name (numba types the tuple; no run-time cost)."""
    inner: Any               # the inner backend's poll state
    params: np.ndarray       # float64[N_PARAMS], P_* slots
    live: np.ndarray         # int64, S_* slots
    rng: np.ndarray          # uint64[1], xorshift64* state
    counters: np.ndarray     # int64[N_FAULT_COUNTERS], F_* slots
    stage: np.ndarray        # uint8[n_slots, slot_bytes]: what the inner backend received
    stage_len: np.ndarray
    stage_ns: np.ndarray
    pool: np.ndarray         # uint8[hold, slot_bytes]: frames held (reorder, delay, overflow)
    pool_len: np.ndarray     # -2: free slot
    pool_ns: np.ndarray
    due_seen: np.ndarray     # released once this many frames were seen...
    due_ns: np.ndarray       # ...or at this time


@dataclass(frozen=True)
class FaultConfig:
    """What to inject (rates are probabilities per frame, 0..1)."""
    seed: int = 1
    drop_rate: float = 0.0
    burst_rate: float = 0.0          # probability that a frame starts a burst of losses
    burst_len: int = 8               # frames lost in a burst (the starting one included)
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    reorder_window: int = 4          # a reordered frame comes out after 1..window later frames
    reorder_timeout_ns: int = 1_000_000
    truncate_rate: float = 0.0       # cut to a random shorter length (0..len-1 bytes)
    delay_rate: float = 0.0
    delay_ns: int = 0
    hold_frames: int = 256           # frames that can wait (reorder + delay + overflow)

    def __post_init__(self):
        for name in ("drop_rate", "burst_rate", "duplicate_rate", "reorder_rate", "truncate_rate",
                     "delay_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError("fault rate must be a probability", key=f"faults.{name}",
                                  value=v, allowed="0..1")
        for name, lo, hi in (("burst_len", 1, 1 << 32), ("reorder_window", 1, 1 << 32),
                             ("reorder_timeout_ns", 0, 1 << 62), ("delay_ns", 0, 1 << 62),
                             ("hold_frames", 1, MAX_HOLD_FRAMES), ("seed", 0, (1 << 64) - 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError("fault setting out of range", key=f"faults.{name}", value=v,
                                  allowed=f"integer {lo}..{hi}")
        if self.delay_rate > 0 and self.delay_ns == 0:
            raise ConfigError("faults.delay_rate needs faults.delay_ns > 0",
                              delay_rate=self.delay_rate, delay_ns=self.delay_ns)

    @property
    def active(self) -> bool:
        return any(getattr(self, n) > 0 for n in ("drop_rate", "burst_rate", "duplicate_rate",
                                                  "reorder_rate", "truncate_rate", "delay_rate"))

    @classmethod
    def from_table(cls, table: dict) -> FaultConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known - {"enabled"}
        if unknown:
            raise ConfigError("unknown fault setting", keys=sorted(unknown), known=sorted(known))
        return cls(**{k: v for k, v in table.items() if k in known})


@njit(nogil=True, inline="always")
def _next(rng):
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


@njit(nogil=True, inline="always")
def _uniform(rng):
    """A float in [0, 1)."""
    return np.float64(_next(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(nogil=True, cache=True)
def _hold(pool, plen, pns, due_seen, due_ns, st, src, ln, t, when_seen, when_ns):
    """Put a frame in a free pool slot; False if the pool is full."""
    for h in range(plen.shape[0]):
        if plen[h] == -2:
            n = min(max(ln, 0), pool.shape[1])
            pool[h, :n] = src[:n]
            plen[h] = ln
            pns[h] = t
            due_seen[h] = when_seen
            due_ns[h] = when_ns
            st[S_HELD] += 1
            return True
    return False


@njit(nogil=True, cache=True)
def _emit(payload, lengths, recv_ns, out, src, ln, t):
    n = min(max(ln, 0), payload.shape[1])
    payload[out, :n] = src[:n]
    lengths[out] = ln
    recv_ns[out] = t


@njit(nogil=True, cache=True)
def apply_faults(p, st, rng, fc, stage, slen, sns, m, pool, plen, pns, due_seen, due_ns,
                 payload, lengths, recv_ns, out, now):
    """Run frames [0, m) of the stage through the fault model into payload from slot out."""
    n_out = min(payload.shape[0], lengths.shape[0], recv_ns.shape[0])
    for i in range(min(m, stage.shape[0])):
        st[S_SEEN] += 1
        fc[F_SEEN] += 1
        ln = slen[i]
        if st[S_BURST_LEFT] > 0:
            st[S_BURST_LEFT] -= 1
            fc[F_BURST_DROPPED] += 1
            continue
        if p[P_BURST] > 0 and _uniform(rng) < p[P_BURST]:
            st[S_BURST_LEFT] = np.int64(p[P_BURST_LEN]) - 1
            fc[F_BURST_DROPPED] += 1
            continue
        if p[P_DROP] > 0 and _uniform(rng) < p[P_DROP]:
            fc[F_DROPPED] += 1
            continue
        if p[P_TRUNC] > 0 and ln > 0 and _uniform(rng) < p[P_TRUNC]:
            ln = np.int32(_next(rng) % np.uint64(ln))
            fc[F_TRUNCATED] += 1
        copies = 1
        if p[P_DUP] > 0 and _uniform(rng) < p[P_DUP]:
            copies = 2
            fc[F_DUPLICATED] += 1
        for c in range(copies):
            held = False
            if c == 0 and p[P_REORDER] > 0 and _uniform(rng) < p[P_REORDER]:
                w = 1 + np.int64(_next(rng) % np.uint64(np.int64(p[P_WINDOW])))
                held = _hold(pool, plen, pns, due_seen, due_ns, st, stage[i], ln, sns[i],
                             st[S_SEEN] + w, now + np.int64(p[P_REORDER_TIMEOUT_NS]))
                fc[F_REORDERED if held else F_HOLD_FULL] += 1
            elif c == 0 and p[P_DELAY_RATE] > 0 and _uniform(rng) < p[P_DELAY_RATE]:
                held = _hold(pool, plen, pns, due_seen, due_ns, st, stage[i], ln, sns[i],
                             _NEVER, now + np.int64(p[P_DELAY_NS]))
                fc[F_DELAYED if held else F_HOLD_FULL] += 1
            if held:
                continue
            if out < n_out:
                _emit(payload, lengths, recv_ns, out, stage[i], ln, sns[i])
                out += 1
            elif not _hold(pool, plen, pns, due_seen, due_ns, st, stage[i], ln, sns[i], 0, 0):
                fc[F_HOLD_FULL] += 1      # the pool was sized to prevent this; counted if not
    return out


@njit(nogil=True, cache=True)
def release_due(st, fc, pool, plen, pns, due_seen, due_ns, payload, lengths, recv_ns, now):
    """Move held frames that are due into the output; returns how many."""
    out = 0
    n_out = min(payload.shape[0], lengths.shape[0], recv_ns.shape[0])
    if st[S_HELD] == 0:
        return 0
    for h in range(plen.shape[0]):
        if out >= n_out:
            break
        if plen[h] != -2 and (st[S_SEEN] >= due_seen[h] or now >= due_ns[h]):
            _emit(payload, lengths, recv_ns, out, pool[h], plen[h], pns[h])
            plen[h] = -2
            st[S_HELD] -= 1
            fc[F_RELEASED] += 1
            out += 1
    return out


@njit(nogil=True, inline="always")
def fault_poll_impl(inner_poll, state, payload, lengths, recv_ns):
    """The wrapper poll's body; `inner_poll` is bound by name where this is inlined
    (runtime/backends/wrapped.py), so the wrapped loop still loads from numba's cache."""
    p, st, rng, fc = state.params, state.live, state.rng, state.counters
    stage, slen, sns = state.stage, state.stage_len, state.stage_ns
    pool, plen, pns, due_seen, due_ns = (state.pool, state.pool_len, state.pool_ns,
                                         state.due_seen, state.due_ns)
    now = realtime_ns()
    out = release_due(st, fc, pool, plen, pns, due_seen, due_ns, payload, lengths, recv_ns, now)
    if out > 0 or plen.shape[0] - st[S_HELD] < 2 * stage.shape[0]:
        return out                       # due frames first; the inner feed waits a cycle
    m = inner_poll(state.inner, stage, slen, sns)
    if m < 0:
        return m
    return apply_faults(p, st, rng, fc, stage, slen, sns, m, pool, plen, pns, due_seen,
                        due_ns, payload, lengths, recv_ns, 0, now)


class FaultBackend:
    """A frame backend that injects `faults` into what `inner` receives; its poll and loop
    wrap the inner poll (runtime/backends/wrapped.py), never the inner backend's own loop."""
    kind = FRAMES

    def __init__(self, inner, faults: FaultConfig, n_slots: int, slot_bytes: int):
        if getattr(inner, "kind", None) != FRAMES:
            raise ConfigError("fault injection wraps frame backends only", backend=type(inner).__name__)
        if n_slots < 1 or slot_bytes < 1:
            raise ConfigError("frame buffer shape must be positive", n_slots=n_slots, slot_bytes=slot_bytes)
        self.inner, self.faults = inner, faults
        self.wrapped = wrap_poll(inner, "faults")
        self.poll, self.loop = self.wrapped.poll, self.wrapped.loop
        hold = max(faults.hold_frames, 0) + 2 * n_slots     # room for one whole batch to spill
        if hold * slot_bytes > MAX_POOL_BYTES:
            raise ConfigError("fault hold pool too large", key="faults.hold_frames",
                              value=faults.hold_frames, pool_bytes=hold * slot_bytes,
                              max_bytes=MAX_POOL_BYTES)
        self.params = np.zeros(N_PARAMS, dtype=np.float64)
        f = faults
        self.params[:] = (f.drop_rate, f.burst_rate, f.burst_len, f.duplicate_rate, f.reorder_rate,
                          f.reorder_window, f.reorder_timeout_ns, f.truncate_rate, f.delay_rate, f.delay_ns)
        self.live = np.zeros(4, dtype=np.int64)
        # xorshift needs a non-zero state: mix the seed (splitmix64 constant)
        self.rng = np.array([(f.seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1) or 1],
                            dtype=np.uint64)
        self.fault_counters = np.zeros(N_FAULT_COUNTERS, dtype=np.int64)
        self.stage = np.zeros((n_slots, slot_bytes), dtype=np.uint8)
        self.stage_len = np.zeros(n_slots, dtype=np.int32)
        self.stage_ns = np.zeros(n_slots, dtype=np.int64)
        self.pool = np.zeros((hold, slot_bytes), dtype=np.uint8)
        self.pool_len = np.full(hold, -2, dtype=np.int32)     # -2: free slot
        self.pool_ns = np.zeros(hold, dtype=np.int64)
        self.due_seen = np.zeros(hold, dtype=np.int64)
        self.due_ns = np.zeros(hold, dtype=np.int64)
        self.state = None
        self.counters = getattr(inner, "counters", None)

    def open(self, *args, counters=None, **kw):
        # the inner backend fills our staging buffer, not the runtime's
        if args and hasattr(args[0], "shape"):
            if args[0].shape != self.stage.shape:
                raise ConfigError("frame buffer shape differs from the fault stage",
                                  buffer=args[0].shape, stage=self.stage.shape)
            args = (self.stage, *args[1:])
        self.inner.open(*args, counters=counters, **kw)
        self.counters = getattr(self.inner, "counters", counters)
        self.state = FaultState(self.inner.state, self.params, self.live, self.rng,
                                self.fault_counters, self.stage, self.stage_len, self.stage_ns,
                                self.pool, self.pool_len, self.pool_ns, self.due_seen,
                                self.due_ns)
        return self

    def __getattr__(self, name):
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def fault_stats(self) -> dict:
        d = {name: int(self.fault_counters[i]) for i, name in enumerate(FAULT_NAMES)}
        d["held_now"] = int(self.live[S_HELD])
        return d

    def stats(self) -> dict:
        s = dict(self.inner.stats())
        s["faults"] = self.fault_stats()
        return s

    def close(self) -> None:
        self.inner.close()
        self.state = None
