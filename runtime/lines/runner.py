"""RuntimeAB: the Runtime with two lines and a retransmission client — line A is the
configured backend ([feed]), line B a kernel UDP socket ([lines] b_address/b_port), the
recovery socket asks [recovery] server — all polled by one loop (runtime/loop_ab.py).

Also the lifecycle pieces any runtime can use: the counter array is a live-stats file
(runtime/livestats.py) so `tickpath stats` reads it while running; consumers of the out
ring run on threads whose exception stops the runtime and is re-raised by stop()/check()
as a BackendError naming the consumer (never a hung process); `make_runtime(cfg)` picks
RuntimeAB when [lines] enabled is true, else the single-line Runtime.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from tickpath.runtime.core import counters as C
from tickpath.runtime.lines.arbiter import Arbiter
from tickpath.runtime.core.errors import BackendError, ConfigError
from tickpath.runtime.ipc.livestats import LiveStats
from tickpath.runtime.engine.pipeline import P_PUBLISH, prefault
from tickpath.runtime.engine.loop import STOP
from tickpath.runtime.feed.decoder import set_gap_policy
from tickpath.runtime.lines.loop import PipelineSink, ab_loop
from tickpath.runtime.lines.recovery import make_recovery
from tickpath.runtime.ipc.ring import available, read_slot, release
from tickpath.runtime.engine.runner import Runtime
from tickpath.runtime.backends.socket import SocketBackend


def line_counters(c: np.ndarray) -> dict:
    """The per-line view of a counter array (issue 9's figures)."""
    first_a, first_b = int(c[C.ARB_FIRST_A]), int(c[C.ARB_FIRST_B])
    return {"first_on_a": first_a, "first_on_b": first_b,
            # a message first on A that B never brought (B's copy, had it come, counts ARB_DUP_B)
            "only_on_a": max(first_a - int(c[C.ARB_DUP_B]), 0),
            "only_on_b": max(first_b - int(c[C.ARB_DUP_A]), 0),
            "missing_on_both": int(c[C.ARB_MISSING_BOTH]),
            "recovered_by_retransmission": int(c[C.RECOVERED]),
            "unrecoverable": int(c[C.UNRECOVERABLE]), "unrecoverable_gaps": int(c[C.UNRECOVERABLE_GAPS]),
            "requests": int(c[C.RETRANS_REQUESTS]), "retries": int(c[C.RETRANS_RETRIES]),
            "bad_responses": {"wrong_session": int(c[C.RETRANS_WRONG_SESSION]),
                              "unasked": int(c[C.RETRANS_UNASKED]),
                              "truncated": int(c[C.RETRANS_TRUNCATED])},
            "reorder_overflow": int(c[C.REORDER_OVERFLOW]), "stale_feed": int(c[C.STALE_FEED])}


class ConsumerMixin:
    """Out-ring consumers on threads; an exception stops the runtime and is reported."""

    def add_consumer(self, fn, name: str = "consumer", batch: int = 256):
        if not self.pipe.params[P_PUBLISH]:
            raise ConfigError("consumers need an out ring", key="buffers.ring_capacity", value=0)
        t = threading.Thread(target=self._consume, args=(fn, name, batch), daemon=True,
                             name=f"tickpath-{name}")
        self.__dict__.setdefault("consumers", []).append(t)
        if self.thread is not None:   # else start() starts it, after the warm-up pass
            t.start()
        return t

    def start(self, cpu: int | None = None):
        super().start(cpu)
        for t in self.__dict__.get("consumers", []):
            if not t.is_alive() and t.ident is None:
                t.start()
        return self

    def _consume(self, fn, name, batch):
        ring = self.pipe.ring
        hdr, data = ring.hdr, ring.data
        try:
            while not self.ctrl[STOP] or available(hdr):
                n = min(int(available(hdr)), batch)
                if n == 0:
                    time.sleep(0.0002)
                    continue
                k = int(read_slot(hdr, 0))
                cap = data.shape[0]
                idx = (k + np.arange(n)) % cap
                fn(data[idx].copy())
                release(hdr, n)
        except BaseException as exc:   # stop everything, report at stop()/check()
            err = BackendError("consumer failed", consumer=name, error=repr(exc))
            err.__cause__ = exc
            if self.exc is None:
                self.exc = err
            self.ctrl[STOP] = 1
            self.pipe.stop[0] = 1


class RuntimeAB(ConsumerMixin, Runtime):
    """One feed on two lines, with gap recovery (see module docstring)."""

    def __init__(self, cfg, on_error=None, live_stats: bool = True):
        super().__init__(cfg, on_error)
        ln, rc = cfg.lines, cfg.recovery
        self.live = LiveStats() if live_stats else None
        if self.live is not None:   # the loop's counters ARE the shared file
            self.live.counters[:] = self.pipe.counters
            self.pipe.counters = self.live.counters
        n_slots, slot_bytes = self.payload.shape
        self.line_b = SocketBackend(address=ln.b_address, port=ln.b_port,
                                    interface=cfg.nic.interface or None,
                                    rcvbuf_bytes=cfg.backend.rcvbuf_bytes)
        self.frames_b = (np.zeros((n_slots, slot_bytes), np.uint8), np.zeros(n_slots, np.int32),
                         np.zeros(n_slots, np.int64))
        self.server = None
        if rc.server:
            host, port = rc.server.rsplit(":", 1)
            self.server = (host, int(port))
            self.rsock = SocketBackend(address=rc.bind_address, port=0)
        self.frames_r = (np.zeros((8, max(slot_bytes, 2048)), np.uint8), np.zeros(8, np.int32),
                         np.zeros(8, np.int64))
        fd = cfg.feed
        self.arbiter = Arbiter(capacity=ln.reorder_capacity, slot_bytes=ln.slot_bytes,
                               wait_ns=ln.wait_ns, stale_ns=ln.stale_ns,
                               max_stage_msgs=max(1, min(0xFFFE, len(self.events) - 1)),
                               session=fd.session or None, first_seq=fd.first_seq,
                               max_gap_msgs=fd.max_gap_msgs, reset_packets=fd.reset_packets)
        # the arbiter applies the gap window; the decoder behind it sees its gap rows
        set_gap_policy(self.mold, 0, fd.reset_packets)
        self.rec = make_recovery(None, -1, rc.timeout_ns, rc.retries, rc.deadline_ns,
                                 rc.max_outstanding, rc.max_request_msgs, ln.wait_ns)
        prefault(*self.arbiter.arrays, *self.frames_b, *self.frames_r)

    def open(self):
        super().open()
        self.line_b.open(self.frames_b[0])
        if self.server is not None:
            self.rsock.open(self.frames_r[0])
            try:   # answers only from the server's address and port: the kernel drops the rest
                self.rsock.sock.connect(self.server)
            except OSError as exc:
                raise ConfigError("cannot reach the retransmission server", key="recovery.server",
                                  value=self.cfg.recovery.server, error=exc.strerror) from exc
            rc, ln = self.cfg.recovery, self.cfg.lines
            self.rec = make_recovery(self.server, self.rsock.sock.fileno(), rc.timeout_ns,
                                     rc.retries, rc.deadline_ns, rc.max_outstanding,
                                     rc.max_request_msgs, ln.wait_ns)
        return self

    def _run(self):
        fa = (self.payload, self.lengths, self.recv_ns)
        sink = PipelineSink(self.mold, self.session, self.events, self.pipe.arrays)
        b = self.line_b
        r_on = self.server is not None
        st_r = self.rsock.state if r_on else b.state   # never polled without a server
        return ab_loop(self.backend)(self.backend.state, fa, b.state, self.frames_b, st_r,
                                     self.frames_r, r_on, self.arbiter.arrays, self.rec, sink,
                                     self.ctrl, self.idle_params, self.idle_state)

    def stop(self, timeout_s: float = 5.0) -> None:
        self.ctrl[STOP] = 1
        for t in self.__dict__.get("consumers", []):
            t.join(timeout_s)
        super().stop(timeout_s)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.line_b.close()
            if self.server is not None:
                self.rsock.close()
            if self.live is not None:
                self.live.close()

    def stats(self) -> dict:
        st = super().stats()
        st["lines"] = line_counters(self.pipe.counters)
        st["arbiter"] = self.arbiter.stats(time.monotonic_ns())
        st["line_b"] = self.line_b.stats()
        if self.server is not None:
            st["recovery_socket"] = self.rsock.stats()
        return st


def make_runtime(cfg, on_error=None):
    """RuntimeAB for [lines] enabled = true, else the single-line Runtime (its decoder
    given the [feed] gap window); either way a capture gets its [capture] on_error policy."""
    if cfg.lines.enabled:
        rt = RuntimeAB(cfg, on_error)
    else:
        rt = Runtime(cfg, on_error)
        set_gap_policy(rt.mold, cfg.feed.max_gap_msgs, cfg.feed.reset_packets)
    from tickpath.runtime.backends.capture import CaptureBackend
    if isinstance(rt.backend, CaptureBackend):   # the writer is made at open(): set it before
        rt.backend.on_error = cfg.capture.on_error
    return rt
