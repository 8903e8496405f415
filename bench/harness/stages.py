"""Latency by stage for `tickpath bench --stages`, from outside the runtime.

The runtime records one histogram (scheduled send → indicators done). Each event also
carries ts_recv, the backend's receive stamp (kernel/AF_XDP: per frame; FPGA: the card's
ingress time), and with an out ring (buffers.ring_capacity) every processed event is
published. A consumer thread here drains that ring and records two more histograms:

* send → receive: ts_recv − scheduled send (sender lateness, kernel/veth/NIC path, wakeup);
* receive → consumer: now − ts_recv (decode, book, indicators, the ring hop, this thread's
  own scheduling) — an upper bound on the software stages.

Publishing and the consumer cost CPU, so runs with --stages are not comparable with runs
without (the report says so). The ring's drop-newest policy means a slow consumer loses
stage samples (counted as ring_dropped), never messages. The consumer loop is numba
(nogil), bounded by a stop flag, allocation-free.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit
from tickpath.runtime.engine import latency
from tickpath.runtime.core.event import FLAG_GAP
from tickpath.runtime.sys.intrinsics import cpu_relax, load_acquire, realtime_ns
from tickpath.runtime.ipc.ring import available, read_slot, release

RING_CAPACITY = 1 << 16
_DAY_NS = 86_400_000_000_000


@njit(nogil=True, cache=True)
def drain_stages(hdr, data, midnight_ns, min_seq, h_wire, h_soft, ctl):
    """Until ctl[0] != 0: record ts_recv−send and now−ts_recv; ctl[1] counts records seen."""
    while load_acquire(ctl, 0) == 0:
        k = available(hdr)
        if k == 0:
            cpu_relax()
            continue
        now = realtime_ns()
        for j in range(k):
            ev = data[read_slot(hdr, j)]
            ctl[1] += 1
            if (ev.flags & FLAG_GAP) != 0 or ev.ts_exch == 0 or ev.seq < min_seq:
                continue
            sent = midnight_ns + np.int64(ev.ts_exch)
            wire = ev.ts_recv - sent
            if wire < -_DAY_NS // 2:
                wire += _DAY_NS   # stamped before midnight, received after
            latency.record(h_wire, max(wire, 0))
            latency.record(h_soft, max(now - ev.ts_recv, 0))
        release(hdr, k)
    return ctl[1]


class StageConsumer:
    """Drains a Runtime's out ring on its own thread (pinned to `cpu` when given)."""

    def __init__(self, rt, min_seq: int, cpu: int | None = None):
        self.ring = rt.pipe.ring
        self.midnight_ns = int(rt.pipe.params[0])
        self.min_seq = int(min_seq)
        self.h_wire = latency.new_histogram()
        self.h_soft = latency.new_histogram()
        self.ctl = np.zeros(8, np.int64)
        self.cpu = cpu
        stopped = np.ones(8, np.int64)   # compile now, not while the ring fills
        drain_stages(self.ring.hdr, self.ring.data, 0, 0, self.h_wire, self.h_soft, stopped)
        self.thread = threading.Thread(target=self._body, name="tickpath-bench-stages", daemon=True)
        self.thread.start()

    def _body(self):
        if self.cpu is not None:
            import os
            os.sched_setaffinity(threading.get_native_id(), [self.cpu])
        drain_stages(self.ring.hdr, self.ring.data, self.midnight_ns, self.min_seq, self.h_wire,
                     self.h_soft, self.ctl)

    def stop(self, settle_s: float = 0.5) -> dict:
        """Call after the runtime stopped: drain what is left (bounded), then end the thread."""
        import time
        end = time.monotonic() + settle_s
        while available(self.ring.hdr) > 0 and time.monotonic() < end:
            time.sleep(0.005)
        self.ctl[0] = 1
        self.thread.join(5)
        return {"send_to_receive": latency.summary(self.h_wire),
                "receive_to_consumer": latency.summary(self.h_soft),
                "records_seen": int(self.ctl[1])}
