"""Helpers for the trading core's tests: a small pipeline, hand-made feed events and venue
responses, a TradeCtx with a scripted (or any) strategy, and a Python recomputation of P&L."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import Pipeline, process_events
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import new_trade_ctx, symbol_u64
from tickpath.runtime.trading.risk import validate_risk
from tickpath.runtime.trading.strategy import load_strategy

N_LOC = 16
OFF = {k: 0 for k in ("max_order_qty", "max_notional", "price_collar_pct", "max_position",
                      "max_total_position", "max_open_orders", "max_orders_per_s",
                      "max_orders_per_100ms", "max_msgs_per_s", "max_msgs_per_100ms",
                      "duplicate_window_ms", "max_loss", "max_venue_rejects_per_s", "max_breaches",
                      "market_data_stale_ms")}


class Kit:
    """One pipeline + one trading context + its strategy; `book()` sets a BBO, `intend()`
    scripts intents, `step()` runs trade_on_events, `respond()` feeds venue responses."""

    def __init__(self, risk: dict | None = None, strategy: str = "trading_scripted:Scripted",
                 params: dict | None = None, timer_ms: int = 0, order_capacity: int = 1 << 10,
                 audit=None, all_off: bool = True, outbox_capacity: int = 1024):
        r = dict(OFF) if all_off else {}
        r.update(risk or {})
        if all_off:
            r.setdefault("check_book", False)
        self.risk_cfg = validate_risk(r)
        self.pipe = Pipeline(n_locates=N_LOC, max_orders=1 << 12, max_levels=16)
        self.strategy = load_strategy(strategy, params)
        self.strat = self.strategy.new_state(N_LOC)
        self.tctx = new_trade_ctx(N_LOC, self.risk_cfg, order_capacity=order_capacity, timer_ms=timer_ms, audit=audit,
                                  outbox_capacity=outbox_capacity)
        self.events = np.zeros(64, dtype=EVENT_DTYPE)
        self.responses = R.new_responses(64)
        self.seq = 0
        self.resp_seq = 0
        self.ref = 1000
        self.now = 1_000_000_000_000
        self.mref = 0

    # -- feed -------------------------------------------------------------------------------
    def _ev(self, i, t, loc, **kw):
        self.seq += 1
        e = self.events[i]
        e["seq"] = self.seq
        e["ts_recv"] = kw.pop("ts_recv", self.now)
        e["msg_type"] = ord(t)
        e["locate"] = loc
        for k, v in kw.items():
            e[k] = v

    def feed(self, evs) -> int:
        """evs: list of (type, locate, fields); applied to books, then trade_on_events."""
        self.events[:] = 0
        for i, (t, loc, kw) in enumerate(evs):
            self._ev(i, t, loc, **kw)
        n = len(evs)
        process_events(self.pipe.arrays, self.events, n)
        return self.strategy.trade_on_events(self.tctx, self.strat, self.pipe.arrays, self.events, n,
                                             self.now)

    def listing(self, loc: int, symbol: str) -> int:
        return self.feed([("R", loc, {"ref2": symbol_u64(symbol)})])

    def add(self, loc, side, price4, shares=100):
        self.ref += 1
        return ("A", loc, {"order_ref": self.ref, "side": ord(side), "shares": shares, "price": price4})

    def book(self, loc: int, bid4: int, ask4: int, shares: int = 100) -> int:
        """Add a bid and an ask to `loc` (then the strategy runs)."""
        return self.feed([self.add(loc, "B", bid4, shares), self.add(loc, "S", ask4, shares)])

    def touch(self, loc: int) -> int:
        """A feed event for `loc` that changes nothing much (a new far bid): the strategy runs."""
        return self.feed([self.add(loc, "B", 1, 100)])

    def step(self, n_events: int = 0) -> int:
        return self.strategy.trade_on_events(self.tctx, self.strat, self.pipe.arrays, self.events,
                                             n_events, self.now)

    # -- strategy script ----------------------------------------------------------------------
    def intend(self, kind, loc=1, side="B", qty=100, price4=100_000, uref=0, tif=R.TIF_DAY):
        s = self.strat
        k = int(s.n[0])
        it = s.script[k]
        it["kind"], it["locate"], it["side"], it["qty"] = kind, loc, ord(side), qty
        it["price"], it["uref"], it["tif"] = price4, uref, tif
        s.n[0] = k + 1

    def new(self, loc=1, side="B", qty=100, price4=100_000, tif=R.TIF_DAY):
        self.intend(R.INTENT_NEW, loc, side, qty, price4, tif=tif)

    def outbox(self, n):
        """outbox[0:n] as dicts (pad left out)."""
        return [{name: self.tctx.outbox[i][name].item() for name in R.INTENT_DTYPE.names if name != "pad"}
                for i in range(n)]

    # -- venue ----------------------------------------------------------------------------------
    def resp(self, kind, uref, qty=0, price=0, orig_uref=0, state="L", seq=None, reason=0):
        r = np.zeros(1, dtype=R.RESPONSE_DTYPE)[0]
        if seq is None:
            self.resp_seq += 1
            seq = self.resp_seq
        r["kind"], r["uref"], r["qty"], r["price"] = ord(kind) if isinstance(kind, str) else kind, uref, qty, price
        r["orig_uref"], r["state"], r["seq"], r["reason"] = orig_uref, ord(state), seq, reason
        r["recv_ns"] = self.now
        if r["kind"] == R.RESP_EXECUTED:
            self.mref += 1
            r["ref"] = self.mref
        return r

    def respond(self, *rs) -> int:
        for i, r in enumerate(rs):
            self.responses[i] = r
        return self.strategy.trade_on_responses(self.tctx, self.strat, self.responses, len(rs), self.now)

    def counter(self, name):
        from tickpath.runtime.trading.layout import COUNTER_NAMES
        inv = {v: k for k, v in COUNTER_NAMES.items()}
        return int(self.tctx.counters[inv[name]])


def python_pnl(fills, fee_per_share=0.0, mark4=None):
    """Plain-Python average-price P&L: fills = [(side 'B'/'S', qty, price4)] ->
    (position, avg_price4, realised $, fees $, unrealised $ at mark4)."""
    pos, avg, realised, fees = 0, 0.0, 0.0, 0.0
    for side, qty, px in fills:
        fees += qty * fee_per_share
        s = qty if side == "B" else -qty
        if pos == 0 or (pos > 0) == (s > 0):
            avg = (avg * abs(pos) + px * qty) / abs(pos + s)
            pos += s
            continue
        closed = min(abs(pos), qty)
        realised += (1 if pos > 0 else -1) * (px - avg) * closed / 1e4
        newpos = pos + s
        if newpos == 0:
            avg = 0.0
        elif (newpos > 0) != (pos > 0):
            avg = float(px)
        pos = newpos
    unreal = pos * (mark4 - avg) / 1e4 if (mark4 is not None and pos) else 0.0
    return pos, avg, realised, fees, unreal
