"""The bench's registry of receive paths: each entry knows whether it can run on this host,
how to set up once (a veth link, nothing, ...) and how to make one fresh receiver per run.

A receive path joins `tickpath bench` by calling `register(BenchBackend(...))`; the harness
only talks to the three small interfaces below, so it never changes for a new backend:

* `BenchBackend.check()` -> None, or the reason it cannot run here ("skipped: <reason>");
* `BenchBackend.open_session()` -> a session (per bench; heavy setup lives here), whose
  `new_run(spec)` returns a *bound, running* receiver for one run, and `close()`;
* a run: `dest` (host, port) to send to, `sender_context()` (where the sender's socket
  must be created, e.g. inside a namespace), `messages()` live count, `live_hist()`,
  `finish(sent_messages, drain_deadline)` -> measurements, and `close()` (idempotent).

Each run gets a fresh receiver (fresh sequence state, books and histogram), so repeats are
independent. The receiver's CPU time is the receive thread's own (psutil per-thread times
by native id), or the receiver process's for the plain-Python baseline.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psutil
from tickpath.runtime.core import counters as C
from tickpath.runtime.config import schema as config
from tickpath.runtime.engine import latency
from tickpath.runtime.core.errors import BackendError, ConfigError

from tickpath.bench.harness import DEFAULT_ORDER, netns  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class RunSpec:
    """What one run needs to know: rate, size, cores, warm-up."""
    rate_msgs_per_s: float
    n_messages: int                 # messages this run sends
    seconds: float
    rx_cpu: int | None
    tx_cpu: int | None
    aux_cpu: int | None             # helper processes (the FPGA emulator)
    instruments: int
    warmup_messages: int            # the first messages are not in the latency
    session: str
    idle: str = "busy-spin"
    stages: bool = False            # out ring + a consumer thread recording latency by stage


@dataclass(frozen=True)
class BenchBackend:
    name: str
    summary: str
    check: Callable[[], str | None]
    open_session: Callable[[], object]


_REGISTRY: dict[str, BenchBackend] = {}


def register(entry: BenchBackend) -> BenchBackend:
    if not entry.name or "," in entry.name:
        raise ConfigError("bench backend name must be non-empty without commas", name=entry.name)
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def bench_backends() -> dict[str, BenchBackend]:
    return dict(_REGISTRY)


def thread_cpu_s(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process; nan if it is gone."""
    for t in psutil.Process().threads():
        if t.id == native_id:
            return t.user_time + t.system_time
    return float("nan")


# --- receivers built on tickpath.runtime.engine.runner.Runtime ------------------------------------

class RuntimeRun:
    """One Runtime (any runtime backend) for one run, started on spec.rx_cpu."""

    def __init__(self, cfg: dict, spec: RunSpec, open_ctx=None, dest_host: str = "127.0.0.1",
                 sender_ctx: Callable | None = None, messages_fn: Callable | None = None,
                 port: int | None = None, label: str = ""):
        from tickpath.runtime.engine.runner import Runtime

        self.rt = None
        self.label = label
        self._sender_ctx = sender_ctx
        self._messages_fn = messages_fn
        with (open_ctx or contextlib.nullcontext()):
            self.rt = Runtime(cfg)
            try:
                self.rt.open()
            except BaseException:
                self.rt.close()
                raise
        self.rt.start(cpu=spec.rx_cpu)
        self.rt.check()
        self.stages = None
        if spec.stages:
            from tickpath.bench.harness.stages import StageConsumer
            self.stages = StageConsumer(self.rt, spec.warmup_messages + 1, cpu=spec.aux_cpu)
        self.dest = (dest_host, port if port is not None else int(getattr(self.rt.backend, "port", 0)))
        self.native_id = self.rt.thread.native_id
        self.cpu0_s = thread_cpu_s(self.native_id)
        self.t0 = time.monotonic()

    def sender_context(self):
        return self._sender_ctx() if self._sender_ctx else contextlib.nullcontext()

    def messages(self) -> int:
        self.rt.check()   # a backend that died mid-run raises here, the harness records it
        if self._messages_fn is not None:
            return int(self._messages_fn(self.rt))
        return int(self.rt.pipe.counters[C.MESSAGES])

    def live_hist(self):
        return self.rt.pipe.hist

    def finish(self, sent_messages: int, drain_deadline: float) -> dict:
        while self.messages() < sent_messages and time.monotonic() < drain_deadline:
            time.sleep(0.002)
        drained_at = time.monotonic()
        received = self.messages()
        cpu1_s = thread_cpu_s(self.native_id)   # before stop: the thread leaves the list
        elapsed = time.monotonic() - self.t0
        self.rt.stop()
        stages = self.stages.stop() if self.stages is not None else None
        self.stages = None
        st = self.rt.stats()
        c = st["counters"]
        b = st["backend_stats"]
        if "counters" in b:   # events backends: the card (emulator) counted decode-side slots
            c = {**c, **{k: v for k, v in b["counters"].items() if k not in ("polls", "empty_polls")}}
        drops = int(c.get("frames_dropped", 0)) + int(c.get("events_dropped", 0))
        if stages is None:    # with --stages a full ring costs stage samples, not messages
            drops += int(c.get("ring_dropped", 0))
        else:
            stages["samples_dropped"] = int(c.get("ring_dropped", 0))
        drops += int(b.get("kernel_drops", 0) or 0)
        return {"received": received, "drained_at": drained_at, "gaps": int(c.get("gaps", 0)), "gap_messages": int(c.get("gap_messages", 0)),
                "duplicates": int(c.get("duplicates", 0)),
                "malformed": int(c.get("malformed_packets", 0)) + int(c.get("malformed_messages", 0)),
                "drops": drops, "hist": self.rt.pipe.hist.copy(), "rx_cpu_s": cpu1_s - self.cpu0_s,
                "rx_elapsed_s": elapsed, "rx_cpu": st["cpu"], "counters": c, "stages_ns": stages,
                "backend_stats": {k: v for k, v in b.items() if isinstance(v, (int, float, str, bool))},
                "notes": list(st["notes"]) + list(b.get("notes", []))}

    def close(self) -> None:
        if self.stages is not None:
            self.stages.ctl[0] = 1
            self.stages.thread.join(5)
            self.stages = None
        if self.rt is not None:
            rt, self.rt = self.rt, None
            rt.close()


def _runtime_cfg(spec: RunSpec, **sections) -> dict:
    base = {
        "feed": {"port": 0, "session": spec.session},
        "idle": {"strategy": spec.idle},
        "book": {"instruments": spec.instruments + 1, "max_orders": 1 << 20, "max_levels": 128},
        "run": {"warmup_seq": spec.warmup_messages + 1},
    }
    if spec.stages:
        from tickpath.bench.harness.stages import RING_CAPACITY
        base["buffers"] = {"ring_capacity": RING_CAPACITY, "ring_policy": "drop-newest"}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return config.merge(base)


class _Session:
    """No per-bench setup: every run builds its receiver from `make(spec)`."""

    def __init__(self, make: Callable[[RunSpec], object], notes: list[str] | None = None):
        self._make = make
        self.notes = notes or []

    def new_run(self, spec: RunSpec):
        return self._make(spec)

    def close(self) -> None:
        pass


# --- python: the honest baseline ------------------------------------------------------------

class PythonRun:
    """tickpath.bench.refs.pyreceiver in its own interpreter, pinned to spec.rx_cpu."""

    def __init__(self, spec: RunSpec):
        from tickpath.runtime.engine.pipeline import utc_midnight_ns

        self.tmp = tempfile.TemporaryDirectory(prefix="tickpath-bench-py-")
        self.out = os.path.join(self.tmp.name, "baseline.npz")
        self.spec = spec
        deadline_s = spec.seconds + 3.0     # it stops by itself when messages go missing
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickpath.bench.refs.pyreceiver", "-" if spec.rx_cpu is None else str(spec.rx_cpu),
             str(spec.n_messages), str(deadline_s), str(utc_midnight_ns()), self.out],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise BackendError("python baseline did not start", said=line.strip()[:200])
        self.dest = ("127.0.0.1", int(line))

    def sender_context(self):
        return contextlib.nullcontext()

    def messages(self) -> int:
        return 0    # the baseline reports only at the end (no shared counters: plain Python)

    def live_hist(self):
        return None

    def finish(self, sent_messages: int, drain_deadline: float) -> dict:
        try:
            self.proc.wait(max(1.0, drain_deadline - time.monotonic() + self.spec.seconds + 5))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        drained_at = time.monotonic()   # it exits once it has every message (or at its deadline)
        if not os.path.exists(self.out):
            raise BackendError("python baseline returned no result", exit=self.proc.returncode)
        z = np.load(self.out)
        lat = np.ascontiguousarray(z["latency_ns"][self.spec.warmup_messages:], dtype=np.int64)
        hist = latency.new_histogram()
        latency.record_all(hist, lat)
        return {"received": int(z["received"]), "drained_at": drained_at, "gaps": int(z["gaps"]), "gap_messages": int(z["gap_messages"]),
                "duplicates": int(z["duplicates"]), "malformed": int(z["malformed"]), "drops": None,
                "hist": hist, "rx_cpu_s": float(z["cpu_seconds"]), "rx_cpu": self.spec.rx_cpu,
                "counters": {}, "notes": []}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.tmp.cleanup()




# --- floor-recv: the C receive floor (bench/refs/floor_recv.c) -------------------------------

class FloorRecvRun:
    """floor_recv.c pinned to spec.rx_cpu on a socket bound like the kernel backend's; with a
    link, the socket is on the link's receive side and the sender on its transmit side."""

    def __init__(self, spec: RunSpec, link=None):
        from tickpath.bench.refs import floor_recv
        from tickpath.runtime.config.sections import Buffers
        from tickpath.runtime.engine.pipeline import utc_midnight_ns

        self.spec = spec
        bufs = Buffers()     # the kernel backend's batch (datagrams per recvmmsg) and slot size
        self.p = floor_recv.FloorRecvProcess(
            spec.n_messages, spec.seconds + 3.0, utc_midnight_ns(), spec.warmup_messages + 1,
            cpu=spec.rx_cpu, slots=bufs.frames, slot_bytes=bufs.frame_bytes,
            host=link.ip_rx if link else "127.0.0.1",
            netns_ctx=link.inside(link.ns_rx) if link else None)
        self.link = link
        self.dest = self.p.dest

    def sender_context(self):
        return self.link.inside(self.link.ns_tx) if self.link else contextlib.nullcontext()

    def messages(self) -> int:
        return 0    # counts come at the end: no shared counter for the spinning C loop to write

    def live_hist(self):
        return None

    def finish(self, sent_messages: int, drain_deadline: float) -> dict:
        from tickpath.bench.refs import floor_recv
        # it exits once it has every message (or at its own deadline when some went missing)
        drained_at = floor_recv.wait_until(self.p, drain_deadline + self.spec.seconds + 5)
        try:
            z = self.p.result(5.0)
        except RuntimeError as exc:
            raise BackendError("floor-recv failed", reason=str(exc)) from None
        hist = latency.new_histogram()
        latency.record_all(hist, z.pop("latency_ns"))
        counts = {k: v for k, v in z.items() if isinstance(v, (int, float))}
        return {"received": int(z["received"]), "drained_at": drained_at, "gaps": int(z["gaps"]),
                "gap_messages": int(z["gap_messages"]), "duplicates": int(z["duplicates"]),
                "malformed": int(z["malformed"]) + int(z["truncated"]), "drops": None, "hist": hist,
                "rx_cpu_s": float(z["cpu_s"]), "rx_cpu": self.spec.rx_cpu, "counters": counts,
                "notes": ["the C floor: recvmmsg spin + the ITCH timestamp per message, no decode/book/"
                          "indicators; latency defined as tickpath's (send -> completion, same clock)"]}

    def close(self) -> None:
        self.p.close()


def _floor_recv_check() -> str | None:
    from tickpath.bench.refs import floor_recv
    return floor_recv.check()


def _floor_veth_check() -> str | None:
    return netns.unavailable_reason() or _floor_recv_check()


class _FloorVethSession:
    """The C floor on its own veth link between two namespaces, set up like afxdp's."""

    def __init__(self):
        self.link = netns.BenchLink(index=1).open()   # its own names, whatever else is open
        self.notes = ["the C floor on a veth link between two namespaces, like afxdp's: the "
                      "floor for paths that cross the veth"]

    def new_run(self, spec: RunSpec):
        return FloorRecvRun(spec, link=self.link)

    def close(self) -> None:
        self.link.close()


# --- kernel and kernel-busypoll -------------------------------------------------------------

def _kernel_session(busy_poll_us: int):
    notes = []
    if busy_poll_us:
        notes.append("SO_BUSY_POLL has no NAPI context on loopback: expect the same path as "
                     "`kernel`; it matters on a real NIC")

    def make(spec: RunSpec):
        cfg = _runtime_cfg(spec, backend={"kind": "kernel", "busy_poll_us": busy_poll_us})
        return RuntimeRun(cfg, spec, label="kernel")
    return _Session(make, notes)


def _busypoll_check() -> str | None:
    if os.geteuid() != 0:
        try:
            with open("/proc/sys/net/core/busy_read") as f:
                limit = int(f.read())
        except OSError:
            limit = 0
        if limit < 50:
            return "SO_BUSY_POLL above net.core.busy_read needs CAP_NET_ADMIN (not root)"
    return None


# --- afxdp on a veth link between two namespaces -----------------------------------------

def _afxdp_check() -> str | None:
    why = netns.unavailable_reason()
    if why:
        return why
    try:
        socket.socket(44, socket.SOCK_RAW, 0).close()   # AF_XDP = 44
    except OSError as exc:
        return f"AF_XDP sockets unavailable: {exc.strerror}"
    try:
        import tickpath.runtime.backends.afxdp.backend  # noqa: F401
    except ImportError as exc:
        return f"AF_XDP backend not importable: {exc}"
    return None


class _AfxdpSession:
    PORT = 26460

    def __init__(self):
        self.link = netns.BenchLink().open()
        self.notes = ["veth between two namespaces, XDP generic (skb, copy) mode: a real NIC in "
                      "driver/zero-copy mode is faster; the sender's path crosses the veth"]

    def new_run(self, spec: RunSpec):
        link = self.link
        cfg = _runtime_cfg(spec, feed={"address": link.ip_rx, "port": self.PORT},
                           nic={"interface": link.if_rx},
                           backend={"kind": "afxdp", "afxdp": {"mode": "skb"}})
        return RuntimeRun(cfg, spec, open_ctx=link.inside(link.ns_rx), dest_host=link.ip_rx,
                          sender_ctx=lambda: link.inside(link.ns_tx), port=self.PORT, label="afxdp")

    def close(self) -> None:
        self.link.close()


# --- fpga-emu: the FPGA backend against `tickpath fpga emulate` ----------------------------

def _fpga_check() -> str | None:
    try:
        import tickpath.fpga.host.backend
        import tickpath.fpga.emulator.process  # noqa: F401
    except ImportError as exc:
        return f"fpga package not importable: {exc}"
    return None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_fpga_emulator(device_dir: str, udp_port: int, cpu: int | None = None,
                        timeout_s: float = 120.0) -> subprocess.Popen:
    """`tickpath fpga emulate` on 127.0.0.1:udp_port with its nodes in device_dir, enabled;
    returns once its link is up (BackendError, process ended, if it does not come up)."""
    from tickpath.fpga.host.control import ParserControl

    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpath.fpga.cli", "fpga", "emulate", "--device-dir", device_dir,
         "--udp", f"127.0.0.1:{udp_port}", "--enable", "--fifo-depth", "65536"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if cpu is not None:   # pinned from here: preexec_fn is unsafe in a threaded process
        os.sched_setaffinity(proc.pid, [cpu])
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")[-400:]
                raise BackendError("fpga emulator exited", rc=proc.returncode, output=out)
            if time.monotonic() > deadline:
                raise BackendError("fpga emulator did not come up", timeout_s=timeout_s)
            with contextlib.suppress(Exception):
                ctl = ParserControl(device_dir, 0, writable=False)
                try:
                    if ctl.status()["link_up"]:
                        return proc
                finally:
                    ctl.close()
            time.sleep(0.05)
    except BaseException:
        stop_fpga_emulator(proc)
        raise


def stop_fpga_emulator(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FpgaEmuRun:
    """A fresh emulator process (fresh session state) and a Runtime reading its C2H stream."""

    READY_TIMEOUT_S = 120.0

    def __init__(self, spec: RunSpec):
        self.tmp = tempfile.TemporaryDirectory(prefix="tickpath-bench-fpga-")
        self.port = _free_udp_port()
        self.proc = None
        self.inner = None
        try:
            self.proc = spawn_fpga_emulator(self.tmp.name, self.port, spec.aux_cpu, self.READY_TIMEOUT_S)
            self.emu_cpu0_s = self._emu_cpu_s()
            cfg = _runtime_cfg(spec, backend={"kind": "fpga-emu", "fpga": {"device_dir": self.tmp.name}})
            self.inner = RuntimeRun(cfg, spec, port=self.port, label="fpga-emu",
                                    messages_fn=lambda rt: rt.backend.ctl.counters()["messages"])
        except BaseException:
            self.close()
            raise
        self.dest = self.inner.dest

    def _emu_cpu_s(self) -> float:
        try:
            t = psutil.Process(self.proc.pid).cpu_times()
            return t.user + t.system
        except psutil.Error:
            return float("nan")

    def sender_context(self):
        return contextlib.nullcontext()

    def messages(self) -> int:
        if self.proc.poll() is not None and self.inner.rt.running:
            raise BackendError("fpga emulator died mid-run", rc=self.proc.returncode)
        return self.inner.messages()

    def live_hist(self):
        return self.inner.live_hist()

    def finish(self, sent_messages: int, drain_deadline: float) -> dict:
        res = self.inner.finish(sent_messages, drain_deadline)
        res["aux_cpu_s"] = self._emu_cpu_s() - self.emu_cpu0_s
        res["notes"].append("the emulator process plays the card (its CPU is aux_cpu_s, not the "
                            "receiver's); its UDP input is a kernel socket on loopback")
        return res

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        stop_fpga_emulator(self.proc)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.tmp.cleanup()


# --- built-in entries --------------------------------------------------------------------------

register(BenchBackend(
    "floor-recv", "the C floor: recvmmsg spin reading only each message's ITCH timestamp (its own process)",
    check=_floor_recv_check, open_session=lambda: _Session(FloorRecvRun)))
register(BenchBackend(
    "floor-recv-veth", "the C floor on a veth link in two network namespaces (afxdp's link)",
    check=_floor_veth_check, open_session=_FloorVethSession))
register(BenchBackend(
    "python", "plain Python: blocking socket + struct decode + dict orders (its own process)",
    check=lambda: None, open_session=lambda: _Session(PythonRun)))
register(BenchBackend(
    "kernel", "tickpath kernel-socket backend (recvmmsg from numba), busy-spinning pinned thread",
    check=lambda: None, open_session=lambda: _kernel_session(0)))
register(BenchBackend(
    "kernel-busypoll", "the kernel backend with SO_BUSY_POLL=50 µs",
    check=_busypoll_check, open_session=lambda: _kernel_session(50)))
register(BenchBackend(
    "afxdp", "AF_XDP backend on a veth link in two network namespaces (generic/skb mode)",
    check=_afxdp_check, open_session=_AfxdpSession))
register(BenchBackend(
    "fpga-emu", "FPGA backend (events over C2H) against the `tickpath fpga emulate` process",
    check=_fpga_check, open_session=lambda: _Session(FpgaEmuRun)))

