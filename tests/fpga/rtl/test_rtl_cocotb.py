"""The cocotb testbench (fpga/sim/cocotb_top.py) on Icarus Verilog: the AXI-Lite register
file, and traffic with register writes, counter reads and strobes while it flows."""
from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET

import pytest
from rtl_support import need

from tickpath.fpga.sim import cosim

TESTS = ["registers_over_axi_lite", "traffic_with_host_activity", "reset_session_mid_feed"]


def _runner():
    cocotb = pytest.importorskip("cocotb", reason="cocotb not installed (the test extra has it)")
    try:
        from cocotb_tools.runner import get_runner      # cocotb >= 2.0
    except ImportError:
        from cocotb.runner import get_runner            # cocotb 1.8 / 1.9
    return cocotb, get_runner("icarus")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    need("icarus")
    _cocotb, runner = _runner()
    build_dir = tmp_path_factory.mktemp("cocotb_build")
    srcs = [str(p) for p in cosim.rtl_paths()]
    # cocotb 2 takes `sources`, 1.x `verilog_sources`
    key = "sources" if "sources" in inspect.signature(runner.build).parameters else "verilog_sources"
    runner.build(**{key: srcs}, hdl_toplevel="tp_itch_top",
                 includes=[str(cosim.RTL_DIR)], parameters={"FIFO_DEPTH": 64, "FIFO_AW": 6},
                 build_dir=str(build_dir), timescale=("1ns", "1ps"))
    return runner, build_dir


@pytest.mark.parametrize("name", TESTS)
def test_cocotb(built, name, tmp_path):
    runner, build_dir = built
    results = tmp_path / "results.xml"
    runner.test(hdl_toplevel="tp_itch_top", test_module="tickpath.fpga.sim.cocotb_top",
                testcase=name, build_dir=str(build_dir), test_dir=str(tmp_path),
                results_xml=str(results))
    cases = ET.parse(results).getroot().iter("testcase")
    ran = [(c.get("name"), [f.get("message") or f.text for f in c if f.tag in ("failure", "error")])
           for c in cases]
    assert [n for n, _ in ran] == [name], ran
    assert not ran[0][1], ran[0][1]
