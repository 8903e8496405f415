"""Issue 19 finding 10 (the capture writer's side): a full disk is surfaced at once, not at
shutdown; the file ends at its last whole record; close() does not raise again, so stats are
still written; the hot path degrades (frames counted capture_dropped) or stops (-EIO) as
configured; and the file is written without a Python buffer, so SIGKILL loses at most one
writer interval. A full disk is a 64 KiB tmpfs the test mounts (root only, else skipped).
"""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from tickpath.runtime.backends.capture import (
    E_ERRNO,
    CaptureBackend,
    CaptureWriter,
    capture_frames,
)
from tickpath.runtime.backends.socket import SocketBackend
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed import pcap


@pytest.fixture
def full_disk():
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a disk that fills up)")
    d = tempfile.mkdtemp(prefix="tp-fulldisk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", d], check=False)
    os.rmdir(d)


def _frames(n: int, size: int = 600):
    payload = np.zeros((n, 2048), np.uint8)
    for i in range(n):
        payload[i, :size] = i % 251
    return payload, np.full(n, size, np.int32), np.arange(n, dtype=np.int64) + 10**18


def _wait(cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not cond():
        time.sleep(0.002)
    return cond()


def test_full_disk_is_surfaced_at_once_and_the_file_ends_on_a_whole_record(full_disk):
    counters = C.new_counters()
    path = os.path.join(full_disk, "c.pcap")
    w = CaptureWriter(path, 2048, ring_records=64, counters=counters)
    payload, lengths, recv = _frames(16)
    try:
        for _ in range(40):   # ~380 KiB offered to a 64 KiB disk
            capture_frames(w.ring.hdr, w.meta, w.rec, payload, lengths, recv, 16, counters)
            if counters[C.CAPTURE_ERRORS]:
                break
            time.sleep(0.005)
        # surfaced while running: the counter, the flag the hot path reads, stats
        assert _wait(lambda: counters[C.CAPTURE_ERRORS] == 1)
        assert w.err[E_ERRNO] == errno.ENOSPC
        assert "No space left" in w.stats()["error"]
        assert w.thread.is_alive()             # still draining: the ring never fills up
        time.sleep(0.05)
        capture_frames(w.ring.hdr, w.meta, w.rec, payload, lengths, recv, 16, counters)
        assert _wait(lambda: int(w.ring.stats()["written"]) == int(w.ring.stats()["read"]))
    finally:
        w.close()                              # no second raise: stats can still be written
    st = w.stats()
    assert st["lost_records"] > 0 and st["written_records"] > 0
    assert os.path.getsize(path) == 24 + st["written_records"] * (16 + 42 + 600)
    cap = pcap.read_capture(path)              # whole records only: the reader takes it all
    assert len(cap) == st["written_records"]


def _loopback_capture(path: str, on_error: str):
    inner = SocketBackend(address="127.0.0.1", port=0)
    b = CaptureBackend(inner, path, 2048, ring_records=64, on_error=on_error)
    payload = np.zeros((8, 2048), np.uint8)
    b.open(payload)
    return b, payload


@pytest.mark.parametrize("on_error", ["degrade", "stop"])
def test_the_hot_path_degrades_or_stops_as_configured(full_disk, on_error):
    b, payload = _loopback_capture(os.path.join(full_disk, f"{on_error}.pcap"), on_error)
    lengths, recv = np.zeros(8, np.int32), np.zeros(8, np.int64)
    got = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            dgram = bytes(1400)
            for _ in range(400):   # ~560 KiB of frames into a 64 KiB disk
                for _ in range(4):
                    tx.sendto(dgram, ("127.0.0.1", b.port))
                time.sleep(0.001)
                n = b.poll(b.state, payload, lengths, recv)
                if n < 0:
                    break
                got += n
                if b.counters[C.CAPTURE_ERRORS] and on_error == "degrade" and \
                        b.counters[C.CAPTURE_DROPPED] > 20:
                    break
            assert b.counters[C.CAPTURE_ERRORS] == 1
            if on_error == "stop":
                assert n == -errno.EIO
            else:
                assert b.counters[C.CAPTURE_DROPPED] > 20 and got > 0   # frames still flow
    finally:
        b.close()   # does not raise: the error was surfaced when it happened
    assert b.writer is None


def test_sigkill_loses_at_most_one_writer_interval(tmp_path):
    """A child captures 5 small frames (far below any stdio buffer) and waits to be killed."""
    path = tmp_path / "k.pcap"
    code = f"""
import sys, time
import numpy as np
from tickpath.runtime.backends.capture import CaptureWriter, capture_frames
from tickpath.runtime.core import counters as C
w = CaptureWriter({str(path)!r}, 64, ring_records=16, idle_sleep_s=0.01)
p = np.full((5, 64), 9, np.uint8)
capture_frames(w.ring.hdr, w.meta, w.rec, p, np.full(5, 30, np.int32),
               np.arange(5, dtype=np.int64) + 10**18, 5, C.new_counters())
time.sleep(0.5)             # many writer intervals
print("ready", flush=True)
time.sleep(600)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert len(pcap.read_capture(path)) == 5


def test_unknown_on_error_policy_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="capture.on_error"):
        CaptureBackend(SocketBackend(port=0), str(tmp_path / "x.pcap"), 2048, on_error="ignore")


@pytest.mark.parametrize("policy", ["degrade", "stop"])
def test_capture_on_error_reaches_the_capture_from_the_config(tmp_path, policy):
    from tickpath.runtime.config import schema as config
    from tickpath.runtime.lines.runner import make_runtime
    cfg = config.merge({"feed": {"port": 0}, "buffers": {"hugepages": "off"},
                        "book": {"instruments": 4, "max_orders": 1 << 10},
                        "capture": {"path": str(tmp_path / "c.pcap"), "on_error": policy}})
    rt = make_runtime(cfg)
    try:
        assert isinstance(rt.backend, CaptureBackend) and rt.backend.on_error == policy
    finally:
        rt.close()
    with pytest.raises(ConfigError, match="capture.on_error"):
        config.merge({"capture": {"on_error": "ignore"}})
