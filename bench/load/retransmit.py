"""A/B feed publisher with seeded loss, and a MoldUDP64 retransmission server answering from
its history — the bench side of runtime/arbiter.py and runtime/recovery.py.

`ABSender` sends each pre-packed MoldUDP64 packet to line A and line B on an open-loop
schedule (bench/load/sender.py's send core: the scheduled send time is stamped into the
ITCH timestamps first), dropping the packets its loss masks mark — seeded, so a run is
reproducible — and then sends heartbeats on both lines, which reveal a lost tail.

`RetransmitServer` answers request packets (session 10 B + seq u64 BE + count u16 BE) from
the sender's stamped buffer with ordinary downstream packets, only for messages already
published. It can be told to refuse (drop requests), be slow (answer after delay_s), or
be silent (never answer), and to answer at most `max_answer_msgs` per request. It runs
on a Python thread: retransmission is the rare path (1 % loss on both lines is 1 in 10^4).
"""
from __future__ import annotations

import select
import socket
import threading
import time

import numpy as np
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.core.errors import ConfigError

from tickpath.bench.load.market import MoldPackets
from tickpath.bench.load.sender import (
    N_PROGRESS,
    S_DONE,
    S_DROPPED_A,
    S_DROPPED_B,
    S_NEXT_PKT,
    S_STOP,
    line_addrs,
    rate_schedule,
    send_paced,
)

MODES = ("ok", "refuse", "slow", "silent")


def loss_mask(n_pkts: int, loss: float, seed: int, burst: int = 1) -> np.ndarray:
    """uint8[n]: 1 = drop. Loss events start with probability loss/burst and drop `burst`
    packets, so the fraction lost is about `loss`."""
    if not 0.0 <= loss < 1.0 or burst < 1:
        raise ConfigError("loss must be in [0, 1) and burst >= 1", loss=loss, burst=burst)
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(rng.random(n_pkts) < loss / burst)
    mask = np.zeros(n_pkts, dtype=np.uint8)
    for k in range(burst):
        mask[np.minimum(starts + k, n_pkts - 1)] = 1
    return mask


class ABSender:
    """Publishes `packets` on lines A and B at rate_msgs_per_s with the given loss masks."""

    def __init__(self, packets: MoldPackets, line_a: tuple[str, int], line_b: tuple[str, int],
                 rate_msgs_per_s: float, drop_a: np.ndarray | None = None,
                 drop_b: np.ndarray | None = None, max_seconds: float = 600.0):
        n = packets.n_packets
        self.drop_a = np.zeros(n, np.uint8) if drop_a is None else np.ascontiguousarray(drop_a, np.uint8)
        self.drop_b = np.zeros(n, np.uint8) if drop_b is None else np.ascontiguousarray(drop_b, np.uint8)
        if len(self.drop_a) != n or len(self.drop_b) != n or not rate_msgs_per_s > 0:
            raise ConfigError("loss masks must have one entry per packet, rate > 0",
                              n_packets=n, rate_msgs_per_s=rate_msgs_per_s)
        self.packets, self.rate, self.max_seconds = packets, float(rate_msgs_per_s), max_seconds
        self.line_a, self.line_b = line_a, line_b   # may be changed until start()
        self.drops = np.ascontiguousarray(np.stack([self.drop_a, self.drop_b]))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.buf = packets.buf.copy()   # stamped as sent: the retransmission server's history
        self.progress = np.zeros(N_PROGRESS, dtype=np.int64)
        self.thread: threading.Thread | None = None
        self._sched = rate_schedule(packets.msg_first, self.rate)
        p = packets   # compile now: a compile inside the timed run would make every send late
        send_paced(self.sock.fileno(), line_addrs(line_a, line_b), self.buf, p.offsets,
                   p.lengths, p.msg_first, p.msg_count, p.ts_offsets, 0, 0, 0, self._sched, 1, 0,
                   0, self.drops, self.progress)
        self.progress[:] = 0

    def sent_msgs(self) -> int:
        """Messages whose turn has come, lost on purpose or not: their numbers are spent, so
        the retransmission server may answer for them."""
        k = int(self.progress[S_NEXT_PKT])
        p = self.packets
        return int(p.msg_first[k - 1] + p.msg_count[k - 1] - p.msg_first[0]) if k > 0 else 0

    def _body(self, heartbeats: int):
        from tickpath.runtime.engine.pipeline import utc_midnight_ns
        p = self.packets
        start = time.clock_gettime_ns(time.CLOCK_REALTIME) + 20_000_000
        addrs = line_addrs(self.line_a, self.line_b)
        send_paced(self.sock.fileno(), addrs, self.buf, p.offsets, p.lengths, p.msg_first,
                   p.msg_count, p.ts_offsets, 0, p.n_packets, start, self._sched, 1,
                   utc_midnight_ns(), start + int(self.max_seconds * 1e9), self.drops,
                   self.progress)
        self.progress[S_DONE] = 1
        nxt = int(p.first_seq[0] + p.msg_first[-1] - p.msg_first[0] + p.msg_count[-1]) if p.n_packets else 1
        hb = M.mold_heartbeat(p.session, nxt)
        for _ in range(heartbeats):   # a lost tail shows up as a gap against these
            if self.progress[S_STOP]:
                break
            self.sock.sendto(hb, self.line_a)
            self.sock.sendto(hb, self.line_b)
            time.sleep(0.005)

    def start(self, heartbeats: int = 5):
        self.thread = threading.Thread(target=self._body, args=(heartbeats,), daemon=True,
                                       name="tickpath-ab-sender")
        self.thread.start()
        return self

    def join(self, timeout_s: float | None = None):
        if self.thread is not None:
            self.thread.join(timeout_s)

    def stats(self) -> dict:
        return {"sent_packets": int(self.progress[S_NEXT_PKT]), "sent_messages": self.sent_msgs(),
                "dropped_a": int(self.progress[S_DROPPED_A]), "dropped_b": int(self.progress[S_DROPPED_B]),
                "dropped_both": int(np.count_nonzero(self.drop_a & self.drop_b)), "rate_msgs_per_s": self.rate}

    def close(self):
        self.progress[S_STOP] = 1
        self.join(5)
        self.sock.close()


class RetransmitServer:
    """Answers MoldUDP64 requests from `buf` (the sender's stamped copy of packets.buf)."""

    def __init__(self, packets: MoldPackets, buf: np.ndarray | None = None, sent_msgs=None,
                 mode: str = "ok", delay_s: float = 0.0, max_answer_msgs: int = 1000,
                 host: str = "127.0.0.1", port: int = 0, session: bytes | None = None,
                 max_payload_bytes: int = M.MTU1500_PAYLOAD_BYTES):
        if mode not in MODES:
            raise ConfigError("unknown retransmission server mode", mode=mode, allowed=MODES)
        if delay_s < 0 or max_answer_msgs < 1:
            raise ConfigError("delay_s >= 0 and max_answer_msgs >= 1 required",
                              delay_s=delay_s, max_answer_msgs=max_answer_msgs)
        self.packets, self.mode, self.delay_s = packets, mode, delay_s
        self.buf = packets.buf if buf is None else buf
        self.sent_msgs = sent_msgs or (lambda: len(packets.ts_offsets))
        self.max_answer_msgs, self.max_payload = max_answer_msgs, max_payload_bytes
        self.session = M.session_bytes(session) if session else packets.session
        self.first_seq = int(packets.first_seq[0]) if packets.n_packets else 1
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.address = self.sock.getsockname()
        self.counts = {"requests": 0, "answered_msgs": 0, "refused": 0, "bad_requests": 0, "packets": 0}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="tickpath-retransmit")

    def start(self):
        self.thread.start()
        return self

    def _message(self, i: int) -> bytes:
        o = int(self.packets.ts_offsets[i]) - 5      # ITCH: type 1, locate 2, tracking 2, ts 6
        ln = int(self.buf[o - 2]) << 8 | int(self.buf[o - 1])
        return self.buf[o:o + ln].tobytes()

    def answer(self, req: bytes) -> list[bytes]:
        """The response packets for one request (empty when it is refused or invalid)."""
        if len(req) != 20 or req[:10] != self.session:
            self.counts["bad_requests"] += 1
            return []
        seq, count = int.from_bytes(req[10:18], "big"), int.from_bytes(req[18:20], "big")
        self.counts["requests"] += 1
        if self.mode in ("refuse", "silent"):
            self.counts["refused"] += 1
            return []
        lo = max(seq - self.first_seq, 0)
        hi = min(seq - self.first_seq + min(count, self.max_answer_msgs), self.sent_msgs())
        out, msgs, size, first = [], [], M.HEADER_BYTES, lo
        for i in range(lo, hi):
            m = self._message(i)
            if msgs and size + 2 + len(m) > self.max_payload:
                out.append(M.mold_packet(self.session, self.first_seq + first, msgs))
                msgs, size, first = [], M.HEADER_BYTES, i
            msgs.append(m)
            size += 2 + len(m)
        if msgs:
            out.append(M.mold_packet(self.session, self.first_seq + first, msgs))
        self.counts["answered_msgs"] += max(hi - lo, 0)
        return out

    def _serve(self):
        pending: list[tuple[float, bytes, tuple]] = []   # (due, packet, peer): the slow mode
        while not self._stop.is_set():
            timeout = 0.01 if not pending else max(0.0, min(0.01, pending[0][0] - time.monotonic()))
            r, _, _ = select.select([self.sock], [], [], timeout)
            if r:
                try:
                    req, peer = self.sock.recvfrom(2048)
                except OSError:
                    continue
                due = time.monotonic() + (self.delay_s if self.mode == "slow" else 0.0)
                pending.extend((due, p, peer) for p in self.answer(req))
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, p, peer = pending.pop(0)
                try:
                    self.sock.sendto(p, peer)
                    self.counts["packets"] += 1
                except OSError:
                    pass   # the client's timeout asks again

    def close(self):
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(2)
        self.sock.close()
