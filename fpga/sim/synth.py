"""Yosys synthesis report of the parser RTL: LUT / FF / BRAM / URAM counts and the longest path.

    tickpath fpga synth [--generic] [--fifo-depth N] [--top M] [--json OUT]   (about 25 min)
    python -m tickpath.fpga.sim.synth ...                           (the same)

Default: `synth_xilinx -family xcup` (UltraScale+, the Alveo U250's XCU250), flattened, then
`stat` for the cells, and the longest chain of logic between two registers found in the
netlist (`longest_path`: LUT levels, carry and wide-mux stages; flip-flops and block RAM
start and end paths). Yosys's own `ltp` runs through the Xilinx flip-flop cells, so it is
kept only for the generic flow. `--generic` runs Yosys's generic `synth`
with 6-input LUT mapping instead. Utilisation is given against the XCU250's resources; the
delay is an estimate from the path (a delay per
cell type for a UltraScale+ -2 part, CELL_NS), not a timing analysis: place and route in
Vivado gives the real one.
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

# XCU250 (Alveo U250), from the UltraScale+ product tables
U250 = {"LUT": 1_728_000, "FF": 3_456_000, "BRAM36": 2_688, "URAM": 1_280, "DSP": 12_288}
TARGET_MHZ = 250.0
TOPS = ("tp_itch_top", "tp_parser")


def script(top: str, generic: bool, fifo_depth: int) -> str:
    aw = fifo_depth.bit_length() - 1
    # the parser alone (--top tp_parser) has no FIFO_AW, only the width of a FIFO level
    params = (f"-set FIFO_DEPTH {fifo_depth} -set FIFO_AW {aw}" if top == "tp_itch_top" else
              f"-set FIFO_DEPTH {fifo_depth} -set LEVEL_W {aw + 1}")
    from tickpath.fpga.sim.cosim import RTL_DIR, rtl_paths   # here: cosim imports numpy, and
    # `tickpath --help` imports this module to list `fpga synth` (~0.13 s for nothing)
    reads = "\n".join(f"read_verilog -I{RTL_DIR} {p}" for p in rtl_paths())
    synth = (f"synth -top {top} -flatten\nabc -lut 6\nopt_clean" if generic else
             f"synth_xilinx -family xcup -top {top} -flatten -noiopad")
    # ltp knows Yosys's own flip-flops only: for the Xilinx netlist longest_path() does it
    ltp = "tee -o ltp.txt ltp -noff\n" if generic else ""
    return (f"{reads}\nchparam {params} {top}\n"
            f"{synth}\ntee -o stat.txt stat\n{ltp}write_json netlist.json\n")


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
        "carry": total(lambda c: c.startswith("CARRY")), "muxf": total(lambda c: c.startswith("MUXF")),
        "longest_path_cells": levels,
        "util_pct": {
            "LUT": round(100.0 * luts / U250["LUT"], 3),
            "FF": round(100.0 * ffs / U250["FF"], 3),
            "BRAM36": round(100.0 * bram36 / U250["BRAM36"], 2),
            "URAM": round(100.0 * uram / U250["URAM"], 2),
        },
        "cells": cells,
    }
    return out


# per-cell delay guesses for a UltraScale+ -2 path (logic + typical local route), ns
CELL_NS = {"LUT": 0.45, "MUXF": 0.10, "CARRY": 0.10, "INV": 0.45}


def longest_path(netlist_json: Path, top: str = "tp_itch_top") -> dict:
    """Longest register-to-register chain of logic in a synth_xilinx netlist (Yosys JSON).

    Flip-flops (FD*) and block RAM (RAMB*) start and end paths; every other cell is logic.
    Returns the path's LUT count, its cell count and a delay estimate from CELL_NS."""
    mod = json.loads(Path(netlist_json).read_text())["modules"][top]
    cells = mod["cells"]
    drivers: dict[int, str] = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = name

    def kind(t: str) -> str:
        for k in ("LUT", "MUXF", "CARRY", "INV"):
            if t.startswith(k):
                return k
        return ""

    logic = {n for n, c in cells.items() if kind(c["type"])}
    fanin: dict[str, set] = {n: set() for n in logic}
    for n in logic:
        c = cells[n]
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "input":
                for b in bits:
                    d = drivers.get(b) if isinstance(b, int) else None
                    if d in logic and d != n:
                        fanin[n].add(d)
    # longest path by delay over the logic DAG (iterative DFS, memoised)
    best: dict[str, tuple] = {}
    pred: dict[str, str | None] = {}
    for root in logic:
        stack = [(root, False)]
        while stack:
            n, ready = stack.pop()
            if n in best:
                continue
            if not ready:
                stack.append((n, True))
                stack.extend((f, False) for f in fanin[n] if f not in best)
                continue
            k = kind(cells[n]["type"])
            own = (CELL_NS[k], 1 if k == "LUT" else 0, 1)
            prev = max(((best[f], f) for f in fanin[n] if f in best), default=((0.0, 0, 0), None))
            best[n] = (prev[0][0] + own[0], prev[0][1] + own[1], prev[0][2] + own[2])
            pred[n] = prev[1]
    if not best:
        return {"path_ns_est": 0.0, "path_luts": 0, "path_cells": 0}
    end = max(best, key=lambda n: best[n])
    ns, luts, n_cells = best[end]
    start = end
    while pred.get(start) is not None:
        start = pred[start]
    names = _bit_names(mod)

    def named(cell: str, direction: str) -> list[str]:
        c = cells[cell]
        bits = [b for port, bs in c["connections"].items()
                if c["port_directions"].get(port) == direction for b in bs
                if isinstance(b, int) and (direction == "output" or drivers.get(b) not in logic)]
        return sorted({names[b] for b in bits if b in names})[:4]

    return {"path_ns_est": round(ns, 1), "path_luts": luts, "path_cells": n_cells,
            "path_from": named(start, "input"), "path_to": named(end, "output")}


def _bit_names(mod: dict) -> dict[int, str]:
    """Netlist bit -> a readable net name (the RTL's register and wire names where kept)."""
    out: dict[int, str] = {}
    for name, net in sorted(mod["netnames"].items(), key=lambda kv: kv[0].startswith("$")):
        for i, b in enumerate(net["bits"]):
            if isinstance(b, int) and b not in out:
                out[b] = f"{name}[{i}]" if len(net["bits"]) > 1 else name
    return out


def run(generic: bool = False, fifo_depth: int = 4096, top: str = "tp_itch_top",
        timeout_s: float = 3600.0, netlist: Path | None = None) -> dict:
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
        ltp_file = Path(d) / "ltp.txt"
        ltp = ltp_file.read_text() if ltp_file.exists() else ""
        if netlist is not None:
            shutil.copy(Path(d) / "netlist.json", netlist)
        path = None if generic else longest_path(Path(d) / "netlist.json", top)
    rep = summarise(parse_stat(stat), ltp, generic)
    if path:
        rep.update(path)
    rep["fifo_depth"] = fifo_depth
    rep["top"] = top
    rep["yosys"] = subprocess.run(["yosys", "-V"], capture_output=True, text=True).stdout.strip()
    return rep


def markdown(rep: dict) -> str:
    u = rep["util_pct"]
    if "path_luts" in rep:
        mhz = 1000.0 / rep["path_ns_est"] if rep["path_ns_est"] else float("inf")
        path = (f"{rep['path_luts']} LUTs ({rep['path_cells']} cells), "
                f"≈ {rep['path_ns_est']} ns (≈ {mhz:.0f} MHz)")
    else:
        path = f"{rep['longest_path_cells']} cells (ltp)"
    lines = [
        "| flow | LUT | FF | BRAM36 | URAM | CARRY | MUXF | longest register-to-register path |",
        "|---|---|---|---|---|---|---|---|",
        f"| `{rep['flow']}` | {rep['luts']:,} ({u['LUT']} %) | {rep['ffs']:,} ({u['FF']} %) | "
        f"{rep['bram36']:g} ({u['BRAM36']} %) | {rep['uram']} ({u['URAM']} %) | "
        f"{rep['carry']} | {rep['muxf']} | {path} |",
    ]
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of `tickpath fpga synth` and of `python -m tickpath.fpga.sim.synth`."""
    ap.add_argument("--generic", action="store_true", help="generic synth (no Xilinx cells)")
    ap.add_argument("--fifo-depth", type=int, default=4096)
    ap.add_argument("--json", type=Path, help="write the full report here")
    ap.add_argument("--netlist", type=Path, help="keep the synthesized netlist (Yosys JSON)")
    ap.add_argument("--top", choices=TOPS, default="tp_itch_top",
                    help="tp_parser: the parser core alone (minutes, for iterating on its timing)")


def run_cli(args) -> int:
    try:
        rep = run(args.generic, args.fifo_depth, top=getattr(args, "top", "tp_itch_top"),
                  netlist=args.netlist)
    except RuntimeError as exc:
        print(f"tickpath fpga synth: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(rep, indent=2))
    print(markdown(rep))
    if rep.get("path_from"):
        print(f"longest path: from {', '.join(rep['path_from'])} to {', '.join(rep['path_to'])}")
    print(f"target: {1000.0 / TARGET_MHZ:.1f} ns per cycle at {TARGET_MHZ:.0f} MHz")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
