"""Live counters: a running instance's counter array lives in a shared-memory file, so
`tickpath stats [--pid N]` reads it while the hot loop writes — no socket, no thread, no copy
in the loop (the loop's counter array IS the file).

    byte 0       8        12       16       24       32
         +-------+--------+--------+--------+--------+---------------------------+
         | magic | version| n_cnt  |  pid   |started | counters int64[n_cnt] ... |
         | 8 B   | u32    | u32    |  i64   |ns i64  | (runtime/core/counters.py)|
         +-------+--------+--------+--------+--------+---------------------------+

File safety on a shared host (issue 19): /dev/shm is world-writable, so nothing is created
there directly. Each user has one directory, /dev/shm/tickpath-<uid>, mode 0700, that must be
a real directory (not a symlink) owned by that user — else refused. The file
<pid>-stats inside is created O_EXCL|O_NOFOLLOW, mode 0600, relative to the directory's
descriptor; a leftover of a dead process with the same pid (only the owner could have made
it) is unlinked first. Nobody else can plant, read, forge or truncate it (a truncated
mapping would SIGBUS the runtime).
Readers open O_NOFOLLOW|O_NONBLOCK (a FIFO cannot hang them), accept only a regular file
owned by the instance's user, not writable by others, of exactly the size its header
announces (at most MAX_COUNTERS slots) with the magic, and read just that many bytes. A bad
file is one error entry, never the end of a listing; files of dead pids are removed from
the reader's own directory (and ignored in anyone else's).
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import re
import stat
import time

import numpy as np

from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ResourceError, translate_oserror

MAGIC = b"TPSTATS1"
VERSION = 1
HEADER_BYTES = 32
MAX_COUNTERS = 4096          # readers refuse a header announcing more (bounded read)
SHM_DIR = "/dev/shm"
_NAME = re.compile(r"(\d+)-stats")

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


def dir_for(uid: int | None = None, shm_dir: str | None = None) -> str:
    """The per-user directory the stats files of `uid` (default: ours) live in."""
    return os.path.join(shm_dir or SHM_DIR, f"tickpath-{os.geteuid() if uid is None else uid}")


def path_for(pid: int, shm_dir: str | None = None, uid: int | None = None) -> str:
    return os.path.join(dir_for(uid, shm_dir), f"{pid}-stats")


def _open_dir(path: str, uid: int, create: bool) -> int:
    """A descriptor of the owner-only directory `path` of `uid` (checked after opening)."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise translate_oserror(exc, "creating the live stats directory", path=path) from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ResourceError("live stats directory is not a directory (a symlink?): refused",
                                path=path) from exc
        raise translate_oserror(exc, "opening the live stats directory", path=path) from exc
    st = os.fstat(fd)
    if st.st_uid != uid or st.st_mode & 0o022:
        os.close(fd)
        raise ResourceError("live stats directory is not owned by the user or is writable by "
                            "others: refused", path=path, owner_uid=st.st_uid, want_uid=uid,
                            mode=oct(stat.S_IMODE(st.st_mode)))
    return fd


class LiveStats:
    """Owner side: creates the file and exposes `counters` (an int64 view of it)."""

    def __init__(self, n_counters: int = C.N_COUNTERS, shm_dir: str | None = None):
        uid, pid = os.geteuid(), os.getpid()
        self.dir = dir_for(uid, shm_dir)
        self.name = f"{pid}-stats"
        self.path = os.path.join(self.dir, self.name)
        size = HEADER_BYTES + 8 * n_counters
        dfd = _open_dir(self.dir, uid, create=True)
        try:
            if os.fstat(dfd).st_mode & 0o077:
                os.fchmod(dfd, 0o700)   # ours: others need not even list it
            _remove_stale(dfd)
            fd = _create(dfd, self.name, self.path)
            try:
                os.ftruncate(fd, size)
                # libc mmap, not Python's (which keeps a dup of the fd open: one leaked fd
                # per runtime); the mapping outlives the fd and is never unmapped, because
                # arrays handed to the loop and to callers may still point into it (one page)
                addr = _mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
                if addr in (None, ctypes.c_void_p(-1).value):
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            finally:
                os.close(fd)
        except OSError as exc:
            raise translate_oserror(exc, "creating the live stats file", path=self.path) from exc
        finally:
            os.close(dfd)
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(addr))
        hdr = raw[:HEADER_BYTES]
        hdr[:8] = np.frombuffer(MAGIC, np.uint8)
        hdr[8:16].view(np.uint32)[:] = (VERSION, n_counters)
        hdr[16:32].view(np.int64)[:] = (pid, time.clock_gettime_ns(time.CLOCK_REALTIME))
        self.counters = raw[HEADER_BYTES:].view(np.int64)

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _create(dfd: int, name: str, path: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, 0o600, dir_fd=dfd)
    except FileExistsError:
        # our own directory: a leftover of a dead process that had our pid (SIGKILL)
        os.unlink(name, dir_fd=dfd)
        return os.open(name, flags, 0o600, dir_fd=dfd)


def _remove_stale(dfd: int) -> int:
    """Unlink the files of dead pids in our own directory; returns how many."""
    n = 0
    for name in os.listdir(dfd):
        m = _NAME.fullmatch(name)
        if m and not _alive(int(m.group(1))):
            try:
                os.unlink(name, dir_fd=dfd)
                n += 1
            except OSError:
                pass
    return n


def _read_fd(fd: int, path: str, uid: int) -> tuple[bytes, np.ndarray]:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ResourceError("not a regular file: refused", path=path)
    if st.st_uid != uid or st.st_mode & 0o022:
        raise ResourceError("stats file not owned by the instance's user or writable by "
                            "others: refused", path=path, owner_uid=st.st_uid, want_uid=uid,
                            mode=oct(stat.S_IMODE(st.st_mode)))
    hdr = os.pread(fd, HEADER_BYTES, 0)
    if len(hdr) < HEADER_BYTES or hdr[:8] != MAGIC:
        raise ResourceError("not a tickpath stats file", path=path, bytes=st.st_size)
    version, n = np.frombuffer(hdr[8:16], np.uint32)
    want = HEADER_BYTES + 8 * int(n)
    if version != VERSION or n > MAX_COUNTERS or st.st_size != want:
        raise ResourceError("stats file version or size not understood", path=path,
                            version=int(version), n_counters=int(n), bytes=st.st_size,
                            want_bytes=want)
    body = os.pread(fd, 8 * int(n), HEADER_BYTES)
    if len(body) != 8 * int(n):
        raise ResourceError("stats file shrank while read", path=path)
    return hdr, np.frombuffer(body, np.int64)


def read(path: str, uid: int | None = None) -> dict:
    """{pid, started_ns, alive, counters{name: value}} from a stats file of user `uid`
    (default: ours); ResourceError if it is missing or fails a check (module docstring)."""
    uid = os.geteuid() if uid is None else uid
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResourceError("stats file is a symlink: refused", path=path) from exc
        raise translate_oserror(exc, "reading the live stats file", path=path) from exc
    try:
        hdr, arr = _read_fd(fd, path, uid)
    except OSError as exc:
        raise translate_oserror(exc, "reading the live stats file", path=path) from exc
    finally:
        os.close(fd)
    pid, started = np.frombuffer(hdr[16:32], np.int64)
    counters = {name: int(arr[i]) for i, name in sorted(C.NAMES.items()) if i < arr.shape[0]}
    return {"pid": int(pid), "started_ns": int(started), "alive": _alive(int(pid)),
            "counters": counters}


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(shm_dir: str | None = None, uid: int | None = None) -> list[int]:
    """Pids of running instances of user `uid` (default: ours) that publish stats. Files of
    dead pids are removed when the directory is ours, ignored otherwise; names that are not
    <pid>-stats are ignored; a directory that fails its checks raises ResourceError."""
    uid = os.geteuid() if uid is None else uid
    path = dir_for(uid, shm_dir)
    try:
        dfd = _open_dir(path, uid, create=False)
    except ResourceError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return []
        raise
    try:
        if uid == os.geteuid():
            _remove_stale(dfd)
        pids = [int(m.group(1)) for m in map(_NAME.fullmatch, os.listdir(dfd)) if m]
    finally:
        os.close(dfd)
    return sorted(p for p in pids if _alive(p))
