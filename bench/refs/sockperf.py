"""sockperf as the C reference for the kernel UDP path, in the same sitting as the bench.

When `sockperf` is on PATH: a server on loopback pinned to the receiver's CPU, then from the
sender's CPU a ping-pong run (round trip / 2, i.e. sockperf's one-way estimate, unloaded)
and an under-load run at each bench rate (its sampled one-way latency while sending at that
rate). Its printed percentiles (µs) are parsed; a run that fails or prints nothing parsable
is recorded with its error. Absent sockperf -> {"status": "skipped", "reason": ...}.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time

_PCT = re.compile(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)")
_MAX = re.compile(r"<MAX> observation\s*=\s*([\d.]+)")
_OBS = re.compile(r"Total\s+(\d+)\s+observations")
_DROP = re.compile(r"# dropped messages = (\d+)")


def parse_output(text: str) -> dict:
    """sockperf's summary lines -> {"p50_us":..., "p99_us":..., "max_us":..., "observations":...}."""
    out: dict = {}
    for pct, val in _PCT.findall(text):
        out[f"p{float(pct):g}_us"] = float(val)
    m = _MAX.search(text)
    if m:
        out["max_us"] = float(m.group(1))
    m = _OBS.search(text)
    if m:
        out["observations"] = int(m.group(1))
    drops = _DROP.findall(text)
    if drops:
        out["dropped"] = int(drops[-1])
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _popen_pinned(cmd: list[str], cpu, **kw) -> subprocess.Popen:
    """Start and pin (preexec_fn is unsafe in a threaded process; the child's first
    microseconds run unpinned, before it measures anything)."""
    p = subprocess.Popen(cmd, **kw)
    if cpu is not None:
        try:
            os.sched_setaffinity(p.pid, [cpu])
        except ProcessLookupError:
            pass
    return p


def _client(args: list[str], cpu, seconds: float) -> dict:
    p = _popen_pinned(["sockperf", *args], cpu, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = p.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return {"status": "failed", "error": "sockperf client timed out"}
    res = parse_output(stdout + stderr)
    if p.returncode != 0 or "p50_us" not in res:
        return {"status": "failed", "error": f"rc={p.returncode}: {(stderr or stdout).strip()[-300:]}"}
    return {"status": "ok", **res}


def run(rates: list[float], seconds: float, cpus: tuple, msg_bytes: int = 64) -> dict:
    exe = shutil.which("sockperf")
    if exe is None:
        return {"status": "skipped", "reason": "sockperf is not installed (Debian: apt-get install sockperf)"}
    tx_cpu, rx_cpu, _ = cpus
    port = _free_port()
    server = _popen_pinned([exe, "server", "-i", "127.0.0.1", "-p", str(port)], rx_cpu,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        if server.poll() is not None:
            return {"status": "failed", "error": f"sockperf server exited rc={server.returncode}"}
        common = ["-i", "127.0.0.1", "-p", str(port), "-m", str(msg_bytes), "-t", f"{max(1, round(seconds))}"]
        out = {"status": "ok", "version": _version(exe), "message_bytes": msg_bytes,
               "what": "one-way latency estimate = round trip / 2 (sockperf's convention), µs",
               "ping_pong": _client(["ping-pong", *common], tx_cpu, seconds), "under_load": {}}
        for rate in rates:
            out["under_load"][f"{rate:.0f}"] = _client(["under-load", *common, "--mps", str(int(rate))],
                                                       tx_cpu, seconds)
        return out
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _version(exe: str) -> str:
    try:
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=False)
        m = re.search(r"version\s+([\w.\-]+)", r.stdout + r.stderr, re.IGNORECASE)
        return m.group(1) if m else (r.stdout + r.stderr).strip().splitlines()[0][:60]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"
