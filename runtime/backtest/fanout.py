"""Many backtests: files × grid points, serially or as Ray tasks, merged into one summary.

A job is (file, config); its result is the per-file summary (runner.run_file) without the
big arrays, plus the fill log's bytes hash. Serial and Ray runs produce the same results
(the simulation is deterministic and each job is independent), merged the same way.

Ray (`pip install tickpath[cluster]`): `ray.init()` starts a local instance for the run, or
joins `address`. Each job is a task with `num_cpus=1` and a declared `memory` (the books and
the batch it holds: see `job_memory_bytes`), so Ray never packs more jobs on a node than
fit. Numba compiles once per worker, not per task (ray#23664): the loop and everything it
calls are `cache=True` functions whose cache lives next to the package on disk (a path
every worker on the node shares), so the first task on a node compiles and writes it and
every later task loads it (`runtime_env` passes NUMBA_CACHE_DIR when the user sets one, for
clusters whose package directory is read-only). A failing task is reported with its file
(its error text), never a hung run: results are gathered with `ray.wait` in a bounded loop.
Each summary says how its process got the loop (`loop_cache`: hits = loaded, misses =
compiled), so a run shows whether a worker compiled.

Progress under Ray: with a progress factory (the CLI's rich bars, one per file), the tasks
report (done, total) to a small actor (`num_cpus=0`: it takes no worker's core), at most
every PROGRESS_PERIOD_S, and the driver polls it between `ray.wait`s and moves the bars.
"""
from __future__ import annotations

import itertools
import os
import socket
import time

from tickpath.runtime.backtest.runner import apply_override, run_file
from tickpath.runtime.core.errors import ConfigError, TickpathError

CONNECT_TIMEOUT_S = 5.0   # an existing cluster's head answers a TCP connect well within this
PROGRESS_PERIOD_S = 0.2   # a task's progress messages to the driver, at most this often
RAY_INSTALL_HINT = ("Ray is not installed: pip install 'tickpath[cluster]' "
                    "(or pip install 'ray>=2.40'), then run again with --ray")


def parse_grid(specs) -> list[tuple[str, list]]:
    """['strategy.qty=100,200', ...] -> [(key, [values...])]; values as TOML scalars."""
    import tomllib
    out = []
    for spec in specs or ():
        key, eq, vals = spec.partition("=")
        if not eq or not key or not vals:
            raise ConfigError("grid must be KEY=V1,V2,...", grid=spec)
        parsed = []
        for v in vals.split(","):
            try:
                parsed.append(tomllib.loads(f"v = {v}")["v"])
            except tomllib.TOMLDecodeError:
                parsed.append(v)      # a bare word: a string
        out.append((key.strip(), parsed))
    return out


def grid_points(cfg: dict, grid) -> list[tuple[dict, dict]]:
    """(point, config) for every combination (one point, {} , when no grid)."""
    if not grid:
        return [({}, cfg)]
    keys = [k for k, _ in grid]
    for k in keys:
        apply_override(cfg, k, None)    # checks the key exists
    pts = []
    for combo in itertools.product(*[v for _, v in grid]):
        c = cfg
        for k, v in zip(keys, combo):
            c = apply_override(c, k, v)
        pts.append((dict(zip(keys, combo)), c))
    return pts


def job_memory_bytes(cfg: dict) -> int:
    """What one job holds: two books (exchange + strategy), the batch, logs; with margin."""
    b = cfg.get("backtest", {})
    orders = int(b.get("max_orders", 1 << 20))
    inst = int(b.get("instruments", 8192))
    levels = int(b.get("max_levels", 256))
    books = 2 * (2 * orders * 32 + inst * 2 * levels * 8 * 4)
    return int(1.5 * (books + (64 << 20))) + (256 << 20)   # + interpreter and numba


def run_one(path: str, cfg: dict, base_dir: str = ".", progress=None) -> dict:
    """One job; errors become {'file', 'error'} (reported per file, the rest go on)."""
    try:
        s = run_file(path, cfg, progress=progress, base_dir=base_dir)
    except TickpathError as exc:
        return {"file": os.fspath(path), "error": str(exc)}
    fills = s.pop("fill_log", None)
    samples = s.pop("samples", None)
    if fills is not None and len(fills):   # for the latency plot (every fill up to 100 k)
        s["_fill_latencies_ns"] = [int(x) for x in (fills["exch_ns"] - fills["sent_ns"])[:100_000]]
    s["equity_series"] = ([float(x) for x in samples["equity"]], [int(x) for x in samples["t_ns"]],
                          [int(x) for x in samples["net_position"]]) if samples is not None else None
    return s


def run_serial(jobs, base_dir=".", progress_factory=None) -> list[dict]:
    out = []
    for path, cfg in jobs:
        cb = progress_factory(path) if progress_factory else None
        out.append(run_one(path, cfg, base_dir, cb))
    return out


class _ProgressSink:
    """Ray actor: the latest (done, total) of each job, read by the driver."""

    def __init__(self):
        self.state = {}

    def update(self, i, done, total):
        self.state[i] = (done, total)

    def snapshot(self):
        return dict(self.state)


def _run_one_reporting(path, cfg, base_dir, sink, i):
    """run_one in a Ray task, its progress sent to the sink (throttled; the last always)."""
    last = [0.0]

    def cb(done, total):
        now = time.monotonic()
        if total and done >= total:   # the last one waited for: the bar ends full
            import ray
            ray.get(sink.update.remote(i, done, total))
        elif now - last[0] >= PROGRESS_PERIOD_S:
            last[0] = now
            sink.update.remote(i, done, total)
    return run_one(path, cfg, base_dir, cb if sink is not None else None)


def check_reachable(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a `host:port` (or `ray://host:port`) nothing answers on, in seconds rather than
    after Ray's own ~20 s of retries; other forms ("auto", "local", none) are Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError("cannot reach the Ray cluster", address=address,
                          reason=f"no TCP connection within {timeout_s:g} s: {exc}") from None


def run_ray(jobs, base_dir=".", address: str | None = None, timeout_s: float = 86400.0,
            progress_factory=None) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_INSTALL_HINT) from None
    check_reachable(address)
    env = {"env_vars": {"NUMBA_CACHE_DIR": os.environ["NUMBA_CACHE_DIR"]}} if os.environ.get("NUMBA_CACHE_DIR") else None
    started = False
    try:
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         runtime_env=env, configure_logging=False)
            except Exception as exc:   # Ray raises several kinds for an unreachable cluster
                raise ConfigError("cannot reach the Ray cluster", address=address or "local",
                                  reason=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None
            started = True
        remote = ray.remote(_run_one_reporting)
        sink = ray.remote(num_cpus=0)(_ProgressSink).remote() if progress_factory else None
        bars = [progress_factory(path) for path, _ in jobs] if progress_factory else []
        refs = {}
        for i, (path, cfg) in enumerate(jobs):
            ref = remote.options(num_cpus=1, memory=job_memory_bytes(cfg), max_retries=0).remote(
                os.path.abspath(path), cfg, os.path.abspath(base_dir), sink, i)
            refs[ref] = os.fspath(path)
        results = {}
        pending = list(refs)
        deadline = time.monotonic() + timeout_s
        while pending:
            left = deadline - time.monotonic()
            wait_s = min(left, 4 * PROGRESS_PERIOD_S) if sink is not None else left
            done, pending = ray.wait(pending, num_returns=1, timeout=max(wait_s, 0.0))
            if sink is not None:
                _show_progress(ray, sink, bars)
            if not done and time.monotonic() < deadline:
                continue
            if not done:
                for r in pending:
                    results[r] = {"file": refs[r], "error": f"ray task timed out after {timeout_s} s"}
                    ray.cancel(r, force=True)
                break
            for r in done:
                try:
                    results[r] = ray.get(r)
                except Exception as exc:    # the task died (worker crash, OOM kill): its file says which
                    results[r] = {"file": refs[r], "error": f"ray task failed: {type(exc).__name__}: "
                                  + (str(exc).splitlines()[0][:300] if str(exc) else "")}
        if sink is not None:
            _show_progress(ray, sink, bars)
        return [results[r] for r in refs]
    finally:
        if started:
            ray.shutdown()


def _show_progress(ray, sink, bars) -> None:
    try:
        snap = ray.get(sink.snapshot.remote(), timeout=5)
    except Exception:      # a slow or lost actor costs the bars an update, never the run
        return
    for i, (done, total) in snap.items():
        bars[i](done, total)


def merge(results: list[dict]) -> dict:
    """Totals over per-file summaries (the files that ran)."""
    ok = [r for r in results if "error" not in r]
    tot = {"files": len(results), "files_ok": len(ok), "files_failed": len(results) - len(ok),
           "events": sum(r["events"] for r in ok), "orders": sum(r["orders"] for r in ok),
           "fills": sum(r["fills"] for r in ok), "cancels": sum(r["cancels"] for r in ok),
           "rejects": sum(r["rejects"] for r in ok),
           "pnl_realised": sum(r["pnl"]["realised"] for r in ok),
           "pnl_mark_to_market": sum(r["pnl"]["mark_to_market"] for r in ok),
           "fees": sum(r["pnl"]["fees"] for r in ok)}
    import hashlib
    h = hashlib.sha256()
    for r in ok:
        h.update(r["fill_log_sha256"].encode())
    tot["fill_logs_sha256"] = h.hexdigest()
    return tot


def metric_of(summary: dict, metric: str):
    """A dotted path into a summary ('pnl.mark_to_market', 'risk.sharpe_annualised')."""
    cur = summary
    for part in metric.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur
