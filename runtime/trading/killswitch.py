"""The kill switch: a flag in a shared-memory file that any process of the same user can set
(`tickpath kill [--pid N]`), that SIGUSR1 sets, and that the breakers set from the hot loop.
Tripped: no new order or replace passes the risk gate, every open order is cancelled (step.py),
the reason and time are kept for the report. It stays tripped until the process ends.

    file /dev/shm/tickpath-<uid>/kill-<pid> (64 bytes)
    byte 0      8      16      24          32     40..64
         +------+------+-------+-----------+------+------+
         |magic |flag  |reason |tripped_ns |pid   | ...  |
         |8 B   |i64   |i64    |i64        |i64   |      |
         +------+------+-------+-----------+------+------+

Safe creation: the directory is created 0700 and must be a real directory (not a link) owned
by this user with no group/other access; the file is created O_CREAT|O_EXCL|O_NOFOLLOW 0600
(a leftover file of a dead process with our pid is removed first), so another user can
neither pre-plant the file nor read or flip the switch. The loop reads the flag with an
acquire load; writers store the reason and time first, then the flag.
"""
from __future__ import annotations

import ctypes
import glob
import mmap
import os
import re
import signal
import stat
import time

import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ResourceError, translate_oserror
from tickpath.runtime.sys.intrinsics import load_acquire, store_release
from tickpath.runtime.trading import layout as T

MAGIC = b"TPKILL01"
FILE_BYTES = 64
K_FLAG, K_REASON, K_TRIPPED_NS, K_PID = 0, 1, 2, 3
N_KILL = 7   # int64 slots after the magic

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


@njit(nogil=True, inline="always")
def kill_active(kill):
    return load_acquire(kill, K_FLAG) != 0


@njit(nogil=True, inline="always")
def kill_trip(kill, reason, now_ns):
    """Trip the switch (first reason wins; later trips keep it)."""
    if load_acquire(kill, K_FLAG) == 0:
        kill[K_REASON] = reason
        kill[K_TRIPPED_NS] = now_ns
        store_release(kill, K_FLAG, 1)


def kill_dir(base: str = "/dev/shm") -> str:
    return os.path.join(base, f"tickpath-{os.getuid()}")


def _safe_dir(path: str, create: bool) -> str:
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise translate_oserror(exc, "creating the kill switch directory", path=path) from exc
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise translate_oserror(exc, "opening the kill switch directory", path=path) from exc
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ResourceError("kill switch directory is not a private directory of this user "
                            "(a link, another owner, or group/other access): refusing it",
                            path=path, uid=st.st_uid, mode=oct(st.st_mode & 0o777))
    return path


def _map(fd: int) -> np.ndarray:
    addr = _mmap(None, FILE_BYTES, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    # never unmapped: the loop's array points into it for the life of the process (one page)
    return np.ctypeslib.as_array((ctypes.c_uint8 * FILE_BYTES).from_address(addr))


class KillSwitch:
    """Owner side: creates this process's kill file; `.flags` is the int64 array the loop reads."""

    def __init__(self, base: str = "/dev/shm"):
        d = _safe_dir(kill_dir(base), create=True)
        self.path = os.path.join(d, f"kill-{os.getpid()}")
        try:
            try:
                os.unlink(self.path)   # a dead process's file with our pid (ours: the dir is private)
            except FileNotFoundError:
                pass
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.ftruncate(fd, FILE_BYTES)
                raw = _map(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise translate_oserror(exc, "creating the kill switch file", path=self.path) from exc
        self.flags = raw[8:].view(np.int64)
        self.flags[K_PID] = os.getpid()
        raw[:8] = np.frombuffer(MAGIC, np.uint8)
        self._old_handler = None

    def install_signal(self) -> None:
        """SIGUSR1 trips the switch (the handler runs on the main thread; the loop sees the flag)."""
        def handler(signum, frame):
            trip_array(self.flags, T.K_SIGNAL)
        self._old_handler = signal.signal(signal.SIGUSR1, handler)

    @property
    def tripped(self) -> bool:
        return bool(self.flags[K_FLAG])

    def report(self) -> dict:
        f = self.flags
        r = int(f[K_REASON])
        return {"tripped": bool(f[K_FLAG]),
                "reason": T.KILL_REASONS[r] if 0 <= r < len(T.KILL_REASONS) else str(r),
                "tripped_ns": int(f[K_TRIPPED_NS]), "path": self.path}

    def close(self) -> None:
        if self._old_handler is not None:
            signal.signal(signal.SIGUSR1, self._old_handler)
            self._old_handler = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def new_local_flags() -> np.ndarray:
    """A kill flag array with no file behind it (tests, backtests)."""
    return np.zeros(N_KILL, dtype=np.int64)


def trip_array(flags: np.ndarray, reason: int) -> None:
    if not flags[K_FLAG]:
        flags[K_REASON] = reason
        flags[K_TRIPPED_NS] = time.clock_gettime_ns(time.CLOCK_REALTIME)
    flags[K_FLAG] = 1   # a plain store from Python is visible at once (x86-TSO)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(base: str = "/dev/shm") -> list[int]:
    """Pids of this user's running instances that have a kill file."""
    d = kill_dir(base)
    pids = []
    for p in glob.glob(os.path.join(d, "kill-*")):
        m = re.search(r"kill-(\d+)$", p)
        if m and _alive(int(m.group(1))):
            pids.append(int(m.group(1)))
    return sorted(pids)


def trip_pid(pid: int, base: str = "/dev/shm", reason: int = T.K_OTHER_PROCESS) -> dict:
    """Trip the kill switch of process `pid` from another process (what `tickpath kill` does)."""
    d = _safe_dir(kill_dir(base), create=False)
    path = os.path.join(d, f"kill-{int(pid)}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError as exc:
        raise translate_oserror(exc, "opening the kill switch file", path=path, pid=pid,
                                hint="is a `tickpath trade` with that pid running as this user?") from exc
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid() or st.st_size < FILE_BYTES:
            raise ResourceError("not this user's kill switch file", path=path, uid=st.st_uid)
        raw = _map(fd)
    finally:
        os.close(fd)
    if bytes(raw[:8]) != MAGIC:
        raise ResourceError("not a tickpath kill switch file", path=path)
    flags = raw[8:].view(np.int64)
    was = bool(flags[K_FLAG])
    trip_array(flags, reason)
    return {"pid": int(pid), "path": path, "already_tripped": was}
