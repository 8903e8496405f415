"""The demo's closed loop: `tickpath venue` with its background flow, and `tickpath trade`'s
engine (the kernel backend, the market-making example of runtime/trading/example.toml) in
this process, quoting against it for `seconds`.

Measured: wall to wall per order on the venue's clock — each order's ClOrdID is the feed
message that triggered it, that message's packet send time is in the venue's log, and the
order's arrival is taken by the loopback tap (bench/t2t/tap.py; the venue's read stamps
without root) — beside the in-process tick-to-trade (event received -> send() returned),
orders, fills, position, P&L and risk rejects, plus P&L and inventory sampled over time.
A venue that dies mid-run is reported (the session-lost breaker trips the kill switch), not
waited on.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

from tickpath.bench.t2t import venue_proc as VP
from tickpath.bench.t2t import w2w
from tickpath.bench.t2t.tap import Tap

EXAMPLE = Path(__file__).resolve().parents[1].parent / "runtime" / "trading" / "example.toml"


def example_config() -> dict:
    """The shipped market-making example (the installed package's copy)."""
    from importlib import resources
    try:
        text = resources.files("tickpath.runtime.trading").joinpath("example.toml").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        text = EXAMPLE.read_text()
    return tomllib.loads(text)


def run_closed_loop(seconds: float = 10.0, rate: float = 100_000.0, instruments: int = 300, seed: int = 1,
                    rx_cpu: int | None = None, venue_cpu: int | None = None, itch_port: int = 26430,
                    quoted: int = 20,
                    idle: str = "busy-spin", kill_venue_after_s: float | None = None, progress=print) -> dict:
    from tickpath.runtime.trading import config as TC
    from tickpath.runtime.trading.context import totals
    from tickpath.runtime.trading.live import Trader

    venue = VP.VenueProcess(VP.VenueRun(instruments=instruments, rate_msgs_per_s=rate, seed=seed,
                                        itch_port=itch_port, cpu=venue_cpu, quiet_symbols=()))
    out: dict = {"seconds": seconds, "venue_rate_msgs_per_s": rate, "instruments": instruments}
    workdir = tempfile.mkdtemp(prefix="tickpath-demo-loop-")
    tap = trader = None
    series = []
    since_ns = 0
    try:
        ready = os.path.join(workdir, "venue.ready")
        with open(ready, "w") as f:
            f.write(json.dumps(venue.ready) + "\n")
        host, port = venue.ouch()
        raw = example_config()
        raw["feed"].update(address="127.0.0.1", port=itch_port, first_seq=0)
        raw["idle"] = {"strategy": idle}
        raw["book"]["instruments"] = instruments + 8
        raw["venue"].update(ouch=f"{host}:{port}", user="TP", password=venue.password("TP"), ready_file=ready)
        raw["trading"].update(seconds=seconds, drain_s=1.0)
        # quote the first `quoted` listed names, not all: requoting hundreds of books would run
        # into the example's order-rate throttle, whose rejects count toward its breach breaker
        raw["strategy"]["params"]["symbols"] = [r["symbol"] for r in venue.ready["refdata"][:quoted]]
        if rx_cpu is not None:
            raw.setdefault("cores", {})["rx"] = [rx_cpu]
        cfg, tcfg = TC.from_dict(raw)
        try:
            tap = Tap(port)
            tap.start()
        except OSError as exc:
            out["tap"] = f"unavailable ({exc}): orders timed by the venue's read stamps"
        trader = Trader(cfg, tcfg)
        trader.start()
        t0 = time.monotonic()
        # orders answering feed sent before this are warm-up: the backlog queued while the
        # loop compiled or loaded, and the first second of books rebuilt mid-day
        since_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) + 1_000_000_000
        killed_venue = False
        while time.monotonic() - t0 < seconds and trader.running:
            time.sleep(0.1)
            trader.tend()
            tot = totals(trader.tctx)
            series.append((round(time.monotonic() - t0, 2), tot["net"], _inventory(trader)))
            if kill_venue_after_s is not None and not killed_venue and time.monotonic() - t0 > kill_venue_after_s:
                venue.proc.kill()          # the fault: the venue dies mid-run
                killed_venue = True
        trader.shutdown(tcfg["trading"]["drain_s"])
    finally:
        if trader is not None:
            trader.close()
        if tap is not None:
            tap.close()
        stopped = venue.stop()
        venue.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    s = trader.summary()
    out.update(
        orders_sent=s["counters"]["new_sent"] + s["counters"]["replace_sent"],
        cancels_sent=s["counters"]["cancel_sent"], fills=s["counters"]["executions"],
        filled_shares=s["counters"]["filled_shares"], risk_rejects=s["counters"]["risk_rejects"],
        pnl=s["pnl"], positions=s["positions"], kill_switch=s["kill_switch"],
        risk_rejects_by_reason=s["risk_rejects_by_reason"],
        in_process_t2t_ns=s["tick_to_trade_ns"], in_process_call_ns=s["tick_to_send_call_ns"],
        venue_alive=stopped["returncode"] == 0,
        series=series)
    if stopped["log"]:
        m = w2w.orders(stopped["log"], VP.TICKPATH_USER, tap.by_uref if tap is not None else None,
                       since_ns=since_ns)
        lat = m.pop("latency_ns")
        out["w2w"] = m
        out["w2w_ns"] = w2w.stats(lat)
        out["_w2w_hist"] = w2w.histogram(lat)
    else:
        out["w2w"] = {"error": "the venue left no timestamp log (it did not end its day)"}
    if tap is not None:
        out["tap"] = {"segments": tap.segments, "orders": len(tap.by_uref), "resyncs": tap.resyncs}
    return out


def _inventory(trader) -> int:
    from tickpath.runtime.trading import layout as T
    return int(trader.tctx.loc[:, T.L_POS].sum())


def plot(result: dict, path: str) -> str | None:
    """P&L and net inventory over the closed loop."""
    if not result.get("series"):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [x[0] for x in result["series"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, [x[1] for x in result["series"]], color="tab:blue", label="net P&L $")
    ax.set_xlabel("s")
    ax.set_ylabel("net P&L $")
    ax2 = ax.twinx()
    ax2.plot(t, [x[2] for x in result["series"]], color="tab:orange", label="net inventory (shares)")
    ax2.set_ylabel("net inventory, shares")
    ax.set_title("market maker against tickpath venue")
    fig.legend(loc="upper left")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
