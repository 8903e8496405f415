"""`tickpath host ...`: audit, apply, rollback, jitter.

Registered as the "tickpath.commands" entry point `host` (pyproject.toml; the root,
runtime/cli.py, names no hostconfig module); every handler takes the
parsed args and returns the exit status: 0 all good, 1 a check or change failed, 2 bad
input or missing privilege (printed as one key=value line, never a traceback). Tables are
rich; --json prints one JSON document for scripts.
"""
from __future__ import annotations

import argparse
import json
import sys

from tickpath.runtime.core.errors import TickpathError

# rich, the checks and the plan are imported by the handlers: `tickpath --help` builds this
# parser and must stay fast (the runtime's start-up budget)


def _console():
    from rich.console import Console
    return Console(file=sys.stdout, width=160, soft_wrap=False)


def _guard(handler):
    """Turn tickpath errors into one printed line and exit status 2."""

    def run(args) -> int:
        try:
            return handler(args)
        except TickpathError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    run.__name__ = handler.__name__
    return run


def _context(args):
    from tickpath.hostconfig.checks.base import Context
    from tickpath.hostconfig.plan import load_plan
    plan = load_plan(args.config) if getattr(args, "config", None) else None
    return Context.build(args.root, plan=plan, nic_ops=getattr(args, "nic_ops", None),
                         memlock_bytes=getattr(args, "memlock_bytes", None))


def _only(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


@_guard
def cmd_audit(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tickpath.hostconfig.checks.base import FAIL, OK, UNKNOWN, WARN, exit_status, run_checks
    colours = {OK: "green", WARN: "yellow", FAIL: "red", UNKNOWN: "magenta"}
    results = run_checks(_context(args), _only(args.only))
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results],
                          "exit_status": exit_status(results)}, indent=1))
        return exit_status(results)
    t = Table(title="tickpath host audit", show_lines=False)
    for col in ("check", "verdict", "read", "expected", "fix"):
        t.add_column(col, overflow="fold")
    for r in results:
        colour = colours.get(r.verdict, "white")
        t.add_row(r.id, f"[{colour}]{r.verdict}[/]", escape(r.read), escape(r.expected),
                  escape(r.fix))
    con = _console()
    con.print(t)
    counts = {v: sum(1 for r in results if r.verdict == v) for v in (OK, WARN, FAIL, UNKNOWN)}
    con.print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return exit_status(results)


@_guard
def cmd_apply(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from tickpath.hostconfig.apply import apply

    rep = apply(_context(args), only=_only(args.only), dry_run=args.dry_run,
                rollback_path=args.rollback_file, euid=getattr(args, "euid", None))
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1, default=str))
    else:
        con = _console()
        head = "would change" if rep.dry_run else "changes"
        t = Table(title=f"tickpath host apply: {head}")
        t.add_column("check")
        t.add_column("change", overflow="fold")
        for cid, c in rep.planned:
            t.add_row(cid, escape(c.label()))
        con.print(t)
        for line in rep.applied:
            con.print(f"[green]applied[/] {escape(line)}")
        for line in rep.failed:
            con.print(f"[red]failed[/] {escape(line)}")
        for line in rep.skipped:
            con.print(f"[yellow]skipped[/] {escape(line)}")
        if rep.rollback_path:
            con.print(f"rollback file: {rep.rollback_path}")
        if rep.cmdline:
            con.print("needs a reboot; add to the kernel command line (the boot loader is "
                      "not edited):")
            print(" ".join(rep.cmdline))
    return 1 if rep.failed else 0


@_guard
def cmd_rollback(args) -> int:
    from rich.markup import escape

    from tickpath.hostconfig.apply import rollback
    from tickpath.hostconfig.discover.sysfs import HostFS

    nic_ops = getattr(args, "nic_ops", None)
    fs = HostFS(args.root)
    if nic_ops is None and fs.root == "/":
        from tickpath.hostconfig.discover.nic import EthtoolOps

        nic_ops = EthtoolOps()
    rep = rollback(args.file, fs, nic_ops, euid=getattr(args, "euid", None))
    if args.json:
        print(json.dumps(rep.to_dict(), indent=1))
    else:
        con = _console()
        for line in rep.restored:
            con.print(f"[green]restored[/] {escape(line)}")
        for line in rep.unchanged:
            con.print(f"already in place: {escape(line)}")
        for line in rep.failed:
            con.print(f"[red]failed[/] {escape(line)}")
    return 1 if rep.failed else 0


@_guard
def cmd_jitter(args) -> int:
    from rich.table import Table

    from tickpath.hostconfig.discover.cpulist import parse_cpulist
    from tickpath.hostconfig.jitter import measure

    cpus = parse_cpulist(args.cpus)
    results = measure(cpus, args.seconds, args.threshold_ns)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
        return 0
    t = Table(title=f"OS jitter, {args.seconds} s per core (gaps between clock reads)")
    for col in ("cpu", "threshold ns", "samples", "gaps", "min ns", "p99 ns", "p99.9 ns",
                "max ns"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(str(r.cpu), str(r.threshold_ns), str(r.samples), str(r.count),
                  str(r.min_gap_ns), str(r.p99_ns), str(r.p999_ns), str(r.max_ns))
    _console().print(t)
    return 0


def add_subcommands(subparsers) -> argparse.ArgumentParser:
    """Add `host {audit,apply,rollback,jitter}` to the main CLI's subparsers."""
    host = subparsers.add_parser("host", help="audit, tune and measure this host")
    sub = host.add_subparsers(dest="host_command", required=True)

    a = sub.add_parser("audit", help="check the host (and a runtime config) for low latency")
    a.add_argument("--config", help="runtime TOML config: check its cores, NIC, buffers")
    a.add_argument("--json", action="store_true", help="one JSON document")
    a.add_argument("--root", default="/", help="host root (a fixture tree for testing)")
    a.add_argument("--only", help="comma-separated check ids")
    a.set_defaults(func=cmd_audit)

    p = sub.add_parser("apply", help="apply the run-time fixes, saving a rollback file")
    p.add_argument("--dry-run", action="store_true", help="show the changes, write nothing")
    p.add_argument("--only", help="comma-separated check ids")
    p.add_argument("--rollback-file", help="where to save previous values")
    p.add_argument("--config", help="runtime TOML config (enables the plan's fixes)")
    p.add_argument("--root", default="/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_apply)

    r = sub.add_parser("rollback", help="restore what an apply saved")
    r.add_argument("file")
    r.add_argument("--root", default="/")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_rollback)

    j = sub.add_parser("jitter", help="measure OS jitter on cores (like hiccups)")
    j.add_argument("--cpus", required=True, help="cpulist, e.g. 2-3")
    j.add_argument("--seconds", type=float, default=10.0)
    j.add_argument("--threshold-ns", type=int, default=1000,
                   help="gaps longer than this count as interruptions")
    j.add_argument("--json", action="store_true")
    j.set_defaults(func=cmd_jitter)
    return host
