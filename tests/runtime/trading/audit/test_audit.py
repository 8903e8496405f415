"""The audit log: round trip through the ring and the writer thread, the file's creation
rules, CRC corruption found with the record index, a torn tail after SIGKILL, a full ring
refused and counted (and visible as a gap), verify catching forged inconsistent logs,
export to CSV (and Parquet when pyarrow is there)."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from tickpath.runtime.core.errors import TickpathError
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as L
from tickpath.runtime.trading.audit.cli import add_subcommands  # noqa: F401  (the CLI module imports)
from tickpath.runtime.trading.audit.log import AuditError, AuditLog, make_header
from tickpath.runtime.trading.audit.reader import read_records, verify
from tickpath.runtime.trading.audit.writer import (CRC_TABLE, audit_write_decision,
                                                  audit_write_response,
                                                  audit_write_response_record, audit_write_risk,
                                                  audit_write_sent, crc32)

B, S = R.SIDE_BUY, R.SIDE_SELL


def tickpath(*args):
    return subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", *args],
                          capture_output=True, text=True, timeout=300)


def log_order_life(aw, uref=1, qty=100, fill=100):
    """decision, risk pass, sent, accepted, one execution."""
    ok = [audit_write_decision(aw, 1_000 + uref, 900 + uref, 77, R.INTENT_NEW, uref, 3, B, qty, 1_000_000, R.TIF_DAY),
          audit_write_risk(aw, 1_001 + uref, R.INTENT_NEW, uref, 3, True, 0),
          audit_write_sent(aw, 1_002 + uref, 900 + uref, R.INTENT_NEW, uref, 0, 3, B, qty, 1_000_000, R.TIF_DAY),
          audit_write_response(aw, R.RESP_ACCEPTED, 1_003 + uref, 55, 1, uref, 0, qty, 1_000_000, 4242, B, 0, ord("L"), 3)]
    if fill:
        ok.append(audit_write_response(aw, R.RESP_EXECUTED, 1_004 + uref, 56, 2, uref, 0, fill, 1_000_000, 99, 0, 0,
                                       ord("A"), 3))
    return ok


def test_crc32_is_zlibs():
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 76, 1000):
        b = rng.integers(0, 256, n, dtype=np.uint8)
        assert int(crc32(b, 0, n, CRC_TABLE)) == zlib.crc32(b.tobytes())


def test_round_trip_every_field(tmp_path):
    path = str(tmp_path / "a.audit")
    with AuditLog(path, ring_records=64, flush_interval_ms=2) as log:
        assert all(log_order_life(log.writer, fill=40))
        resp = np.zeros(1, R.RESPONSE_DTYPE)
        resp[0] = (1_000_100, 31, 57, 1_010, 3, 2, 1, 50, 0, R.RESP_REPLACED, S, 0, 0, ord("L"), ord("3"), [0] * 4)
        assert audit_write_response_record(log.writer, resp, 0, 3)
        deadline = time.monotonic() + 5
        while log.records_written < 6 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert log.records_written == 6            # the thread flushed on its own
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    af = read_records(path)
    assert af.torn_tail_bytes == 0 and af.crc_ok.all() and af.header["pid"] == os.getpid()
    r = af.records
    assert list(r["seq"]) == list(range(6))
    assert list(r["kind"]) == [L.KIND_DECISION, L.KIND_RISK, L.KIND_SENT] + [L.KIND_RESPONSE] * 3
    d = r[0]
    assert (d["t_ns"], d["t2_ns"], d["seq2"], d["code"], d["uref"], d["locate"], d["side"], d["qty"], d["price"]) == \
        (1_001, 901, 77, R.INTENT_NEW, 1, 3, B, 100, 1_000_000)
    assert (r[1]["code"], r[1]["flag"]) == (L.VERDICT_PASS, R.INTENT_NEW)
    assert (r[2]["t_ns"], r[2]["t2_ns"]) == (1_003, 901)        # tick-to-trade = t_ns - t2_ns
    e = r[4]
    assert (e["code"], e["t2_ns"], e["seq2"], e["qty"], e["ref"], e["flag"]) == (ord("E"), 56, 2, 40, 99, ord("A"))
    u = r[5]
    assert (u["code"], u["uref"], u["aux"], u["qty"], u["price"], u["ref"], u["flag"], u["t2_ns"]) == \
        (ord("U"), 2, 1, 50, 1_000_100, 31, ord("L"), 57)
    assert verify(path).ok


def test_file_is_created_never_reused_nor_followed(tmp_path):
    path = str(tmp_path / "a.audit")
    AuditLog(path).start().stop()
    with pytest.raises(AuditError, match="already exists"):
        AuditLog(path).start()
    link = str(tmp_path / "link.audit")
    os.symlink(str(tmp_path / "elsewhere"), link)
    with pytest.raises(TickpathError):
        AuditLog(link).start()
    assert not os.path.exists(tmp_path / "elsewhere")


def test_bad_settings_name_the_key():
    with pytest.raises(TickpathError, match="audit.ring_records"):
        AuditLog("/nonexistent/x", ring_records=1000)
    with pytest.raises(TickpathError, match="audit.flush_interval_ms"):
        AuditLog("/nonexistent/x", flush_interval_ms=0)


def test_crc_corruption_is_found_with_the_record_index(tmp_path):
    path = str(tmp_path / "a.audit")
    with AuditLog(path, ring_records=64) as log:
        for u in (1, 2):
            log_order_life(log.writer, uref=u)
    raw = bytearray(open(path, "rb").read())
    raw[L.HEADER_BYTES + 7 * L.RECORD_BYTES + 56] ^= 0x01     # record 7: one bit of qty
    open(path, "wb").write(bytes(raw))
    v = verify(path)
    assert not v.ok and v.problems == ["record 7: CRC mismatch (seq=7)"]
    p = tickpath("audit", "verify", path)
    assert p.returncode == 1 and "record 7: CRC mismatch" in p.stdout


_KILLED_WRITER = """
import sys, time
from tickpath.runtime.trading.audit.log import AuditLog
from tickpath.runtime.trading.audit.writer import audit_write_decision
log = AuditLog(sys.argv[1], ring_records=1 << 12, flush_interval_ms=1).start()
u = 0
print("started", flush=True)
while True:
    for _ in range(50):
        u += 1
        audit_write_decision(log.writer, u, u, u, 1, u, 1, 66, 100, 1000000, 0)
    time.sleep(0.0005)
"""


def test_readable_up_to_the_last_complete_record_after_sigkill(tmp_path):
    path = str(tmp_path / "killed.audit")
    p = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, path], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not os.path.exists(path)
                                               or os.stat(path).st_size < L.HEADER_BYTES + 2000 * L.RECORD_BYTES):
            time.sleep(0.01)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL
    af = read_records(path)
    n = len(af.records)
    assert n >= 2000 and af.crc_ok.all()
    assert list(af.records["seq"]) == list(range(n))
    assert list(af.records["uref"]) == list(range(1, n + 1))
    v = verify(path)
    assert v.ok, v.problems
    # a record cut in the middle (what a crash inside write() leaves) is reported, not fatal
    with open(path, "ab") as f:
        f.write(b"\x01" * 33)
    af = read_records(path)
    assert len(af.records) == n and af.torn_tail_bytes == 33
    v = verify(path)
    assert v.ok and any("torn tail: 33 bytes" in note for note in v.notes)
    out = tickpath("audit", "verify", path)
    assert out.returncode == 0 and "torn tail" in out.stdout


def test_full_ring_is_refused_counted_and_visible(tmp_path):
    path = str(tmp_path / "a.audit")
    log = AuditLog(path, ring_records=8, flush_interval_ms=1000)   # the thread does not drain yet
    w = log.writer
    ok = [audit_write_decision(w, i, i, i, R.INTENT_NEW, i + 1, 1, B, 1, 1, 0) for i in range(10)]
    assert ok == [True] * 8 + [False] * 2
    s = log.stats()
    assert s["records_dropped_ring_full"] == 2 and s["ring"]["dropped"] == 2
    log.start()
    assert log.flush() == 8
    assert audit_write_decision(w, 10, 10, 10, R.INTENT_NEW, 11, 1, B, 1, 1, 0)
    log.stop()
    af = read_records(path)
    assert list(af.records["seq"]) == list(range(8)) + [10]
    v = verify(path)
    assert not v.ok and v.problems == ["record 8: records seq 8..9 missing (the audit ring was full, or the file was cut)"]


def forge(path, rows):
    """A log written by hand: header + records with correct CRCs (so only the content is wrong)."""
    recs = np.zeros(len(rows), L.AUDIT_DTYPE)
    for i, row in enumerate(rows):
        recs[i]["seq"] = i
        for k, v in row.items():
            recs[i][k] = v
    raw = recs.view(np.uint8).reshape(len(rows), L.RECORD_BYTES)
    for i in range(len(rows)):
        recs[i]["crc"] = zlib.crc32(raw[i, : L.CRC_BYTES].tobytes())
    with open(path, "wb") as f:
        f.write(make_header(1) + recs.tobytes())
    return path


def dec(uref, qty=100):
    return dict(kind=L.KIND_DECISION, code=R.INTENT_NEW, uref=uref, qty=qty, side=B, price=1_000_000)


def sent(uref, qty=100, kind=R.INTENT_NEW, orig=0):
    return dict(kind=L.KIND_SENT, code=kind, uref=uref, aux=orig, qty=qty)


def resp(code, uref, qty=0, orig=0, flag=0):
    return dict(kind=L.KIND_RESPONSE, code=ord(code), uref=uref, qty=qty, aux=orig, flag=flag)


def test_verify_accepts_a_consistent_life(tmp_path):
    rows = [dec(1), dict(kind=L.KIND_RISK, code=L.VERDICT_PASS, uref=1, flag=R.INTENT_NEW), sent(1),
            resp("A", 1, 100, flag=ord("L")), resp("E", 1, 30),
            dict(kind=L.KIND_DECISION, code=R.INTENT_REPLACE, uref=1, qty=80), sent(2, 80, R.INTENT_REPLACE, orig=1),
            resp("U", 2, 50, orig=1, flag=ord("L")), resp("E", 2, 20), resp("C", 2, 30),
            resp("I", 2), resp("B", 2),                         # allowed after the terminal cancel
            dec(3, 10), dict(kind=L.KIND_RISK, code=L.VERDICT_REJECT, uref=3, flag=R.INTENT_NEW, reason=4),
            resp("S", 0), dict(kind=L.KIND_RESPONSE, code=R.RESP_SESSION_LOST)]
    v = verify(forge(str(tmp_path / "ok.audit"), rows))
    assert v.ok, v.problems
    assert v.counts["fills"] == 2 and v.counts["orders"] == 3


@pytest.mark.parametrize("rows, problem", [
    ([resp("A", 5, 100)], "record 0: response A for uref 5 whose decision was not logged"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("E", 1, 60), resp("E", 1, 60)],
     "record 4: fills of uref 1 total 120 > order qty 100"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("C", 1, 100), resp("E", 1, 10)],
     "record 4: response E for uref 1 after it was cancelled"),
    ([dec(1), sent(1), resp("J", 1), resp("A", 1, 100)],
     "record 3: response A for uref 1 after it was rejected"),
    ([dec(1), dict(kind=L.KIND_RISK, code=L.VERDICT_REJECT, uref=1, flag=R.INTENT_NEW), sent(1)],
     "record 2: uref 1 sent although the risk gate rejected it"),
    ([sent(9)], "record 0: sent (1) for uref 9 with no logged decision"),
    ([dec(1), dec(1)], "record 1: decision for uref 1, already used"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("U", 2, 100, orig=1), resp("E", 1, 5)],
     "record 4: response E for uref 1 after it was replaced"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("E", 1, 30),
      dict(kind=L.KIND_SENT, code=R.INTENT_REPLACE, uref=2, aux=1, qty=80), resp("U", 2, 50, orig=1),
      resp("E", 2, 50), resp("E", 2, 1)],
     "record 7: response E for uref 2 after it was filled"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("E", 1, 30),
      dict(kind=L.KIND_SENT, code=R.INTENT_REPLACE, uref=2, aux=1, qty=80), resp("U", 2, 60, orig=1)],
     "record 5: U leaves 60 open after 30 executed, more than the replace's 80"),
    ([dec(1), sent(1), resp("A", 1, 100), resp("C", 1, 120)],
     "record 3: cancel of 120 for uref 1 with 100 open"),
])
def test_verify_catches_a_forged_inconsistent_log(tmp_path, rows, problem):
    path = forge(str(tmp_path / "bad.audit"), rows)
    v = verify(path)
    assert not v.ok and problem in v.problems, v.problems


def test_verify_catches_disorder_and_a_bad_header(tmp_path):
    path = forge(str(tmp_path / "o.audit"), [dec(1), dec(2), dec(3)])
    raw = bytearray(open(path, "rb").read())
    recs = np.frombuffer(bytes(raw[L.HEADER_BYTES:]), L.AUDIT_DTYPE).copy()
    recs[[1, 2]] = recs[[2, 1]]
    open(path, "wb").write(bytes(raw[:L.HEADER_BYTES]) + recs.tobytes())
    v = verify(path)
    assert "record 2: out of order (seq 1 after 2)" in v.problems
    open(path, "wb").write(b"NOTAUDIT" + bytes(100))
    with pytest.raises(AuditError, match="bad magic"):
        read_records(path)
    p = tickpath("audit", "verify", path)
    assert p.returncode == 1 and "bad magic" in p.stderr


def test_export_csv_columns(tmp_path):
    path = str(tmp_path / "a.audit")
    with AuditLog(path, ring_records=64) as log:
        log_order_life(log.writer, uref=1, qty=100, fill=40)
    out = str(tmp_path / "a.csv")
    p = tickpath("audit", "export", path, "--csv", out)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["index", "seq", "kind", "code", "t_ns", "t2_ns", "price", "ref", "seq2", "uref",
                             "orig_uref", "qty", "reason", "locate", "side", "flag", "crc_ok"]
    assert [r["kind"] for r in rows] == ["decision", "risk", "sent", "response", "response"]
    assert [r["code"] for r in rows] == ["new", "pass", "new", "A", "E"]
    assert rows[4]["qty"] == "40" and rows[4]["flag"] == "A" and rows[0]["side"] == "B"
    assert rows[0]["t2_ns"] == "901" and all(r["crc_ok"] == "True" for r in rows)


def test_export_parquet_or_a_clear_message(tmp_path):
    path = str(tmp_path / "a.audit")
    with AuditLog(path, ring_records=64) as log:
        log_order_life(log.writer)
    out = str(tmp_path / "a.parquet")
    p = tickpath("audit", "export", path, "--parquet", out)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert p.returncode == 2 and "needs pyarrow" in p.stderr and "tickpath[parquet]" in p.stderr
        assert not os.path.exists(out)
        return
    assert p.returncode == 0, p.stderr
    t = pq.read_table(out)
    assert t.num_rows == 5 and t.column("code").to_pylist() == ["new", "pass", "new", "A", "E"]
