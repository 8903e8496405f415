"""`tickpath venue` as a child process for the tick-to-trade bench: started with a seeded
market, the bench's users and a timestamp log, pinned to the venue CPU; its JSON ready line
read from stdout; stopped with SIGINT so it ends the day and writes its log and summary.
For the veth paths (bench/t2t/veth.py) the process starts inside the venue's network
namespace (`preexec`), its OUCH listener on that side's address and its ITCH sent to the
responder's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

USERS = (("TRIG", "trig"), ("FLOOR", "floor"), ("TP", "tickpath"))
TRIGGER_USER, FLOOR_USER, TICKPATH_USER = 1, 2, 3     # the venue numbers users from 1, in order


@dataclass
class VenueRun:
    instruments: int = 300
    rate_msgs_per_s: float = 100_000.0
    seed: int = 1
    itch_port: int = 26410
    cpu: int | None = None
    start_timeout_s: float = 600.0    # a cold numba cache compiles the engine first
    # generated symbols start at AAAA: no background flow on these (the triggers go there)
    # the trigger instruments: 16, so at 1 k triggers/s two of one instrument are 16 ms apart
    # and share a packet only when the venue or the responder is that far behind
    quiet_symbols: tuple = tuple("AAA" + c for c in "ABCDEFGHIJKLMNOP")
    storm_s: float = 0.0              # > 0: a message storm this long, started by storm()
    storm_factor: float = 10.0
    itch_host: str = "127.0.0.1"      # where the ITCH goes (the responder's address)
    ouch_host: str = "127.0.0.1"      # where the OUCH listener is bound


class VenueProcess:
    def __init__(self, run: VenueRun, preexec=None):
        """preexec: run in the child before exec instead of the CPU pinning (it pins too)."""
        self.dir = tempfile.mkdtemp(prefix="tickpath-t2t-")
        self.log_path = os.path.join(self.dir, "timestamps.npz")
        self.summary_path = os.path.join(self.dir, "venue.json")
        args = [sys.executable, "-m", "tickpath.runtime.cli", "venue", "--quiet",
                "--instruments", str(run.instruments), "--rate", str(run.rate_msgs_per_s),
                "--seed", str(run.seed), "--itch-to", f"{run.itch_host}:{run.itch_port}", "--ouch-host", run.ouch_host,
                "--timestamps", self.log_path, "--json", self.summary_path]
        for name, pw in USERS:
            args += ["--user", f"{name}:{pw}"]
        if run.storm_s > 0:
            args += ["--storm-seconds", str(run.storm_s), "--storm-factor", str(run.storm_factor)]
        self.quiet_symbols = tuple(run.quiet_symbols)
        for sym in self.quiet_symbols:
            args += ["--quiet-symbol", sym]
        pre = preexec or ((lambda: os.sched_setaffinity(0, {run.cpu})) if run.cpu is not None else None)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=pre)
        self.ready = self._read_ready(run.start_timeout_s)

    def _read_ready(self, timeout_s: float) -> dict:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sel.select(timeout=1.0):
                line = self.proc.stdout.readline()
                if line.startswith("{"):
                    return json.loads(line)
                if not line and self.proc.poll() is not None:
                    break
        self.proc.kill()
        err = self.proc.stderr.read()[-2000:]
        raise RuntimeError(f"tickpath venue did not become ready: {err}")

    def ouch(self) -> tuple[str, int]:
        host, _, port = self.ready["ouch"].rpartition(":")
        return host, int(port)

    def password(self, user: str) -> str:
        return dict(USERS)[user]

    def storm(self) -> None:
        """Start the configured message storm now (the venue's SIGUSR1)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self, timeout_s: float = 60.0) -> dict:
        """End the day; the summary and the timestamp log (np arrays by name)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("tickpath venue did not stop after SIGINT")
        summary = {}
        if os.path.exists(self.summary_path):
            with open(self.summary_path) as f:
                summary = json.load(f)
        log = {}
        if os.path.exists(self.log_path):
            with np.load(self.log_path) as z:
                log = {k: z[k] for k in z.files}
        return {"summary": summary, "log": log, "returncode": self.proc.returncode}

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
