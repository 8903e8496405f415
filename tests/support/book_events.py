"""Event records for book tests, from short rows: (type, ref, side, shares, price, locate)."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.core.event import EVENT_DTYPE


def book_events(rows) -> np.ndarray:
    """One EVENT_DTYPE record per row; side is 'B', 'S' or None (messages that carry none)."""
    e = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (t, ref, side, shares, price, loc) in enumerate(rows):
        e[i]["msg_type"] = ord(t)
        e[i]["order_ref"] = ref
        e[i]["side"] = ord(side) if side else 0
        e[i]["shares"] = shares
        e[i]["price"] = price
        e[i]["locate"] = loc
    return e
