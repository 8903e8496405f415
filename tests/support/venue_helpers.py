"""Helpers for the venue tests: an engine with its ITCH writer and response ring, command
records built by name, responses drained as dicts."""
from __future__ import annotations

import numpy as np

from tickpath.bench.venue import book as B
from tickpath.bench.venue import engine as E
from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue import refdata
from tickpath.runtime.ipc import ring as R

NOW = 34_200 * 10**9 + 123_456_789     # 09:30:00.123456789 since midnight (midnight = 0)


class Bench:
    """One engine, single thread, no sockets."""

    def __init__(self, instruments=None, smp=True, max_orders=1 << 12):
        self.ref = refdata.build(instruments or [
            refdata.Instrument("AAA", 100_0000, tick=100, band=0.10),
            refdata.Instrument("BBB", 20_0000, tick=100, band=0.05)])
        self.e = B.new_engine(self.ref, max_orders=max_orders, self_match_prevention=smp,
                              user_mpids={1: "USR1", 2: "USR2"})
        self.w = W.new_mold_out(1 << 20, 1 << 14, b"TEST000001")
        self.ring = R.Ring.create(1 << 12, L.RESP_DTYPE)
        self.stop = np.zeros(1, np.int64)
        self.n_itch = 0
        self.uref = {}

    def run(self, *cmds, now=NOW):
        arr = np.zeros(len(cmds), L.CMD_DTYPE)
        for i, c in enumerate(cmds):
            arr[i] = c
        E.process_all(self.e, self.w, self.ring.hdr, self.ring.data, self.stop, arr, now)
        return self.responses(), self.itch()

    def responses(self):
        out = np.zeros(self.ring.capacity, L.RESP_DTYPE)
        n = R.pop_into(self.ring.hdr, self.ring.data, out)
        return [resp_dict(r) for r in out[:n]]

    def itch(self):
        msgs = W.messages(self.w, self.n_itch)
        self.n_itch += len(msgs)
        return msgs

    def levels(self, loc, side):
        return B.levels(self.e, loc, side)


def resp_dict(r) -> dict:
    d = {n: (int(r[n]) if r[n].ndim == 0 else bytes(r[n])) for n in L.RESP_DTYPE.names
         if not n.startswith("_")}
    d["kind"] = chr(d["kind"])
    return d


def cmd(kind="O", user=1, uref=1, orig_uref=0, locate=1, side="B", qty=100, price=100_0000,
        tif="0", display="Y", capacity="A", iso="N", cross="N", clordid=b"", token=-1):
    rec = np.zeros((), L.CMD_DTYPE)
    rec["kind"] = ord(kind)
    rec["side"] = ord(side)
    rec["tif"] = ord(tif)
    rec["display"] = ord(display)
    rec["capacity"] = ord(capacity)
    rec["iso"] = ord(iso)
    rec["cross"] = ord(cross)
    rec["user"], rec["uref"], rec["orig_uref"], rec["locate"] = user, uref, orig_uref, locate
    rec["qty"], rec["price"], rec["token"] = qty, price, token
    rec["clordid"] = np.frombuffer(clordid.ljust(14)[:14], np.uint8)
    return rec


def enter(uref, side, qty, price, user=1, **kw):
    return cmd("O", user=user, uref=uref, side=side, qty=qty, price=price, **kw)


def cancel(uref, qty=0, user=1):
    return cmd("X", user=user, uref=uref, qty=qty)


def replace(orig, uref, qty, price, user=1, **kw):
    return cmd("U", user=user, uref=uref, orig_uref=orig, qty=qty, price=price, **kw)


def modify(uref, side, qty, user=1):
    return cmd("M", user=user, uref=uref, side=side, qty=qty)


def parse_itch(msg: bytes) -> dict:
    """One ITCH 5.0 message as a dict of its fields (header + body, runtime.feed.itch's table)."""
    import struct

    from tickpath.runtime.feed import itch
    t = chr(msg[0])
    fields = itch.BODY_FIELDS[t]
    fmt = ">" + "".join(c for _, c in fields)
    assert len(msg) == itch.MESSAGE_BYTES[t], (t, len(msg))
    out = {"type": t, "locate": int.from_bytes(msg[1:3], "big"),
           "tracking": int.from_bytes(msg[3:5], "big"), "ts": int.from_bytes(msg[5:11], "big")}
    for (name, _), v in zip(fields, struct.unpack(fmt, msg[11:])):
        out[name] = v
    return out
