"""The parser's latency and throughput, measured in simulation (cycles, and ns at 250 MHz).

    python -m tickpath.fpga.sim.latency [--messages N] [--sim verilator|icarus]

A market feed (bench/load/market.py) goes in back to back (tvalid always high) with the C2H
output always ready, and the testbench stamps the clock edge of every packet's first and
last beat and of every record leaving the core. Reported:
* message latency: from the edge that takes the beat holding a message's last byte to the
  edge its record leaves on C2H (the issue's "last byte of a message to its record leaving");
* packet latency: from a packet's first beat to its first record leaving;
* throughput: input beats per cycle over the run, and whether any cycle between two packets
  was lost (a packet's first beat always follows the previous packet's last at the next edge).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tickpath.fpga import regmap as rm
from tickpath.fpga.sim import cosim

SESSION = b"LATENCY001"


def message_ends(payload: bytes) -> dict[int, int]:
    """seq -> byte offset of the last byte of that message, for the messages that fit."""
    seq = int.from_bytes(payload[10:18], "big")
    count = int.from_bytes(payload[18:20], "big")
    out: dict[int, int] = {}
    if len(payload) < 20 or count in (0, 0xFFFF):
        return out
    pos = 20
    for i in range(count):
        if pos + 2 > len(payload):
            break
        n = int.from_bytes(payload[pos:pos + 2], "big")
        if pos + 2 + n > len(payload):
            break
        out[seq + i] = pos + 1 + n
        pos += 2 + n
    return out


def measure(n_messages: int = 20_000, sim: str = "verilator", seed: int = 31) -> dict:
    from tickpath.bench.load import market
    m = market.generate(seed, n_messages, 300)
    pk = market.pack_mold(m, SESSION)
    payloads = [pk.packet(k) for k in range(pk.n_packets)]
    st = cosim.Stimulus().write(rm.CONTROL, rm.CTRL_ENABLE).packets(payloads)
    res = cosim.run(st, sim)
    last_beat_edge = {}
    for k, p in enumerate(payloads):
        for s, end in message_ends(p).items():
            last_beat_edge[s] = res.first_edges[k] + end // 8
    msg_lat = np.array([e - last_beat_edge[int(r["seq"])] for r, e in
                        zip(res.records, res.out_edges)], np.int64)
    first_out = {}
    for r, e in zip(res.records, res.out_edges):
        first_out.setdefault(int(r["seq"]), int(e))
    pkt_lat = []
    for k, p in enumerate(payloads):
        ends = message_ends(p)
        if ends:
            pkt_lat.append(first_out[min(ends)] - res.first_edges[k])
    pkt_lat = np.array(pkt_lat, np.int64)
    beats = res.counters()["BEATS_IN"]
    span = int(res.last_edges[-1] - res.first_edges[0] + 1)
    bubbles = int(np.sum(res.first_edges[1:] != res.last_edges[:-1] + 1))

    def pct(a):
        return {q: int(np.percentile(a, q)) for q in (0, 50, 99, 100)}

    return {
        "sim": sim, "messages": n_messages, "packets": len(payloads),
        "records": len(res.records), "clock_ns": cosim.CLOCK_NS,
        "message_latency_cycles": pct(msg_lat), "packet_first_record_cycles": pct(pkt_lat),
        "beats_in": beats, "input_span_cycles": span,
        "beats_per_cycle": round(beats / span, 4), "cycles_lost_between_packets": bubbles,
        "stalls": res.counters()["BACKPRESSURE_STALLS"],
    }


def markdown(rep: dict) -> str:
    ns = rep["clock_ns"]
    ml, pl = rep["message_latency_cycles"], rep["packet_first_record_cycles"]
    return "\n".join([
        "| measure | min | p50 | p99 | max |",
        "|---|---|---|---|---|",
        f"| last byte of a message -> its record leaves (cycles) | {ml[0]} | {ml[50]} | {ml[99]} | {ml[100]} |",
        f"| same, ns at {1000 / ns:.0f} MHz | {ml[0] * ns:.0f} | {ml[50] * ns:.0f} | {ml[99] * ns:.0f} | {ml[100] * ns:.0f} |",
        f"| first beat of a packet -> its first record (cycles) | {pl[0]} | {pl[50]} | {pl[99]} | {pl[100]} |",
        f"| same, ns | {pl[0] * ns:.0f} | {pl[50] * ns:.0f} | {pl[99] * ns:.0f} | {pl[100] * ns:.0f} |",
        "",
        f"{rep['messages']:,} messages in {rep['packets']:,} packets ({rep['sim']}): "
        f"{rep['beats_in']:,} beats in {rep['input_span_cycles']:,} cycles = "
        f"{rep['beats_per_cycle']} beats/cycle, {rep['cycles_lost_between_packets']} cycles "
        f"lost between packets, {rep['stalls']} back-pressure stalls.",
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--sim", choices=cosim.SIMULATORS, default="verilator")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rep = measure(args.messages, args.sim)
    print(json.dumps(rep, indent=2) if args.json else markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
