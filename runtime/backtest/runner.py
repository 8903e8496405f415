"""One backtest of one file, and the configuration it reads (slow path: builds everything,
drives loop.run_batch batch by batch, returns a JSON-able summary plus the fill log).

Config: `[strategy]` (name, symbol, qty, timer_ns, on_events) and `[backtest]` (keys in
BACKTEST_DEFAULTS). Unknown sections or keys, wrong types and impossible values are
ConfigErrors naming section.key. Per file, a bad file (corrupt, truncated, its directory
lacking the instrument) is a ConfigError the caller reports for that file alone.
"""
from __future__ import annotations

import copy
import hashlib
import os
import time

import numpy as np

from tickpath.runtime.backtest import latency as L
from tickpath.runtime.backtest import loop as LP
from tickpath.runtime.backtest.exchange import new_exchange
from tickpath.runtime.backtest.metrics import summarise
from tickpath.runtime.backtest.records import CTR_NAMES, FP_FEES, MODELS, ST_N_FILLS
from tickpath.runtime.backtest.source import EventSource, resolve
from tickpath.runtime.backtest.strategies import BINDINGS, new_ctx
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import P_LAT_MIN_SEQ, Pipeline
from tickpath.runtime.trading.records import new_intents

STRATEGY_DEFAULTS = {"name": "touch", "symbol": "", "qty": 100, "timer_ns": 1_000_000,
                     "on_events": False}
BACKTEST_DEFAULTS = {
    "queue_model": "l3_fifo", "power_n": 2.0, "trade_through": True,
    "feed_latency": 0, "entry_latency": 0, "response_latency": 0, "seed": 1,
    "sample_ns": 1_000_000_000, "maker_fee": 0.0, "taker_fee": 0.0,
    "instruments": 8192, "max_orders": 1 << 20, "max_levels": 256,
}
SECTIONS = {"strategy": STRATEGY_DEFAULTS, "backtest": BACKTEST_DEFAULTS}


def normalise(cfg: dict | None) -> dict:
    """Defaults filled in, types checked (ConfigError naming section.key)."""
    cfg = cfg or {}
    out = {}
    for sec in cfg:
        if sec not in SECTIONS and sec != "risk":
            raise ConfigError("unknown config section", key=sec, allowed=sorted(SECTIONS) + ["risk"])
    for sec, defaults in SECTIONS.items():
        got = dict(cfg.get(sec, {}))
        for k in got:
            if k not in defaults:
                raise ConfigError("unknown config key", key=f"{sec}.{k}", allowed=sorted(defaults))
        merged = dict(defaults)
        for k, v in got.items():
            d = defaults[k]
            if k.endswith("_latency"):
                pass   # ns or a model string: latency.from_spec checks it
            elif isinstance(d, bool):
                if not isinstance(v, bool):
                    raise ConfigError("must be true or false", key=f"{sec}.{k}", value=v)
            elif isinstance(d, int) and (isinstance(v, bool) or not isinstance(v, int)):
                raise ConfigError("must be an integer", key=f"{sec}.{k}", value=v)
            elif isinstance(d, float) and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise ConfigError("must be a number", key=f"{sec}.{k}", value=v)
            elif isinstance(d, str) and not isinstance(v, str):
                raise ConfigError("must be a string", key=f"{sec}.{k}", value=v)
            merged[k] = v
        out[sec] = merged
    out["risk"] = dict(cfg.get("risk", {}))
    s, b = out["strategy"], out["backtest"]
    if s["name"] not in BINDINGS:
        raise ConfigError("unknown strategy", key="strategy.name", value=s["name"], allowed=sorted(BINDINGS))
    if not s["symbol"]:
        raise ConfigError("strategy needs an instrument", key="strategy.symbol")
    for key, lo in (("qty", 1), ("timer_ns", 0)):
        if s[key] < lo:
            raise ConfigError("out of range", key=f"strategy.{key}", value=s[key], min=lo)
    if b["queue_model"] not in MODELS:
        raise ConfigError("unknown queue model", key="backtest.queue_model",
                          value=b["queue_model"], allowed=sorted(MODELS))
    for key in ("sample_ns", "instruments", "max_orders", "max_levels"):
        if b[key] < 1:
            raise ConfigError("must be positive", key=f"backtest.{key}", value=b[key])
    return out


def _latencies(b: dict, base_dir: str):
    return tuple(L.from_spec(b[k], f"backtest.{k}", b["seed"] + i, base_dir)
                 for i, k in enumerate(("feed_latency", "entry_latency", "response_latency")))


def run_file(path: str, cfg: dict, *, progress=None, base_dir: str = ".") -> dict:
    """Backtest one file; returns the summary dict with `fill_log` (bytes) and `samples`."""
    cfg = normalise(cfg)
    s, b = cfg["strategy"], cfg["backtest"]
    feed_lat, entry_lat, rsp_lat = _latencies(b, base_dir)
    loc = resolve(path, [s["symbol"]], b["instruments"])[s["symbol"]]
    t0 = time.perf_counter()
    pipe = Pipeline(n_locates=b["instruments"], max_orders=b["max_orders"], max_levels=b["max_levels"])
    pipe.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max    # no wall-clock latency in a backtest
    ex_pipe = Pipeline(n_locates=b["instruments"], max_orders=b["max_orders"], max_levels=b["max_levels"])
    ex = new_exchange(b["instruments"], model=MODELS[b["queue_model"]], power_n=b["power_n"],
                      trade_through=b["trade_through"], maker_fee=b["maker_fee"],
                      taker_fee=b["taker_fee"], response_latency=rsp_lat, seed=b["seed"])
    sctx = new_ctx(loc, s["qty"], on_events=s["on_events"],
                   feed_latency_min_ns=int(feed_lat.min()))
    outbox = new_intents(64)
    bind = BINDINGS[s["name"]]
    src = EventSource(path)
    batch = np.zeros(1 << 16, dtype=EVENT_DTYPE)
    lp = LP.new_loop_state(len(batch), b["instruments"], feed_latency=feed_lat,
                           entry_latency=entry_lat, timer_ns=s["timer_ns"],
                           sample_ns=b["sample_ns"], seed=b["seed"])
    digest = hashlib.sha256()
    fills_parts, sample_parts = [], []
    dec_ctr = C.new_counters()
    carry = 0

    def flush():
        nf = int(ex.st[ST_N_FILLS])
        if nf:
            chunk = ex.fills[:nf].copy()
            digest.update(chunk.tobytes())
            fills_parts.append(chunk)
            ex.st[ST_N_FILLS] = 0
        ns = int(lp.cur[LP.CUR_N_SAMPLES])
        if ns:
            sample_parts.append(lp.samples[:ns].copy())
            lp.cur[LP.CUR_N_SAMPLES] = 0

    def drive(n, final):
        while True:
            rc = bind(sctx, outbox, pipe.arrays, lp, ex, ex_pipe.books, ex_pipe.counters,
                      batch, n, final)
            if rc == LP.FLUSH:
                flush()
                continue
            return rc

    for events in src.batches(dec_ctr, progress):
        m = len(events)
        if carry + m > len(batch):     # grow (the carried tail + this batch)
            nb = np.zeros(2 * (carry + m), dtype=EVENT_DTYPE)
            nb[:carry] = batch[:carry]
            nd = np.zeros(len(nb), dtype=np.int64)
            nd[:carry] = lp.deliver[:carry]
            batch = nb
            lp = lp._replace(deliver=nd)
        batch[carry:carry + m] = events
        drive(carry + m, False)
        f = int(lp.cur[LP.CUR_F])
        n = carry + m
        carry = n - f
        batch[:carry] = batch[f:n]          # not yet delivered to the strategy: keep
        lp.deliver[:carry] = lp.deliver[f:n]
        lp.cur[LP.CUR_E] -= f
        lp.cur[LP.CUR_F] = 0
    drive(carry, True)
    flush()
    elapsed = time.perf_counter() - t0
    fills = np.concatenate(fills_parts) if fills_parts else np.zeros(0, dtype=ex.fills.dtype)
    samples = np.concatenate(sample_parts) if sample_parts else np.zeros(0, dtype=lp.samples.dtype)
    ctr = {name: int(ex.ctr[i]) for i, name in enumerate(CTR_NAMES)}
    summary = summarise(fills, samples, ctr, float(ex.fp[FP_FEES]), b["sample_ns"] / 1e9)
    dec = {k: v for k, v in C.as_dict(dec_ctr).items() if v}
    summary.update({
        "file": os.fspath(path), "format": src.format, "symbol": s["symbol"], "locate": loc,
        "fill_log_sha256": digest.hexdigest(), "events": ctr["exchange_events"],
        "elapsed_s": elapsed, "events_per_s": ctr["exchange_events"] / elapsed if elapsed > 0 else 0.0,
        "counters": {k: v for k, v in ctr.items() if v}, "decoder": dec,
        "book": {k: v for k, v in C.as_dict(ex_pipe.counters).items() if v},
        "itch_file": dict(src.itch_stats),
        "config": {"strategy": s, "backtest": {k: v for k, v in b.items()}},
    })
    summary["fill_log"] = fills
    summary["samples"] = samples
    if src.itch_stats.get("truncated_tail_bytes"):
        summary["warnings"] = [f"file ends inside a message: {src.itch_stats['truncated_tail_bytes']} bytes not decoded"]
    return summary


def apply_override(cfg: dict, key: str, value) -> dict:
    """A copy of cfg with section.key set (ConfigError for a key that does not exist)."""
    sec, _, k = key.partition(".")
    if sec not in SECTIONS or k not in SECTIONS[sec]:
        raise ConfigError("grid key does not exist", key=key,
                          allowed=sorted(f"{s}.{x}" for s, d in SECTIONS.items() for x in d))
    out = copy.deepcopy(cfg)
    out.setdefault(sec, {})[k] = value
    return out
