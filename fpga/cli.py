"""`tickpath fpga ...` subcommands: `emulate` (the card's software stand-in), `status`, `synth` (the RTL's Yosys report).

Registered as the "tickpath.commands" entry point `fpga` (pyproject.toml; runtime/cli.py
reads it and names no fpga module); `python -m tickpath.fpga.cli fpga ...`
runs the same commands on their own (tests spawn the emulator this way).
"""
from __future__ import annotations

import argparse
import json
import sys

from tickpath.runtime.core.errors import TickpathError



def add_subcommands(subparsers) -> argparse.ArgumentParser:
    fpga = subparsers.add_parser("fpga", help="FPGA card: emulator and register status")
    sub = fpga.add_subparsers(dest="fpga_cmd", required=True)

    emu = sub.add_parser("emulate", help="run the software emulator of the FPGA parser")
    emu.add_argument("--device-dir", required=True, help="directory for the xdma0_* nodes")
    src = emu.add_mutually_exclusive_group(required=True)
    src.add_argument("--udp", metavar="HOST:PORT", help="receive the feed on this UDP port")
    src.add_argument("--pcap", metavar="FILE", help="replay a pcap/pcapng capture")
    src.add_argument("--h2c", action="store_true", help="take packets from xdma0_h2c_0 (u16 BE length + payload)")
    emu.add_argument("--fifo-depth", type=int, default=4096, help="output FIFO depth, records")
    emu.add_argument("--pipe-bytes", type=int, default=1 << 20, help="C2H pipe capacity, bytes")
    emu.add_argument("--enable", action="store_true", help="start enabled (else wait for CONTROL.ENABLE)")
    emu.add_argument("--drop-on-full", action="store_true", help="drop and count at a full FIFO (else back-pressure)")
    emu.add_argument("--adopt-first-seq", action="store_true", help="first packet sets the sequence (else start at 1)")
    emu.add_argument("--udp-port-filter", type=int, default=0, help="initial UDP_PORT register (0 = any)")
    emu.add_argument("--recv-time", choices=("pcap", "now"), default="pcap", help="pcap: receive time source")
    emu.add_argument("--loops", type=int, default=1, help="pcap: replay the file this many times")
    emu.add_argument("--exit-when-done", action="store_true", help="pcap: exit once all records are handed over")
    emu.set_defaults(func=_cmd_emulate)

    st = sub.add_parser("status", help="read the registers of a card or an emulator")
    st.add_argument("--device-dir", help="the XDMA nodes' directory (default: the driver's, /dev)")
    st.add_argument("--card", type=int, default=0)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_cmd_status)

    sy = sub.add_parser("synth", help="Yosys synthesis report of the parser RTL (LUT/FF/BRAM, longest path; ~25 min)")
    sy.set_defaults(func=_cmd_synth)
    from tickpath.fpga.sim import synth
    synth.add_arguments(sy)
    return fpga


def _cmd_synth(args) -> int:
    from tickpath.fpga.sim import synth
    return synth.run_cli(args)


def _cmd_emulate(args) -> int:
    from tickpath.fpga.emulator.process import EmulatorParams, run_emulator

    return run_emulator(EmulatorParams(
        device_dir=args.device_dir, udp=args.udp, pcap=args.pcap, h2c=args.h2c,
        fifo_depth=args.fifo_depth, pipe_bytes=args.pipe_bytes, enable=args.enable,
        drop_on_full=args.drop_on_full, adopt_first_seq=args.adopt_first_seq,
        udp_port_filter=args.udp_port_filter, recv_time=args.recv_time, pcap_loops=args.loops,
        exit_when_done=args.exit_when_done))


def _cmd_status(args) -> int:
    from tickpath.fpga.host.control import ParserControl
    from tickpath.fpga.host.xdma import DEFAULT_DEVICE_DIR   # here: it imports numpy (slow --help)

    ctl = ParserControl(args.device_dir or DEFAULT_DEVICE_DIR, args.card, writable=False)
    try:
        st = ctl.status()
    finally:
        ctl.close()
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
        return 0
    counters = st.pop("counters")
    width = max(len(k) for k in list(st) + list(counters))
    for k, v in st.items():
        print(f"{k:<{width}}  {v}")
    print()
    for k, v in counters.items():
        print(f"{k:<{width}}  {v}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tickpath")
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TickpathError as exc:
        print(f"tickpath: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
