"""Lifecycle of the A/B runtime (issue 9, part 5): signals stop `tickpath run` within 100 ms
and it exits with stats; a second signal forces exit while the first stop is stuck; a
consumer exception stops the runtime with the error reported; `tickpath stats --pid` reads
live counters and says plainly when no instance runs; nothing is left behind (stats file,
descriptors); both lines silent is counted and reported as a stale feed.

The `tickpath run` tests are subprocesses (signals) and marked slow: each process compiles
the frame loop afresh (numba cannot cache loops that call libc through ctypes), which takes
about a minute of CPU on the shared 2-core machine. Both processes start together, once.
Loopback only; every wait is bounded.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from tickpath.bench.load.market import generate, pack_mold
from tickpath.runtime.config import schema as config
from tickpath.runtime.ipc import livestats
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.core.errors import BackendError
from tickpath.runtime.lines.runner import RuntimeAB

SESSION = "LIFE000001"
START_TIMEOUT_S = 600   # two concurrent numba compiles on a loaded 2-core machine


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _packets(n_messages: int = 40_000):
    return pack_mold(generate(7, n_messages, 50), SESSION, max_messages_per_packet=4)


def _send(sock, pk, dests, first: int, count: int) -> int:
    """Packets [first, first+count) to every destination; returns the next packet index."""
    end = min(first + count, pk.n_packets)
    for k in range(first, end):
        p = pk.packet(k)
        for d in dests:
            sock.sendto(p, d)
        if k % 64 == 63:
            time.sleep(0.001)   # stay well inside the receive buffer
    return end


def _cpu() -> int:
    return min(os.sched_getaffinity(0))


def _toml(port_a: int, port_b: int, capture: str = "") -> str:
    return f"""
[feed]
address = "127.0.0.1"
port = {port_a}
session = "{SESSION}"
[lines]
enabled = true
b_address = "127.0.0.1"
b_port = {port_b}
[capture]
path = "{capture}"
format = "pcap"
[buffers]
hugepages = "off"
[book]
instruments = 64
max_orders = 65536
[cores]
rx = [{_cpu()}]
"""


def _tickpath(*args, timeout_s: float = 120):
    return subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", *args],
                          check=False, capture_output=True, text=True, timeout=timeout_s)


class Instance:
    """One `tickpath run --config` subprocess, stdout/stderr to files (no pipe to fill)."""

    def __init__(self, tmp, name: str, toml: str):
        self.cfg_path = tmp / f"{name}.toml"
        self.cfg_path.write_text(toml)
        self.out_path, self.err_path = tmp / f"{name}.out", tmp / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "tickpath.runtime.cli", "run",
                                          "--config", str(self.cfg_path)], stdout=out, stderr=err)
        self.pid = self.proc.pid

    def out(self) -> str:
        return self.out_path.read_text()

    def err(self) -> str:
        return self.err_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "tickpath run: backend" not in self.out():
            if self.proc.poll() is not None:
                pytest.fail(f"tickpath run exited rc={self.proc.returncode}: {self.err()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"tickpath run not ready after {START_TIMEOUT_S} s")
            time.sleep(0.2)

    def final_stats(self) -> dict:
        text = self.out()
        return json.loads(text[text.index("\n{") + 1:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()   # only our own child, by its pid
            self.proc.wait(10)


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    """Both `tickpath run` processes, started together (their compiles overlap)."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    pa, pb, qa, qb = _free_ports(4)
    fifo = tmp / "stuck.pcap"
    os.mkfifo(fifo)
    # the reader end is opened and never read: the capture writer blocks once the pipe is
    # full, as on a disk that stopped taking writes — a stop that cannot finish on its own
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    plain = Instance(tmp, "plain", _toml(pa, pb))
    stuck = Instance(tmp, "stuck", _toml(qa, qb, capture=str(fifo)))
    plain.ports, stuck.ports = (pa, pb), (qa, qb)
    try:
        yield {"plain": plain, "stuck": stuck}
    finally:
        plain.kill()
        stuck.kill()
        os.close(reader)


@pytest.mark.slow
def test_sigterm_stops_within_100ms_and_stats_reads_live_counters(instances):
    inst = instances["plain"]
    inst.wait_ready()
    pk = _packets()
    dests = [("127.0.0.1", p) for p in inst.ports]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        k = _send(s, pk, dests, 0, 500)
        time.sleep(0.3)
        r1 = _tickpath("stats", "--pid", str(inst.pid))
        assert r1.returncode == 0, r1.stderr
        c1 = json.loads(r1.stdout)["counters"]
        assert json.loads(r1.stdout)["pid"] == inst.pid
        k = _send(s, pk, dests, k, 500)
        time.sleep(0.3)
        r2 = _tickpath("stats", "--pid", str(inst.pid))
        assert r2.returncode == 0, r2.stderr
        c2 = json.loads(r2.stdout)["counters"]
    # live: the second read sees what was sent in between
    assert 0 < c1["messages"] < c2["messages"]
    first = lambda c: c.get("arb_first_a", 0) + c.get("arb_first_b", 0)  # stats omits zero counters
    assert first(c2) > first(c1)
    stats_file = livestats.path_for(inst.pid)
    assert os.path.exists(stats_file)

    t_signal_ns = time.monotonic_ns()
    os.kill(inst.pid, signal.SIGTERM)
    assert inst.proc.wait(30) == 0, inst.err()[-2000:]
    st = inst.final_stats()
    life = st["lifecycle"]
    assert life["signal"] == "SIGTERM" and life["signal_monotonic_ns"] >= t_signal_ns
    # CLOCK_MONOTONIC is system-wide: the child's loop-stopped time against our send time
    stop_ms = (life["loop_stopped_monotonic_ns"] - t_signal_ns) / 1e6
    assert 0 < stop_ms < 100, life
    assert st["counters"]["messages"] >= c2["messages"]
    assert st["lines"]["first_on_a"] + st["lines"]["first_on_b"] == st["counters"]["messages"]
    # nothing left behind: the stats file is gone and stats says no instance runs
    assert not os.path.exists(stats_file)
    r3 = _tickpath("stats", "--pid", str(inst.pid))
    assert r3.returncode == 2 and "no running tickpath instance" in r3.stderr, r3


@pytest.mark.slow
def test_second_sigint_forces_exit_while_the_first_stop_is_stuck(instances):
    inst = instances["stuck"]
    inst.wait_ready()
    pk = _packets()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # ~300 KiB of capture records: far past the 64 KiB the pipe takes
        _send(s, pk, [("127.0.0.1", inst.ports[0])], 0, 2000)
    time.sleep(0.5)
    os.kill(inst.pid, signal.SIGINT)
    time.sleep(1.5)
    assert inst.proc.poll() is None, "the capture flush was expected to hold the first stop"
    t0 = time.monotonic()
    os.kill(inst.pid, signal.SIGINT)
    assert inst.proc.wait(10) == 130
    assert time.monotonic() - t0 < 2.0
    assert "second SIGINT, forced exit" in inst.err()
    assert not os.path.exists(livestats.path_for(inst.pid))


def test_stats_says_when_no_instance_runs():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    r = _tickpath("stats", "--pid", str(gone.pid))
    assert r.returncode == 2
    assert "no running tickpath instance" in r.stderr and f"pid={gone.pid}" in r.stderr


# ---- in-process: RuntimeAB ------------------------------------------------------------

def _cfg(**over) -> dict:
    base = {"feed": {"address": "127.0.0.1", "port": 0, "session": SESSION},
            "lines": {"enabled": True, "b_address": "127.0.0.1", "b_port": 0},
            "buffers": {"ring_capacity": 1 << 12, "ring_policy": "wait", "hugepages": "off"},
            "book": {"instruments": 64, "max_orders": 1 << 16},
            "cores": {"rx": [_cpu()]}, "idle": {"strategy": "backoff", "max_park_ns": 200_000}}
    for sec, kv in over.items():
        base.setdefault(sec, {}).update(kv)
    return config.merge(base)


def test_consumer_exception_stops_runtime_and_is_reported(tmp_path):
    fds_before = psutil.Process().num_fds()
    # a retransmission socket and a capture file too, so their descriptors are counted
    rt = RuntimeAB(_cfg(recovery={"server": "127.0.0.1:9", "bind_address": "127.0.0.1"},
                        capture={"path": str(tmp_path / "c.pcap")}))
    stats_file = livestats.path_for(os.getpid())
    try:
        rt.open()
        seen = []

        def boom(ev):
            seen.append(len(ev))
            raise ValueError("consumer bug")

        rt.add_consumer(boom, "boom-consumer")
        rt.start(cpu=_cpu())
        assert rt.running and os.path.exists(stats_file)
        pk = _packets(4_000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # enough to fill the 4096-record out ring: with the wait policy, a dead consumer
            # must not leave the loop spinning on a full ring forever
            k = 0
            deadline = time.monotonic() + 10
            while rt.running and time.monotonic() < deadline:
                k = _send(s, pk, [("127.0.0.1", rt.backend.port)], k % pk.n_packets, 200)
                time.sleep(0.01)
        assert not rt.running, "the runtime kept running after its consumer failed"
        assert seen and seen[0] > 0
        with pytest.raises(BackendError) as ei:
            rt.stop(timeout_s=5)
        msg = str(ei.value)
        assert ei.value.fields["consumer"] == "boom-consumer" and "consumer bug" in msg
        assert "consumer=" in msg   # key=value, so the log line names the consumer
        assert isinstance(ei.value.__cause__, ValueError)
    finally:
        rt.close()
    assert not os.path.exists(stats_file)
    assert psutil.Process().num_fds() == fds_before


def test_both_lines_dead_is_a_stale_feed_not_silence():
    rt = RuntimeAB(_cfg(lines={"stale_ns": 50_000_000}, buffers={"ring_capacity": 0}))
    stats_file = livestats.path_for(os.getpid())
    try:
        rt.open().start(cpu=_cpu())

        def wait_stale(n: int) -> None:
            deadline = time.monotonic() + 5
            while rt.pipe.counters[C.STALE_FEED] < n and time.monotonic() < deadline:
                time.sleep(0.01)

        wait_stale(1)
        st = rt.stats()
        assert st["lines"]["stale_feed"] == 1 and st["arbiter"]["stale"] is True
        # reported where an operator looks: the live stats file of the running instance
        assert livestats.read(stats_file)["counters"]["stale_feed"] == 1
        time.sleep(0.2)   # still silent: one timeout is one count, not one per check
        assert rt.pipe.counters[C.STALE_FEED] == 1
        # a heartbeat on line B revives the feed; silence again is a second stale episode
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(M.mold_heartbeat(SESSION.encode(), 1), ("127.0.0.1", rt.line_b.port))
            deadline = time.monotonic() + 5
            while rt.stats()["arbiter"]["stale"] and time.monotonic() < deadline:
                time.sleep(0.005)
            assert rt.stats()["arbiter"]["stale"] is False
        wait_stale(2)
        assert rt.pipe.counters[C.STALE_FEED] == 2
        assert rt.pipe.counters[C.HEARTBEATS] >= 1
        rt.stop()
    finally:
        rt.close()


def test_soak_latency_split_by_what_the_loss_masks_did():
    """The figures' split (bench/soak._by_loss): packets hold consecutive messages, so each
    message inherits its packet's fate; undelivered messages are left out."""
    from types import SimpleNamespace

    from tickpath.bench.scenarios.soak import NOT_DELIVERED, _by_loss
    pk = SimpleNamespace(msg_count=np.array([2, 1, 3, 2]))
    da = np.array([0, 1, 1, 0], np.uint8)   # packet 1: A only; packet 2: both
    db = np.array([0, 0, 1, 0], np.uint8)
    lat_seq = np.array([NOT_DELIVERED, 10, 10, 500, 9000, 9000, NOT_DELIVERED, 20, 20], np.int64)
    r = _by_loss(pk, da, db, lat_seq)
    assert r["undisturbed"]["n"] == 4 and r["undisturbed"]["p50_us"] == 0.0
    assert r["lost_on_one_line"] == {"n": 1, "p50_us": 0.5, "p99_us": 0.5}
    assert r["lost_on_both_lines"]["n"] == 2 and r["lost_on_both_lines"]["p50_us"] == 9.0
