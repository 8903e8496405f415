"""Apply the run-time fixes the audit found, with a rollback file; and roll back.

Order of work: refuse without root (dry runs excepted) and refuse unknown check ids; run the
checks; read the current value of everything a fix would change (skipping, with a reason,
what cannot be read — we never write what we could not restore); save those values to the
rollback JSON (atomically, before the first write); then write each value, read it back and
verify it. A value that does not verify is put back at once and reported. Boot-time items
are printed as a kernel command line; the boot loader is never touched. Rollback writes each
saved value back (skipping those already in place) and verifies it the same way.

File safety (root writes here; issue 19): the rollback file is written through a temporary
file made O_EXCL|O_NOFOLLOW (mode 0600) in its own directory, then hard-linked to its name,
so a planted symlink is never followed and an existing file is never replaced (two
concurrent applies cannot lose each other's original values; the default name carries the
time in ns and the pid). A directory others may write without the sticky bit is refused. A
rollback file is read only if it is a regular file (O_NOFOLLOW, no FIFO hang) owned by us
or root, not writable by others, of bounded size; every target in it must be a normalised
absolute path under /proc/sys, /proc/irq or /sys whose real path stays inside --root (no
`..`, no symlink out), or nothing at all is written.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import time
from dataclasses import dataclass, field

from tickpath.runtime.core.errors import ConfigError, PrivilegeError, TickpathError

from tickpath.hostconfig.checks.base import FAIL, WARN, Change, Context, run_checks
from tickpath.hostconfig.discover.cpulist import parse_cpulist, parse_cpumask
from tickpath.hostconfig.discover.sysfs import HostFS, Unknown

ROLLBACK_FORMAT = "tickpath-hostconfig-rollback"
ROLLBACK_VERSION = 1
ROLLBACK_MAX_BYTES = 16 << 20
# where a fix may write: the kernel's tunables, and nothing else
TARGET_PREFIXES = ("/proc/sys/", "/proc/irq/", "/sys/")


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
    """A name no other apply uses: the time to the ns and our pid."""
    ns = time.time_ns()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ns // 1_000_000_000))
    return os.path.abspath(f"tickpath-rollback-{stamp}-{ns % 1_000_000_000:09d}-{os.getpid()}.json")


def _check_dir(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path)) or "/"
    try:
        st = os.stat(d)
    except OSError as exc:
        raise ConfigError("rollback file directory does not exist or cannot be read",
                          key="--rollback-file", path=path, reason=exc.strerror) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError("rollback file directory is not a directory", key="--rollback-file",
                          path=path)
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ConfigError("rollback file directory is writable by others (no sticky bit): "
                          "refused", key="--rollback-file", path=path,
                          mode=oct(stat.S_IMODE(st.st_mode)))


def _save_json(path: str, doc: dict) -> None:
    """Write doc to a new file at path: never follows a symlink, never replaces a file."""
    _check_dir(path)
    d = os.path.dirname(os.path.abspath(path))
    data = json.dumps(doc, indent=1).encode()
    for _ in range(100):
        tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.{time.time_ns()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError("cannot create the rollback file", key="--rollback-file", path=path,
                              reason=exc.strerror) from exc
    else:
        raise ConfigError("cannot create a unique temporary rollback file", path=path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)   # why: fails on an existing name, symlink or not; never replaces
        except FileExistsError as exc:
            raise ConfigError("rollback file exists already: refused (it may hold another "
                              "apply's original values)", key="--rollback-file", path=path) from exc
        except OSError as exc:
            raise ConfigError("cannot create the rollback file", key="--rollback-file", path=path,
                              reason=exc.strerror) from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    try:   # why: the link must survive a crash right after apply's first write
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


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


def _read_rollback_bytes(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError("rollback file is a symlink: refused", path=path) from exc
        raise ConfigError("cannot read rollback file", path=path, reason=exc.strerror) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError("rollback file is not a regular file: refused", path=path)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise ConfigError("rollback file is owned by another user or writable by others: "
                              "refused", path=path, owner_uid=st.st_uid,
                              mode=oct(stat.S_IMODE(st.st_mode)))
        if st.st_size > ROLLBACK_MAX_BYTES:
            raise ConfigError("rollback file too large", path=path, bytes=st.st_size,
                              max_bytes=ROLLBACK_MAX_BYTES)
        return os.read(fd, ROLLBACK_MAX_BYTES + 1)
    finally:
        os.close(fd)


def check_target(fs: HostFS, target) -> None:
    """A rollback target must be one of the kernel's tunables under fs.root (ConfigError)."""
    if (not isinstance(target, str) or "\0" in target or not target.startswith("/")
            or os.path.normpath(target) != target or target.startswith("//")):
        raise ConfigError("rollback target is not a normalised absolute path: refused",
                          target=target)
    if not target.startswith(TARGET_PREFIXES):
        raise ConfigError("rollback target is not a kernel tunable: refused", target=target,
                          allowed=list(TARGET_PREFIXES))
    root = os.path.realpath(fs.root)
    real = os.path.realpath(fs.path(target))
    if os.path.commonpath([root, real]) != root:
        raise ConfigError("rollback target escapes --root: refused", target=target,
                          resolves_to=real, root=root)
    rel = "/" + os.path.relpath(real, root)
    if not rel.startswith(TARGET_PREFIXES):
        raise ConfigError("rollback target resolves outside the kernel tunables: refused",
                          target=target, resolves_to=real)


def load_rollback(path: str, fs: HostFS | None = None) -> dict:
    """The rollback document at path, checked (with fs: every target against its root)."""
    raw = _read_rollback_bytes(path)
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("rollback file is not JSON", path=path, reason=str(exc))
    if not isinstance(doc, dict) or doc.get("format") != ROLLBACK_FORMAT:
        raise ConfigError("not a tickpath rollback file", path=path)
    if doc.get("version") != ROLLBACK_VERSION:
        raise ConfigError("unsupported rollback file version", path=path,
                          version=doc.get("version"), supported=ROLLBACK_VERSION)
    if not isinstance(doc.get("entries", []), list):
        raise ConfigError("malformed rollback file", path=path, entries=doc.get("entries"))
    for e in doc.get("entries", []):
        if not isinstance(e, dict) or e.get("kind") not in ("file", "nic_feature",
                                                              "nic_coalesce"):
            raise ConfigError("malformed rollback entry", path=path, entry=e)
        if fs is not None and e["kind"] == "file":
            check_target(fs, e.get("target"))
    return doc


def rollback(path: str, fs: HostFS, nic_ops=None, euid: int | None = None) -> RollbackReport:
    _check_privilege(euid, "host rollback")
    doc = load_rollback(path, fs)   # every target checked before the first write
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
