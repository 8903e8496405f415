"""`tickpath fpga emulate`: the software stand-in for the FPGA card, as a separate process.

It presents, in a device directory, the nodes the XDMA driver would create for card 0:
  xdma0_user    a regular file of REGFILE_BYTES: the register file both sides mmap
                (the host's CONTROL/COMMAND writes land there; the card's status/counters too)
  xdma0_c2h_0   a named pipe: the C2H stream of 64-byte records the backend reads
  xdma0_h2c_0   a named pipe (with --h2c): packets in, framed u16 BE length + payload
The backend code is the same for the card and for this; only the directory differs.

Process structure (one thread, a duty cycle as in Agrona's AgentRunner): service registers
-> take a batch from the input -> run it through the jitted datapath into the output FIFO
-> let the "C2H engine" move FIFO bytes into the pipe (non-blocking) -> idle with backoff
when nothing happened. The pipe (size --pipe-bytes) plays the host's DMA ring; when the host
stops reading it fills, then the FIFO fills, then drop-on-full drops and counts, or
back-pressure stalls the input. Readiness: STATUS.LINK_UP is set once the nodes exist and
the datapath is compiled. SIGTERM/SIGINT end it cleanly (LINK_UP cleared, pipes removed);
SIGKILL leaves the reader an EOF on the C2H pipe: the backend reports the device gone.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import signal
import stat
import time
from dataclasses import dataclass

import numpy as np
from tickpath.runtime.core.errors import ConfigError, translate_oserror

from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator.inputs import H2cSource, PcapSource, UdpSource
from tickpath.fpga.emulator.model import ParserModel
from tickpath.fpga.host.xdma import node_path

F_SETPIPE_SZ = 1031              # linux/fcntl.h
_C_INGRESS_OVERRUN = (rm.COUNTERS_BASE >> 3) + rm.CNT["INGRESS_OVERRUN"]


@dataclass
class EmulatorParams:
    device_dir: str
    card: int = 0
    udp: str | None = None          # HOST:PORT
    pcap: str | None = None
    h2c: bool = False
    fifo_depth: int = 4096
    pipe_bytes: int = 1 << 20
    enable: bool = False            # start with CONTROL.ENABLE set
    drop_on_full: bool = False
    adopt_first_seq: bool = False
    udp_port_filter: int = 0
    recv_time: str = "pcap"
    pcap_loops: int = 1
    exit_when_done: bool = False    # pcap: exit once everything is replayed and handed over
    idle_max_sleep_ns: int = 1_000_000

    def validate(self) -> None:
        n_inputs = sum(x is not None and x is not False for x in (self.udp, self.pcap, self.h2c or None))
        if n_inputs != 1:
            raise ConfigError("give exactly one input: --udp HOST:PORT, --pcap FILE or --h2c",
                              udp=self.udp, pcap=self.pcap, h2c=self.h2c)
        if not os.path.isdir(self.device_dir):
            raise ConfigError("device directory does not exist", device_dir=self.device_dir)
        if self.pipe_bytes < 4096:
            raise ConfigError("pipe too small", pipe_bytes=self.pipe_bytes, min_bytes=4096)
        from tickpath.fpga.emulator.model import MAX_FIFO_DEPTH, MIN_FIFO_DEPTH

        if not MIN_FIFO_DEPTH <= self.fifo_depth <= MAX_FIFO_DEPTH:
            raise ConfigError("fifo depth out of range", fifo_depth=self.fifo_depth,
                              min_records=MIN_FIFO_DEPTH, max_records=MAX_FIFO_DEPTH)
        if self.udp is not None:
            _parse_hostport(self.udp)
        if not 0 <= self.udp_port_filter <= 65535:
            raise ConfigError("udp port filter out of range", udp_port_filter=self.udp_port_filter)


def _parse_hostport(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("--udp wants HOST:PORT", udp=s)
    return host or "127.0.0.1", int(port)


def _mkfifo(path: str) -> None:
    try:
        st = os.lstat(path)
        if not stat.S_ISFIFO(st.st_mode):
            raise ConfigError("device directory holds a non-FIFO where a stream node goes", node=path)
        os.unlink(path)                 # stale node of an earlier run: start clean
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o660)


def create_regfile(path: str) -> mmap.mmap:
    """The register file at `path`, new and mapped. Made O_EXCL|O_NOFOLLOW under a unique
    temporary name in the same directory, then renamed over `path`: a symlink planted at
    `path` is replaced, never followed (issue 19); in a sticky shared directory a node another
    user planted cannot be replaced and the rename fails (reported, nothing written)."""
    d, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(d, f".{name}.{os.getpid()}.{time.time_ns()}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o660)
    try:
        os.ftruncate(fd, rm.REGFILE_BYTES)
        regmap = mmap.mmap(fd, rm.REGFILE_BYTES)
        try:
            os.rename(tmp, path)
        except OSError:
            regmap.close()
            raise
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        os.close(fd)
    return regmap


class Emulator:
    def __init__(self, params: EmulatorParams):
        params.validate()
        self.p = params
        self.stop = False
        self.user_path = node_path(params.device_dir, params.card, "user")
        self.c2h_path = node_path(params.device_dir, params.card, "c2h", 0)
        self.h2c_path = node_path(params.device_dir, params.card, "h2c", 0)
        self._created: list[str] = []
        self.source = None
        self.c2h_fd = -1
        try:
            self._setup()
        except BaseException:
            self.close()                # a failed start leaves no nodes behind
            raise

    # -- setup / teardown, in reverse order --
    def _setup(self) -> None:
        p = self.p
        try:
            self.regmap = create_regfile(self.user_path)
            _mkfifo(self.c2h_path)
            self._created.append(self.c2h_path)
            self.c2h_fd = os.open(self.c2h_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                fcntl.fcntl(self.c2h_fd, F_SETPIPE_SZ, p.pipe_bytes)
            except OSError as exc:
                raise translate_oserror(exc, "size the C2H pipe", hint="see /proc/sys/fs/pipe-max-size",
                                        pipe_bytes=p.pipe_bytes) from exc
            if p.h2c:
                _mkfifo(self.h2c_path)
                self._created.append(self.h2c_path)
        except OSError as exc:
            raise translate_oserror(exc, "create emulator nodes", device_dir=p.device_dir) from exc
        u32 = np.frombuffer(self.regmap, dtype="<u4")
        ctrl = (rm.CTRL_ENABLE if p.enable else 0) | (rm.CTRL_DROP_ON_FULL if p.drop_on_full else 0) \
            | (rm.CTRL_ADOPT_FIRST_SEQ if p.adopt_first_seq else 0)
        u32[rm.CONTROL >> 2] = ctrl
        u32[rm.UDP_PORT >> 2] = p.udp_port_filter
        self.model = ParserModel(self.regmap, p.fifo_depth)
        if p.pcap:
            self.source = PcapSource(p.pcap, recv_time=p.recv_time, loops=p.pcap_loops)
        elif p.udp:
            self.source = UdpSource(*_parse_hostport(p.udp))
        else:
            self.source = H2cSource(self.h2c_path)
        self._warm_up()
        self.model.service_registers()
        self.model.set_status(rm.ST_LINK_UP, True)

    def _warm_up(self) -> None:
        """Compile the datapath before saying LINK_UP (an empty batch runs no packet)."""
        z = np.zeros(1, np.int64)
        self.model.feed(np.zeros(1, np.uint8), z, z, z, z, dp.KIND_PAYLOAD, 0, 0)

    def close(self) -> None:
        if getattr(self, "model", None) is not None:
            self.model.set_status(rm.ST_LINK_UP, False)
        if self.source is not None:
            self.source.close()
            self.source = None
        if self.c2h_fd >= 0:
            os.close(self.c2h_fd)
            self.c2h_fd = -1
        for path in reversed(self._created):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._created = []

    # -- the duty cycle --
    def _drain(self) -> int:
        """The C2H engine: move FIFO bytes into the pipe while it takes them; returns bytes."""
        moved = 0
        while True:
            mv = self.model.pending_bytes()
            if mv is None:
                break
            try:
                n = os.write(self.c2h_fd, mv)
            except BlockingIOError:
                break
            self.model.consumed(n)
            moved += n
            if n < len(mv):
                break
        return moved

    def do_work(self, batch_state: list) -> int:
        m = self.model
        m.service_registers()
        enabled = bool(m.u32[rm.CONTROL >> 2] & rm.CTRL_ENABLE)
        work = self._drain()
        batch = batch_state[0]
        if batch is None or batch.done:
            batch = self.source.poll(enabled)
            batch_state[0] = batch
        if batch is not None and not batch.done:
            before = batch.next
            batch.next = m.feed(batch.buf, batch.offs, batch.lens, batch.ports, batch.recv_ns,
                                batch.kind, batch.next, len(batch.offs))
            work += batch.next - before
            work += self._drain()
        drops = getattr(self.source, "kernel_drops", 0)
        if drops != self._kernel_drops_seen:
            m.u64[_C_INGRESS_OVERRUN] += (drops - self._kernel_drops_seen) & 0xFFFFFFFF
            self._kernel_drops_seen = drops
        done = self.source.exhausted_means_done and self.source.exhausted and \
            (batch is None or batch.done) and m.pending_bytes() is None
        m.set_status(rm.ST_INPUT_DONE, done)
        if done and self.p.exit_when_done:
            self.stop = True
        return work

    def run(self) -> None:
        self._kernel_drops_seen = 0
        batch_state = [None]
        idle_ns = 0
        while not self.stop:
            if self.do_work(batch_state):
                idle_ns = 0
                continue
            # backoff: spin-free sleeps growing to idle_max_sleep_ns (the CI machine has 2 cores)
            idle_ns = min(max(idle_ns * 2, 20_000), self.p.idle_max_sleep_ns)
            time.sleep(idle_ns / 1e9)


def run_emulator(params: EmulatorParams) -> int:
    emu = Emulator(params)

    def _stop(_sig, _frm):
        emu.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        emu.run()
    finally:
        emu.close()
    return 0
