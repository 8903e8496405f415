"""The runtime's loop on the fpga-emu backend: records from the emulator go straight to the
books (no software decode); the card's counters show up in the runtime's stats; a killed
emulator ends the loop with the device-gone error instead of a hang."""
from __future__ import annotations

import os
import signal
import time

import pytest
from fpga_helpers import SESSION, decode_all, start_emulator, stop_emulator
from tickpath.runtime.feed import pcap
from tickpath.runtime.core.errors import BackendError

from tickpath.runtime.config import schema as config
from tickpath.runtime.engine import runner
from tickpath.bench.load import market


def _cfg(device_dir):
    return config.merge({
        "backend": {"kind": "fpga-emu", "fpga": {"device_dir": str(device_dir)}},
        "cores": {"rx": [0]},
        "buffers": {"hugepages": "off"},
        "book": {"instruments": 64, "max_orders": 1 << 16},
    })


@pytest.mark.slow   # most of it is compiling the runtime loop (not cached there)
def test_runtime_books_fed_by_emulator_and_device_gone(tmp_path):
    mk = market.generate(9, 20_000, 32)
    pk = market.pack_mold(mk, SESSION)
    payloads = [pk.packet(k) for k in range(pk.n_packets)]
    path = tmp_path / "f.pcap"
    pcap.write_pcap(path, [pcap.udp_frame(p, 26400) for p in payloads], [0] * len(payloads))
    want, dc = decode_all(payloads, [0] * len(payloads))
    proc = start_emulator(tmp_path, "--pcap", path)
    rt = runner.Runtime(_cfg(tmp_path))
    try:
        rt.start(cpu=0)
        deadline = time.monotonic() + 60
        while rt.backend.stats()["records_read"] < len(want) and time.monotonic() < deadline:
            time.sleep(0.01)
        st = rt.stats()
        assert st["backend_stats"]["records_read"] == len(want)
        assert st["backend_stats"]["counters"]["events"] == dc["events"]
        assert st["counters"]["book_adds"] > 0                  # the books saw the adds
        os.kill(proc.pid, signal.SIGKILL)                        # the card dies
        proc.wait(10)
        deadline = time.monotonic() + 10
        while rt.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not rt.running
        with pytest.raises(BackendError, match="ENODEV"):
            rt.stop()
    finally:
        rt.close()
        stop_emulator(proc)
