"""Positions and P&L per instrument and in total, from executions only.

Average-price accounting: a fill that adds to the position moves the average entry price;
a fill against it realises (fill - average) * shares on the closed part (sign by side), and
what is left over opens a new position at the fill price. Fees are `fees_per_share` dollars
on every executed share (negative = a rebate). Marked to market against the mid at each book
update of an instrument held (P_UNREALISED). Prices are Price(4) integers, P&L in dollars.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R

PX_SCALE = 1e-4           # Price(4) -> dollars
RF_FEES_PER_SHARE = 0     # risk_f slot (risk.py owns the rest of the array)


@njit(nogil=True, cache=True, _nrt=False)
def pos_fill(tctx, loc, side, qty, price):
    """Apply one execution of `qty` shares at `price` (Price(4)) on `side` to locate `loc`."""
    if loc < 0 or loc >= tctx.loc.shape[0] or qty <= 0:
        return
    pnl = tctx.pnl
    q = tctx.loc[loc, T.L_POS]
    signed = qty if side == R.SIDE_BUY else -qty
    if side == R.SIDE_BUY:
        pnl[loc, T.P_BOUGHT] += qty
    else:
        pnl[loc, T.P_SOLD] += qty
    fee = qty * tctx.risk_f[RF_FEES_PER_SHARE]
    pnl[loc, T.P_FEES] += fee
    tctx.tot[T.TOT_FEES] += fee
    avg = pnl[loc, T.P_AVG_PX]
    if q == 0 or (q > 0) == (signed > 0):
        # opening or adding: the average moves
        nq = q + signed
        pnl[loc, T.P_AVG_PX] = (avg * abs(q) + np.float64(price) * qty) / abs(nq)
    else:
        closed = min(abs(q), qty)
        direction = 1.0 if q > 0 else -1.0
        realised = direction * (np.float64(price) - avg) * closed * PX_SCALE
        pnl[loc, T.P_REALISED] += realised
        tctx.tot[T.TOT_REALISED] += realised
        nq = q + signed
        if nq == 0:
            pnl[loc, T.P_AVG_PX] = 0.0
        elif (nq > 0) != (q > 0):
            pnl[loc, T.P_AVG_PX] = np.float64(price)   # flipped: the rest opens at the fill
    tctx.loc[loc, T.L_POS] = nq
    tctx.st[T.S_TOTAL_ABS_POS] += abs(nq) - abs(q)
    pos_mark(tctx, loc, pnl[loc, T.P_MARK])


@njit(nogil=True, cache=True, _nrt=False)
def pos_mark(tctx, loc, mid_px4):
    """Mark locate `loc`'s position to `mid_px4` (Price(4); NaN = keep the last mark)."""
    p = tctx.pnl
    if mid_px4 == mid_px4:
        p[loc, T.P_MARK] = mid_px4
    q = tctx.loc[loc, T.L_POS]
    old = p[loc, T.P_UNREALISED]
    if q == 0:
        new = 0.0
    elif p[loc, T.P_MARK] == p[loc, T.P_MARK]:
        new = q * (p[loc, T.P_MARK] - p[loc, T.P_AVG_PX]) * PX_SCALE
    else:
        new = old   # never marked: no mid seen yet
    p[loc, T.P_UNREALISED] = new
    tctx.tot[T.TOT_UNREALISED] += new - old


@njit(nogil=True, inline="always")
def net_pnl(tctx):
    """Realised + marked-to-market - fees over every instrument, dollars (kept incrementally)."""
    t = tctx.tot
    return t[T.TOT_REALISED] + t[T.TOT_UNREALISED] - t[T.TOT_FEES]
