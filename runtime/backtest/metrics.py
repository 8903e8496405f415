"""Summary statistics of a backtest from its fill log and P&L samples (slow path, numpy).

P&L: realised (average-cost accounting per locate, from executions only), marked to market
(equity at the close: cash + position × mid − fees), fees. Risk figures are computed on the
series of equity changes between samples, at the sampling interval stated in the summary
(`sample_interval_s`): Sharpe and Sortino per sample and annualised with sqrt(samples per
252-day year of 6.5-hour sessions), maximum drawdown (dollars, from the running peak),
Calmar (annualised return over maximum drawdown), historical VaR and expected shortfall at
95 % and 99 % of one sample's P&L (losses as positive dollars).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_SESSION_S = 6.5 * 3600
_DAYS = 252
_BUY = ord("B")


def realised_pnl(fills: np.ndarray) -> float:
    if len(fills) == 0:
        return 0.0
    n_loc = int(fills["locate"].max()) + 1
    return float(_realised(np.ascontiguousarray(fills["locate"]), np.ascontiguousarray(fills["qty"]),
                           np.ascontiguousarray(fills["side"]), np.ascontiguousarray(fills["price"]),
                           np.zeros(n_loc, dtype=np.int64), np.zeros(n_loc, dtype=np.float64)))


@njit(nogil=True, cache=True)
def _realised(locs, qtys, sides, prices, pos, avg):
    """Average-cost realised P&L over the fills in order (compiled: a Python loop over a
    day's fills cost more than the simulation of a short file). pos/avg: per locate."""
    real = 0.0
    for i in range(locs.shape[0]):
        loc = np.int64(locs[i])
        q = np.int64(qtys[i]) if sides[i] == _BUY else -np.int64(qtys[i])
        px = np.float64(prices[i]) * 1e-4
        p = pos[loc]
        a = avg[loc]
        if p == 0 or (p > 0) == (q > 0):
            avg[loc] = (a * abs(p) + px * abs(q)) / (abs(p) + abs(q))
            pos[loc] = p + q
            continue
        close = min(abs(q), abs(p))
        real += close * (px - a) * (1 if p > 0 else -1)
        left = p + q
        pos[loc] = left
        if left != 0 and (left > 0) != (p > 0):
            avg[loc] = px          # flipped: the rest opened at this price
        elif left == 0:
            avg[loc] = 0.0
    return real


def risk_stats(equity: np.ndarray, interval_s: float) -> dict:
    d = np.diff(equity) if len(equity) > 1 else np.zeros(0)
    out = {"sample_interval_s": interval_s, "samples": int(len(equity))}
    per_year = (_SESSION_S * _DAYS) / interval_s if interval_s > 0 else 0.0
    if len(d) >= 2 and np.std(d) > 0:
        out["sharpe_per_sample"] = float(np.mean(d) / np.std(d, ddof=1))
        out["sharpe_annualised"] = out["sharpe_per_sample"] * math.sqrt(per_year)
    else:
        out["sharpe_per_sample"] = out["sharpe_annualised"] = None
    downside = d[d < 0]
    if len(d) >= 2 and len(downside) >= 1:
        dd = math.sqrt(float(np.mean(np.minimum(d, 0.0) ** 2)))
        out["sortino_per_sample"] = float(np.mean(d) / dd) if dd > 0 else None
        out["sortino_annualised"] = (out["sortino_per_sample"] * math.sqrt(per_year)
                                     if out["sortino_per_sample"] is not None else None)
    else:
        out["sortino_per_sample"] = out["sortino_annualised"] = None
    if len(equity):
        peak = np.maximum.accumulate(equity)
        mdd = float(np.max(peak - equity))
    else:
        mdd = 0.0
    out["max_drawdown"] = mdd
    span_s = interval_s * max(len(d), 1)
    total = float(equity[-1] - equity[0]) if len(equity) else 0.0
    annual = total * (_SESSION_S * _DAYS) / span_s if span_s > 0 else 0.0
    out["calmar"] = annual / mdd if mdd > 0 else None
    for level in (95, 99):
        if len(d):
            var = -float(np.percentile(d, 100 - level))
            tail = d[d <= -var]
            out[f"var_{level}"] = var
            out[f"es_{level}"] = -float(np.mean(tail)) if len(tail) else var
        else:
            out[f"var_{level}"] = out[f"es_{level}"] = 0.0
    return out


def summarise(fills: np.ndarray, samples: np.ndarray, counters: dict, fees: float,
              interval_s: float) -> dict:
    eq = samples["equity"].astype(np.float64) if len(samples) else np.zeros(0)
    net = samples["net_position"] if len(samples) else np.zeros(0, dtype=np.int64)
    gross = samples["gross_position"] if len(samples) else np.zeros(0, dtype=np.int64)
    lat = (fills["exch_ns"] - fills["sent_ns"]) if len(fills) else np.zeros(0)
    orders = counters.get("orders", 0)
    filled_orders = len(np.unique(fills["uref"])) if len(fills) else 0
    out = {
        "pnl": {"realised": realised_pnl(fills), "mark_to_market": float(eq[-1]) if len(eq) else 0.0,
                "fees": fees},
        "orders": orders, "fills": int(len(fills)),
        "filled_shares": int(fills["qty"].sum()) if len(fills) else 0,
        "cancels": counters.get("cancels", 0), "rejects": counters.get("rejects", 0),
        "fill_ratio": filled_orders / orders if orders else 0.0,
        "inventory": {
            "final_net": int(net[-1]) if len(net) else 0,
            "max_abs_net": int(np.max(np.abs(net))) if len(net) else 0,
            "mean_abs_net": float(np.mean(np.abs(net))) if len(net) else 0.0,
            "max_gross": int(np.max(gross)) if len(gross) else 0,
        },
        "fill_latency_ns": ({"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                             "max": float(np.max(lat))} if len(lat) else None),
    }
    out["risk"] = risk_stats(eq, interval_s)
    return out
