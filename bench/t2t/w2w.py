"""Wall-to-wall tick-to-trade from the venue's timestamp log: trigger packet sent -> answer
received, both on the venue's CLOCK_REALTIME (STAC-T1's start-of-message to start-of-order on
one host, so no clock-sync error).

The log (bench/venue/timestamps.py, `tickpath venue --timestamps`) holds every inbound OUCH
message with its user, kernel receive time, ClOrdID-as-number and the first ITCH sequence
number it caused, and every ITCH packet's first sequence number and send time. A trigger is
an order of the trigger user; its ITCH Add's sequence number finds the packet that carried
it, hence its send time. An answer is an order of the responder user whose ClOrdID names
that sequence number. Matching is exact: an answer to no trigger is a stray, a second
answer to one trigger is counted and left out of the figures, a trigger without an answer is
lost, and the first `warmup` triggers are left out and said so.
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.engine import latency as LAT

_O = ord("O")
_U = ord("U")
PCTS = (50.0, 90.0, 99.0, 99.9)


def match(log: dict, trigger_user: int, responder_user: int, warmup: int,
          wire: dict[int, int] | None = None, wire_label: str = "loopback tap") -> dict:
    """Per-trigger latencies (ns) and the counts that qualify them. `wire`: {ClOrdID: arrival
    ns} from the wire tap (bench/t2t/tap.py; `wire_label` names where it listened), used
    instead of the venue's read stamps."""
    ins = log["ouch_in"]
    first, sent = log["itch_pkt_first_seq"], log["itch_pkt_send_ns"]
    trig = ins[(ins["user"] == trigger_user) & (ins["kind"] == _O)]
    trig = trig[np.argsort(trig["recv_ns"], kind="stable")]
    published = trig["itch_seq"] > 0
    seqs = trig["itch_seq"][published].astype(np.int64)
    k = np.searchsorted(first, seqs, side="right") - 1
    in_log = (k >= 0)
    seqs, k = seqs[in_log], k[in_log]
    send_ns = sent[k]
    measured = slice(warmup, None)
    seqs, send_ns = seqs[measured], send_ns[measured]

    ans = ins[(ins["user"] == responder_user) & (ins["kind"] == _O) & (ins["clordid"] > 0)]
    order = np.argsort(ans["recv_ns"], kind="stable")
    a_seq = ans["clordid"][order].astype(np.int64)
    a_recv = ans["recv_ns"][order]
    source = "venue read stamps"
    if wire:
        # the venue's log says which answers it took; the tap says when each reached the host
        t = np.array([wire.get(int(s), -1) for s in a_seq], np.int64)
        missing_on_wire = int(np.count_nonzero(t < 0))
        a_recv = np.where(t >= 0, t, a_recv)
        source = wire_label + (f" ({missing_on_wire} from venue stamps)" if missing_on_wire else "")
    uniq, first_idx, counts = np.unique(a_seq, return_index=True, return_counts=True)
    pos = np.searchsorted(uniq, seqs)
    pos_ok = pos < len(uniq)
    hit = np.zeros(len(seqs), bool)
    hit[pos_ok] = uniq[pos[pos_ok]] == seqs[pos_ok]
    lat = a_recv[first_idx[pos[hit]]] - send_ns[hit]
    all_trig_seqs = trig["itch_seq"][published].astype(np.int64)
    stray = int(np.count_nonzero(~np.isin(uniq, all_trig_seqs)))
    return {
        "triggers_sent": int(len(trig)),
        "triggers_unpublished": int(np.count_nonzero(~published)),
        "warmup_excluded": int(min(warmup, len(in_log))),
        "triggers_measured": int(len(seqs)),
        "answered": int(hit.sum()),
        "unanswered": int(len(seqs) - hit.sum()),
        "answered_twice": int(np.count_nonzero(counts[np.isin(uniq, seqs)] > 1)),
        "stray_answers": stray,
        "answer_timestamps": source,
        "latency_ns": lat.astype(np.int64),
    }


def stats(lat_ns: np.ndarray) -> dict:
    """The tail analysis: percentiles, max, mean and standard deviation, and what they rest on."""
    if len(lat_ns) == 0:
        return {"samples": 0}
    v = np.sort(lat_ns.astype(np.float64))
    out = {"samples": int(len(v))}
    for p in PCTS:
        out[f"p{p:g}"] = float(np.percentile(v, p, method="higher"))
    out.update(max=float(v[-1]), min=float(v[0]), mean=float(v.mean()), std=float(v.std()))
    # how many samples lie beyond each percentile: p99.9 of 2,000 samples rests on 2 of them
    out["samples_beyond"] = {f"p{p:g}": int(len(v) - np.ceil(len(v) * p / 100)) for p in PCTS}
    return out


def histogram(lat_ns: np.ndarray) -> np.ndarray:
    """The runtime's log-linear histogram of these latencies (for .hgrm and the plots)."""
    h = LAT.new_histogram()
    if len(lat_ns):
        LAT.record_all(h, np.maximum(lat_ns, 0).astype(np.int64))
    return h


def orders(log: dict, user: int, wire_by_uref: dict[int, int] | None = None, since_ns: int = 0) -> dict:
    """Wall to wall for every order of a strategy that names its trigger: the ClOrdID is the
    MoldUDP64 sequence number of the feed message the order answered (tickpath trade writes
    it so), that message's packet gives the send time. Enter Orders and Replaces (a quote
    moving) count; orders from a timer (ClOrdID 0) are left out. Several orders may answer one
    message (a quote's two sides).
    since_ns: orders whose trigger was sent before this are warm-up (a feed socket bound before
    the loop started holds a backlog the first iterations answer) and left out, counted."""
    ins = log["ouch_in"]
    first, sent = log["itch_pkt_first_seq"], log["itch_pkt_send_ns"]
    mine = ins[(ins["user"] == user) & ((ins["kind"] == _O) | (ins["kind"] == _U))]
    named = mine[mine["clordid"] > 0]
    seqs = named["clordid"].astype(np.int64)
    k = np.searchsorted(first, seqs, side="right") - 1
    ok = k >= 0
    recv = named["recv_ns"][ok]
    if wire_by_uref:
        tap = np.array([wire_by_uref.get(int(u), -1) for u in named["uref"][ok]], np.int64)
        recv = np.where(tap >= 0, tap, recv)
    trig_sent = sent[k[ok]]
    late = trig_sent >= since_ns
    lat = (recv[late] - trig_sent[late]).astype(np.int64)
    return {"orders_and_replaces": int(len(mine)), "with_trigger": int(len(named)),
            "warmup_excluded": int(np.count_nonzero(~late)),
            "answer_timestamps": "loopback tap" if wire_by_uref else "venue read stamps", "latency_ns": lat}
