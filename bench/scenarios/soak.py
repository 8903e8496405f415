"""The soak: a seeded synthetic feed published on lines A and B with independent seeded loss,
a retransmission server, and a RuntimeAB on loopback; a consumer on the out ring checks that
every message comes out exactly once and in order (gap events standing in, explicitly, for
what could not be had), and records per-source receive latency (receive time of the copy
that won − scheduled send time) so recovered messages can be compared with the rest —
also by what the loss masks did to each message's packet (sent on both lines, dropped
on one: recovered by arbitration, dropped on both: recovered by retransmission).

Used by tests/lines/test_soak.py (bounded) and `tickpath soak --minutes N` (long).
Resident memory is sampled after warm-up and at the end; open descriptors before and after.
"""
from __future__ import annotations

import os
import time

import numpy as np
import psutil
from numba import njit
from tickpath.runtime.config import schema as config
from tickpath.runtime.core.event import FLAG_GAP, FLAG_LINE_B, FLAG_RETRANSMIT
from tickpath.runtime.engine.pipeline import utc_midnight_ns
from tickpath.runtime.lines.runner import RuntimeAB, line_counters

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.retransmit import ABSender, RetransmitServer, loss_mask

# checker state slots
K_EXPECTED, K_BAD_ORDER, K_MESSAGES, K_GAP_MSGS, K_N_A, K_N_B, K_N_R = range(7)
NOT_DELIVERED = np.iinfo(np.int64).min   # lat_seq entry of a message never delivered


@njit(nogil=True, cache=True)
def check_batch(ev, chk, midnight_ns, lat_a, lat_b, lat_r, lat_seq):
    """In-order, exactly-once check of one batch; latencies by source (ns), and by
    sequence number in lat_seq (to split them by what the loss masks did to each message)."""
    for i in range(ev.shape[0]):
        e = ev[i]
        s = np.int64(e.seq)
        if e.flags & FLAG_GAP:
            if s != chk[K_EXPECTED]:
                chk[K_BAD_ORDER] += 1
            chk[K_GAP_MSGS] += np.int64(e.shares)
            chk[K_EXPECTED] = s + np.int64(e.shares)
            continue
        if s != chk[K_EXPECTED]:
            chk[K_BAD_ORDER] += 1
        chk[K_EXPECTED] = s + 1
        chk[K_MESSAGES] += 1
        lat = e.ts_recv - (midnight_ns + np.int64(e.ts_exch))
        if 0 <= s < lat_seq.shape[0]:   # numba does not bounds-check
            lat_seq[s] = lat
        if e.flags & FLAG_RETRANSMIT:
            k = chk[K_N_R]
            if k < lat_r.shape[0]:
                lat_r[k] = lat
                chk[K_N_R] = k + 1
        elif e.flags & FLAG_LINE_B:
            k = chk[K_N_B]
            if k < lat_b.shape[0]:
                lat_b[k] = lat
                chk[K_N_B] = k + 1
        else:
            k = chk[K_N_A]
            if k < lat_a.shape[0]:
                lat_a[k] = lat
                chk[K_N_A] = k + 1


def _pct(a: np.ndarray) -> dict:
    if len(a) == 0:
        return {"n": 0}
    p50, p99 = np.percentile(a, [50, 99])
    return {"n": int(len(a)), "p50_us": round(float(p50) / 1e3, 1), "p99_us": round(float(p99) / 1e3, 1)}


def _by_loss(pk, da, db, lat_seq) -> dict:
    """Latency of delivered messages by what the sender's masks did to their packet: sent
    on both lines (undisturbed), dropped on one (recovered by arbitration), on both."""
    la = np.repeat(da, pk.msg_count).astype(bool)   # packets hold consecutive messages
    lb = np.repeat(db, pk.msg_count).astype(bool)
    lat = lat_seq[1:1 + len(la)]
    ok = lat != NOT_DELIVERED
    return {"undisturbed": _pct(lat[ok & ~la & ~lb]), "lost_on_one_line": _pct(lat[ok & (la ^ lb)]),
            "lost_on_both_lines": _pct(lat[ok & la & lb])}


def run_soak(n_messages: int = 200_000, rate_msgs_per_s: float = 100_000, loss_a: float = 0.01,
             loss_b: float = 0.01, burst: int = 1, seed: int = 1, server_mode: str = "ok",
             server_delay_s: float = 0.0, instruments: int = 100, msgs_per_packet: int = 4,
             deadline_ns: int = 250_000_000, idle: str = "backoff", cpu: int | None = None,
             drop_both_every: int = 0) -> dict:
    """One bounded soak run; returns the summary (see module docstring).
    drop_both_every=k also drops every k-th packet on both lines (forces retransmission)."""
    proc = psutil.Process()
    fds_before = proc.num_fds()
    market = generate(seed, n_messages, instruments)
    pk = pack_mold(market, "SOAK000001", max_messages_per_packet=msgs_per_packet)
    da = loss_mask(pk.n_packets, loss_a, seed * 7 + 1, burst)
    db = loss_mask(pk.n_packets, loss_b, seed * 7 + 2, burst)
    if drop_both_every:
        da[drop_both_every::drop_both_every] = 1
        db[drop_both_every::drop_both_every] = 1
    cfg = config.merge({
        "feed": {"address": "127.0.0.1", "port": 0, "session": "SOAK000001"},
        "lines": {"enabled": True, "b_address": "127.0.0.1", "b_port": 0, "wait_ns": 500_000},
        "recovery": {"server": "127.0.0.1:1", "bind_address": "127.0.0.1", "timeout_ns": 20_000_000,
                     "deadline_ns": deadline_ns},
        "buffers": {"ring_capacity": 1 << 16, "ring_policy": "wait", "hugepages": "off"},
        "book": {"instruments": instruments + 1, "max_orders": 1 << 18},
        "cores": {"rx": [cpu] if cpu is not None else [sorted(os.sched_getaffinity(0))[0]]},
        "idle": {"strategy": idle, "max_park_ns": 200_000}})
    sender = ABSender(pk, ("127.0.0.1", 1), ("127.0.0.1", 1), rate_msgs_per_s, da, db,
                      max_seconds=n_messages / rate_msgs_per_s * 3 + 30)
    server = RetransmitServer(pk, buf=sender.buf, sent_msgs=sender.sent_msgs, mode=server_mode,
                              delay_s=server_delay_s)
    cfg = config.merge({"recovery": {"server": f"{server.address[0]}:{server.address[1]}"}}, base=cfg)
    chk = np.zeros(8, dtype=np.int64)
    chk[K_EXPECTED] = 1
    # np.full writes every page now: the checker's arrays must not look like runtime growth
    lat = [np.full(n_messages, 0, np.int64) for _ in range(3)]
    lat_seq = np.full(n_messages + 1, NOT_DELIVERED, np.int64)
    midnight = utc_midnight_ns()
    rss = []
    rt = RuntimeAB(cfg)
    try:
        rt.open()
        sender.line_a = ("127.0.0.1", rt.backend.port)
        sender.line_b = ("127.0.0.1", rt.line_b.port)   # read at start(), by line_addrs
        # compile the checker now: compiling it on the first batch stalls the consumer for
        # seconds, the out ring fills, the loop waits and both lines overflow their socket
        # buffers — the first soak of every process lost ~60-110 k messages to that
        check_batch(rt.pipe.ring.data[:0].copy(), chk, midnight, *lat, lat_seq)
        rt.add_consumer(lambda ev: check_batch(ev, chk, midnight, *lat, lat_seq), "soak-checker")
        rt.start(cpu=cfg.cores.rx[0])
        server.start()
        t0 = time.monotonic()
        sender.start()
        warm = False
        while sender.thread.is_alive() and rt.running:
            time.sleep(0.05)
            if not warm and sender.sent_msgs() > n_messages // 4:
                warm = True
                rss.append(proc.memory_info().rss)
        settle = time.monotonic() + deadline_ns / 1e9 + 2.0
        while time.monotonic() < settle and chk[K_EXPECTED] <= n_messages and rt.running:
            time.sleep(0.02)
        rss.append(proc.memory_info().rss)
        elapsed = time.monotonic() - t0
        rt.stop()
        st = rt.stats()
    finally:
        sender.close()
        server.close()
        rt.close()
    return {"n_messages": n_messages, "rate_msgs_per_s": rate_msgs_per_s, "loss_a": loss_a,
            "loss_b": loss_b, "burst": burst, "seed": seed, "sent": sender.stats(),
            "delivered_messages": int(chk[K_MESSAGES]), "gap_messages": int(chk[K_GAP_MSGS]),
            "next_expected": int(chk[K_EXPECTED]), "out_of_order": int(chk[K_BAD_ORDER]),
            "lines": line_counters(rt.pipe.counters) if rt.live is None else st["lines"],
            "server": dict(server.counts), "counters": st["counters"],
            # what the kernel dropped (socket buffers full): loss the sender did not inject
            "kernel_drops": {"a": st["backend_stats"].get("kernel_drops"),
                             "b": st["line_b"].get("kernel_drops"),
                             "recovery": st.get("recovery_socket", {}).get("kernel_drops")},
            "latency_by_source": {"a": _pct(lat[0][:chk[K_N_A]]), "b": _pct(lat[1][:chk[K_N_B]]),
                                  "retransmission": _pct(lat[2][:chk[K_N_R]])},
            "latency_by_loss": _by_loss(pk, da, db, lat_seq),
            "rss_after_warmup_bytes": rss[0] if len(rss) > 1 else None, "rss_end_bytes": rss[-1],
            "fds_before": fds_before, "fds_after": proc.num_fds(), "seconds": round(elapsed, 2)}
