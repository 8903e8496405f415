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
from tickpath.runtime.backtest.bindings import probe_binding
from tickpath.runtime.backtest.strategies import PROBES, new_ctx
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import P_BOOKS_ONLY, P_LAT_MIN_SEQ, Pipeline
from tickpath.runtime.trading.records import new_intents

BATCH_EVENTS = 1 << 16      # events decoded per loop call (the batch grows if the carry needs it)
MIN_ROOM_EVENTS = 4096      # room left for the decoder: more than one packet's messages
PROBE_PARAMS = {"symbol": "", "qty": 100, "timer_ns": 1_000_000, "on_events": False}
BACKTEST_DEFAULTS = {
    "queue_model": "l3_fifo", "power_n": 2.0, "trade_through": True,
    "feed_latency": 0, "entry_latency": 0, "response_latency": 0, "seed": 1,
    "sample_ns": 1_000_000_000, "maker_fee": 0.0, "taker_fee": 0.0,
    "instruments": 8192, "max_orders": 1 << 20, "max_levels": 256,
}
# a `tickpath trade` config may be given as is: its venue and runtime sections do not apply
IGNORED_SECTIONS = {"venue"}


def _runtime_sections() -> set:
    from tickpath.runtime.config import schema
    return set(schema.defaults())


def _check_table(sec: str, got: dict, defaults: dict) -> dict:
    if not isinstance(got, dict):
        raise ConfigError("section must be a table", key=sec)
    merged = dict(defaults)
    for k, v in got.items():
        if k not in defaults:
            raise ConfigError("unknown config key", key=f"{sec}.{k}", allowed=sorted(defaults))
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
    return merged


def is_probe(name: str) -> bool:
    return name in PROBES


def normalise(cfg: dict | None) -> dict:
    """Defaults filled in, types checked (ConfigError naming section.key). [strategy] name is
    a backtest probe ("touch", "peek") or any `tickpath trade` strategy (its params checked by
    the trading core); [risk] and [trading] as `tickpath trade` reads them."""
    from tickpath.runtime.trading.config import validate_trading
    cfg = cfg or {}
    known = {"strategy", "risk", "trading", "backtest"} | IGNORED_SECTIONS | _runtime_sections()
    for sec in cfg:
        if sec not in known:
            raise ConfigError("unknown config section", key=sec, allowed=sorted(known))
    strat = dict(cfg.get("strategy", {}) or {})
    name = strat.get("name", "touch")
    params = strat.get("params", {}) or {}
    probe = isinstance(name, str) and is_probe(name)
    tr = validate_trading({"strategy": {"name": name} if probe else strat,
                           "risk": cfg.get("risk", {}) or {},
                           "trading": cfg.get("trading", {}) or {}}, require_venue=False)
    out = {"risk": tr["risk"], "trading": tr["trading"],
           "backtest": _check_table("backtest", cfg.get("backtest", {}) or {}, BACKTEST_DEFAULTS)}
    if probe:
        for k in strat:
            if k not in ("name", "params"):
                raise ConfigError("unknown config key", key=f"strategy.{k}", allowed=["name", "params"])
        p = _check_table("strategy.params", params, PROBE_PARAMS)
        if not p["symbol"]:
            raise ConfigError("strategy needs an instrument", key="strategy.params.symbol")
        for key, lo in (("qty", 1), ("timer_ns", 0)):
            if p[key] < lo:
                raise ConfigError("out of range", key=f"strategy.params.{key}", value=p[key], min=lo)
        out["strategy"] = {"name": name, "params": p, "symbols": [p["symbol"]]}
    else:
        from tickpath.runtime.trading.strategy import load_strategy
        st = load_strategy(tr["strategy"]["name"], tr["strategy"]["params"])
        out["strategy"] = {"name": name, "params": st.params,
                           "symbols": list(st.params.get("symbols", []) or [])}
    b = out["backtest"]
    if b["queue_model"] not in MODELS:
        raise ConfigError("unknown queue model", key="backtest.queue_model",
                          value=b["queue_model"], allowed=sorted(MODELS))
    for key in ("sample_ns", "instruments", "max_orders", "max_levels"):
        if b[key] < 1:
            raise ConfigError("must be positive", key=f"backtest.{key}", value=b[key])
    return out


_BATCHES: list = []   # (events, deliver) buffers of finished runs, for the next in this process


def _take_batch():
    """A batch buffer and its delivery times: a finished run's (a Ray worker or a serial run
    goes file after file: fresh 4.5 MB would be page faults again) or new ones. Reused
    without clearing: the loop reads only what this run's decoder and exchange wrote."""
    try:
        return _BATCHES.pop()
    except IndexError:
        return np.zeros(BATCH_EVENTS, dtype=EVENT_DTYPE), np.zeros(BATCH_EVENTS, dtype=np.int64)


_EX_BUFFERS: list = []   # the exchange's fill log and response ring of the last finished run
_PIPES: dict = {}   # (instruments, max_orders, max_levels) -> finished runs' pipelines, reset


def _take_pipeline(key: tuple) -> Pipeline:
    """A pipeline for one run: a finished run's, reset (its pages are already mapped: fresh
    ones are ~3,000 page faults a file at the bench's size), or a new one. Only the last
    configuration's are kept, two at most (the strategy's and the exchange's)."""
    pool = _PIPES.get(key)
    if pool:
        p = pool.pop()
        p.reset()
        return p
    # offline: pages fault in as the first file touches them (pooled pipelines keep them)
    return Pipeline(n_locates=key[0], max_orders=key[1], max_levels=key[2],
                    prefault_pages=False)


def _give_back(key: tuple, *pipes: Pipeline) -> None:
    if key not in _PIPES:
        _PIPES.clear()
        _PIPES[key] = []
    _PIPES[key].extend(pipes)


def _latencies(b: dict, base_dir: str):
    return tuple(L.from_spec(b[k], f"backtest.{k}", b["seed"] + i, base_dir)
                 for i, k in enumerate(("feed_latency", "entry_latency", "response_latency")))


def run_file(path: str, cfg: dict, *, progress=None, base_dir: str = ".") -> dict:
    """Backtest one file; returns the summary dict with `fill_log` (bytes) and `samples`."""
    cfg = normalise(cfg)
    s, b = cfg["strategy"], cfg["backtest"]
    feed_lat, entry_lat, rsp_lat = _latencies(b, base_dir)
    locs = resolve(path, s["symbols"], b["instruments"])
    t0 = time.perf_counter()
    n_loc = b["instruments"]
    key = (n_loc, b["max_orders"], b["max_levels"])
    pipe = _take_pipeline(key)
    pipe.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max    # no wall-clock latency in a backtest
    ex_pipe = _take_pipeline(key)
    ex = new_exchange(n_loc, model=MODELS[b["queue_model"]], power_n=b["power_n"],
                      trade_through=b["trade_through"], maker_fee=b["maker_fee"],
                      taker_fee=b["taker_fee"], response_latency=rsp_lat, seed=b["seed"],
                      buffers=_EX_BUFFERS.pop() if _EX_BUFFERS else None)
    timer_ns = 0
    tctx = None
    if is_probe(s["name"]):
        p = s["params"]
        sctx = new_ctx(locs[p["symbol"]], p["qty"], on_events=p["on_events"],
                       feed_latency_min_ns=int(feed_lat.min()))
        outbox = new_intents(64)
        bind = probe_binding(s["name"])
        timer_ns = p["timer_ns"]
        reads_indicators = False   # the probes read books alone
    else:
        from tickpath.runtime.backtest.bindings import trading_binding
        from tickpath.runtime.trading.context import new_trade_ctx
        from tickpath.runtime.trading.strategy import load_strategy
        t = cfg["trading"]
        st = load_strategy(s["name"], s["params"])
        tctx = new_trade_ctx(n_loc, cfg["risk"], order_capacity=t["order_capacity"],
                             intents_capacity=t["intents"], outbox_capacity=t["outbox"],
                             timer_ms=t["timer_ms"])
        sctx = (tctx, st.new_state(n_loc))
        outbox = tctx.outbox
        bind = trading_binding(st)
        reads_indicators = st.reads_indicators
    # a strategy that reads no indicator gets books alone (trading/strategy.py: READS_INDICATORS)
    pipe.params[P_BOOKS_ONLY] = 0 if reads_indicators else 1
    src = EventSource(path)
    batch, deliver = _take_batch()
    lp = LP.new_loop_state(0, b["instruments"], feed_latency=feed_lat,
                           entry_latency=entry_lat, timer_ns=timer_ns,
                           sample_ns=b["sample_ns"], seed=b["seed"])._replace(deliver=deliver)
    digest = hashlib.sha256()
    fills_parts, sample_parts = [], []
    dec_ctr = C.new_counters()
    carry = 0
    pipe_arrays = pipe.arrays          # built once: the loop is called per batch
    ex_books = ex_pipe.books

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
            rc = bind(sctx, outbox, pipe_arrays, lp, ex, ex_books, ex_pipe.counters,
                      batch, n, final)
            if rc == LP.FLUSH:
                flush()
                continue
            return rc

    while True:
        if len(batch) - carry < MIN_ROOM_EVENTS:   # grow (the carried tail + a packet's worth)
            nb = np.zeros(2 * len(batch), dtype=EVENT_DTYPE)
            nb[:carry] = batch[:carry]
            nd = np.zeros(len(nb), dtype=np.int64)
            nd[:carry] = lp.deliver[:carry]
            batch = nb
            lp = lp._replace(deliver=nd)
        n = src.fill(dec_ctr, batch, carry, progress)   # decoded straight into the batch
        if n < 0:
            break
        drive(n, False)
        f = int(lp.cur[LP.CUR_F])
        carry = n - f
        if f:
            batch[:carry] = batch[f:n]          # not yet delivered to the strategy: keep
            lp.deliver[:carry] = lp.deliver[f:n]
            lp.cur[LP.CUR_E] -= f
            lp.cur[LP.CUR_F] = 0
    drive(carry, True)
    flush()
    _BATCHES.append((batch, lp.deliver))   # the next file in this process reuses them
    elapsed = time.perf_counter() - t0
    fills = np.concatenate(fills_parts) if fills_parts else np.zeros(0, dtype=ex.fills.dtype)
    samples = np.concatenate(sample_parts) if sample_parts else np.zeros(0, dtype=lp.samples.dtype)
    ctr = {name: int(ex.ctr[i]) for i, name in enumerate(CTR_NAMES)}
    summary = summarise(fills, samples, ctr, float(ex.fp[FP_FEES]), b["sample_ns"] / 1e9)
    dec = {k: v for k, v in C.as_dict(dec_ctr).items() if v}
    summary.update({
        "file": os.fspath(path), "format": src.format, "locates": locs,
        "fill_log_sha256": digest.hexdigest(), "events": ctr["exchange_events"],
        "elapsed_s": elapsed, "events_per_s": ctr["exchange_events"] / elapsed if elapsed > 0 else 0.0,
        "counters": {k: v for k, v in ctr.items() if v}, "decoder": dec,
        "book": {k: v for k, v in C.as_dict(ex_pipe.counters).items() if v},
        "itch_file": dict(src.itch_stats),
        # this process's loads/compiles of the strategy's loop (numba's on-disk cache):
        # a Ray worker that finds the cache written shows misses == 0, it compiled nothing
        "loop_cache": {"hits": int(sum(bind.stats.cache_hits.values())),
                       "misses": int(sum(bind.stats.cache_misses.values()))},
        "config": {"strategy": s, "backtest": dict(b), "risk": cfg["risk"], "trading": cfg["trading"]},
    })
    if tctx is not None:   # what the trading core itself saw (order manager, positions)
        from tickpath.runtime.trading import layout as TL
        from tickpath.runtime.trading.context import positions_report, totals
        summary["trading"] = totals(tctx)
        summary["trading"]["positions"] = positions_report(tctx)
        summary["trading"]["counters"] = {
            name: int(tctx.counters[getattr(TL, "C_" + name.upper())]) for name in (
                "new_sent", "cancel_sent", "replace_sent", "risk_rejects", "responses", "accepted",
                "executions", "filled_shares", "cancelled", "venue_rejects", "cancel_rejects",
                "replaced", "impossible", "unknown_uref", "dup_response", "seq_gap", "kill_trips",
                "late_responses", "book_calls", "timer_calls", "kill_withheld")}
    summary["fill_log"] = fills
    summary["samples"] = samples
    if src.itch_stats.get("truncated_tail_bytes"):
        summary["warnings"] = [f"file ends inside a message: {src.itch_stats['truncated_tail_bytes']} bytes not decoded"]
    _give_back(key, pipe, ex_pipe)   # read above: the next run resets them
    _EX_BUFFERS[:] = [(ex.fills, ex.rsp, ex.rsp_t)]
    return summary


def apply_override(cfg: dict, key: str, value) -> dict:
    """A copy of cfg with key set: backtest.K, risk.K, trading.K or strategy.params.K
    (ConfigError for a key that does not exist; the strategy's PARAMS say which do)."""
    from tickpath.runtime.trading.config import TRADING_SCHEMA
    from tickpath.runtime.trading.risk import RISK_KEYS
    parts = key.split(".")
    out = copy.deepcopy(cfg)
    if len(parts) == 3 and parts[:2] == ["strategy", "params"]:
        name = (cfg.get("strategy", {}) or {}).get("name", "touch")
        if is_probe(name):
            known = PROBE_PARAMS
        else:
            from tickpath.runtime.trading.strategy import _resolve
            known = _resolve(name)[2].PARAMS
        if parts[2] not in known:
            raise ConfigError("grid key does not exist", key=key, allowed=sorted(f"strategy.params.{k}" for k in known))
        out.setdefault("strategy", {}).setdefault("params", {})[parts[2]] = value
        return out
    tables = {"backtest": BACKTEST_DEFAULTS, "risk": RISK_KEYS, "trading": TRADING_SCHEMA["trading"]}
    if len(parts) != 2 or parts[0] not in tables or parts[1] not in tables[parts[0]]:
        raise ConfigError("grid key does not exist", key=key,
                          allowed="backtest.*, risk.*, trading.*, strategy.params.*")
    out.setdefault(parts[0], {})[parts[1]] = value
    return out
