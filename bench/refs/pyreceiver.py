"""The honest baseline: what a user would otherwise write — a plain-Python blocking UDP
receiver decoding MoldUDP64/ITCH with `struct`, keeping an order map (dict) and an EMA of
trade prices, measuring send→done latency per message like the runtime does.

It does *less* work per message than tickpath (no price levels, no RSI/VWAP/microprice),
so the comparison flatters it. It runs in its own process (its own GIL), pinned to the same
core the runtime used. Imports stay plain (socket, struct, time; numpy only for the result
array) so it is what the baseline claims to be.
"""
from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np

_HDR = struct.Struct(">10sQH")
_LEN = struct.Struct(">H")
_ADD = struct.Struct(">QcI8sI")          # A: ref, side, shares, stock, price (after 11-byte head)
_EXEC = struct.Struct(">QIQ")            # E: ref, shares, match
_EXEC_PX = struct.Struct(">QIQcI")       # C: ref, shares, match, printable, price
_CANCEL = struct.Struct(">QI")           # X: ref, shares
_DELETE = struct.Struct(">Q")            # D: ref
_REPLACE = struct.Struct(">QQII")        # U: old, new, shares, price
_TRADE = struct.Struct(">QcI8sIQ")       # P: ref, side, shares, stock, price, match
_DAY_NS = 86_400_000_000_000


def receive(sock: socket.socket, n_expected: int, deadline_s: float, midnight_ns: int) -> dict:
    lat = np.zeros(n_expected, dtype=np.int64)
    orders: dict[int, list] = {}
    ema = None
    k_ema = 2.0 / (20 + 1)
    next_seq = 0
    n = gaps = gap_msgs = dups = malformed = 0
    end = time.monotonic() + deadline_s
    clock = time.clock_gettime_ns
    rt = time.CLOCK_REALTIME
    while n < n_expected:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if len(data) < 20:
            malformed += 1
            continue
        _session, seq, count = _HDR.unpack_from(data, 0)
        if count == 0 or count == 0xFFFF:
            continue
        if next_seq and seq > next_seq:
            gaps += 1
            gap_msgs += seq - next_seq
        elif next_seq and seq < next_seq:
            dups += count
            continue
        next_seq = seq + count
        off = 20
        for _ in range(count):
            if off + 2 > len(data):
                malformed += 1
                break
            (ln,) = _LEN.unpack_from(data, off)
            off += 2
            if ln < 11 or off + ln > len(data):
                malformed += 1
                break
            t = data[off]
            ts = int.from_bytes(data[off + 5:off + 11], "big")
            body = off + 11
            if t == 0x41 or t == 0x46:      # A / F
                ref, side, shares, _stock, price = _ADD.unpack_from(data, body)
                orders[ref] = [side, shares, price]
            elif t == 0x45:                 # E
                ref, shares, _m = _EXEC.unpack_from(data, body)
                o = orders.get(ref)
                if o is not None:
                    o[1] -= shares
                    px = o[2] / 1e4
                    ema = px if ema is None else ema + k_ema * (px - ema)
                    if o[1] <= 0:
                        del orders[ref]
            elif t == 0x43:                 # C
                ref, shares, _m, _p, price = _EXEC_PX.unpack_from(data, body)
                o = orders.get(ref)
                if o is not None:
                    o[1] -= shares
                    ema = price / 1e4 if ema is None else ema + k_ema * (price / 1e4 - ema)
                    if o[1] <= 0:
                        del orders[ref]
            elif t == 0x58:                 # X
                ref, shares = _CANCEL.unpack_from(data, body)
                o = orders.get(ref)
                if o is not None:
                    o[1] -= shares
                    if o[1] <= 0:
                        del orders[ref]
            elif t == 0x44:                 # D
                (ref,) = _DELETE.unpack_from(data, body)
                orders.pop(ref, None)
            elif t == 0x55:                 # U
                old, new, shares, price = _REPLACE.unpack_from(data, body)
                o = orders.pop(old, None)
                if o is not None:
                    orders[new] = [o[0], shares, price]
            elif t == 0x50:                 # P
                _r, _s, _sh, _st, price, _m = _TRADE.unpack_from(data, body)
                ema = price / 1e4 if ema is None else ema + k_ema * (price / 1e4 - ema)
            off += ln
            if n < n_expected:
                d = clock(rt) - (midnight_ns + ts)
                lat[n] = d + _DAY_NS if d < -_DAY_NS // 2 else d
                n += 1
    return {"received": n, "gaps": gaps, "gap_messages": gap_msgs, "duplicates": dups,
            "malformed": malformed, "latency_ns": lat[:n], "live_orders": len(orders), "ema": ema}


def child_main(cpu, n_expected: int, deadline_s: float, midnight_ns: int, out_path: str) -> None:
    """Entry point of the baseline process: bind, print the port, receive, save results."""
    if cpu is not None:
        os.sched_setaffinity(0, [cpu])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1], flush=True)
    t0 = time.process_time()
    res = receive(s, n_expected, deadline_s, midnight_ns)
    res["cpu_seconds"] = time.process_time() - t0
    lat = res.pop("latency_ns")
    np.savez(out_path, latency_ns=lat, **{k: np.asarray(v if v is not None else np.nan) for k, v in res.items()})
    s.close()


if __name__ == "__main__":
    import sys

    cpu_arg, n_arg, dl_arg, mid_arg, out_arg = sys.argv[1:6]
    child_main(None if cpu_arg == "-" else int(cpu_arg), int(n_arg), float(dl_arg), int(mid_arg), out_arg)
