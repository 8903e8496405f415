"""The obvious order book, for checking the real one: a dict of live orders, levels
aggregated on demand. Rows as book_events' (side BID/ASK here)."""
from __future__ import annotations

from collections import defaultdict

from tickpath.runtime.book.orderbook import BID


class RefBook:
    """The obvious book: dict of orders, levels aggregated on demand."""

    def __init__(self):
        self.orders = {}
        self.last = defaultdict(lambda: (0, 0))
        self.overfill = 0
        self.unknown = 0

    def apply(self, t, ref, side, shares, price, loc, ref2):
        if t in "AF":
            self.orders[ref] = [loc, side, price, shares]
        elif t == "P":
            self.last[loc] = (price, shares)
        elif ref not in self.orders:
            self.unknown += 1
        elif t in "ECX":
            o = self.orders[ref]
            if t != "X":
                self.last[o[0]] = (o[2] if t == "E" else price, shares)
            if shares > o[3]:
                self.overfill += 1
            o[3] -= min(shares, o[3])
            if o[3] == 0:
                del self.orders[ref]
        elif t == "D":
            del self.orders[ref]
        elif t == "U":
            loc0, side0, _, _ = self.orders.pop(ref)
            self.orders[ref2] = [loc0, side0, price, shares]

    def levels(self, loc, side):
        agg = defaultdict(lambda: [0, 0])
        for oloc, oside, price, shares in self.orders.values():
            if oloc == loc and oside == side:
                agg[price][0] += shares
                agg[price][1] += 1
        return [(p, s, n) for p, (s, n) in sorted(agg.items(), reverse=(side == BID))]
