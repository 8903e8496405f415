"""The market maker's quotes equal a plain-Python Avellaneda-Stoikov recomputation, and the
shortcuts taken for speed (the spread's constant computed once in new_state) give the very
doubles the per-update arithmetic gave."""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from trading_kit import Kit

from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.strategies import market_maker as MM

PARAMS = {"symbols": ["AAPL"], "vol_window": 8, "requote_ticks": 1, "max_inventory": 1_000,
          "quote_size": 100, "gamma": 0.1, "k": 100.0}


@njit(cache=True)
def _spread0_jitted(gamma, k):
    return (2.0 / gamma) * math.log(1.0 + gamma / k)   # what on_book computed every update


def test_spread_constant_is_the_per_update_expression_bit_for_bit():
    for gamma, k in ((0.1, 100.0), (0.37, 3.5), (1e-3, 1e4), (2.0, 0.25), (0.05, 17.0)):
        p = dict(MM.PARAMS, gamma=gamma, k=k)
        fp = MM.new_state(4, p).fp
        assert fp[MM.F_SPREAD0] == _spread0_jitted(gamma, k)
        assert fp[MM.F_SPREAD0].tobytes() == np.float64(_spread0_jitted(gamma, k)).tobytes()


def _python_quotes(mids, bp, ap, p):
    """(bid, ask) Price(4) after the last of `mids` (flat position), or None while warming up."""
    n = p["vol_window"]
    diffs = np.diff(np.array(mids, dtype=np.float64))
    if len(diffs) < n:
        return None
    w = diffs[-n:]
    sd = float(np.sqrt(np.mean((w - np.mean(w)) ** 2)))
    tick4 = round(p["tick"] * 1e4)
    sigma = max(sd, p["min_sigma_ticks"] * tick4) * 1e-4
    g = p["gamma"]
    r = mids[-1] * 1e-4
    delta = g * sigma * sigma * p["tau_s"] + (2.0 / g) * math.log(1.0 + g / p["k"])
    bid = math.floor((r - 0.5 * delta) * 1e4 / tick4) * tick4
    ask = math.ceil((r + 0.5 * delta) * 1e4 / tick4) * tick4
    ask = max(ask, bid + p["min_spread_ticks"] * tick4)
    return min(bid, ap - tick4), max(ask, bp + tick4)


def test_quotes_follow_a_plain_python_recomputation():
    p = dict(MM.PARAMS, **PARAMS)
    k = Kit(strategy="market_maker", params=PARAMS)
    k.listing(1, "AAPL")
    rng = np.random.default_rng(7)
    bp, ap = 99_000, 101_000
    mids, live, checked, old = [], {}, 0, []
    for i in range(60):
        bp += int(rng.integers(-3, 4)) * 100
        ap = bp + int(rng.integers(1, 5)) * 200
        k.now += 1_000_000
        new = [k.add(1, "B", bp), k.add(1, "S", ap)]
        # one batch: the old top deleted, the new one added (the maker sees the final book)
        n = k.feed([("D", 1, {"order_ref": r}) for r in old] + new)
        old = [e[2]["order_ref"] for e in new]
        mids.append(0.5 * (bp + ap))
        out = k.outbox(n)
        want = _python_quotes(mids, bp, ap, p)
        sides = {o["side"]: o for o in out}
        for side, px in zip((R.SIDE_BUY, R.SIDE_SELL), want or ()):
            if side in live and abs(live[side][1] - px) < 100:
                assert side not in sides, (i, side)          # within a tick: no requote
            else:
                assert side in sides and sides[side]["price"] == px, (i, side, px, out)
                checked += 1
        if want is None:
            assert out == []
        rs = []
        for o in out:   # the venue accepts each at once
            kind = "A" if o["kind"] == R.INTENT_NEW else "U"
            orig = 0 if kind == "A" else live[o["side"]][0]
            rs.append(k.resp(kind, o["uref"], o["qty"], o["price"], orig_uref=orig))
            live[o["side"]] = (o["uref"], o["price"])
        if rs:
            k.respond(*rs)
    assert checked > 20
