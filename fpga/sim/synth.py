"""Yosys synthesis report of the parser RTL: LUT / FF / BRAM / URAM counts and the longest path.

    python -m tickpath.fpga.sim.synth [--generic] [--fifo-depth N] [--json OUT]

Default: `synth_xilinx -family xcup` (UltraScale+, the Alveo U250's XCU250), flattened, then
`stat` for the cells and `ltp -noff` for the longest topological path between flip-flops
(in cells: LUT levels, carry and wide-mux stages). `--generic` runs Yosys's generic `synth`
with 6-input LUT mapping instead. Utilisation is given against the XCU250's resources; the
delay is an estimate from the path length (a number of levels times a per-level figure for
a UltraScale+ -2 part), not a timing analysis: place and route in Vivado gives the real one.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tickpath.fpga.sim.cosim import RTL_DIR, rtl_paths

# XCU250 (Alveo U250), from the UltraScale+ product tables
U250 = {"LUT": 1_728_000, "FF": 3_456_000, "BRAM36": 2_688, "URAM": 1_280, "DSP": 12_288}
NS_PER_LEVEL = 0.45           # LUT + average route, UltraScale+ -2: a rough planning figure
TARGET_MHZ = 250.0


def script(top: str, generic: bool, fifo_depth: int) -> str:
    aw = fifo_depth.bit_length() - 1
    reads = "\n".join(f"read_verilog -I{RTL_DIR} {p}" for p in rtl_paths())
    synth = (f"synth -top {top} -flatten\nabc -lut 6\nopt_clean" if generic else
             f"synth_xilinx -family xcup -top {top} -flatten")
    return (f"{reads}\nchparam -set FIFO_DEPTH {fifo_depth} -set FIFO_AW {aw} {top}\n"
            f"{synth}\ntee -o stat.txt stat\ntee -o ltp.txt ltp -noff\n")


def parse_stat(text: str) -> dict[str, int]:
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", text, re.M):
        cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    return cells


def summarise(cells: dict[str, int], ltp_text: str, generic: bool) -> dict:
    def total(pred):
        return sum(n for c, n in cells.items() if pred(c))

    if generic:
        luts = total(lambda c: c == "$lut")
        ffs = total(lambda c: c.startswith("$_DFF") or c.startswith("$_SDFF") or c.startswith("$dff")
                    or c.startswith("$_DLATCH"))
        bram36 = uram = lutram = 0
    else:
        luts = total(lambda c: re.fullmatch(r"LUT[1-6]", c) is not None)
        lutram = total(lambda c: c.startswith("RAM") and not c.startswith("RAMB"))
        ffs = total(lambda c: c in ("FDRE", "FDSE", "FDCE", "FDPE"))
        bram36 = total(lambda c: c.startswith("RAMB36")) + total(lambda c: c.startswith("RAMB18")) / 2
        uram = total(lambda c: c.startswith("URAM"))
    m = re.search(r"length=(\d+)", ltp_text)
    levels = int(m.group(1)) if m else -1
    out = {
        "flow": "generic synth -lut 6" if generic else "synth_xilinx -family xcup",
        "luts": luts, "lutram_cells": lutram, "ffs": ffs, "bram36": bram36, "uram": uram,
        "carry8": cells.get("CARRY8", 0), "muxf": total(lambda c: c.startswith("MUXF")),
        "longest_path_cells": levels,
        "est_path_ns": round(levels * NS_PER_LEVEL, 1) if levels > 0 else None,
        "util_pct": {
            "LUT": round(100.0 * luts / U250["LUT"], 3),
            "FF": round(100.0 * ffs / U250["FF"], 3),
            "BRAM36": round(100.0 * bram36 / U250["BRAM36"], 2),
            "URAM": round(100.0 * uram / U250["URAM"], 2),
        },
        "cells": cells,
    }
    return out


def run(generic: bool = False, fifo_depth: int = 4096, top: str = "tp_itch_top",
        timeout_s: float = 3600.0) -> dict:
    if shutil.which("yosys") is None:
        raise RuntimeError("yosys not installed (bash ci/rtl-tools.sh installs it as root)")
    with tempfile.TemporaryDirectory(prefix="tickpath-synth-") as d:
        ys = Path(d) / "synth.ys"
        ys.write_text(script(top, generic, fifo_depth))
        proc = subprocess.run(["yosys", "-q", "-l", "yosys.log", "-s", str(ys)], cwd=d,
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            log = (Path(d) / "yosys.log").read_text()[-4000:] if (Path(d) / "yosys.log").exists() else ""
            raise RuntimeError(f"yosys failed rc={proc.returncode}:\n{proc.stderr}\n{log}")
        stat = (Path(d) / "stat.txt").read_text()
        ltp = (Path(d) / "ltp.txt").read_text()
    rep = summarise(parse_stat(stat), ltp, generic)
    rep["fifo_depth"] = fifo_depth
    rep["yosys"] = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    return rep


def markdown(rep: dict) -> str:
    u = rep["util_pct"]
    lines = [
        f"| flow | LUT | FF | BRAM36 | URAM | LUTRAM cells | CARRY8 | longest path (cells) |",
        "|---|---|---|---|---|---|---|---|",
        f"| `{rep['flow']}` | {rep['luts']:,} ({u['LUT']} %) | {rep['ffs']:,} ({u['FF']} %) | "
        f"{rep['bram36']} ({u['BRAM36']} %) | {rep['uram']} ({u['URAM']} %) | "
        f"{rep['lutram_cells']} | {rep['carry8']} | {rep['longest_path_cells']} |",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generic", action="store_true", help="generic synth (no Xilinx cells)")
    ap.add_argument("--fifo-depth", type=int, default=4096)
    ap.add_argument("--json", type=Path, help="write the full report here")
    args = ap.parse_args(argv)
    rep = run(args.generic, args.fifo_depth)
    if args.json:
        args.json.write_text(json.dumps(rep, indent=2))
    print(markdown(rep))
    print(f"estimated longest path {rep['est_path_ns']} ns "
          f"(target {1000.0 / TARGET_MHZ:.1f} ns at {TARGET_MHZ:.0f} MHz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
