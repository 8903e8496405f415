"""A book a bound made unreliable shows in the runtime's stats: which instrument and why
(`books_unreliable`), beside the counter BOOK_UNRELIABLE (instruments, once each) that the
books keep as they refuse (tests/runtime/book/test_book.py)."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.book.layout import REASON_LEVELS, REASON_ORDERS
from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import process_events
from tickpath.runtime.engine.runner import Runtime


def test_stats_name_the_unreliable_books_and_why():
    cfg = config.merge({"feed": {"port": 0}, "book": {"instruments": 8, "max_orders": 64, "max_levels": 2}})
    rt = Runtime(cfg)
    try:
        assert rt.stats()["books_unreliable"] == {}
        # three bid levels on locate 3 (two allowed): the third is refused, the book marked
        ev = np.zeros(3, EVENT_DTYPE)
        for i, px in enumerate((100, 101, 102)):
            ev[i]["seq"], ev[i]["msg_type"], ev[i]["locate"] = i + 1, ord("A"), 3
            ev[i]["order_ref"], ev[i]["side"], ev[i]["shares"], ev[i]["price"] = i + 1, ord("B"), 10, px
        process_events(rt.pipe.arrays, ev, 3)
        rt.pipe.books.unreliable[5] |= REASON_ORDERS      # as a full order table would mark it
        st = rt.stats()
        assert st["books_unreliable"] == {3: ["levels_full"], 5: ["orders_full"]}
        assert st["counters"]["book_unreliable"] == 1 and st["counters"]["book_levels_full"] == 1
        assert rt.pipe.books.unreliable[3] == REASON_LEVELS
    finally:
        rt.close()
