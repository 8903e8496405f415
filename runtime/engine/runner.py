"""Runtime: assembles one feed's receive path from a validated config and runs its hot loop
on a pinned thread (start-up, shutdown and errors live here, outside the loop).

Order of setup (teardown is the reverse): NUMA-local region → frame buffer and event batch
carved from it → pipeline (books, indicators, histogram, out ring) → backend open → pin →
loop thread. `stop()` raises the stop flag (release store); the loop sees it within one
idle period and the thread is joined. A backend failure ends the loop with -errno, which
`join()` turns into a BackendError naming the errno.
"""
from __future__ import annotations

import errno as _errno
import os
import sys
import threading
import time
import warnings

import numpy as np

from tickpath.runtime.core import counters as C
from tickpath.runtime.engine import idle as idle_mod
from tickpath.runtime.engine import latency
from tickpath.runtime.sys import placement
from tickpath.runtime.backends.registry import EVENTS, get_backend
from tickpath.runtime.config.sections import RuntimeConfig
from tickpath.runtime.sys.buffers import allocate
from tickpath.runtime.feed.decoder import max_events_per_packet, new_mold_state
from tickpath.runtime.core.errors import BackendError
from tickpath.runtime.core.event import EVENT_BYTES, EVENT_DTYPE
from tickpath.runtime.engine.loop import (
    EXIT_CODE,
    ITERATIONS,
    RUNNING,
    STOP,
    new_ctrl,
    events_loop,
    frames_loop,
)
from tickpath.runtime.book.layout import unreliable_report
from tickpath.runtime.engine.pipeline import P_PUBLISH, Pipeline

FPGA_BATCH_RECORDS = 256


def _make_backend(cfg: RuntimeConfig):
    backend = _make_inner_backend(cfg)
    if backend.kind == EVENTS:
        return backend
    from tickpath.runtime.backends.faults import FaultConfig, FaultBackend
    faults = FaultConfig.from_table(cfg.faults.to_dict())
    bufs = cfg.buffers
    if faults.active:   # faults first, so a capture holds exactly what the pipeline saw
        backend = FaultBackend(backend, faults, bufs.frames, bufs.frame_bytes)
    cap = cfg.capture
    if cap.path:
        from tickpath.runtime.backends.capture import CaptureBackend
        backend = CaptureBackend(backend, cap.path, bufs.frame_bytes,
                                 None if cap.format == "auto" else cap.format, cap.ring_records)
    return backend


def _make_inner_backend(cfg: RuntimeConfig):
    # no branching on the kind here: each backend reads its own keys (BackendInfo.from_config)
    return get_backend(cfg.backend.kind).from_config(cfg)


class Runtime:
    """One feed, one receive thread."""

    def __init__(self, cfg: RuntimeConfig, on_error=None):
        self.cfg = cfg
        self.notes: list[str] = []
        bcfg = cfg.buffers
        self.backend = _make_backend(cfg)
        self.is_events = self.backend.kind == EVENTS
        n_slots, slot_bytes = bcfg.frames, bcfg.frame_bytes
        max_ev = FPGA_BATCH_RECORDS if self.is_events else n_slots * max_events_per_packet(slot_bytes)
        node = bcfg.numa_node if bcfg.numa_node >= 0 else None
        size = n_slots * slot_bytes + max_ev * EVENT_BYTES + 64 * 1024
        self.region = allocate(size, node=node, hugepages=bcfg.hugepages)
        self.notes += self.region.notes
        self.payload = self.region.carve((n_slots, slot_bytes), np.uint8, align=4096)
        self.lengths = self.region.carve((n_slots,), np.int32)
        self.recv_ns = self.region.carve((n_slots,), np.int64)
        self.events = self.region.carve((max_ev,), EVENT_DTYPE)
        bk, ind = cfg.book, cfg.indicators
        self.pipe = Pipeline(n_locates=bk.instruments, max_orders=bk.max_orders,
                             max_levels=bk.max_levels, ema_period=ind.ema_period,
                             rsi_period=ind.rsi_period, out_ring_capacity=bcfg.ring_capacity,
                             out_ring_policy=bcfg.ring_policy, warmup_seq=cfg.run.warmup_seq)
        self.mold, self.session = new_mold_state(cfg.feed.session or None, cfg.feed.first_seq)
        self.ctrl = new_ctrl()
        ic = cfg.idle
        self.idle_params = idle_mod.make_params(ic.strategy, ic.spins, ic.yields, ic.max_park_ns)
        self.idle_state = idle_mod.new_state()
        self.thread: threading.Thread | None = None
        self.cpu: int | None = None
        self.exc: BaseException | None = None
        self.started_ns = self.stopped_ns = 0
        self.on_error = on_error
        self.rx_tid: int | None = None
        self.others_moved: dict[int, set[int]] = {}   # threads kept off the rx CPU: old affinity
        self.others_kept_off = 0
        self._opened = False

    # --- lifecycle ---------------------------------------------------------------------
    def open(self):
        b = self.backend
        if self.is_events:
            b.open(self.events)
        else:
            b.open(self.payload, counters=self.pipe.counters)
        self._opened = True
        return self

    def warm_up(self):
        """Compile (or load from numba's cache) the loop for this backend before timing
        anything: a pass with the stop flag already set. Says so on stderr when it compiles,
        because the first-ever start of a backend takes seconds and the user should know why."""
        kind = self.cfg.backend.kind
        t0 = time.monotonic()
        self.ctrl[STOP] = 1
        self._run()
        self.ctrl[STOP] = 0
        self.ctrl[ITERATIONS] = 0
        self.warm_up_s = time.monotonic() - t0
        if self.warm_up_s > 1.0:   # a cache load takes well under a second; this was a compile
            print(f"tickpath: compiled the receive loop for backend {kind} in {self.warm_up_s:.1f} s "
                  "(cached for the next start)", file=sys.stderr, flush=True)

    def _run(self):
        p = self.pipe.arrays
        if self.is_events:
            return events_loop(self.backend)(self.backend.state, self.events, p, self.ctrl,
                              self.idle_params, self.idle_state)
        return frames_loop(self.backend)(self.backend.state, self.payload, self.lengths,
                          self.recv_ns, self.mold, self.session, self.events, p, self.ctrl,
                          self.idle_params, self.idle_state)

    def _thread_main(self):
        self.rx_tid = threading.get_native_id()
        try:
            if self.cpu is not None:
                placement.pin_thread([self.cpu])
            cc = self.cfg.cores
            if cc.sched_fifo:
                placement.set_fifo(cc.fifo_priority)
            self._run()
        except BaseException as exc:  # reported by join(); the loop itself never raises
            self.exc = exc
            if self.on_error:
                self.on_error(exc)
        finally:
            self.stopped_ns = time.monotonic_ns()

    def start(self, cpu: int | None = None):
        if not self._opened:
            self.open()
        rx = self.cfg.cores.rx
        if cpu is None:
            cpu = placement.choose_cores(1, self.cfg.nic.interface or None)[0] if rx == "auto" else rx[0]
        self.cpu = placement.check_cpus([cpu], "cores.rx")[0]
        if self.cfg.cores.mlockall:
            placement.lock_all_memory()
        self.warm_up()
        if self.cfg.cores.others_off_rx:   # before the loop starts: it inherits, then pins itself
            self.others_moved = placement.keep_off(self.cpu)
            self.others_kept_off = len(self.others_moved)
        self.started_ns = time.monotonic_ns()
        self.thread = threading.Thread(target=self._thread_main, name="tickpath-rx", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while self.ctrl[RUNNING] == 0 and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.0005)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        # a plain numpy store from Python: it is visible at once (x86-TSO); the loop's
        # acquire load is what keeps LLVM from hoisting the read
        self.ctrl[STOP] = 1
        self.pipe.stop[0] = 1
        if self.thread is not None:
            self.thread.join(timeout_s)
            placement.restore(self.others_moved)
            self.others_moved = {}
            if self.thread.is_alive():
                raise BackendError("receive thread did not stop", timeout_s=timeout_s)
        self.check()

    def check(self) -> None:
        if self.exc is not None:
            raise self.exc
        code = int(self.ctrl[EXIT_CODE])
        if code < 0:
            raise BackendError("backend failed", errno=_errno.errorcode.get(-code, str(-code)),
                               reason=os.strerror(-code), backend=self.cfg.backend.kind)

    @property
    def running(self) -> bool:
        return bool(self.thread is not None and self.thread.is_alive() and self.ctrl[RUNNING])

    def close(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            try:
                self.stop()
            except BackendError as exc:
                warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
        placement.restore(self.others_moved)   # a loop that ended by itself was not stopped
        self.others_moved = {}
        if self.backend is not None:
            self.backend.close()
        self.pipe.ring.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- reporting -------------------------------------------------------------------------
    def rx_cpu_seconds(self) -> float | None:
        """CPU time (user + system) the receive thread has used, per the kernel (psutil)."""
        import psutil
        for t in psutil.Process().threads():
            if t.id == self.rx_tid:
                return t.user_time + t.system_time
        return None

    def counters(self) -> dict:
        return C.as_dict(self.pipe.counters)

    def latency(self) -> dict:
        return latency.summary(self.pipe.hist)

    def stats(self) -> dict:
        b = self.backend.stats() if self.backend is not None else {}
        return {"backend": self.cfg.backend.kind, "cpu": self.cpu,
                "threads_kept_off_rx": self.others_kept_off,
                "counters": self.counters(), "latency_ns": self.latency(),
                "backend_stats": b, "buffers": self.region.report(), "notes": self.notes,
                "out_ring": self.pipe.ring.stats() if self.pipe.params[P_PUBLISH] else None,
                "books_unreliable": unreliable_report(self.pipe.books),   # {locate: [reasons]}
                "iterations": int(self.ctrl[ITERATIONS])}
