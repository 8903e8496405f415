"""cocotb testbench of tp_itch_top: the register file over AXI-Lite, and traffic with the host
acting on the card while it flows (run by tests/fpga/rtl/test_rtl_cocotb.py on Icarus).

Signals are driven at the falling edge and judged in the ReadOnly phase after it, so the
rising edge that follows sees stable inputs (the discipline tb_feed.v uses as well). The
expected records and counters come from the software decoder on the same payloads.
"""
from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from tickpath.fpga import regmap as rm
from tickpath.runtime.core import counters as rc
from tickpath.runtime.core.event import EVENT_BYTES, EVENT_DTYPE
from tickpath.runtime.feed import decoder

SESSION = b"COCOTBSES1"
CLOCK_NS = 4


def _clock(dut):
    try:
        clk = Clock(dut.clk, CLOCK_NS, unit="ns")       # cocotb >= 2.0
    except TypeError:
        clk = Clock(dut.clk, CLOCK_NS, units="ns")      # cocotb 1.x
    cocotb.start_soon(clk.start())


async def _reset(dut):
    _clock(dut)
    for name in ("s_axis_tvalid", "s_axis_tlast", "s_axil_awvalid", "s_axil_wvalid",
                 "s_axil_arvalid", "s_axil_bready", "s_axil_rready", "m_axis_tready",
                 "input_done", "ingress_overrun"):
        getattr(dut, name).value = 0
    dut.s_axis_tdata.value = 0
    dut.s_axis_tkeep.value = 0
    dut.s_axis_tuser.value = 0
    dut.s_axil_awaddr.value = 0
    dut.s_axil_araddr.value = 0
    dut.s_axil_wdata.value = 0
    dut.s_axil_wstrb.value = 0xF
    dut.link_up.value = 1
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


class AxiLite:
    """A host on the user BAR: one access at a time, each starting at a falling edge."""

    def __init__(self, dut):
        self.dut = dut
        self.busy = False

    async def _wait(self, signal):
        while True:
            await ReadOnly()
            if int(signal.value):
                return
            await FallingEdge(self.dut.clk)

    async def write(self, addr, data, strb=0xF):
        d = self.dut
        while self.busy:
            await FallingEdge(d.clk)
        self.busy = True
        await FallingEdge(d.clk)
        d.s_axil_awaddr.value = addr
        d.s_axil_wdata.value = data
        d.s_axil_wstrb.value = strb
        d.s_axil_awvalid.value = 1
        d.s_axil_wvalid.value = 1
        d.s_axil_bready.value = 1
        await self._wait(d.s_axil_awready)
        await FallingEdge(d.clk)
        d.s_axil_awvalid.value = 0
        d.s_axil_wvalid.value = 0
        await self._wait(d.s_axil_bvalid)
        await FallingEdge(d.clk)
        d.s_axil_bready.value = 0
        self.busy = False

    async def read(self, addr):
        d = self.dut
        while self.busy:
            await FallingEdge(d.clk)
        self.busy = True
        await FallingEdge(d.clk)
        d.s_axil_araddr.value = addr
        d.s_axil_arvalid.value = 1
        await self._wait(d.s_axil_arready)
        await FallingEdge(d.clk)
        d.s_axil_arvalid.value = 0
        d.s_axil_rready.value = 1
        await self._wait(d.s_axil_rvalid)
        value = int(d.s_axil_rdata.value)
        await FallingEdge(d.clk)
        d.s_axil_rready.value = 0
        self.busy = False
        return value

    async def read_u64(self, addr):
        """hi, lo, hi until hi is stable (regmap.read_u64_split on a 32-bit bus)."""
        while True:
            hi = await self.read(addr + 4)
            lo = await self.read(addr)
            if await self.read(addr + 4) == hi:
                return (hi << 32) | lo


async def send_packets(dut, payloads, recv_ns, rng, gap_pct=0):
    d = dut
    for payload, t in zip(payloads, recv_ns):
        n = len(payload)
        words = [int.from_bytes(payload[o:o + 8], "little") for o in range(0, n, 8)] or [0]
        for k, w in enumerate(words):
            while rng.randrange(100) < gap_pct:
                d.s_axis_tvalid.value = 0
                await FallingEdge(d.clk)
            last = k == len(words) - 1
            d.s_axis_tdata.value = w
            d.s_axis_tkeep.value = ((1 << (n - 8 * k)) - 1) & 0xFF if last and n % 8 else (0xFF if n else 0)
            d.s_axis_tlast.value = int(last)
            d.s_axis_tuser.value = (t << 32) | n if k == 0 else 0
            d.s_axis_tvalid.value = 1
            while True:
                await ReadOnly()
                if int(d.s_axis_tready.value):
                    break
                await FallingEdge(d.clk)
            await FallingEdge(d.clk)
        d.s_axis_tvalid.value = 0


class Sink:
    """The C2H engine: takes records with tready low `stall_pct` of the cycles."""

    def __init__(self, dut, rng, stall_pct=0):
        self.dut, self.rng, self.stall_pct = dut, rng, stall_pct
        self.records: list[bytes] = []
        self.last: list[int] = []
        cocotb.start_soon(self._run())

    async def _run(self):
        d = self.dut
        while True:
            await FallingEdge(d.clk)
            d.m_axis_tready.value = int(self.rng.randrange(100) >= self.stall_pct)
            await ReadOnly()
            if int(d.m_axis_tvalid.value) and int(d.m_axis_tready.value):
                self.records.append(int(d.m_axis_tdata.value).to_bytes(EVENT_BYTES, "little"))
                self.last.append(int(d.m_axis_tlast.value))

    def array(self):
        return np.frombuffer(b"".join(self.records), EVENT_DTYPE) if self.records else \
            np.zeros(0, EVENT_DTYPE)


def _feed(seed, n_messages):
    from tickpath.bench.load import market
    m = market.generate(seed, n_messages, 32)
    pk = market.pack_mold(m, SESSION, max_payload_bytes=400)
    return [pk.packet(k) for k in range(pk.n_packets)]


def _decode(payloads, recv_ns):
    mold, sess = decoder.new_mold_state(max_gap_msgs=0)   # the card has no gap window
    cap = sum(decoder.max_events_per_packet(len(p)) for p in payloads) + 1
    events = np.zeros(cap, EVENT_DTYPE)
    counters = rc.new_counters()
    ev = 0
    for p, t in zip(payloads, recv_ns):
        ev = decoder.decode_packet(np.frombuffer(p, np.uint8), t, mold, sess, events, ev, counters)
    return events[:ev].copy(), rc.as_dict(counters)


def _cnt(name):
    return rm.COUNTERS_BASE + 8 * rm.CNT[name]


async def _drain(dut, sink, n_expected, limit_cycles=20000):
    for _ in range(limit_cycles):
        if len(sink.records) >= n_expected:
            break
        await RisingEdge(dut.clk)
    for _ in range(16):
        await RisingEdge(dut.clk)


@cocotb.test()
async def registers_over_axi_lite(dut):
    """Identity, RW registers with byte strobes, RO registers ignore writes, COMMAND
    self-clears, the locate bitmap reads back, unmapped offsets read 0."""
    await _reset(dut)
    bus = AxiLite(dut)
    assert await bus.read(rm.ID) == rm.ID_MAGIC
    assert await bus.read(rm.REG["VERSION"]) == rm.VERSION
    assert await bus.read(rm.REG["RECORD_BYTES"]) == EVENT_BYTES
    assert await bus.read(rm.REG["REGFILE_BYTES"]) == rm.REGFILE_BYTES
    await bus.write(rm.ID, 0)
    assert await bus.read(rm.ID) == rm.ID_MAGIC
    await bus.write(rm.CONTROL, 0x0000_0005)
    await bus.write(rm.CONTROL, 0xFFFF_FF02, strb=0x1)       # only byte 0 changes
    assert await bus.read(rm.CONTROL) == 0x0000_0002
    st = await bus.read(rm.STATUS)
    assert st & rm.ST_DROP_ON_FULL and not st & rm.ST_ENABLED and st & rm.ST_LINK_UP
    await bus.write(rm.UDP_PORT, 0x1234_5678)
    await bus.write(rm.UDP_PORT, 0x0000_AB00, strb=0x2)
    assert await bus.read(rm.UDP_PORT) == 0x1234_AB78
    for k, v in ((0, 0x8000_0001), (100, 0x00FF_0000), (2047, 0xDEAD_BEEF)):
        await bus.write(rm.LOCATE_BITMAP + 4 * k, v)
    await bus.write(rm.LOCATE_BITMAP + 4 * 100, 0x0000_0011, strb=0x1)
    assert await bus.read(rm.LOCATE_BITMAP) == 0x8000_0001
    assert await bus.read(rm.LOCATE_BITMAP + 400) == 0x00FF_0011
    assert await bus.read(rm.LOCATE_BITMAP + 4 * 2047) == 0xDEAD_BEEF
    assert await bus.read(0x0060) == 0 and await bus.read(0x1000) == 0
    await bus.write(rm.COMMAND, rm.CMD_RESET_COUNTERS | rm.CMD_CLEAR_OVERFLOW)
    for _ in range(20):
        if await bus.read(rm.COMMAND) == 0:
            break
    else:
        raise AssertionError("COMMAND was never acknowledged")
    assert await bus.read_u64(rm.REG["EXPECTED_SEQ"]) == 1
    a = await bus.read_u64(rm.REG["ALIVE_NS"])
    assert await bus.read_u64(rm.REG["ALIVE_NS"]) > a


@cocotb.test()
async def traffic_with_host_activity(dut):
    """Packets flow (input gaps, output back-pressure) while the host writes registers, reads
    64-bit counters and strobes CLEAR_OVERFLOW: every record arrives byte for byte as the
    decoder makes it, counters end equal to the decoder's, and counter reads never go back."""
    await _reset(dut)
    rng = random.Random(7)
    bus = AxiLite(dut)
    await bus.write(rm.CONTROL, rm.CTRL_ENABLE)               # back-pressure mode
    payloads = _feed(3, 400)
    recv_ns = [1_700_000_000_000_000_000 + 1000 * k for k in range(len(payloads))]
    ev, dc = _decode(payloads, recv_ns)
    sink = Sink(dut, rng, stall_pct=60)
    sender = cocotb.start_soon(send_packets(dut, payloads, recv_ns, random.Random(8), gap_pct=20))
    seen = []
    k = 0
    while not sender.done():
        seen.append(await bus.read_u64(_cnt("MESSAGES")))
        await bus.write(rm.UDP_PORT, 0)                        # same value, while traffic flows
        await bus.write(rm.LOCATE_BITMAP + 4 * (k % 2048), k)  # filter off: no effect
        if k % 8 == 0:
            await bus.write(rm.COMMAND, rm.CMD_CLEAR_OVERFLOW)
        k += 1
    await _drain(dut, sink, len(ev))
    got = sink.array()
    assert len(got) == len(ev), (len(got), len(ev))
    assert got.tobytes() == ev.tobytes()
    assert all(b >= a for a, b in zip(seen, seen[1:])) and len(seen) > 3
    assert await bus.read_u64(_cnt("MESSAGES")) == dc["messages"]
    assert await bus.read_u64(_cnt("MESSAGES_OUT")) == dc["events"]
    assert await bus.read_u64(_cnt("RECORDS_C2H")) == dc["events"]
    assert await bus.read_u64(_cnt("FIFO_DROPPED")) == 0
    assert await bus.read(rm.COMMAND) == 0


@cocotb.test()
async def reset_session_mid_feed(dut):
    """RESET_SESSION between two sessions' feeds, as the host does on a new day: the second
    session locks and numbers from 1 again (no wrong-session, no duplicates)."""
    await _reset(dut)
    rng = random.Random(9)
    bus = AxiLite(dut)
    await bus.write(rm.CONTROL, rm.CTRL_ENABLE | rm.CTRL_DROP_ON_FULL)
    first = _feed(4, 120)
    from tickpath.bench.load import market
    m = market.generate(5, 80, 16)
    pk = market.pack_mold(m, b"SECONDSES2", max_payload_bytes=300)
    second = [pk.packet(k) for k in range(pk.n_packets)]
    sink = Sink(dut, rng, stall_pct=30)
    await send_packets(dut, first, [1] * len(first), rng)
    await bus.write(rm.COMMAND, rm.CMD_RESET_SESSION)
    while await bus.read(rm.COMMAND):
        pass
    await send_packets(dut, second, [2] * len(second), rng)
    await _drain(dut, sink, 200)
    got = sink.array()
    assert len(got) == 200
    assert got["seq"][120:].tolist() == list(range(1, 81))
    assert await bus.read_u64(_cnt("WRONG_SESSION")) == 0
    assert await bus.read_u64(_cnt("DUPLICATES")) == 0
    sess = b""
    for i in range(3):
        sess += (await bus.read(rm.SESSION + 4 * i)).to_bytes(4, "little")
    assert sess[:10] == b"SECONDSES2"
