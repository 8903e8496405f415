"""OUCH order entry microbenchmarks: what encoding + the session add to a bare send().

On one connected loopback TCP socket (TCP_NODELAY; the far side drained by a nogil reader
thread so the sends never block), in the same run:
* ouch_enter: encode an Enter Order 'O' into the tx queue + its non-blocking send() +
  the sent-time stamp (one CLOCK_REALTIME read after send() returns), per order;
* bare send(): send() of the same 50 framed bytes from a preallocated buffer, per order;
* encode only: the 'O' encoder into a buffer, no syscall;
* audit_write_decision: one audit record into the SPSC ring (the writer thread's side
  drained in the same loop, outside nothing), per record.
Each round is a jitted loop of N_ORDERS calls; extra_info has ns_per_order_median.
Run: .venv/bin/pytest bench/micro/test_ouch_bench.py --benchmark-enable -p no:cacheprovider
(TICKPATH_BENCH_CPU=N pins it).
"""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from numba import njit

from tickpath.runtime.ipc.ring import available, release
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.sys.libc import libc_recv, libc_send
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit.log import AuditLog
from tickpath.runtime.trading.audit.writer import audit_write_decision
from tickpath.runtime.trading.ouch import codec
from tickpath.runtime.trading.ouch import layout as L
from tickpath.runtime.trading.ouch.session import new_state, ouch_enter

N_ORDERS = 20_000
SYM = int.from_bytes(b"AAPL    ", "little")
MSG_NOSIGNAL = 0x4000


@njit(nogil=True)
def _enter_loop(st, n, first_uref):
    bad = 0
    now_ns = realtime_ns()      # the hot loop's clock read of its duty cycle, not one per order
    for i in range(n):
        r = ouch_enter(st, first_uref + i, R.SIDE_BUY, 100, SYM, 1_000_000 + (i & 63) * 100,
                       R.TIF_DAY, i, now_ns)
        if r < 0:
            bad += 1
    return bad


@njit(nogil=True)
def _bare_send_loop(fd, buf, n):
    bad = 0
    addr = buf.ctypes.data
    for i in range(n):
        if libc_send(fd, addr, buf.shape[0], MSG_NOSIGNAL) != buf.shape[0]:
            bad += 1
    return bad


@njit(nogil=True)
def _encode_loop(buf, n):
    s = 0
    for i in range(n):
        s += codec.encode_enter(buf, 0, i, R.SIDE_BUY, 100, SYM, 1_000_000 + (i & 63) * 100,
                                R.TIF_DAY, i)
    return s


@njit(nogil=True)
def _drain(fd, buf):
    total = 0
    while True:
        r = libc_recv(fd, buf.ctypes.data, buf.shape[0], 0)
        if r <= 0:
            return total
        total += r


@pytest.fixture(scope="module")
def loopback():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    cli = socket.create_connection(lsock.getsockname())
    srv, _ = lsock.accept()
    lsock.close()
    for s in (cli, srv):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rbuf = np.zeros(1 << 20, np.uint8)
    got = []
    t = threading.Thread(target=lambda: got.append(_drain(srv.fileno(), rbuf)), daemon=True)
    t.start()
    yield cli
    cli.close()
    t.join(10)
    srv.close()


def _ouch_state(sock):
    st = new_state()
    st.ctl[L.C_FD] = sock.fileno()
    st.ctl[L.C_STATE] = L.STATE_UP
    st.ctl[L.C_TIMEOUT_NS] = 1 << 62
    return st


def _per_order(benchmark):
    benchmark.extra_info["ns_per_order_median"] = round(benchmark.stats.stats.median / N_ORDERS * 1e9, 1)
    benchmark.extra_info["orders_per_round"] = N_ORDERS


def test_ouch_enter_encode_and_send(benchmark, placement, loopback):
    st = _ouch_state(loopback)
    _enter_loop(st, 10, 1)          # compile outside the timing
    uref = [100]

    def run():
        bad = _enter_loop(st, N_ORDERS, uref[0])
        uref[0] += N_ORDERS
        return bad

    assert benchmark.pedantic(run, rounds=15, warmup_rounds=1) == 0
    _per_order(benchmark)
    benchmark.extra_info["partial_writes"] = int(st.counters[L.K_PARTIAL_WRITES])
    benchmark.extra_info["would_block"] = int(st.counters[L.K_WOULD_BLOCK])


def test_bare_send_same_bytes(benchmark, placement, loopback):
    buf = np.zeros(L.O_WIRE, np.uint8)
    codec.encode_enter(buf, 0, 1, R.SIDE_BUY, 100, SYM, 1_000_000, R.TIF_DAY, 1)
    _bare_send_loop(loopback.fileno(), buf, 10)
    assert benchmark.pedantic(lambda: _bare_send_loop(loopback.fileno(), buf, N_ORDERS),
                              rounds=15, warmup_rounds=1) == 0
    _per_order(benchmark)


def test_encode_only(benchmark, placement):
    buf = np.zeros(64, np.uint8)
    _encode_loop(buf, 10)
    assert benchmark.pedantic(lambda: _encode_loop(buf, N_ORDERS), rounds=15,
                              warmup_rounds=1) == N_ORDERS * L.O_WIRE
    _per_order(benchmark)


@njit(nogil=True)
def _audit_loop(aw, n):
    bad = 0
    for i in range(n):
        if not audit_write_decision(aw, i, i, i, R.INTENT_NEW, i, 1, R.SIDE_BUY, 100, 1_000_000, 0):
            bad += 1
        if i & 1023 == 1023:                   # the consumer's side, off the hot thread in real use
            release(aw.hdr, available(aw.hdr))
    release(aw.hdr, available(aw.hdr))
    return bad


def test_audit_write_record(benchmark, placement, tmp_path):
    log = AuditLog(str(tmp_path / "bench.audit"), ring_records=1 << 12)   # not started: no writer thread
    _audit_loop(log.writer, 10)
    assert benchmark.pedantic(lambda: _audit_loop(log.writer, N_ORDERS), rounds=15, warmup_rounds=1) == 0
    _per_order(benchmark)


def test_enter_vs_bare_send_paired(benchmark, placement, loopback):
    """Both loops back to back in every round (same socket, same moment of load; which one
    goes first alternates), so the difference per order is measured on a shared, noisy
    box: extra_info has each median and the median of the per-round differences."""
    import time
    st = _ouch_state(loopback)
    buf = np.zeros(L.O_WIRE, np.uint8)
    codec.encode_enter(buf, 0, 1, R.SIDE_BUY, 100, SYM, 1_000_000, R.TIF_DAY, 1)
    _enter_loop(st, 10, 1)
    _bare_send_loop(loopback.fileno(), buf, 10)
    enter_ns, bare_ns = [], []
    uref = [100]

    def run():
        enter_first = len(enter_ns) % 2 == 0     # alternate which goes first: order effects cancel
        t0 = time.perf_counter_ns()
        if enter_first:
            bad = _enter_loop(st, N_ORDERS, uref[0])
        else:
            bad = _bare_send_loop(loopback.fileno(), buf, N_ORDERS)
        t1 = time.perf_counter_ns()
        if enter_first:
            bad += _bare_send_loop(loopback.fileno(), buf, N_ORDERS)
        else:
            bad += _enter_loop(st, N_ORDERS, uref[0])
        t2 = time.perf_counter_ns()
        uref[0] += N_ORDERS
        first, second = (t1 - t0) / N_ORDERS, (t2 - t1) / N_ORDERS
        enter_ns.append(first if enter_first else second)
        bare_ns.append(second if enter_first else first)
        return bad

    assert benchmark.pedantic(run, rounds=40, warmup_rounds=2) == 0
    e, b = np.array(enter_ns[2:]), np.array(bare_ns[2:])
    benchmark.extra_info["enter_ns_per_order_median"] = round(float(np.median(e)), 1)
    benchmark.extra_info["bare_send_ns_per_order_median"] = round(float(np.median(b)), 1)
    benchmark.extra_info["difference_ns_median"] = round(float(np.median(e - b)), 1)
    benchmark.extra_info["difference_ns_iqr"] = [round(float(q), 1) for q in np.percentile(e - b, [25, 75])]
