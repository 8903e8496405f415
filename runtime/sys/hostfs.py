"""Every read and write of /proc and /sys goes through a `HostFS` rooted at a path.

The runtime (placement, buffers, the AF_XDP backend, `tickpath info`) and hostconfig (audit,
apply, rollback) share it: hostconfig imports it from here, the runtime never imports
hostconfig.

Modelled on psutil's `_common.cat(path, fallback=)` and its injectable PROCFS_PATH: the root
defaults to "/", tests point it at a fixture tree they build. Readers never raise for the
ordinary ways a host differs — a file missing on an older kernel, one root may read but we
may not, malformed contents — they return the value or an `Unknown(reason)` that a check
shows as its verdict. Writes raise tickpath errors (apply decides what to do with them).
"""
from __future__ import annotations

import errno
import glob
import os
from dataclasses import dataclass

from tickpath.runtime.core.errors import ConfigError, TickpathError, translate_oserror

from tickpath.runtime.sys.cpulist import parse_cpulist, parse_cpumask


@dataclass(frozen=True)
class Unknown:
    """A value we could not learn, and why (shown to the user instead of a traceback)."""

    reason: str

    def __bool__(self) -> bool:  # why: `if value:` must not treat an Unknown as a result
        return False

    def to_dict(self) -> dict:
        return {"unknown": self.reason}


def is_unknown(value) -> bool:
    return isinstance(value, Unknown)


def _reason(exc: OSError, path: str) -> str:
    if exc.errno == errno.ENOENT:
        return f"missing path={path}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied path={path}"
    return f"unreadable path={path} errno={errno.errorcode.get(exc.errno or 0, exc.errno)}"


class HostFS:
    """Reads and writes host files below `root` (absolute host paths like "/proc/cmdline")."""

    def __init__(self, root: str = "/"):
        self.root = os.path.abspath(root)

    def path(self, host_path: str) -> str:
        """The real path of a host path under this root."""
        if not host_path.startswith("/"):
            raise ConfigError("host paths are absolute", path=host_path)
        return os.path.join(self.root, host_path.lstrip("/"))

    def host_path(self, real_path: str) -> str:
        """Inverse of `path`: the host path of a real path under this root."""
        rel = os.path.relpath(real_path, self.root)
        return "/" + rel if rel != "." else "/"

    # -- reading ---------------------------------------------------------------------------
    def read_bytes(self, host_path: str) -> bytes | Unknown:
        try:
            with open(self.path(host_path), "rb") as f:
                return f.read()
        except OSError as exc:
            return Unknown(_reason(exc, host_path))

    def read_text(self, host_path: str) -> str | Unknown:
        """File contents without the trailing newline, or Unknown."""
        raw = self.read_bytes(host_path)
        if isinstance(raw, Unknown):
            return raw
        try:
            return raw.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            return Unknown(f"not text path={host_path}")

    def read_int(self, host_path: str) -> int | Unknown:
        text = self.read_text(host_path)
        if isinstance(text, Unknown):
            return text
        try:
            return int(text.strip())
        except ValueError:
            return Unknown(f"malformed integer path={host_path} text={text.strip()[:40]!r}")

    def read_cpulist(self, host_path: str) -> list[int] | Unknown:
        return self._read_cpus(host_path, parse_cpulist)

    def read_cpumask(self, host_path: str) -> list[int] | Unknown:
        return self._read_cpus(host_path, parse_cpumask)

    def _read_cpus(self, host_path: str, parse) -> list[int] | Unknown:
        """A CPU set in one of the kernel's two formats; a malformed one is Unknown, named."""
        text = self.read_text(host_path)
        if isinstance(text, Unknown):
            return text
        try:
            return parse(text)
        except ConfigError as exc:
            return Unknown(f"{exc} path={host_path}")

    def read_selected(self, host_path: str) -> str | Unknown:
        """The [bracketed] choice of files like transparent_hugepage/enabled."""
        text = self.read_text(host_path)
        if isinstance(text, Unknown):
            return text
        picked = [w[1:-1] for w in text.split() if w.startswith("[") and w.endswith("]")]
        if len(picked) != 1:
            return Unknown(f"malformed: no single [selected] value path={host_path} text={text[:60]!r}")
        return picked[0]

    def exists(self, host_path: str) -> bool:
        return os.path.exists(self.path(host_path))

    def glob(self, host_pattern: str) -> list[str]:
        """Host paths matching a pattern, sorted naturally (cpu2 before cpu10)."""
        found = [self.host_path(p) for p in glob.glob(self.path(host_pattern))]
        return sorted(found, key=_natural_key)

    def listdir(self, host_path: str) -> list[str] | Unknown:
        try:
            return sorted(os.listdir(self.path(host_path)), key=_natural_key)
        except OSError as exc:
            return Unknown(_reason(exc, host_path))

    def readlink_name(self, host_path: str) -> str | Unknown:
        """Basename of a symlink's target (driver names, PCI addresses)."""
        try:
            return os.path.basename(os.readlink(self.path(host_path)).rstrip("/"))
        except OSError as exc:
            return Unknown(_reason(exc, host_path))

    # -- writing ---------------------------------------------------------------------------
    def write_text(self, host_path: str, value: str) -> None:
        """Write one value the way `echo value > file` does; raises a TickpathError."""
        data = value if value.endswith("\n") else value + "\n"
        try:
            # why no O_CREAT/O_TRUNC: sysfs and procfs attributes exist already; creating a
            # file where the kernel has none would hide a wrong path
            fd = os.open(self.path(host_path), os.O_WRONLY)
        except OSError as exc:
            raise translate_oserror(exc, "opening a host file for writing", path=host_path)
        try:
            self._write_fd(fd, host_path, data.encode())
        finally:
            os.close(fd)

    def _write_fd(self, fd: int, host_path: str, data: bytes) -> None:
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # why: sysfs/procfs attributes cannot be truncated and need not be
        try:
            n = os.write(fd, data)
        except OSError as exc:
            raise translate_oserror(exc, "writing a host file", path=host_path, value=data)
        if n != len(data):
            raise TickpathError("short write to a host file", path=host_path, wrote=n,
                                expected=len(data))


def _natural_key(s: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
