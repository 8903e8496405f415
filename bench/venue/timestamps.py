"""Timestamps for tick-to-trade: what arrived and left when, on CLOCK_REALTIME.

* ITCH packets: the writer's packet log (itch_out: first sequence number, message count,
  send time just before the sendto call — on loopback the datagram is delivered inside it)
  — a later tick-to-trade measurement finds the packet a strategy saw by its MoldUDP64
  sequence numbers.
* OUCH inbound: one IN_LOG record per inbound OUCH message (its `token`), with the
  arrival time (the kernel's receive timestamp, SO_TIMESTAMPNS, for the recv that brought
  it, when the kernel gives one; otherwise the time recv returned), the user and
  UserRefNum, the ClOrdID read as a number when it is all digits (how a tick-to-trade
  benchmark names the trigger an order answers), the time the
  first response to it was written to the socket, and the first ITCH sequence number it
  caused. Keyed so: order -> (user, UserRefNum, ClOrdID) -> recv time, and ITCH seq -> packet
  -> send time.

Latency inside the venue is computed from these at the end: received -> response written,
and received -> its first ITCH message sent, as histograms (runtime.engine.latency).
`write_log(path)` saves both logs as one .npz (the optional binary log).
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.engine import latency as LAT

IN_LOG_DTYPE = np.dtype([
    ("recv_ns", "<i8"), ("written_ns", "<i8"), ("itch_seq", "<i8"),
    ("clordid", "<u8"),   # O/U: the ClOrdID when it is all ASCII digits (a trigger's name), else 0
    ("user", "<i4"), ("uref", "<u4"), ("kind", "u1"), ("_pad", "u1", (7,)),
], align=True)
assert IN_LOG_DTYPE.itemsize == 48


def new_in_log(n: int) -> np.ndarray:
    if n & (n - 1):
        raise ValueError("in_log size must be a power of two")
    return np.zeros(n, IN_LOG_DTYPE)


def latencies(in_log: np.ndarray, n_tokens: int, pkt_first: np.ndarray, pkt_send_ns: np.ndarray,
              n_pkts: int) -> dict:
    """Histograms of received -> response written and received -> ITCH sent (ns)."""
    recs = in_log[:min(n_tokens, len(in_log))]
    ok = (recs["recv_ns"] > 0) & (recs["written_ns"] > 0)
    h_resp = LAT.new_histogram()
    LAT.record_all(h_resp, (recs["written_ns"][ok] - recs["recv_ns"][ok]).astype(np.int64))
    h_itch = LAT.new_histogram()
    has = (recs["itch_seq"] > 0) & (recs["recv_ns"] > 0)
    if n_pkts and has.any():
        seqs = recs["itch_seq"][has]
        k = np.searchsorted(pkt_first[:n_pkts], seqs, side="right") - 1
        good = k >= 0
        sent = pkt_send_ns[:n_pkts][k[good]]
        LAT.record_all(h_itch, (sent - recs["recv_ns"][has][good]).astype(np.int64))
    return {"response": h_resp, "itch": h_itch}


def write_log(path: str, in_log: np.ndarray, n_tokens: int, w) -> None:
    from tickpath.bench.venue import itch_out as W
    n = int(w.state[W.N_PKTS])
    np.savez(path, ouch_in=in_log[:min(n_tokens, len(in_log))],
             itch_pkt_first_seq=w.pkt_first[:n], itch_pkt_count=w.pkt_count[:n],
             itch_pkt_send_ns=w.pkt_send_ns[:n])
