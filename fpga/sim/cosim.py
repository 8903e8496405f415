"""Run the parser's RTL on a stimulus and read back what it did (Icarus Verilog or Verilator).

The stimulus is what a test or a benchmark would give the emulator - UDP payloads with their
receive times and ports, register writes, COMMAND strobes, holds of the C2H output - written
as hex tokens for `tb_feed.v` (the same testbench source for both simulators). The result
holds the records that left on the C2H stream (EVENT_DTYPE, byte for byte what the card
would DMA), their tlast bits and clock edges, the clock edges at which every packet's first
and last beat were taken, and the register page 0x000 .. COUNTERS_END read over AXI-Lite at
the end (so counters, STATUS, FIFO_HIGH_WATER, EXPECTED_SEQ and SESSION as the host sees
them).

Builds are cached per simulator, FIFO depth and source text (in $TICKPATH_RTL_BUILD or the
temp directory): Icarus compiles in about a second, Verilator in about a minute.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tickpath.runtime.core.event import EVENT_BYTES, EVENT_DTYPE

from tickpath.fpga import regmap as rm

RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
SIM_DIR = Path(__file__).resolve().parent
RTL_SOURCES = ["tp_itch_top.v", "tp_parser.v", "tp_record_fifo.v", "tp_regfile.v"]
INCLUDES = ["tp_regmap.vh", "tp_itch_rom.vh"]
TB = SIM_DIR / "tb_feed.v"
SIMULATORS = ("icarus", "verilator")
CLOCK_NS = 4.0                     # the design's target: 250 MHz
VERILATOR_WARN_OFF = ["-Wno-WIDTH", "-Wno-UNUSEDPARAM", "-Wno-UNUSEDSIGNAL", "-Wno-STMTDLY",
                      "-Wno-INITIALDLY", "-Wno-MULTIDRIVEN", "-Wno-BLKSEQ"]

OP_PACKET, OP_WRITE, OP_COMMAND, OP_HOLD, OP_IDLE, OP_END = 1, 2, 3, 4, 5, 0


def rtl_paths() -> list[Path]:
    return [RTL_DIR / s for s in RTL_SOURCES]


def missing_tools(sim: str) -> list[str]:
    """Executables `sim` needs that are not on PATH (the tests skip naming them)."""
    need = {"icarus": ["iverilog", "vvp"], "verilator": ["verilator", "make", "g++"],
            "yosys": ["yosys"]}[sim]
    return [t for t in need if shutil.which(t) is None]


class Stimulus:
    """Operations for tb_feed.v, in order."""

    def __init__(self):
        self._parts: list[str] = []
        self.n_packets = 0

    def packet(self, payload: bytes, recv_ns: int = 0, port: int = 0, not_feed: bool = False):
        payload = bytes(payload)
        n = len(payload)
        if n > 0xFFFF:
            raise ValueError(f"payload too long for the 16-bit length sideband: {n}")
        words = [int.from_bytes(payload[o:o + 8], "little") for o in range(0, n, 8)] or [0]
        self._parts.append(f"{OP_PACKET:x} {n:x} {port:x} {recv_ns & (2**64 - 1):x} "
                           f"{int(not_feed):x} " + " ".join(f"{w:x}" for w in words))
        self.n_packets += 1
        return self

    def packets(self, payloads, recv_ns=None, port: int = 0):
        for i, p in enumerate(payloads):
            self.packet(p, 0 if recv_ns is None else int(recv_ns[i]), port)
        return self

    def write(self, offset: int, value: int):
        self._parts.append(f"{OP_WRITE:x} {offset:x} {value & 0xFFFFFFFF:x}")
        return self

    def command(self, bits: int):
        """COMMAND strobe, then poll until the card clears it (the host's acknowledgement)."""
        self._parts.append(f"{OP_COMMAND:x} {rm.COMMAND:x} {bits:x}")
        return self

    def hold_output(self, on: bool):
        """C2H tready low from here (on) / released once the parser has taken everything."""
        self._parts.append(f"{OP_HOLD:x} {int(on):x}")
        return self

    def idle(self, cycles: int):
        self._parts.append(f"{OP_IDLE:x} {cycles:x}")
        return self

    def text(self) -> str:
        return "\n".join(self._parts + [f"{OP_END:x}"]) + "\n"


@dataclass
class SimResult:
    records: np.ndarray          # EVENT_DTYPE, in C2H order
    last: np.ndarray             # tlast per record
    out_edges: np.ndarray        # clock edge at which each record left
    first_edges: np.ndarray      # per packet: edge of its first beat
    last_edges: np.ndarray       # per packet: edge of its last beat
    regs: np.ndarray             # u32 words of the register page 0 .. COUNTERS_END
    edges: int                   # clock edges simulated
    sim: str

    def reg(self, name: str) -> int:
        return int(self.regs[rm.REG[name] >> 2])

    def reg64(self, name: str) -> int:
        w = rm.REG[name] >> 2
        return int(self.regs[w]) | (int(self.regs[w + 1]) << 32)

    def counters(self) -> dict:
        out = {}
        for i, (name, _m) in enumerate(rm.COUNTER_NAMES):
            w = (rm.COUNTERS_BASE >> 2) + 2 * i
            out[name] = int(self.regs[w]) | (int(self.regs[w + 1]) << 32)
        return out

    def session(self) -> bytes:
        return self.regs.view(np.uint8)[rm.SESSION:rm.SESSION + rm.SESSION_BYTES].tobytes()


def _build_dir() -> Path:
    root = os.environ.get("TICKPATH_RTL_BUILD")
    return Path(root) if root else Path(tempfile.gettempdir()) / f"tickpath-rtl-{os.getuid()}"


def _digest(sim: str, fifo_depth: int) -> str:
    h = hashlib.sha256(f"{sim} {fifo_depth}".encode())
    for p in rtl_paths() + [RTL_DIR / i for i in INCLUDES] + [TB]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build(sim: str = "icarus", fifo_depth: int = 4096, timeout_s: float = 900.0) -> Path:
    """Compile tb_feed + the RTL (cached); returns the executable (Verilator) or .vvp (Icarus)."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}: one of {SIMULATORS}")
    if fifo_depth < 2 or fifo_depth & (fifo_depth - 1):
        raise ValueError(f"fifo_depth must be a power of two: {fifo_depth}")
    aw = fifo_depth.bit_length() - 1
    out = _build_dir() / f"{sim}-{_digest(sim, fifo_depth)}"
    target = out / ("tb_feed.vvp" if sim == "icarus" else "Vtb_feed")
    if target.exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f"{sim}-", dir=_mkdir(_build_dir())))
    srcs = [str(p) for p in rtl_paths()] + [str(TB)]
    if sim == "icarus":
        cmd = ["iverilog", "-g2005", "-I", str(RTL_DIR), "-s", "tb_feed",
               "-P", f"tb_feed.FIFO_DEPTH={fifo_depth}", "-P", f"tb_feed.FIFO_AW={aw}",
               "-o", str(tmp / target.name), *srcs]
    else:
        cmd = ["verilator", "--binary", "--timing", "-O3", "--top-module", "tb_feed",
               *VERILATOR_WARN_OFF, f"-GFIFO_DEPTH={fifo_depth}", f"-GFIFO_AW={aw}",
               f"-I{RTL_DIR}", "-Mdir", str(tmp), "-o", target.name, "-j", "2",
               "--output-split", "0", *srcs]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"{sim} build failed ({' '.join(cmd)}):\n{proc.stdout}\n{proc.stderr}")
    if out.exists():
        shutil.rmtree(tmp, ignore_errors=True)      # another process built it meanwhile
    else:
        tmp.rename(out)
    return target


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def run(stim: Stimulus, sim: str = "icarus", fifo_depth: int = 4096, gap_pct: int = 0,
        stall_pct: int = 0, seed: int = 1, timeout_s: float = 600.0) -> SimResult:
    """Simulate `stim` on the RTL; returns what came out."""
    exe = build(sim, fifo_depth)
    with tempfile.TemporaryDirectory(prefix="tickpath-tb-") as d:
        fin = Path(d) / "stim.hex"
        fout = Path(d) / "out.txt"
        fin.write_text(stim.text())
        args = [f"+in={fin}", f"+out={fout}", f"+gap={gap_pct}", f"+stall={stall_pct}",
                f"+seed={seed}"]
        cmd = (["vvp", "-n", str(exe)] if sim == "icarus" else [str(exe)]) + args
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not fout.exists():
            raise RuntimeError(f"{sim} run failed rc={proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return parse_output(fout.read_text(), stim.n_packets, sim)


def parse_output(text: str, n_packets: int, sim: str) -> SimResult:
    recs, last, oedge = [], [], []
    first_e = np.full(n_packets, -1, np.int64)
    last_e = np.full(n_packets, -1, np.int64)
    regs = np.zeros(rm.COUNTERS_END // 4, np.uint32)
    edges = 0
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "O":
            oedge.append(int(f[1]))
            last.append(f[2] == "1")
            recs.append(int(f[3], 16).to_bytes(EVENT_BYTES, "little"))
        elif f[0] == "S":
            first_e[int(f[1])] = int(f[2])
        elif f[0] == "L":
            last_e[int(f[1])] = int(f[2])
        elif f[0] == "R":
            regs[int(f[1], 16) >> 2] = int(f[2], 16)
        elif f[0] == "T":
            edges = int(f[1])
    records = np.frombuffer(b"".join(recs), EVENT_DTYPE).copy() if recs else np.zeros(0, EVENT_DTYPE)
    return SimResult(records, np.array(last, bool), np.array(oedge, np.int64), first_e, last_e,
                     regs, edges, sim)
