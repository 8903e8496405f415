"""Shared by the RTL tests: skip reasons, and the three implementations side by side."""
from __future__ import annotations

import numpy as np
import pytest
from fpga_helpers import decode_all, emulate_all

from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga.emulator.model import payload_batch

from tickpath.fpga import regmap as rm
from tickpath.fpga.sim import cosim
from tickpath.fpga.sim.latency import message_ends as payload_ends

ENABLE_DROP = rm.CTRL_ENABLE | rm.CTRL_DROP_ON_FULL


def need(sim: str) -> None:
    """Skip (the reason printed by -ra) when `sim`'s tools are not installed."""
    missing = cosim.missing_tools(sim)
    if missing:
        pytest.skip(f"{sim} not installed (missing {', '.join(missing)}; bash ci/rtl-tools.sh "
                    "installs it as root)")


def recv_times(n: int) -> list[int]:
    return [1_700_000_000_000_000_000 + 977 * i for i in range(n)]


def stimulus(payloads, recv_ns, control=ENABLE_DROP, adopt=False) -> cosim.Stimulus:
    st = cosim.Stimulus()
    if adopt:
        st.write(rm.CONTROL, control | rm.CTRL_ADOPT_FIRST_SEQ).command(rm.CMD_RESET_SESSION)
        control |= rm.CTRL_ADOPT_FIRST_SEQ
    st.write(rm.CONTROL, control)
    return st.packets(payloads, recv_ns)


# counters the software decoder keeps too, under the runtime's names (fpga_helpers.runtime_view)
DECODER_VIEW = {name: slot for name, slot in rm.RUNTIME_SLOT.items()
                if name not in ("PACKETS_IN", "PACKETS_NOT_FEED", "INGRESS_OVERRUN")}


def decoder_view(fpga_counters: dict) -> dict:
    from tickpath.runtime.core import counters as rc
    return {rc.NAMES[slot]: fpga_counters[name] for name, slot in DECODER_VIEW.items()}


def three_way(payloads, recv_ns=None, sim="icarus", adopt=False, gap_pct=0, stall_pct=0,
              seed=1, fifo_depth=4096):
    """RTL, emulator and decoder over the same payloads; asserts the records are equal byte for
    byte and the RTL's counters equal the decoder's; returns (rtl result, emulator model,
    decoder counters) for the caller's further checks (the emulator's counters among them)."""
    recv_ns = recv_times(len(payloads)) if recv_ns is None else recv_ns
    ev, dc = decode_all(payloads, recv_ns, adopt)
    rec, model = emulate_all(payloads[:1000], recv_ns[:1000], adopt_first_seq=adopt)
    parts = [rec]
    for lo in range(1000, len(payloads), 1000):     # drained as it goes, like the C2H engine
        model.feed(*payload_batch(payloads[lo:lo + 1000], recv_ns[lo:lo + 1000]), dp.KIND_PAYLOAD)
        parts.append(model.pop_records())
    rec = np.concatenate(parts)
    res = cosim.run(stimulus(payloads, recv_ns, adopt=adopt), sim, fifo_depth, gap_pct=gap_pct,
                    stall_pct=stall_pct, seed=seed)
    assert len(res.records) == len(ev)
    assert res.records.tobytes() == ev.tobytes()
    assert rec.tobytes() == ev.tobytes()
    rtl_c = res.counters()
    assert decoder_view(rtl_c) == {k: dc[k] for k in decoder_view(rtl_c)}
    assert rtl_c["RECORDS_C2H"] == rtl_c["MESSAGES_OUT"] == len(ev)
    assert res.reg64("EXPECTED_SEQ") == int(model.u64[rm.REG["EXPECTED_SEQ"] >> 3])
    return res, model, dc


def same_counters(res, model, skip=("BACKPRESSURE_STALLS",)) -> None:
    """The RTL's counters equal the emulator's, name by name."""
    rtl_c, emu_c = res.counters(), model.counters()
    diff = {k: (rtl_c[k], emu_c[k]) for k in rtl_c if k not in skip and rtl_c[k] != emu_c[k]}
    assert not diff, f"RTL vs emulator (rtl, emu): {diff}"


def record_packets(records, payloads) -> np.ndarray:
    """Index of the packet each record came from (message records by seq, gaps in order)."""
    owner = {}
    for k, p in enumerate(payloads):
        for s in payload_ends(p):
            owner.setdefault(s, k)
    return np.array([owner.get(int(r["seq"]), -1) for r in records], np.int64)
