"""Wall-to-wall matching on a hand-made venue log: exact pairs, warm-up, loss, answers twice,
strays, and the loopback tap's timestamps taking over from the venue's read stamps."""
from __future__ import annotations

import numpy as np

from tickpath.bench.t2t import w2w
from tickpath.bench.venue.timestamps import IN_LOG_DTYPE

O = ord("O")


def _log(rows, pkt_first, pkt_send):
    ins = np.zeros(len(rows), IN_LOG_DTYPE)
    for i, (user, kind, recv, itch_seq, clordid) in enumerate(rows):
        ins[i]["user"], ins[i]["kind"], ins[i]["recv_ns"] = user, kind, recv
        ins[i]["itch_seq"], ins[i]["clordid"] = itch_seq, clordid
    return {"ouch_in": ins, "itch_pkt_first_seq": np.array(pkt_first, np.int64),
            "itch_pkt_send_ns": np.array(pkt_send, np.int64)}


def test_pairs_warmup_loss_twice_and_strays():
    # packets: seqs 1-9 sent at 1000, 10-19 at 2000, 20-29 at 3000, 30- at 4000
    first, sent = [1, 10, 20, 30], [1000, 2000, 3000, 4000]
    rows = [(1, O, 900, 5, 0),      # trigger -> ITCH seq 5 (packet sent 1000): warm-up
            (1, O, 1900, 12, 0),    # seq 12, sent 2000
            (1, O, 2900, 25, 0),    # seq 25, sent 3000: never answered
            (1, O, 3900, 31, 0),    # seq 31, sent 4000: answered twice
            (1, ord("X"), 3950, 0, 0),
            (2, O, 1010, 0, 5),     # answer to the warm-up trigger
            (2, O, 2150, 0, 12),
            (2, O, 4070, 0, 31),
            (2, O, 4090, 0, 31),
            (2, O, 4100, 0, 777),   # names no trigger
            (3, O, 2100, 0, 12)]    # another user's order: not this responder's
    m = w2w.match(_log(rows, first, sent), 1, 2, warmup=1)
    lat = m.pop("latency_ns")
    assert m["triggers_sent"] == 4 and m["warmup_excluded"] == 1 and m["triggers_measured"] == 3
    assert (m["answered"], m["unanswered"], m["answered_twice"], m["stray_answers"]) == (2, 1, 1, 1)
    assert sorted(lat.tolist()) == [70, 150]          # the first answer of a pair counts
    s = w2w.stats(lat)
    assert s["samples"] == 2 and s["max"] == 150 and s["min"] == 70


def test_tap_times_replace_the_venues_read_stamps():
    rows = [(1, O, 900, 12, 0), (2, O, 2500, 0, 12)]     # read late by the venue: 500
    log = _log(rows, [10], [2000])
    m = w2w.match(log, 1, 2, warmup=0, wire={12: 2040})
    assert m["latency_ns"].tolist() == [40] and m["answer_timestamps"] == "loopback tap"
    m = w2w.match(log, 1, 2, warmup=0)
    assert m["latency_ns"].tolist() == [500] and m["answer_timestamps"] == "venue read stamps"
