"""Data for the backtest tests: a generated L3 trading day (one or a few instruments, a sane
book — adds never cross, market orders consume the best level first-in first-out) written as
an ITCH 5.0 file, and the same day as hftbacktest's L3 event array (the oracle's input)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from tickpath.runtime.feed import itch
from tickpath.runtime.feed.itchfile import write_itch_file

TICK4 = 100                       # one cent in Price(4)
OPEN_NS = 34_200 * 1_000_000_000


class Day:
    """Messages plus a plain record of every book change (for the hftbacktest conversion)."""

    def __init__(self):
        self.msgs: list[bytes] = []
        self.ops: list[tuple] = []   # (kind, ts, ref, side, price4, qty, extra)


def make_day(seed: int = 1, n_steps: int = 4000, symbols=("ORCL",), mean_gap_ns: int = 20_000,
             mid4: int = 100_0000) -> Day:
    rnd = random.Random(seed)
    d = Day()
    ts = OPEN_NS - 10_000_000
    d.msgs.append(itch.encode_system_event(0, 0, ts, "O"))
    for k, s in enumerate(symbols):
        d.msgs.append(itch.encode_stock_directory(k + 1, 0, ts + 1 + k, s.ljust(8).encode()))
    ts = OPEN_NS
    d.msgs.append(itch.encode_system_event(0, 0, ts, "Q"))
    books = {k + 1: {"B": {}, "S": {}} for k in range(len(symbols))}   # side -> price -> [[ref, qty]]
    orders = {}                                                          # ref -> (loc, side, price)
    mids = {k + 1: mid4 for k in range(len(symbols))}
    nxt = {"ref": 1, "match": 1}

    def best(loc, side):
        lv = [p for p, q in books[loc][side].items() if q]
        if not lv:
            return None
        return max(lv) if side == "B" else min(lv)

    def add(loc, side, price, qty):
        nonlocal ts
        ref = nxt["ref"]
        nxt["ref"] += 1
        sym = symbols[loc - 1].ljust(8).encode()
        d.msgs.append(itch.encode_add(loc, 0, ts, ref, side, qty, sym, price))
        d.ops.append(("add", ts, ref, side, price, qty, loc))
        books[loc][side].setdefault(price, []).append([ref, qty])
        orders[ref] = (loc, side, price)

    def remove(ref):
        loc, side, price = orders.pop(ref)
        q = books[loc][side][price]
        for i, (r, _) in enumerate(q):
            if r == ref:
                del q[i]
                break
        if not q:
            del books[loc][side][price]

    def place_price(loc, side):
        bb, ba = best(loc, "B"), best(loc, "S")
        away = rnd.choice((0, 0, 0, 1, 1, 2, 3))
        if side == "B":
            ref_px = bb if bb is not None else (mids[loc] - TICK4)
            px = ref_px - away * TICK4
            if rnd.random() < 0.15 and ba is not None and bb is not None and ba - bb > TICK4:
                px = bb + TICK4                       # improve the bid inside the spread
            if ba is not None and px >= ba:
                px = ba - TICK4
        else:
            ref_px = ba if ba is not None else (mids[loc] + TICK4)
            px = ref_px + away * TICK4
            if rnd.random() < 0.15 and ba is not None and bb is not None and ba - bb > TICK4:
                px = ba - TICK4
            if bb is not None and px <= bb:
                px = bb + TICK4
        return max(px, TICK4)

    for loc in books:
        for i in range(1, 4):
            for _ in range(2):
                add(loc, "B", mids[loc] - i * TICK4, 100 * rnd.randint(1, 4))
                add(loc, "S", mids[loc] + i * TICK4, 100 * rnd.randint(1, 4))
    for _ in range(n_steps):
        ts += 1 + int(rnd.expovariate(1.0 / mean_gap_ns))
        loc = rnd.randint(1, len(symbols))
        sym = symbols[loc - 1].ljust(8).encode()
        u = rnd.random()
        live = [r for r, o in orders.items() if o[0] == loc]
        thin = {s: len(books[loc][s]) < 2 for s in "BS"}
        if u < 0.42 or not live or thin["B"] or thin["S"]:
            side = "B" if thin["B"] else ("S" if thin["S"] else rnd.choice("BS"))
            add(loc, side, place_price(loc, side), 100 * rnd.randint(1, 5) if rnd.random() > 0.1 else rnd.randint(1, 99))
        elif u < 0.67:
            ref = rnd.choice(live)
            _, side, price = orders[ref]
            d.msgs.append(itch.encode_delete(loc, 0, ts, ref))
            d.ops.append(("delete", ts, ref, side, price, 0, loc))
            remove(ref)
        elif u < 0.75:
            ref = rnd.choice(live)
            _, side, price = orders[ref]
            q = next(x for x in books[loc][side][price] if x[0] == ref)
            if q[1] < 2:
                continue
            cut = rnd.randint(1, q[1] - 1)
            q[1] -= cut
            d.msgs.append(itch.encode_cancel(loc, 0, ts, ref, cut))
            d.ops.append(("cancel", ts, ref, side, price, cut, q[1]))
        elif u < 0.83:
            ref = rnd.choice(live)
            _, side, price = orders[ref]
            remove(ref)
            new = nxt["ref"]
            nxt["ref"] += 1
            px = place_price(loc, side)
            qty = 100 * rnd.randint(1, 5)
            d.msgs.append(itch.encode_replace(loc, 0, ts, ref, new, qty, px))
            d.ops.append(("replace", ts, ref, side, px, qty, new))
            books[loc][side].setdefault(px, []).append([new, qty])
            orders[new] = (loc, side, px)
        else:
            # a market order: takes the best level(s) FIFO
            take_side = rnd.choice("BS")               # the resting side it hits
            want = 100 * rnd.randint(1, 6)
            while want > 0:
                px = best(loc, take_side)
                if px is None or len(books[loc][take_side]) < 2:
                    break
                q = books[loc][take_side][px]
                ref, left = q[0]
                x = min(left, want)
                want -= x
                m = nxt["match"]
                nxt["match"] += 1
                d.msgs.append(itch.encode_executed(loc, 0, ts, ref, x, m))
                d.ops.append(("exec", ts, ref, take_side, px, x, left - x))
                if x == left:
                    remove(ref)
                else:
                    q[0][1] = left - x
        mids[loc] = ((best(loc, "B") or mids[loc]) + (best(loc, "S") or mids[loc])) // 2
    return d


def to_hftbacktest(day: Day, feed_latency_ns: int, loc: int = 1) -> np.ndarray:
    """The day's book changes of one instrument as hftbacktest L3 events (prices in $)."""
    import hftbacktest as H
    rows = []
    flags = H.EXCH_EVENT | H.LOCAL_EVENT

    def side_flag(s):
        return H.BUY_EVENT if s == "B" else H.SELL_EVENT
    # a plain record per op; refs of other instruments never interfere (one asset here)
    loc_of = {}
    for kind, ts, ref, side, price, qty, extra in day.ops:
        if kind == "add":
            loc_of[ref] = extra
    for kind, ts, ref, side, price, qty, extra in day.ops:
        if loc_of.get(ref) != loc:
            continue
        lts = ts + feed_latency_ns
        if kind == "add":
            rows.append((H.ADD_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, qty, ref, 0, 0.0))
        elif kind == "delete":
            rows.append((H.CANCEL_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, 0, ref, 0, 0.0))
        elif kind == "cancel":     # partial cancel: the order keeps its place with fewer shares
            rows.append((H.MODIFY_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, extra, ref, 0, 0.0))
        elif kind == "replace":
            new = extra
            loc_of[new] = loc
            rows.append((H.CANCEL_ORDER_EVENT | flags | side_flag(side), ts, lts, 0.0, 0, ref, 0, 0.0))
            rows.append((H.ADD_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, qty, new, 0, 0.0))
        elif kind == "exec":
            rows.append((H.FILL_EVENT | flags | side_flag(side), ts, lts, price / 1e4, qty, ref, 0, 0.0))
            if extra == 0:
                rows.append((H.CANCEL_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, 0, ref, 0, 0.0))
            else:
                rows.append((H.MODIFY_ORDER_EVENT | flags | side_flag(side), ts, lts, price / 1e4, extra, ref, 0, 0.0))
    return np.array(rows, dtype=H.event_dtype)


@pytest.fixture
def day_file(tmp_path):
    """(path, Day) of a generated one-instrument day."""
    def make(name="day.itch", **kw):
        day = make_day(**kw)
        path = tmp_path / name
        write_itch_file(path, day.msgs)
        return str(path), day
    return make


@pytest.fixture
def hbt_converter():
    return to_hftbacktest
