"""The venue assembled: reference data, engine, ITCH writer and socket, retransmission
server, background flow, the matching thread and the OUCH server — set up in that order,
torn down in reverse.

    v = Venue(VenueParams(...)).start()     # ready: v.ready() is the JSON ready line
    ...
    summary = v.stop()                      # end of day: ITCH S M/E/C + MoldUDP64 end of
                                            # session, OUCH S E + SoupBinTCP Z, then figures
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tickpath.bench.load.retransmit import RetransmitServer
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.engine import idle as IDLE
from tickpath.runtime.engine import latency as LAT
from tickpath.runtime.engine.pipeline import utc_midnight_ns
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.ipc.ring import Ring

from tickpath.bench.venue import book as B
from tickpath.bench.venue import engine as E
from tickpath.bench.venue import flow as F
from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue import matcher as MT
from tickpath.bench.venue import refdata as RD
from tickpath.bench.venue import timestamps as TS
from tickpath.bench.venue.server import OuchServer

DEFAULT_USER = ("TEST1", "tickpath")


@dataclass
class VenueParams:
    instruments: int = 300
    refdata: list | None = None          # [[instrument]] rows from a config (overrides instruments)
    rate_msgs_per_s: float = 100_000.0   # background flow events/s
    seed: int = 1
    itch_to: tuple = ("127.0.0.1", 26400)
    ouch_host: str = "127.0.0.1"
    ouch_port: int = 0
    retransmit_port: int = 0
    session: str = "TKPVENUE01"
    users: list = field(default_factory=lambda: [DEFAULT_USER])
    self_match_prevention: bool = True
    max_orders: int = 1 << 20
    history_bytes: int = 1 << 30
    store_bytes: int = 64 << 20          # per user: the day's sequenced OUCH output
    max_queue_bytes: int = 4 << 20       # per session: unsent output before a slow-consumer logout
    band: float = RD.DEFAULT_BAND
    idle: str = "backoff"
    target_live: int | None = None
    multicast_ttl: int = 1
    multicast_if: str | None = None
    sndbuf_bytes: int | None = None
    quiet_symbols: list = field(default_factory=list)   # listed, but no background flow in them
    storm_at_s: float = -1.0             # a message storm starts this long after start (-1: only on SIGUSR1)
    storm_s: float = 0.0                 # ... and lasts this long (0: no storm)
    storm_factor: float = 10.0           # ... with the background flow at this many times the rate

    def check(self) -> "VenueParams":
        if not self.rate_msgs_per_s >= 0:
            raise ConfigError("rate must be >= 0", rate=self.rate_msgs_per_s)
        if not self.users:
            raise ConfigError("at least one user is needed")
        if not (self.storm_s >= 0 and self.storm_factor >= 1 and (self.storm_at_s >= 0 or self.storm_at_s == -1)):
            raise ConfigError("storm: seconds >= 0, factor >= 1, at >= 0 (or -1: on SIGUSR1)",
                              storm_at_s=self.storm_at_s, storm_s=self.storm_s, storm_factor=self.storm_factor)
        for name, pw in self.users:
            if not (1 <= len(name) <= 6 and name.isascii() and name.isalnum()) or not 1 <= len(pw) <= 10:
                raise ConfigError("user names are 1-6 alphanumerics, passwords 1-10 characters",
                                  user=name)
        if len(self.session) > 10:
            raise ConfigError("session is at most 10 characters", session=self.session)
        return self


class Venue:
    def __init__(self, params: VenueParams):
        p = self.params = params.check()
        self.ref = RD.from_config(p.refdata) if p.refdata else RD.generate(p.instruments, p.seed, p.band)
        self.midnight_ns = utc_midnight_ns()
        self.session = M.session_bytes(p.session)
        mpids = {0: "BKGD"} | {i + 1: n[:4].upper() for i, (n, _) in enumerate(p.users)}
        self.engine = B.new_engine(self.ref, max_orders=p.max_orders,
                                   self_match_prevention=p.self_match_prevention, user_mpids=mpids)
        # ITCH socket (unicast or multicast) and writer
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        host, port = p.itch_to
        if socket.inet_aton(host)[0] & 0xF0 == 0xE0:
            self.usock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, p.multicast_ttl)
            if p.multicast_if:
                self.usock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                      socket.inet_aton(p.multicast_if))
        addr = np.zeros(16, np.uint8)
        addr[:8] = np.frombuffer(struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
                                 + socket.inet_aton(host), np.uint8)
        self.writer = W.new_mold_out(p.history_bytes, max(1024, p.history_bytes // 24), self.session,
                                     fd=self.usock.fileno(), addr=addr, midnight_ns=self.midnight_ns)
        self.history = W.HistoryView(self.writer)
        self.retransmit = RetransmitServer(self.history, buf=self.writer.buf,
                                           sent_msgs=self.history.sent_msgs, host=p.ouch_host,
                                           port=p.retransmit_port, session=self.session)
        # rings, logs, flow, matcher
        self.cmd_ring = Ring.create(1 << 14, L.CMD_DTYPE)
        self.resp_ring = Ring.create(1 << 16, L.RESP_DTYPE)
        self.abort = np.zeros(1, np.int64)
        self.in_log = TS.new_in_log(1 << 22)
        self.tokens = np.zeros(1, np.int64)
        quiet = [self.ref.locate(s) for s in p.quiet_symbols]
        self.flow = F.new_flow(self.ref, p.seed, p.target_live, quiet)
        self.ctl = MT.new_ctl(p.rate_msgs_per_s)
        self.ctl[MT.K_STORM_NS] = int(p.storm_s * 1e9)
        self.ctl[MT.K_STORM_X_MILLI] = int(p.storm_factor * 1000)
        if p.storm_at_s >= 0:
            self.ctl[MT.K_STORM_AT_NS] = int(p.storm_at_s * 1e9)
        self.idle_params = IDLE.make_params(p.idle, max_park_ns=200_000)
        self.idle_state = IDLE.new_state()
        self.server = OuchServer(host=p.ouch_host, port=p.ouch_port, session=self.session,
                                 users=p.users, ref=self.ref, resp_ring=self.resp_ring,
                                 cmd_ring=self.cmd_ring, abort=self.abort, in_log=self.in_log,
                                 tokens=self.tokens, midnight_ns=self.midnight_ns,
                                 store_bytes=p.store_bytes, max_queue_bytes=p.max_queue_bytes,
                                 sndbuf_bytes=p.sndbuf_bytes)
        self.thread: threading.Thread | None = None
        self.started_ns = 0
        self.stopped = False
        self._compile()

    def _compile(self):
        """Run every jitted path once on a scratch copy, so no compile lands mid-run."""
        e = B.new_engine(self.ref, max_orders=16)
        w = W.new_mold_out(4096, 64, self.session)
        ctl = MT.new_ctl(0.0)
        ctl[MT.K_STOP] = 1
        MT.run(e, w, self.resp_ring.hdr, self.resp_ring.data, self.cmd_ring.hdr, self.cmd_ring.data,
               self.abort, *self.flow, self.in_log, ctl, self.idle_params, self.idle_state)
        W.put_raw(w, np.zeros(12, np.uint8))
        W.system_event(w, 0, ord("O"))
        W.flush(w)
        W.header_only(w, 0)
        E.set_open(e, True)
        LAT.record_all(LAT.new_histogram(), np.zeros(1, np.int64))

    # ------------------------------------------------------------ life cycle
    def _publish_preamble(self, now: int):
        w, ts = self.writer, now - self.midnight_ns
        W.system_event(w, now, ord("O"))
        for k, ins in enumerate(self.ref.instruments):
            loc = k + 1
            W.put_raw(w, np.frombuffer(itch.encode_stock_directory(
                loc, 0, ts, ins.symbol, round_lot_size=ins.round_lot), np.uint8))
        for k, ins in enumerate(self.ref.instruments):
            W.put_raw(w, np.frombuffer(itch.encode_trading_action(k + 1, 0, ts, ins.symbol, "T"), np.uint8))
        W.system_event(w, now, ord("S"))
        W.system_event(w, now, ord("Q"))
        W.flush(w)

    def storm_now(self) -> None:
        """Start the configured message storm now (SIGUSR1 in `tickpath venue`)."""
        if self.ctl[MT.K_START_NS] > 0:
            self.ctl[MT.K_STORM_AT_NS] = time.clock_gettime_ns(time.CLOCK_REALTIME) - self.ctl[MT.K_START_NS]

    def start(self) -> "Venue":
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        self.started_ns = now
        self._publish_preamble(now)
        self.server.system_event("S", now)
        self.ctl[MT.K_START_NS] = time.clock_gettime_ns(time.CLOCK_REALTIME)
        self.retransmit.start()
        self.thread = threading.Thread(target=self._run_matcher, daemon=True, name="tickpath-venue-match")
        self.thread.start()
        self.server.start()
        return self

    def _run_matcher(self):
        MT.run(self.engine, self.writer, self.resp_ring.hdr, self.resp_ring.data, self.cmd_ring.hdr,
               self.cmd_ring.data, self.abort, *self.flow, self.in_log, self.ctl, self.idle_params,
               self.idle_state)

    def ready(self) -> dict:
        h, p = self.params.itch_to
        oh, op = self.server.address
        rh, rp = self.retransmit.address
        return {"ouch": f"{oh}:{op}", "itch": f"{h}:{p}", "retransmit": f"{rh}:{rp}",
                "session": self.session.decode().strip(),
                "symbols": [i.symbol for i in self.ref.instruments],
                "users": [{"username": n, "password": pw} for n, pw in self.params.users],
                "refdata": self.ref.table()}

    def stop(self) -> dict:
        """End the day and return the summary."""
        if self.stopped:
            return self.summary()
        self.stopped = True
        self.ctl[MT.K_STOP] = 1
        if self.thread is not None:
            self.thread.join(10)
        # the matching thread is done: this thread is now the books' only writer
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        E.set_open(self.engine, False)
        w = self.writer
        for code in "MEC":
            W.system_event(w, now, ord(code))
        W.flush(w)
        for _ in range(3):
            W.header_only(w, M.END_OF_SESSION_COUNT)
        self.server.ended = True
        self.server.close(end_of_session=True, end_of_day_ns=now)
        time.sleep(0.05)
        self.retransmit.close()
        self.usock.close()
        self.stopped_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        return self.summary()

    # ------------------------------------------------------------ figures
    def summary(self) -> dict:
        c = self.engine.counters
        w = self.writer
        n_pkts = int(w.state[W.N_PKTS])
        lat = TS.latencies(self.in_log, int(self.tokens[0]), w.pkt_first, w.pkt_send_ns, n_pkts)
        srv = self.server.stats()
        elapsed = ((getattr(self, "stopped_ns", 0) or time.clock_gettime_ns(time.CLOCK_REALTIME))
                   - self.started_ns) / 1e9
        return {
            "seconds": round(elapsed, 3),
            "orders_received": {n: sum(u[k] for k in ("enter", "replace", "cancel", "modify"))
                                for n, u in srv["users"].items()},
            "engine": {n: int(c[i]) for i, n in enumerate(L.COUNTER_NAMES)
                       if n not in ("itch_messages", "history_full")},   # the writer's, below
            "rejected_by_reason": {L.REJECT_NAMES[r]: int(c[L.REJ_BASE + r])
                                   for r in L.REJECT_NAMES if c[L.REJ_BASE + r]},
            "itch": {"messages": int(w.state[W.N_MSGS]), "packets": n_pkts,
                     "heartbeats_and_end": int(w.state[W.HEARTBEATS]),
                     "send_errors": int(w.state[W.SEND_ERRORS]), "history_full": int(w.state[W.FULL])},
            "retransmit": dict(self.retransmit.counts),
            "background": {"events": int(self.ctl[MT.K_BG_DONE]), "late_passes": int(self.ctl[MT.K_LATE_BG]),
                           "rate_msgs_per_s": self.params.rate_msgs_per_s,
                           "storm": ({"at_s": round(int(self.ctl[MT.K_STORM_AT_NS]) / 1e9, 3),
                                      "seconds": self.params.storm_s, "factor": self.params.storm_factor}
                                     if self.ctl[MT.K_STORM_AT_NS] != MT.NO_STORM and self.params.storm_s > 0
                                     else None)},
            "live_orders": B.live_orders(self.engine),
            "sessions": srv["sessions"], "users": srv["users"],
            "latency_ns": {"ouch_in_to_response_written": LAT.summary(lat["response"]),
                           "ouch_in_to_itch_sent": LAT.summary(lat["itch"])},
        }

    def histograms(self) -> dict:
        w = self.writer
        return TS.latencies(self.in_log, int(self.tokens[0]), w.pkt_first, w.pkt_send_ns,
                            int(w.state[W.N_PKTS]))

    def write_timestamps(self, path: str):
        TS.write_log(path, self.in_log, int(self.tokens[0]), self.writer)
