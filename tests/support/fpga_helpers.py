"""Helpers for the FPGA tests: hand-built packets, decoder runs, emulator processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator.model import ParserModel, payload_batch
from tickpath.runtime.core import counters as rc
from tickpath.runtime.core.event import EVENT_DTYPE

SESSION = b"TESTSESS01"


def decode_all(payloads, recv_ns, adopt_first_seq=False):
    """The software decoder over a list of payloads: (events, counters dict)."""
    from tickpath.runtime.feed import decoder

    # max_gap_msgs=0: the card adopts any jump (it has no gap window; README says so)
    mold, sess = decoder.new_mold_state(next_seq=0 if adopt_first_seq else 1, max_gap_msgs=0)
    cap = sum(decoder.max_events_per_packet(len(p)) for p in payloads) + 1
    events = np.zeros(cap, EVENT_DTYPE)
    counters = rc.new_counters()
    ev = 0
    for p, t in zip(payloads, recv_ns):
        ev = decoder.decode_packet(np.frombuffer(bytes(p) or b"", np.uint8), t, mold, sess, events,
                                   ev, counters)
    return events[:ev].copy(), rc.as_dict(counters)


def emulate_all(payloads, recv_ns, fifo_depth=1 << 18, control=None, adopt_first_seq=False):
    """The emulator's datapath in-process over the same payloads: (records, model)."""
    model = ParserModel(fifo_depth=fifo_depth)
    ctrl = rm.CTRL_ENABLE | rm.CTRL_DROP_ON_FULL
    if adopt_first_seq:
        ctrl |= rm.CTRL_ADOPT_FIRST_SEQ
        model.u32[rm.CONTROL >> 2] = ctrl
        model.u32[rm.COMMAND >> 2] = rm.CMD_RESET_SESSION
    model.write_control(ctrl if control is None else control)
    batch = payload_batch(payloads, recv_ns)
    model.feed(*batch, dp.KIND_PAYLOAD)
    return model.pop_records(), model


def runtime_view(fpga_counters: dict) -> dict:
    """The card's counters under the runtime's counter names (the slots both count)."""
    return {rc.NAMES[slot]: fpga_counters[name] for name, slot in rm.RUNTIME_SLOT.items()
            if slot not in (rc.FRAMES, rc.FRAMES_NOT_FEED, rc.FRAMES_DROPPED)}


def start_emulator(device_dir, *args, ready_timeout_s=120.0):
    """Spawn `python -m tickpath.fpga.cli fpga emulate`; wait for LINK_UP; return the Popen."""
    cmd = [sys.executable, "-m", "tickpath.fpga.cli", "fpga", "emulate", "--device-dir",
           str(device_dir), *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    user = os.path.join(device_dir, "xdma0_user")
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited rc={proc.returncode}: {proc.stdout.read().decode()}")
        try:
            if os.path.getsize(user) == rm.REGFILE_BYTES:
                with open(user, "rb") as f:
                    raw = f.read()
                u32 = np.frombuffer(raw, "<u4")
                if u32[rm.ID >> 2] == rm.ID_MAGIC and u32[rm.STATUS >> 2] & rm.ST_LINK_UP:
                    return proc
        except OSError:
            pass
        time.sleep(0.05)
    stop_emulator(proc)
    raise RuntimeError("emulator did not come up")


def stop_emulator(proc, sig=signal.SIGTERM, timeout_s=10.0):
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout_s)
    if proc.stdout:
        proc.stdout.close()
