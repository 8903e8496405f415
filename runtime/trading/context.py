"""TradeCtx: every array of the trading core, by name, allocated once (Python) and handed to the
jitted step (numba types a NamedTuple like a tuple: names cost nothing at run time).

`new_trade_ctx(n_locates, risk_cfg, ...)` builds one from a validated [risk] table
(risk.validate_risk), so the live loop, the backtest and the tests make it the same way.

The strategy's own state (its `new_state(n_locates, params)`) is NOT in here: it travels as a
separate argument. Why: every cached function that takes a TradeCtx gets an entry in numba's
on-disk index, and that index pickles argument types; a strategy's NamedTuple pickles by
class reference, so one strategy's state type in the core's index would make every process
that cannot import that strategy fail to load the core (numba raises on the unpickle).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tickpath.runtime.engine import latency
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading import risk as K
from tickpath.runtime.trading.audit import layout as AL
from tickpath.runtime.trading.audit.writer import AuditWriter
from tickpath.runtime.trading.killswitch import new_local_flags
from tickpath.runtime.ipc.ring import Ring


class TradeCtx(NamedTuple):
    orders: np.ndarray       # layout.ORDER_DTYPE[capacity], slot = uref & (capacity - 1)
    loc: np.ndarray          # int64[n_locates, N_LOC]: open orders/shares, position, guards
    pnl: np.ndarray          # float64[n_locates, N_PNL]
    tot: np.ndarray          # float64[N_TOT]: P&L totals, kept incrementally
    symbols: np.ndarray      # uint64[n_locates]: ITCH stock bytes (little-endian) from 'R'
    restricted: np.ndarray   # uint64[k]: symbols never traded
    intents: np.ndarray      # INTENT_DTYPE[n]: what the strategy asked for in this call
    outbox: np.ndarray       # INTENT_DTYPE[n]: what passed, for order entry to send
    risk_i: np.ndarray       # int64[risk.N_RI]
    risk_f: np.ndarray       # float64[risk.N_RF]
    rates: np.ndarray        # int64[risk.N_RATES, ring]: sliding-window throttle rings
    st: np.ndarray           # int64[N_ST]: scalar state
    counters: np.ndarray     # int64[N_TC]
    kill: np.ndarray         # int64 kill flags (killswitch.py; a shared-memory file when live)
    t2t: np.ndarray          # tick-to-trade histogram: event received -> send() returned
    t2t_call: np.ndarray     # event received -> send() called (the software alone, no syscall)
    touched: np.ndarray      # int64[n_locates]: scratch list of locates a batch touched
    audit: AuditWriter       # the audit ring's writer side (st[S_AUDIT_ON] = 0: not written)


def symbol_u64(symbol: str) -> int:
    """The ITCH 8-byte, space-padded stock field as the little-endian u64 the event record uses."""
    return int.from_bytes(symbol.encode("ascii").ljust(8, b" ")[:8], "little")


def new_trade_ctx(n_locates: int, risk_cfg: dict, *, order_capacity: int = 1 << 14,
                  intents_capacity: int = 256, outbox_capacity: int = 1024, timer_ms: int = 0,
                  kill: np.ndarray | None = None, first_uref: int = 1,
                  audit: AuditWriter | None = None) -> TradeCtx:
    """audit: `AuditLog(...).writer` to log every order's life; None = no audit log."""
    if order_capacity < 64 or order_capacity & (order_capacity - 1):
        raise ValueError(f"order_capacity must be a power of two >= 64: {order_capacity}")
    if not 1 <= first_uref <= 0xFFFFFFFF:
        raise ValueError(f"first_uref out of range: {first_uref}")
    ri, rf, rates = K.risk_arrays(risk_cfg, timer_ms)
    pnl = np.zeros((n_locates, T.N_PNL), dtype=np.float64)
    pnl[:, T.P_MARK] = np.nan
    st = np.zeros(T.N_ST, dtype=np.int64)
    st[T.S_NEXT_UREF] = first_uref
    if audit is None:   # a 2-slot ring nobody drains; S_AUDIT_ON = 0 keeps the step off it
        ring = Ring.create(2, AL.AUDIT_DTYPE)
        audit = AuditWriter(ring.hdr, ring.data, np.zeros(AL.N_WCTL, np.int64))
    else:
        st[T.S_AUDIT_ON] = 1
    restricted = np.array([symbol_u64(s) for s in risk_cfg["restricted"]] or [0], dtype=np.uint64)
    if not risk_cfg["restricted"]:
        restricted = np.zeros(0, dtype=np.uint64)
    return TradeCtx(
        orders=np.zeros(order_capacity, dtype=T.ORDER_DTYPE),
        loc=np.zeros((n_locates, T.N_LOC), dtype=np.int64),
        pnl=pnl,
        tot=np.zeros(T.N_TOT, dtype=np.float64),
        symbols=np.zeros(n_locates, dtype=np.uint64),
        restricted=restricted,
        intents=R.new_intents(intents_capacity),
        outbox=R.new_intents(outbox_capacity),
        risk_i=ri, risk_f=rf, rates=rates, st=st,
        counters=np.zeros(T.N_TC, dtype=np.int64),
        kill=new_local_flags() if kill is None else kill,
        t2t=latency.new_histogram(),
        t2t_call=latency.new_histogram(),
        touched=np.zeros(n_locates, dtype=np.int64),
        audit=audit,
    )


def set_symbol(tctx: TradeCtx, loc: int, symbol: str) -> None:
    """Python-side symbol mapping (tests; the loop learns it from 'R' messages)."""
    sym = symbol_u64(symbol)
    tctx.symbols[loc] = sym
    if sym in set(int(x) for x in tctx.restricted):
        tctx.loc[loc, T.L_RESTRICTED] = 1


def positions_report(tctx: TradeCtx) -> dict:
    """Per-instrument positions and P&L for the summary (instruments ever traded)."""
    out = {}
    for loc in np.nonzero((tctx.pnl[:, T.P_BOUGHT] + tctx.pnl[:, T.P_SOLD]) > 0)[0]:
        sym = int(tctx.symbols[loc]).to_bytes(8, "little").decode("ascii", "replace").strip() or str(loc)
        p = tctx.pnl[loc]
        out[sym] = {"locate": int(loc), "position": int(tctx.loc[loc, T.L_POS]),
                    "avg_price": round(float(p[T.P_AVG_PX]) * 1e-4, 6),
                    "realised": round(float(p[T.P_REALISED]), 4),
                    "unrealised": round(float(p[T.P_UNREALISED]), 4),
                    "fees": round(float(p[T.P_FEES]), 4),
                    "bought": int(p[T.P_BOUGHT]), "sold": int(p[T.P_SOLD])}
    return out


def totals(tctx: TradeCtx) -> dict:
    t = tctx.tot
    return {"realised": float(t[T.TOT_REALISED]), "unrealised": float(t[T.TOT_UNREALISED]),
            "fees": float(t[T.TOT_FEES]),
            "net": float(t[T.TOT_REALISED] + t[T.TOT_UNREALISED] - t[T.TOT_FEES]),
            "gross_position": int(tctx.st[T.S_TOTAL_ABS_POS]), "open_orders": int(tctx.st[T.S_N_OPEN])}
