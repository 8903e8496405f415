"""Apply the run-time fixes the audit found, with a rollback file; and roll back.

Order of work: refuse without root (dry runs excepted) and refuse unknown check ids; run the
checks; read the current value of everything a fix would change (skipping, with a reason,
what cannot be read — we never write what we could not restore); save those values to the
rollback JSON (atomically, before the first write); then write each value, read it back and
verify it. A value that does not verify is put back at once and reported. Boot-time items
are printed as a kernel command line; the boot loader is never touched. Rollback writes each
saved value back (skipping those already in place) and verifies it the same way.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from tickpath.runtime.core.errors import ConfigError, PrivilegeError, TickpathError

from tickpath.hostconfig.checks.base import FAIL, WARN, Change, Context, run_checks
from tickpath.hostconfig.discover.cpulist import parse_cpulist, parse_cpumask
from tickpath.hostconfig.discover.sysfs import HostFS, Unknown

ROLLBACK_FORMAT = "tickpath-hostconfig-rollback"
ROLLBACK_VERSION = 1


@dataclass
class ApplyReport:
    dry_run: bool
    planned: list[tuple[str, Change]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)
    rollback_path: str | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["planned"] = [{"check": cid, **c.__dict__} for cid, c in self.planned]
        return d


def _same(compare: str, got: str, want) -> bool:
    """Whether a read-back file equals the value written, in the file's own terms."""
    got = got.strip()
    try:
        if compare == "selected":
            sel = [w[1:-1] for w in got.split() if w.startswith("[") and w.endswith("]")]
            return (sel[0] if len(sel) == 1 else got) == str(want)
        if compare == "int":
            return int(got) == int(str(want))
        if compare == "cpulist":
            return parse_cpulist(got) == parse_cpulist(str(want))
        if compare == "cpumask":
            return parse_cpumask(got) == parse_cpumask(str(want))
    except (ValueError, TickpathError):
        return False
    return got == str(want).strip()


def _restore_value(compare: str, raw_text: str) -> str:
    """What to write to put a file back: its selected word, or its whole value."""
    if compare == "selected":
        sel = [w[1:-1] for w in raw_text.split() if w.startswith("[") and w.endswith("]")]
        if len(sel) == 1:
            return sel[0]
    return raw_text.rstrip("\n")


class _Target:
    """Reads, writes and verifies one change's target (a file or a NIC setting)."""

    def __init__(self, fs: HostFS, nic_ops):
        self.fs, self.nic_ops = fs, nic_ops

    def read(self, kind: str, target: str, key: str | None):
        if kind == "file":
            return self.fs.read_text(target)
        if self.nic_ops is None:
            return Unknown("no NIC access (ethtool ops)")
        try:
            if kind == "nic_feature":
                feats = self.nic_ops.get_features(target)
                return bool(feats[key]) if key in feats else Unknown(f"no feature {key}")
            if kind == "nic_coalesce":
                co = self.nic_ops.get_coalesce(target)
                return int(co[key]) if key in co else Unknown(f"no coalesce field {key}")
        except Exception as exc:  # why: ioctl errors are reported per change, not raised
            return Unknown(f"{type(exc).__name__}: {exc}")
        raise ConfigError("unknown change kind", kind=kind)

    def write(self, kind: str, target: str, key: str | None, value) -> None:
        if kind == "file":
            self.fs.write_text(target, str(value))
        elif kind == "nic_feature":
            self.nic_ops.set_feature(target, key, bool(value))
        elif kind == "nic_coalesce":
            self.nic_ops.set_coalesce(target, key, int(value))
        else:
            raise ConfigError("unknown change kind", kind=kind)

    def matches(self, kind: str, target: str, key: str | None, compare: str, want) -> bool:
        got = self.read(kind, target, key)
        if isinstance(got, Unknown):
            return False
        if kind == "file":
            return _same(compare, got, want)
        return got == (bool(want) if kind == "nic_feature" else int(want))

    def write_verified(self, kind, target, key, compare, value) -> str | None:
        """Write and read back; None when it verified, else why not."""
        try:
            self.write(kind, target, key, value)
        except Exception as exc:  # why: one refused write must not stop the others
            return f"write refused: {exc}"
        if not self.matches(kind, target, key, compare, value):
            got = self.read(kind, target, key)
            return f"read back {got!r}, wrote {value!r}"
        return None


def _check_privilege(euid: int | None, doing: str) -> None:
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise PrivilegeError(f"{doing} needs root", euid=euid,
                             hint="run with sudo; try --dry-run to see the changes")


def default_rollback_path() -> str:
    return os.path.abspath(time.strftime("tickpath-rollback-%Y%m%d-%H%M%S.json"))


def _save_json(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # why: a crash never leaves a half-written rollback file


def apply(ctx: Context, only: list[str] | None = None, dry_run: bool = False,
          rollback_path: str | None = None, euid: int | None = None) -> ApplyReport:
    if not dry_run:
        _check_privilege(euid, "host apply")
    results = run_checks(ctx, only)  # raises ConfigError for unknown ids
    report = ApplyReport(dry_run=dry_run)
    for r in results:
        if r.verdict in (WARN, FAIL):
            report.planned.extend((r.id, c) for c in r.changes)
            report.cmdline.extend(x for x in r.cmdline if x not in report.cmdline)
    if dry_run or not report.planned:
        return report
    tgt = _Target(ctx.fs, ctx.nic_ops)
    entries = []
    for cid, c in report.planned:
        prev = tgt.read(c.kind, c.target, c.key)
        if isinstance(prev, Unknown):
            report.skipped.append(f"{c.label()}: cannot read the current value ({prev.reason})")
            continue
        restore = _restore_value(c.compare, prev) if c.kind == "file" else prev
        entries.append({"check": cid, "kind": c.kind, "target": c.target, "key": c.key,
                        "compare": c.compare, "previous": restore,
                        "previous_raw": prev if c.kind == "file" else None, "new": c.value})
    report.rollback_path = rollback_path or default_rollback_path()
    _save_json(report.rollback_path, {
        "format": ROLLBACK_FORMAT, "version": ROLLBACK_VERSION, "root": ctx.fs.root,
        "created_unix_ns": time.time_ns(), "entries": entries})
    for e in entries:
        label = Change(e["kind"], e["target"], e["new"], e["key"], e["compare"]).label()
        err = tgt.write_verified(e["kind"], e["target"], e["key"], e["compare"], e["new"])
        if err is None:
            report.applied.append(label)
            continue
        back = tgt.write_verified(e["kind"], e["target"], e["key"], e["compare"],
                                  e["previous"])
        report.failed.append(f"{label}: {err}" + ("" if back is None else
                                                  f"; restoring the old value failed: {back}"))
    return report


@dataclass
class RollbackReport:
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def load_rollback(path: str) -> dict:
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise ConfigError("cannot read rollback file", path=path, reason=exc.strerror)
    except json.JSONDecodeError as exc:
        raise ConfigError("rollback file is not JSON", path=path, reason=str(exc))
    if not isinstance(doc, dict) or doc.get("format") != ROLLBACK_FORMAT:
        raise ConfigError("not a tickpath rollback file", path=path)
    if doc.get("version") != ROLLBACK_VERSION:
        raise ConfigError("unsupported rollback file version", path=path,
                          version=doc.get("version"), supported=ROLLBACK_VERSION)
    for e in doc.get("entries", []):
        if not isinstance(e, dict) or e.get("kind") not in ("file", "nic_feature",
                                                              "nic_coalesce"):
            raise ConfigError("malformed rollback entry", path=path, entry=e)
    return doc


def rollback(path: str, fs: HostFS, nic_ops=None, euid: int | None = None) -> RollbackReport:
    _check_privilege(euid, "host rollback")
    doc = load_rollback(path)
    tgt = _Target(fs, nic_ops)
    report = RollbackReport()
    for e in reversed(doc["entries"]):  # why: undo in reverse order of apply
        label = Change(e["kind"], e["target"], e["previous"], e.get("key"),
                       e.get("compare", "word")).label()
        if tgt.matches(e["kind"], e["target"], e.get("key"), e.get("compare", "word"),
                       e["previous"]):
            report.unchanged.append(label)
            continue
        err = tgt.write_verified(e["kind"], e["target"], e.get("key"),
                                 e.get("compare", "word"), e["previous"])
        (report.restored if err is None else report.failed).append(
            label if err is None else f"{label}: {err}")
    return report
