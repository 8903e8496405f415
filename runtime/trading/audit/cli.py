"""`tickpath audit verify FILE` and `tickpath audit export FILE --csv OUT | --parquet OUT`.

verify prints what it checked and every problem with its record index, and exits 1 when
there is any (a torn tail is a note, not a failure: it is what a crash leaves). export
writes one row per record (reader.to_columns); Parquet needs pyarrow (`pip install
tickpath[parquet]`), and says so when it is missing.
"""
from __future__ import annotations

import csv
import json
import sys


def add_subcommands(sub) -> None:
    p = sub.add_parser("audit", help="check or convert a trading audit log")
    asub = p.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="CRCs, record order and order state-machine consistency")
    v.add_argument("file")
    v.add_argument("--json", action="store_true", help="the verdict as JSON on stdout")
    v.set_defaults(func=_cmd_verify)
    e = asub.add_parser("export", help="write the records as CSV or Parquet")
    e.add_argument("file")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv", metavar="OUT")
    g.add_argument("--parquet", metavar="OUT")
    e.set_defaults(func=_cmd_export)


def _cmd_verify(args) -> int:
    from tickpath.runtime.trading.audit.log import AuditError
    from tickpath.runtime.trading.audit.reader import verify
    try:
        res = verify(args.file)
    except AuditError as exc:
        print(f"tickpath audit verify: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res._asdict(), indent=2))
    else:
        c = res.counts
        print(f"{args.file}: {c['records']} records ({c['decision']} decisions, {c['risk']} risk "
              f"verdicts, {c['sent']} sent, {c['response']} responses, {c['fills']} fills, "
              f"{c['orders']} orders)")
        for n in res.notes:
            print(f"note: {n}")
        for p in res.problems:
            print(f"FAIL: {p}")
        print("OK" if res.ok else f"FAILED: {len(res.problems)} problem(s)")
    return 0 if res.ok else 1


def _cmd_export(args) -> int:
    from tickpath.runtime.trading.audit.log import AuditError
    from tickpath.runtime.trading.audit.reader import read_records, to_columns
    try:
        af = read_records(args.file)
    except AuditError as exc:
        print(f"tickpath audit export: {exc}", file=sys.stderr)
        return 1
    cols = to_columns(af)
    if args.parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            print("tickpath audit export: --parquet needs pyarrow, which is not installed "
                  "(pip install 'tickpath[parquet]'); --csv needs nothing", file=sys.stderr)
            return 2
        table = pa.table({k: (v.tolist() if v.dtype == object else v) for k, v in cols.items()})
        pq.write_table(table, args.parquet)
        out = args.parquet
    else:
        names = list(cols)
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names)
            for row in zip(*(cols[k].tolist() for k in names)):
                w.writerow(row)
        out = args.csv
    tail = f", torn tail {af.torn_tail_bytes} bytes left out" if af.torn_tail_bytes else ""
    print(f"{len(af.records)} records -> {out}{tail}", file=sys.stderr)
    return 0
