"""`tickpath trade`: feed -> books -> indicators -> strategy -> risk -> OUCH order entry, on one
pinned busy-polling thread, plus what runs beside it (kill switch file and SIGUSR1, audit-log
writer thread, reconnects, the live line, the summary).

The hot loop, generated per (strategy, feed backend) like the step (strategy.py says why):

    while not stopped:
        frames = poll()
        for each frame: open it (header)
            for each run of consecutive events of one instrument, decoded a message at a time:
                process_span(books, indicators)
                n_out = trade_on_events(...)   # strategy, risk gate, order manager
                for each outbox entry: ouch_enter / ouch_cancel / ouch_replace, queued;
                ouch_send (one send() for the step's orders), then note_sent per entry
                                                  # (send() returned: tick-to-trade, audit)
        every 8th iteration: n = ouch_poll(responses); trade_on_responses(...)
        idle(work)

Order of start-up: config -> strategy loaded and the step compiled on throwaway state (a
strategy that does not compile fails here, before anything connects) -> feed socket, buffers,
books -> the loop compiled or loaded from cache -> audit log -> kill switch -> OUCH login ->
loop thread. At the end the kill switch is tripped (reason manual), the open orders are
cancelled and their answers awaited for `[trading] drain_s`, then the session is logged out.
A lost session trips the kill switch; the main thread logs in again (`reconnect_attempts`),
and the loop cancels whatever is still open before anything else (cancel-on-disconnect).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from tickpath.runtime.config.sections import RuntimeConfig
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.engine import latency
from tickpath.runtime.backends.registry import EVENTS
from tickpath.runtime.book.layout import unreliable_report
from tickpath.runtime.engine.pipeline import OUT_UPDATES, P_BOOKS_ONLY
from tickpath.runtime.engine.runner import Runtime
from tickpath.runtime.feed.decoder import new_frame_part
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import new_trade_ctx, positions_report, set_symbol, totals
from tickpath.runtime.trading.killswitch import KillSwitch, trip_array
from tickpath.runtime.sys.codegen import importable_by_name
from tickpath.runtime.trading.strategy import (
    STEP_TEMPLATE,
    StrategyError,
    _core_sources,
    _source_of,
    generate_module,
    load_strategy,
)

C_SESSION_EPOCH = 4     # ctrl slot: bumped by the main thread after each successful re-login
C_SESSION_SEEN = 5      # the loop's copy of it
# the loop reads the OUCH session every RESPONSE_POLL_EVERY-th iteration (a power of two).
# Reading it on every quiet iteration made the poll period 1.15 us instead of 0.75 and cost
# ~0.5 us of wall-to-wall p50 (bench/RESULTS.md); an answer now waits <= 8 polls (~6 us).
RESPONSE_POLL_EVERY = 8

LOOP_TEMPLATE = STEP_TEMPLATE + '''

from {poll_module} import {poll_name} as _poll
from tickpath.runtime.engine.idle import idle
from tickpath.runtime.engine.loop import EXIT_CODE, ITERATIONS, RUNNING, STOP
from tickpath.runtime.engine.pipeline import process_span
from tickpath.runtime.feed.decoder import P_LEFT, frame_next_inline, frame_open
from tickpath.runtime.sys.intrinsics import load_acquire, realtime_ns, store_release
from tickpath.runtime.trading import records as _R
from tickpath.runtime.trading.ref import ref
from tickpath.runtime.trading.ouch import layout as _OL
from tickpath.runtime.trading.ouch.session import ouch_cancel, ouch_enter, ouch_poll, ouch_replace, ouch_send
from tickpath.runtime.trading.step import (
    note_send_call_inline,
    note_send_failed_inline,
    note_sent_inline,
    instrument_run_end,
    order_slot,
    session_restored,
    withheld_inline,
)


@njit(nogil=True, inline="always")
def _send_outbox(tctx, ost, n_out, now_ns):
    # the step's orders are queued, then leave in one send(): on loopback a send() runs the
    # venue's TCP receive inside the syscall, so the k-th order would wait for k-1 of them.
    # What is queued moves to the front of the outbox, for the stamps after the send.
    m = 0
    for i in range(n_out):
        if withheld_inline(tctx, i, now_ns):   # a kill that tripped after the gate: stays home
            continue
        ob = tctx.outbox[i]
        if ob.kind == _R.INTENT_NEW:
            rc = ouch_enter(ost, ob.uref, ob.side, ob.qty, tctx.symbols[ob.locate], ob.price, ob.tif,
                            ob.trigger_seq % 100_000_000_000_000, now_ns, False)
        elif ob.kind == _R.INTENT_CANCEL:
            rc = ouch_cancel(ost, ob.uref, ob.qty, now_ns, False)
        else:
            j = order_slot(tctx, ob.uref)
            orig = 0 if j < 0 else tctx.orders[j].other
            rc = ouch_replace(ost, orig, ob.uref, ob.qty, ob.price, ob.tif, now_ns,
                              ob.trigger_seq % 100_000_000_000_000, False)
        if rc < 0:
            note_send_failed_inline(tctx, i, now_ns)
            continue
        if m != i:
            tctx.outbox[m] = tctx.outbox[i]
        m += 1
    if m > 0:
        rc = ouch_send(ost, now_ns)
        for i in range(m):
            if rc >= 0:
                note_send_call_inline(tctx, i, ost.ctl[_OL.C_SEND_CALL_NS])
                note_sent_inline(tctx, i, ost.ctl[_OL.C_SENT_NS])
            else:
                note_send_failed_inline(tctx, i, now_ns)


@njit(nogil=True, inline="always")
def _step(tctx, strat, pref, events, m, ost, now):
    # the step's cached entry point (not inlined again: one compile of the step serves both)
    n_out = trade_on_events(tctx, strat, pref, events, m, now)
    _send_outbox(tctx, ost, n_out, now)
    return n_out


@njit(nogil=True, cache=True, _nrt=False)
def trade_loop({recv_args}, pipe, ctrl, idle_params, idle_state, tctx, strat, ost, responses):
    tctx = ref(tctx)      # the step's calls get pointers, not ~350 words of context (ref.py)
    strat = ref(strat)
    pref = ref(pipe)      # the pipeline (process_span) and the step get a pointer, not ~20 arrays
    store_release(ctrl, RUNNING, 1)
    while load_acquire(ctrl, STOP) == 0:
        ep = load_acquire(ctrl, {epoch})
        if ep != ctrl[{seen}]:
            ctrl[{seen}] = ep
            session_restored(tctx)
{receive}
        nr = 0
        # order entry is read every {poll_every}th iteration, quiet feed or not: its recv()
        # syscall (~0.3 us) would otherwise sit between a packet's arrival and the next poll
        if (ctrl[ITERATIONS] & {poll_mask}) == 0:
            nr = ouch_poll(ost, responses, realtime_ns())
            if nr > 0:
                trade_on_responses(tctx, strat, responses, nr, realtime_ns())
        ctrl[ITERATIONS] += 1
        if n < 0:
            store_release(ctrl, EXIT_CODE, n)
            break
        idle(idle_params, idle_state, max(n, 0) + nr + n_out)
    store_release(ctrl, RUNNING, 0)
    return ctrl[EXIT_CODE]
'''


# the receive step of the loop, per backend kind. Frames are decoded one message at a time
# (decoder.frame_open / frame_next) and stepped once per run of consecutive events of one
# instrument (step.instrument_run_end): an update is answered as soon as its own messages are
# decoded and applied, not after the rest of its packet (a venue packs a client's order with
# whatever else its pass produced; measured: the t2t trigger shared its packet with ~11
# messages), and two updates of one instrument with another instrument's message between them
# are two updates (the step coalesces per call). The steps of one frame's runs share one
# clock read, taken as the frame is opened (a strategy's now_ns is that packet's time). An
# events backend (the FPGA card or its emulator) hands over records its parser decoded; they
# are stepped in the same runs, each with its own clock read.
RECEIVE = {
    "frames": dict(
        recv_args="bstate, payload, lengths, recv_ns, mold, session, events, part",
        receive="""        n = _poll(bstate, payload, lengths, recv_ns)
        n_out = 0
        stepped = False
        for f in range(max(n, 0)):
            # one clock read for the steps of this frame's runs: a read is ~22 ns here, as
            # much as the rest of a step, and a packet's runs are stepped within microseconds
            now = realtime_ns()
            m = frame_open(payload, lengths, f, recv_ns, mold, session, events, 0, pipe.counters, part)
            lo = 0
            while True:
                # decode until the run at lo is whole: another instrument's event follows it,
                # or the frame has no message left
                while part[P_LEFT] > 0 and (m == lo or events[m - 1].locate == events[lo].locate):
                    m = frame_next_inline(payload, recv_ns, mold, events, m, pipe.counters, part)
                if lo >= m:
                    break
                hi = instrument_run_end(events, lo, m)
                process_span(pref, events, lo, hi)
                n_out += _step(tctx, strat, pref, events[lo:hi], hi - lo, ost, now)
                lo = hi
                stepped = True
        if not stepped:    # timers, breakers and kill-switch cancels run on a quiet feed too
            n_out = _step(tctx, strat, pref, events, 0, ost, realtime_ns())"""),
    "events": dict(
        recv_args="bstate, events",
        receive="""        n = _poll(bstate, events)
        m = max(n, 0)
        n_out = 0
        lo = 0
        while lo < m:
            hi = instrument_run_end(events, lo, m)
            process_span(pref, events, lo, hi)
            n_out += _step(tctx, strat, pref, events[lo:hi], hi - lo, ost, realtime_ns())
            lo = hi
        if m == 0:
            n_out = _step(tctx, strat, pref, events, 0, ost, realtime_ns())"""),
}


def loop_module(strategy, backend):
    """The generated module holding this strategy's step and its loop for this backend's poll."""
    poll = getattr(backend, "poll", None)
    name = getattr(poll, "__name__", "")
    if poll is None or not importable_by_name(poll):
        raise ConfigError("tickpath trade needs a backend whose poll is a module-level function "
                          "(kernel, afxdp, fpga, fpga-emu; not the fault-injection or capture "
                          "wrappers)", key="backend.kind", poll=repr(poll))
    shape = RECEIVE["events" if backend.kind == EVENTS else "frames"]
    text = LOOP_TEMPLATE.format(spec=strategy.spec, module=strategy.module,
                                attr="".join(f".{a}" for a in strategy.attr.split(".") if a),
                                poll_module=poll.__module__, poll_name=name,
                                epoch=C_SESSION_EPOCH, seen=C_SESSION_SEEN,
                                poll_every=RESPONSE_POLL_EVERY,
                                poll_mask=RESPONSE_POLL_EVERY - 1, **shape)
    stem = "trade_" + "".join(c if c.isalnum() else "_" for c in strategy.spec)[:32] + "_" + name
    return generate_module(text, stem, _source_of(strategy.obj, strategy.module) + _core_sources())


def default_first_uref(now_ns: int | None = None) -> int:
    """10 000 x seconds since UTC midnight: rises across restarts within a day (as OUCH wants)
    as long as fewer than 10 000 urefs per second were used on average."""
    now = time.clock_gettime_ns(time.CLOCK_REALTIME) if now_ns is None else now_ns
    return 1 + (now % 86_400_000_000_000) // 100_000


def load_ready_symbols(path: str) -> dict[int, str]:
    """locate -> symbol from a `tickpath venue` ready file (its `refdata` list)."""
    try:
        with open(path) as f:
            ready = json.loads(f.readline())
        return {int(r["locate"]): str(r["symbol"]) for r in ready["refdata"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("cannot read the venue ready file", key="venue.ready_file", path=path,
                          reason=str(exc)) from exc


class Trader(Runtime):
    """One feed, one strategy, one OUCH session, one pinned thread."""

    def __init__(self, cfg: RuntimeConfig, tcfg: dict, kill_base: str = "/dev/shm"):
        self.tcfg = tcfg
        sc, tc, vc = tcfg["strategy"], tcfg["trading"], tcfg["venue"]
        # the strategy first: a broken one fails before any socket exists
        self.strategy = load_strategy(sc["name"], sc["params"])
        n_loc = cfg.book.instruments
        self._sizes = dict(order_capacity=tc["order_capacity"], intents_capacity=tc["intents"],
                           outbox_capacity=tc["outbox"], timer_ms=tc["timer_ms"])
        self.responses = R.new_responses(tc["responses"])
        self.part = new_frame_part()    # the frame being decoded, message by message
        self.tctx = None
        super().__init__(cfg)
        # a strategy that reads only books gets no indicators (trading/strategy.py says how)
        self.pipe.params[P_BOOKS_ONLY] = 0 if self.strategy.reads_indicators else 1
        dry = new_trade_ctx(n_loc, tcfg["risk"], **self._sizes)
        self.strategy.compile(dry, self.strategy.new_state(n_loc), self.pipe.arrays, self.events,
                              self.responses)
        self.loop_mod = loop_module(self.strategy, self.backend)
        self.audit = None
        self.kill = KillSwitch(kill_base)
        first = tc["first_uref"] or default_first_uref()
        if tc["audit_path"]:
            from tickpath.runtime.trading.audit.log import AuditLog
            self.audit = AuditLog(tc["audit_path"], tc["audit_ring_records"], tc["audit_flush_ms"])
        self.strat = self.strategy.new_state(n_loc)
        self.tctx = new_trade_ctx(n_loc, tcfg["risk"], kill=self.kill.flags,
                                  first_uref=first, audit=self.audit.writer if self.audit else None,
                                  **self._sizes)
        if vc["ready_file"]:
            for loc, sym in load_ready_symbols(vc["ready_file"]).items():
                if 0 < loc < n_loc:
                    set_symbol(self.tctx, loc, sym)
        from tickpath.runtime.trading.ouch.client import OuchClient
        host, port = vc["ouch"].rsplit(":", 1)
        self.ouch = OuchClient(host, int(port), vc["user"], vc["password"], session=vc["session"],
                               state_path=vc["state_file"] or None,
                               heartbeat_timeout_ms=vc["heartbeat_timeout_ms"], busy_poll_us=vc["busy_poll_us"])
        self.reconnects = 0
        self.reconnect_failures = 0
        self.open()      # the feed socket, so the loop's argument types are known
        self.warm_up()   # compile or load the loop now: a login left silent while it compiles times out

    def _run(self):
        t = self.tctx if self.tctx is not None else None
        if t is None:
            return 0
        rest = (self.pipe.arrays, self.ctrl, self.idle_params, self.idle_state, t, self.strat,
                self.ouch.state, self.responses)
        if self.is_events:
            return self.loop_mod.trade_loop(self.backend.state, self.events, *rest)
        return self.loop_mod.trade_loop(self.backend.state, self.payload, self.lengths, self.recv_ns,
                                        self.mold, self.session, self.events, self.part, *rest)

    def warm_up(self):
        t0 = time.monotonic()
        super().warm_up()
        if not hasattr(self, "loop_s"):   # the first call compiles or loads; later ones are free
            self.loop_s = time.monotonic() - t0

    def start(self, cpu: int | None = None):
        if self.audit is not None:
            self.audit.start()
        self.kill.install_signal()
        self.ouch.connect(self.tcfg["venue"]["connect_timeout_s"])
        self.bare_send = self._bare_send_cost()
        return super().start(cpu)

    def _bare_send_cost(self, samples: int = 200) -> dict:
        """send() alone on this session's socket, an Enter Order's size (a Debug packet the
        venue ignores), before the loop starts: in-process tick-to-trade is read against it."""
        from tickpath.runtime.trading.ouch import layout as OL
        from tickpath.runtime.trading.ouch.session import bare_send_ns
        out = np.zeros(samples, np.int64)
        n = int(bare_send_ns(self.ouch.state, np.zeros(64, np.uint8), OL.O_WIRE, out))
        if n == 0:
            return {"samples": 0}
        v = np.sort(out[:n])
        return {"bytes": OL.O_WIRE, "samples": n, "p50": int(v[n // 2]), "p90": int(v[(n * 9) // 10]),
                "p99": int(v[min(n - 1, (n * 99) // 100)]), "min": int(v[0])}

    # -- beside the loop ------------------------------------------------------------------
    def tend(self) -> None:
        """Called by the main thread: log in again after a lost session (bounded attempts)."""
        st = self.tctx.st
        if st[T.S_SESSION_DOWN] == 0 or self.ouch.connected:
            return
        if self.reconnect_failures >= self.tcfg["venue"]["reconnect_attempts"]:
            return
        try:
            self.ouch.reconnect(self.tcfg["venue"]["connect_timeout_s"])
        except Exception as exc:   # counted and reported; the kill switch is already on
            self.reconnect_failures += 1
            self.notes.append(f"re-login failed: {exc}")
            return
        self.reconnects += 1
        self.ctrl[C_SESSION_EPOCH] += 1   # the loop sees it and cancels what is still open

    def shutdown(self, drain_s: float) -> None:
        """Trip the switch (manual), wait for the open orders' cancels to be answered, stop."""
        trip_array(self.kill.flags, T.K_MANUAL) if not self.kill.tripped else None
        deadline = time.monotonic() + drain_s
        while self.running and time.monotonic() < deadline and self.tctx.st[T.S_N_OPEN] > 0:
            self.tend()
            time.sleep(0.01)
        self.stop()

    def close(self) -> None:
        try:
            super().close()
        finally:
            try:
                self.ouch.logout()
            except Exception:  # best effort at exit
                pass
            if self.audit is not None:
                self.audit_stats = self.audit.stop()
            self.kill.close()

    # -- reporting ---------------------------------------------------------------------------
    def live_line(self, prev: dict, dt: float) -> tuple[str, dict]:
        c = T.counters_dict(self.tctx.counters)
        tot = totals(self.tctx)
        p99 = latency.percentile(self.tctx.t2t, 99.0)
        orders = c["new_sent"] + c["replace_sent"]
        rate = (orders - prev.get("orders", 0)) / dt if dt > 0 else 0.0
        line = (f"orders/s {rate:7.0f}  fills {c['executions']:6d}  pos {tot['gross_position']:6d}  "
                f"P&L {tot['net']:+10.2f}  risk rejects {c['risk_rejects']:5d}  "
                f"t2t p99 {p99 / 1000:7.1f} us  open {tot['open_orders']:3d}"
                + ("  KILLED " + self.kill.report()["reason"] if self.kill.tripped else ""))
        return line, {"orders": orders}

    def summary(self) -> dict:
        t = self.tctx
        c = T.counters_dict(t.counters)
        rejects = {n: c[f"reject_{n}"] for n in T.REJECT_NAMES if c[f"reject_{n}"]}
        out = {
            "strategy": self.strategy.spec, "params": self.strategy.params,
            "counters": {k: v for k, v in c.items() if not k.startswith("reject_")},
            "risk_rejects_by_reason": rejects,
            "pnl": totals(t), "positions": positions_report(t),
            "tick_to_trade_ns": latency.summary(t.t2t),
            "tick_to_send_call_ns": latency.summary(t.t2t_call),
            "bare_send_ns": getattr(self, "bare_send", {}),
            "kill_switch": self.kill.report(),
            "order_entry": self.ouch.stats(),
            "reconnects": self.reconnects,
            "backend": self.cfg.backend.kind, "backend_stats": getattr(self, "backend_stats", {}),
            "feed": self.counters(), "feed_latency_ns": self.latency(),
            "books_unreliable": unreliable_report(self.pipe.books),   # the gate refused these
            # off for a strategy that reads only books (READS_INDICATORS = False)
            "indicators": {"on": bool(self.pipe.params[P_BOOKS_ONLY] == 0),
                           "updates": int(self.pipe.out[:, OUT_UPDATES].sum())},
            "compile_s": {"step": round(self.strategy.compiled_s, 3), "loop": round(getattr(self, "loop_s", 0), 3)},
            "notes": self.notes,
        }
        if self.audit is not None:
            out["audit"] = getattr(self, "audit_stats", None) or self.audit.stats()
        return out


def compile_trade(cfg: RuntimeConfig, tcfg: dict) -> dict:
    """Compile (or load from the cache) the strategy's step and the loop for this config's
    backend, then release everything: no venue connection. A deploy step, and what a benchmark
    runs before its clocks start."""
    t0 = time.monotonic()
    trader = Trader(cfg, tcfg)
    try:
        return {"strategy": trader.strategy.spec, "backend": trader.cfg.backend.kind,
                "compile_s": {"step": round(trader.strategy.compiled_s, 3),
                              "loop": round(getattr(trader, "loop_s", 0.0), 3),
                              "total": round(time.monotonic() - t0, 3)}}
    finally:
        trader.close()


def run_trade(cfg: RuntimeConfig, tcfg: dict, json_path: str | None = None, hgrm_path: str | None = None,
              quiet: bool = False, stop_flag: list | None = None) -> dict:
    """Build, run until [trading] seconds / [run] seconds / SIGINT, report. Returns the summary."""
    import signal
    trader = Trader(cfg, tcfg)
    stop = stop_flag if stop_flag is not None else [False]

    def _stop(signum, frame):
        stop[0] = True
    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        trader.start()
        print(json.dumps({"ready": True, "pid": os.getpid(), "kill_file": trader.kill.path,
                          "first_uref": int(trader.tctx.st[T.S_NEXT_UREF])}), file=sys.stderr, flush=True)
        secs = tcfg["trading"]["seconds"] or cfg.run.seconds
        t_end = time.monotonic() + secs if secs else float("inf")
        iv = tcfg["trading"]["live_interval_s"]
        prev, t_last = {}, time.monotonic()
        while not stop[0] and time.monotonic() < t_end and trader.running:
            time.sleep(min(0.05, iv))
            trader.tend()
            now = time.monotonic()
            if now - t_last >= iv:
                line, prev = trader.live_line(prev, now - t_last)
                t_last = now
                if not quiet:
                    print(line, file=sys.stderr, flush=True)
        trader.shutdown(tcfg["trading"]["drain_s"])
        trader.backend_stats = trader.backend.stats()   # before close: the card's own counters
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        trader.close()
    summary = trader.summary()
    if hgrm_path:
        with open(hgrm_path, "w") as f:
            f.write(latency.hgrm_text(trader.tctx.t2t))
    text = json.dumps(summary, indent=2, default=str)
    if json_path:
        with open(json_path, "w") as f:
            f.write(text + "\n")
    print(text, flush=True)
    return summary


__all__ = ["Trader", "compile_trade", "run_trade", "StrategyError", "loop_module", "np"]
