"""The fixed-quote-at-the-touch strategy written for hftbacktest (the oracle side of
test_oracle_hftbacktest.py): the same state machine as tickpath's `touch` strategy
(runtime/backtest/strategies.py) — one bid at the best bid and one ask at the best ask,
fixed size, GTC; a quote no longer at the touch is cancelled, re-entered once gone — acting
every `step_ns` of its clock. Fills are read from the order table after every step (the L3
exchange fills an order whole, once)."""
from __future__ import annotations

import numpy as np
from numba import njit

from hftbacktest import BUY, CANCELED, EXPIRED, FILLED, GTC, LIMIT, NEW, NONE, SELL


@njit
def run(hbt, step_ns, qty, out):
    """out: float64[N, 5] (exch_ts, price, qty, side +1/-1, order id). Returns fills written."""
    n = 0
    next_id = 1
    bid_id = 0
    ask_id = 0
    while hbt.elapse(step_ns) == 0:
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            o = values.get()
            if o.status == FILLED and n < out.shape[0]:
                out[n, 0] = o.exch_timestamp
                out[n, 1] = o.exec_price
                out[n, 2] = o.exec_qty
                out[n, 3] = 1.0 if o.side == BUY else -1.0
                out[n, 4] = o.order_id
                n += 1
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        for s in range(2):
            oid = bid_id if s == 0 else ask_id
            tick = depth.best_bid_tick if s == 0 else depth.best_ask_tick
            size = depth.best_bid_qty if s == 0 else depth.best_ask_qty
            active = False
            live = False
            o = orders.get(oid)
            if o is not None:
                if not (o.status == FILLED or o.status == CANCELED or o.status == EXPIRED):
                    active = True
                    live = o.status == NEW and o.req == NONE and o.price_tick != tick
            if not active:
                if size > 0:
                    if s == 0:
                        hbt.submit_buy_order(0, next_id, tick * depth.tick_size, qty, GTC, LIMIT, False)
                        bid_id = next_id
                    else:
                        hbt.submit_sell_order(0, next_id, tick * depth.tick_size, qty, GTC, LIMIT, False)
                        ask_id = next_id
                    next_id += 1
            elif live:
                hbt.cancel(0, oid, False)
    return n
