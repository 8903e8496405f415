"""Reading and checking an audit log (slow path, plain Python + numpy).

`read_records(path)` returns the header, every complete record, which CRCs hold (checked
with zlib, apart from the writer's own CRC code) and the size of a torn tail (a record cut
by a crash: reported, not an error). `verify(path)` adds the log's own consistency:

* every record's CRC; records in order (seq strictly rising; a jump = records the full
  ring refused, a step back = disorder);
* the order state machine: every response concerns an order whose decision (or, for a
  replacement, whose original's decision) was logged; nothing is sent for an order the
  risk gate rejected; fills never exceed the order's quantity (for a replaced chain: the
  replace quantity, which counts earlier executions) nor what is open; a cancel never
  takes more than is open; after a terminal state (filled, cancelled to zero, rejected,
  replaced away, accepted dead) only a broken trade or a cancel reject may follow.
  Quantities in A/U/M are what is outstanding after them (the venue's and OUCH's
  meaning); C carries the decrement.
"""
from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as L
from tickpath.runtime.trading.audit.log import AuditError

ALLOWED_AFTER_TERMINAL = {R.RESP_BROKEN, R.RESP_CANCEL_REJECT}
NO_ORDER_KINDS = {R.RESP_SYSTEM, R.RESP_SESSION_LOST, R.RESP_UNDECODED}


class AuditFile(NamedTuple):
    header: dict
    records: np.ndarray        # AUDIT_DTYPE, every complete record
    crc_ok: np.ndarray         # bool per record
    torn_tail_bytes: int       # bytes after the last complete record (0 = clean end)


def read_records(path: str) -> AuditFile:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise AuditError("cannot read the audit log", path=path, reason=exc.strerror) from exc
    if len(raw) < L.HEADER_BYTES:
        raise AuditError("audit log shorter than its header", path=path, size=len(raw))
    h = np.frombuffer(raw, L.HEADER_DTYPE, count=1)[0]
    if bytes(h["magic"]) != L.MAGIC:
        raise AuditError("not a tickpath audit log (bad magic)", path=path, magic=bytes(h["magic"]))
    if int(h["version"]) != L.VERSION or int(h["record_bytes"]) != L.RECORD_BYTES:
        raise AuditError("audit log of another version or record size", path=path,
                         version=int(h["version"]), record_bytes=int(h["record_bytes"]),
                         expected_version=L.VERSION, expected_record_bytes=L.RECORD_BYTES)
    if zlib.crc32(raw[: L.HEADER_CRC_BYTES]) != int(h["crc"]):
        raise AuditError("audit log header CRC mismatch", path=path)
    body = len(raw) - L.HEADER_BYTES
    n = body // L.RECORD_BYTES
    recs = np.frombuffer(raw, L.AUDIT_DTYPE, count=n, offset=L.HEADER_BYTES).copy()
    crc_ok = np.fromiter(
        (zlib.crc32(raw[o:o + L.CRC_BYTES]) == int(c)
         for o, c in zip(range(L.HEADER_BYTES, L.HEADER_BYTES + n * L.RECORD_BYTES, L.RECORD_BYTES),
                         recs["crc"])), dtype=bool, count=n)
    header = {"version": int(h["version"]), "record_bytes": int(h["record_bytes"]),
              "created_ns": int(h["created_ns"]), "pid": int(h["pid"])}
    return AuditFile(header, recs, crc_ok, body - n * L.RECORD_BYTES)


class _Order:
    """One UserRefNum's life as the log tells it. `limit`: the most the chain may execute
    (the NEW intent's qty, or a replace's qty, which counts earlier executions); `open`:
    shares live at the venue (A/U/M quantities are what is outstanding after them)."""
    __slots__ = ("limit", "open", "chain_executed", "accepted", "terminal", "why", "risk_rejected")

    def __init__(self, limit: int, chain_executed: int = 0):
        self.limit = limit
        self.open = limit - chain_executed
        self.chain_executed = chain_executed
        self.accepted = False
        self.terminal = False
        self.why = ""
        self.risk_rejected = False


def _ch(v: int) -> str:
    return chr(v) if 32 < v < 127 else str(v)


class Verdict(NamedTuple):
    ok: bool
    problems: list[str]        # each names the record index (0 = the first record)
    notes: list[str]           # not failures: a torn tail, undecoded venue messages
    counts: dict


def check(af: AuditFile) -> Verdict:
    """The checks of the module doc on records already read."""
    problems: list[str] = []
    notes: list[str] = []
    recs = af.records
    if af.torn_tail_bytes:
        notes.append(f"torn tail: {af.torn_tail_bytes} bytes after record {len(recs) - 1} "
                     f"(a crash mid-write; everything before it is intact)")
    for i in np.flatnonzero(~af.crc_ok):
        problems.append(f"record {i}: CRC mismatch (seq={int(recs['seq'][i])})")
    seqs = recs["seq"].astype(np.int64)
    for i in range(1, len(recs)):
        if not af.crc_ok[i] or not af.crc_ok[i - 1]:
            continue
        d = seqs[i] - seqs[i - 1]
        if d > 1:
            problems.append(f"record {i}: records seq {seqs[i - 1] + 1}..{seqs[i] - 1} missing "
                            f"(the audit ring was full, or the file was cut)")
        elif d < 1:
            problems.append(f"record {i}: out of order (seq {seqs[i]} after {seqs[i - 1]})")
    orders: dict[int, _Order] = {}
    counts = {name: 0 for name in L.KIND_NAMES.values()}
    fills = 0
    for i, r in enumerate(recs):
        if not af.crc_ok[i]:
            continue
        kind, code, uref = int(r["kind"]), int(r["code"]), int(r["uref"])
        counts[L.KIND_NAMES.get(kind, "unknown")] = counts.get(L.KIND_NAMES.get(kind, "unknown"), 0) + 1
        if kind == L.KIND_DECISION:
            if code == R.INTENT_NEW:
                if uref in orders:
                    problems.append(f"record {i}: decision for uref {uref}, already used")
                orders[uref] = _Order(int(r["qty"]))
        elif kind == L.KIND_RISK:
            if code == L.VERDICT_REJECT and int(r["flag"]) == R.INTENT_NEW and uref in orders:
                orders[uref].risk_rejected = True
        elif kind == L.KIND_SENT:
            if code == R.INTENT_REPLACE:
                orig = orders.get(int(r["aux"]))
                if orig is None:
                    problems.append(f"record {i}: replace sent for uref {int(r['aux'])} with no logged decision")
                orders[uref] = _Order(int(r["qty"]), orig.chain_executed if orig else 0)
                continue
            o = orders.get(uref)
            if o is None:
                problems.append(f"record {i}: sent ({_ch(code)}) for uref {uref} with no logged decision")
            elif o.risk_rejected and code == R.INTENT_NEW:
                problems.append(f"record {i}: uref {uref} sent although the risk gate rejected it")
        elif kind == L.KIND_RESPONSE:
            if code in NO_ORDER_KINDS:
                if code == R.RESP_UNDECODED:
                    notes.append(f"record {i}: the venue sent a message order entry could not decode "
                                 f"(reason {int(r['reason'])}, type {_ch(int(r['flag']))})")
                continue
            name = _ch(code)
            qty = int(r["qty"])
            if code == R.RESP_REPLACED:
                orig = orders.get(int(r["aux"]))
                if orig is None:
                    problems.append(f"record {i}: U for orig uref {int(r['aux'])} whose decision was not logged")
                    continue
                if orig.terminal:
                    problems.append(f"record {i}: U after uref {int(r['aux'])} was {orig.why}")
                orig.terminal, orig.why = True, "replaced"
                new = orders.get(uref)
                if new is None:      # the replace's SENT record is missing: the chain keeps its limit
                    new = orders[uref] = _Order(orig.limit, orig.chain_executed)
                new.chain_executed = orig.chain_executed
                new.open, new.accepted = qty, True
                if new.chain_executed + qty > new.limit:
                    problems.append(f"record {i}: U leaves {qty} open after {new.chain_executed} executed, "
                                    f"more than the replace's {new.limit}")
                if int(r["flag"]) == ord("D") or qty == 0:
                    new.terminal, new.why = True, "accepted dead"
                continue
            o = orders.get(uref)
            if o is None:
                problems.append(f"record {i}: response {name} for uref {uref} whose decision was not logged")
                continue
            if o.risk_rejected:
                problems.append(f"record {i}: response {name} for uref {uref}, which the risk gate rejected")
            if o.terminal and code not in ALLOWED_AFTER_TERMINAL:
                problems.append(f"record {i}: response {name} for uref {uref} after it was {o.why}")
                continue
            if code == R.RESP_ACCEPTED:
                if o.accepted:
                    problems.append(f"record {i}: second accept for uref {uref}")
                if qty > o.limit - o.chain_executed:
                    problems.append(f"record {i}: accepted {qty} > the {o.limit} decided for uref {uref}")
                o.accepted, o.open = True, qty
                if int(r["flag"]) == ord("D"):
                    o.terminal, o.why = True, "accepted dead"
            elif code == R.RESP_EXECUTED:
                fills += 1
                o.chain_executed += qty
                if o.chain_executed > o.limit:
                    problems.append(f"record {i}: fills of uref {uref} total {o.chain_executed} > order qty {o.limit}")
                elif qty > o.open:
                    problems.append(f"record {i}: execution of {qty} for uref {uref} with {o.open} open")
                o.open = max(o.open - qty, 0)
                if o.open == 0:
                    o.terminal, o.why = True, "filled"
            elif code == R.RESP_CANCELED:
                if qty > o.open:
                    problems.append(f"record {i}: cancel of {qty} for uref {uref} with {o.open} open")
                o.open = max(o.open - qty, 0)
                if o.open == 0:
                    o.terminal, o.why = True, "cancelled"
            elif code == R.RESP_REJECTED:
                if o.accepted:
                    problems.append(f"record {i}: reject for uref {uref} after it was accepted")
                o.terminal, o.why = True, "rejected"
            elif code == R.RESP_MODIFIED:
                o.open = qty
                if qty == 0:
                    o.terminal, o.why = True, "modified to zero"
    counts["fills"] = fills
    counts["orders"] = len(orders)
    counts["records"] = len(recs)
    return Verdict(not problems, problems, notes, counts)


def verify(path: str) -> Verdict:
    return check(read_records(path))


def to_columns(af: AuditFile) -> dict[str, np.ndarray]:
    """Named columns for export: numbers as numbers, one-byte codes as text."""
    r = af.records

    def chars(a):
        return np.array([_ch(int(v)) if v else "" for v in a], dtype=object)

    kind_names = np.array([L.KIND_NAMES.get(int(k), str(int(k))) for k in r["kind"]], dtype=object)
    code = np.array([
        (("pass" if c == L.VERDICT_PASS else "reject") if k == L.KIND_RISK else
         ({R.INTENT_NEW: "new", R.INTENT_CANCEL: "cancel", R.INTENT_REPLACE: "replace",
           R.INTENT_CANCEL_ALL: "cancel_all"}.get(int(c), str(int(c)))
          if k in (L.KIND_DECISION, L.KIND_SENT) else _ch(int(c))))
        for k, c in zip(r["kind"], r["code"])], dtype=object)
    return {"index": np.arange(len(r)), "seq": r["seq"], "kind": kind_names, "code": code,
            "t_ns": r["t_ns"], "t2_ns": r["t2_ns"], "price": r["price"], "ref": r["ref"],
            "seq2": r["seq2"], "uref": r["uref"], "orig_uref": r["aux"], "qty": r["qty"],
            "reason": r["reason"], "locate": r["locate"], "side": chars(r["side"]),
            "flag": chars(r["flag"]), "crc_ok": af.crc_ok}
