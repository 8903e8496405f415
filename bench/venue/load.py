"""The whole venue on loopback under client load: an open-loop OUCH client (orders sent
on a fixed schedule whatever the venue does: no coordinated omission) next to the
background flow, then every response counted.

    from tickpath.bench.venue.load import run_loopback
    run_loopback(client_orders_per_s=100_000, seconds=5, background_per_s=100_000)

The client's orders are pre-encoded SoupBinTCP/OUCH bytes (enters resting a few ticks
away from the reference, each later cancelled, plus a share of marketable IOCs), sent in
1 ms slices on one thread; a second thread reads the responses into one buffer. At the end
the responses are walked once: every order must have been answered (A or J, then its C
or E/C), none lost; the latency inside the venue (OUCH received -> response written, and
-> its ITCH packet sent) comes from the venue's own timestamps (timestamps.py).
"""
from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np

from tickpath.bench.venue import soupbin as SB
from tickpath.bench.venue.venue import Venue, VenueParams

P = 10_000


def _orders(ref, n: int, seed: int) -> bytes:
    """n OUCH commands as SoupBinTCP U packets: enter/cancel pairs and some IOCs."""
    rng = np.random.default_rng(seed)
    out = []
    uref = 0
    pending = []
    syms = [ins.symbol.encode().ljust(8) for ins in ref.instruments]
    for i in range(n):
        if pending and (rng.random() < 0.45 or len(pending) > 200):
            u = pending.pop(0)
            msg = struct.pack(">cII", b"X", u, 0)
        else:
            uref += 1
            k = int(rng.integers(0, len(syms)))
            px = int(ref.ref_price[k + 1])
            tick = int(ref.tick[k + 1])
            buy = rng.random() < 0.5
            ioc = rng.random() < 0.2
            off = (-2 if ioc else int(rng.integers(3, 20))) * tick
            price = px - off if buy else px + off
            msg = struct.pack(">cIcI8sQccccc14sH", b"O", uref, b"B" if buy else b"S", 100, syms[k],
                              price, b"3" if ioc else b"0", b"Y", b"A", b"N", b"N",
                              str(uref).encode().ljust(14), 0)
            if not ioc:
                pending.append(uref)
        out.append(struct.pack(">H", 1 + len(msg)) + b"U" + msg)
    return out


def run_loopback(client_orders_per_s: float = 100_000, seconds: float = 5.0,
                 background_per_s: float = 100_000, instruments: int = 300, seed: int = 1) -> dict:
    cap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # somewhere for the ITCH to go
    cap.bind(("127.0.0.1", 0))
    v = Venue(VenueParams(instruments=instruments, rate_msgs_per_s=background_per_s, seed=seed,
                          itch_to=cap.getsockname(), history_bytes=1 << 30,
                          store_bytes=256 << 20, max_queue_bytes=64 << 20)).start()
    n = int(client_orders_per_s * seconds)
    pkts = _orders(v.ref, n, seed)
    s = socket.create_connection(v.server.address)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(SB.login_request("TEST1", "tickpath", seq=0))
    got = bytearray()
    done = threading.Event()

    def reader():
        s.settimeout(0.2)
        while not done.is_set():
            try:
                d = s.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            if not d:
                return
            got.extend(d)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    per_ms = client_orders_per_s / 1000.0
    sent = 0
    late_slices = 0
    while sent < n:
        due = min(n, int((time.monotonic() - t0) * 1000.0 * per_ms) + 1)
        if due > sent:
            if due - sent > 4 * per_ms:
                late_slices += 1
            s.sendall(b"".join(pkts[sent:due]))
            sent = due
        else:
            time.sleep(0.0002)
    send_s = time.monotonic() - t0
    time.sleep(1.0)
    summary = v.stop()
    done.set()
    th.join(2)
    s.close()
    cap.close()
    counts = {}
    o = 0
    b = bytes(got)
    while len(b) - o >= 3:
        ln = struct.unpack_from(">H", b, o)[0]
        if len(b) - o - 2 < ln:
            break
        t = b[o + 2:o + 3]
        key = (t + b[o + 3:o + 4]).decode() if t == b"S" else t.decode()
        counts[key] = counts.get(key, 0) + 1
        o += 2 + ln
    answered = counts.get("SA", 0) + counts.get("SJ", 0)
    enters = sum(1 for p in pkts if p[3:4] == b"O")
    return {"client_orders": n, "enters": enters, "cancels": n - enters, "send_seconds": round(send_s, 3),
            "late_send_slices": late_slices, "responses": counts, "answered_enters": answered,
            "lost_enters": enters - answered, "venue": summary}
