"""The emulated card as one object: register file + datapath state + output FIFO.

Used two ways: by the emulator process (register file = the shared `xdma0_user` file, FIFO
drained into the C2H named pipe) and in-process by tests and benchmarks (register file =
anonymous memory, FIFO drained into a numpy array). Either way the same jitted datapath
(emu_datapath.py) does the parsing; this module holds the slow-path control logic the card
runs between packets: the COMMAND strobes, the STATUS mirror of CONTROL, liveness.

RTL: the register file is `tp_regfile` (fpga/rtl/tp_regfile.v, an AXI4-Lite slave at the
offsets of fpga/regmap.py, through the generated tp_regmap.vh), the whole card `tp_itch_top`.
"""
from __future__ import annotations

import mmap
import time

import numpy as np
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE, EVENT_VERSION

from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga import regmap as rm
from tickpath.fpga.record import C2H_ALIGN_BYTES, RECORD_BYTES

MIN_FIFO_DEPTH = 16
MAX_FIFO_DEPTH = 1 << 20
_CB = rm.COUNTERS_BASE >> 3
_C_RECORDS_C2H = _CB + rm.CNT["RECORDS_C2H"]


class ParserModel:
    """One emulated parser over a register-file buffer (len REGFILE_BYTES, writable)."""

    def __init__(self, regbuf=None, fifo_depth: int = 4096):
        if not MIN_FIFO_DEPTH <= fifo_depth <= MAX_FIFO_DEPTH:
            raise ConfigError("fifo depth out of range", fifo_depth=fifo_depth,
                              min_records=MIN_FIFO_DEPTH, max_records=MAX_FIFO_DEPTH)
        self.regbuf = regbuf if regbuf is not None else mmap.mmap(-1, rm.REGFILE_BYTES)
        self.u32, self.u64 = rm.reg_words(self.regbuf)
        self.fifo = np.zeros(fifo_depth, dtype=EVENT_DTYPE)
        self.fifo_bytes = self.fifo.view(np.uint8)
        ctrl = int(self.u32[rm.CONTROL >> 2])
        self.ds, self.session, self.fctl = dp.new_datapath_state(bool(ctrl & rm.CTRL_ADOPT_FIRST_SEQ))
        rm.init_identity(self.u32, fifo_depth, C2H_ALIGN_BYTES, RECORD_BYTES, EVENT_VERSION)
        self.u64[rm.REG["EXPECTED_SEQ"] >> 3] = self.ds[dp.DS_EXPECTED]

    # -- control plane (between packets) --
    def service_registers(self) -> None:
        """Act on COMMAND strobes, mirror CONTROL into STATUS, stamp liveness."""
        u32 = self.u32
        cmd = int(u32[rm.COMMAND >> 2])
        ctrl = int(u32[rm.CONTROL >> 2])
        if cmd:
            if cmd & rm.CMD_RESET_COUNTERS:
                self.u64[_CB:_CB + rm.N_COUNTERS] = 0
                u32[rm.REG["FIFO_HIGH_WATER"] >> 2] = self.level()
            if cmd & rm.CMD_CLEAR_OVERFLOW:
                u32[rm.STATUS >> 2] &= ~np.uint32(rm.ST_OVERFLOW)
            if cmd & rm.CMD_RESET_SESSION:
                dp.reset_session(self.ds, self.session, u32, bool(ctrl & rm.CTRL_ADOPT_FIRST_SEQ))
            u32[rm.COMMAND >> 2] = 0      # acknowledge: the strobe self-clears when done
        status = int(u32[rm.STATUS >> 2])
        status &= ~(rm.ST_ENABLED | rm.ST_DROP_ON_FULL)
        if ctrl & rm.CTRL_ENABLE:
            status |= rm.ST_ENABLED
        if ctrl & rm.CTRL_DROP_ON_FULL:
            status |= rm.ST_DROP_ON_FULL
        u32[rm.STATUS >> 2] = status
        self.u64[rm.REG["ALIVE_NS"] >> 3] = time.monotonic_ns()

    def set_status(self, bit: int, on: bool) -> None:
        if on:
            self.u32[rm.STATUS >> 2] |= np.uint32(bit)
        else:
            self.u32[rm.STATUS >> 2] &= ~np.uint32(bit)

    # -- data plane --
    def feed(self, buf, offs, lens, ports, recv_ns, kind: int, start: int = 0, stop: int | None = None) -> int:
        """Run packets [start, stop) through the datapath; returns the next index (back-pressure)."""
        stop = len(offs) if stop is None else stop
        return dp.run_batch(buf, offs, lens, ports, recv_ns, start, stop, kind, self.u32, self.u64,
                            self.ds, self.session, self.fifo, self.fctl)

    def level(self) -> int:
        return int(self.fctl[0] - self.fctl[1] // RECORD_BYTES)

    def pending_bytes(self) -> memoryview | None:
        """The contiguous run of FIFO bytes the C2H engine may send next (None if empty)."""
        head_bytes = int(self.fctl[0]) * RECORD_BYTES
        tail = int(self.fctl[1])
        if tail == head_bytes:
            return None
        ring = len(self.fifo_bytes)
        start = tail % ring
        end = min(ring, start + head_bytes - tail)
        return memoryview(self.fifo_bytes)[start:end]

    def consumed(self, n_bytes: int) -> None:
        """The C2H engine sent n_bytes (may end inside a record: that slot stays taken)."""
        before = int(self.fctl[1]) // RECORD_BYTES
        self.fctl[1] += n_bytes
        done = int(self.fctl[1]) // RECORD_BYTES - before
        if done:
            self.u64[_C_RECORDS_C2H] += done
        self.u32[rm.REG["FIFO_LEVEL"] >> 2] = self.level()

    def pop_records(self) -> np.ndarray:
        """In-process drain: every whole record in the FIFO, as a copy."""
        out = []
        while True:
            mv = self.pending_bytes()
            if mv is None:
                break
            out.append(np.frombuffer(mv, dtype=EVENT_DTYPE).copy())
            self.consumed(len(mv))
        return np.concatenate(out) if out else np.zeros(0, EVENT_DTYPE)

    def counters(self) -> dict:
        return {name: int(self.u64[_CB + i]) for i, (name, _m) in enumerate(rm.COUNTER_NAMES)}

    # -- convenience for in-process use --
    def write_control(self, control: int, udp_port: int | None = None) -> None:
        self.u32[rm.CONTROL >> 2] = control
        if udp_port is not None:
            self.u32[rm.UDP_PORT >> 2] = udp_port
        self.service_registers()


def payload_batch(payloads, recv_ns=None, port: int = 0):
    """Pack UDP payloads back to back: (buf, offs, lens, ports, recv_ns) for ParserModel.feed."""
    lens = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
    offs = np.zeros(len(payloads), np.int64)
    if len(payloads) > 1:
        offs[1:] = np.cumsum(lens)[:-1]
    buf = np.frombuffer(b"".join(bytes(p) for p in payloads) or b"\0", dtype=np.uint8).copy()
    ports = np.full(len(payloads), port, np.int64)
    if recv_ns is None:
        recv_ns = np.zeros(len(payloads), np.int64)
    return buf, offs, lens, ports, np.asarray(recv_ns, np.int64)
