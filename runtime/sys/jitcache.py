"""Where numba's on-disk cache lives: one directory per version of tickpath's sources.

Why: numba keys a cached function by the file that defines it, and nothing else. A cached
function that inlines code from another file keeps running the old code after that other
file changes — seen here: `pipeline.process_events` inlines the books (`book_apply`), and a
counter added in `runtime/book/orderbook.py` stayed 0 because process_events came from its
cache. The venue solved it for its own functions (bench/venue/jit.py); this does it for all:
the cache directory is named by a hash of every tickpath source file, so an edit anywhere
costs one recompile, never stale machine code. Same sources, same directory: a second
process (or a child) still loads what the first compiled.

`use_versioned_cache()` runs when a tickpath package is first imported (runtime, kernels,
fpga, bench), before any @njit(cache=True) is decorated. The base directory is
$NUMBA_CACHE_DIR if the user set one, else $XDG_CACHE_HOME/tickpath/numba (~/.cache/...);
the hash names a subdirectory under it.

Earlier versions' directories are pruned (`prune_stale`), only when a new version's directory
is made (that start compiles anyway, so the deletion is not paid on a warm start), and only
what is surely ours and surely idle: a directory named by a digest (16 hex digits), holding
our marker file (or under tickpath's own base, for directories made before the marker),
not a symlink, not among the KEEP_NEWEST most recently used, and unused for MIN_IDLE_S.
"Used" is the directory's mtime, which every process that picks the directory touches, so
a version run within the day is kept; a process still running an old version after a day
keeps its loaded machine code (numba has it in memory) and only loses what it would save.
A directory is first renamed (atomic: two pruning processes never both take it), then deleted.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time

_PACKAGES = ("runtime", "kernels", "fpga", "hostconfig", "bench")
MARKER = ".tickpath-numba-cache"          # says "tickpath made this directory"
KEEP_NEWEST = 4                           # versions kept whatever their age
MIN_IDLE_S = 86_400                       # a version unused this long may go
_DIGEST = re.compile(r"[0-9a-f]{16}")
_PRUNING = re.compile(r"\.([0-9a-f]{16})\.pruning-[0-9]+")   # a rename a prune did not finish
_applied: str | None = None


def sources_digest(root: str) -> str:
    """sha256 over the relative path and bytes of every .py under the package folders."""
    h = hashlib.sha256()
    for pkg in _PACKAGES:
        base = os.path.join(root, pkg)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    with open(path, "rb") as f:
                        h.update(os.path.relpath(path, root).encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> str:
    """This source version's numba cache directory (not created here: numba does it)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    digest = sources_digest(root)
    env = os.environ.get("NUMBA_CACHE_DIR", "")
    if env and os.path.basename(os.path.normpath(env)) == digest:
        return env                      # a child of a process that already chose it
    if env and os.path.exists(os.path.join(env, MARKER)):
        # a child of a process that ran other sources (edited since): a sibling, not nested
        return os.path.join(os.path.dirname(os.path.normpath(env)), digest)
    if env:
        return os.path.join(env, digest)
    return os.path.join(own_base(), digest)


def own_base() -> str:
    """tickpath's default base, $XDG_CACHE_HOME/tickpath/numba (~/.cache/tickpath/numba)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "tickpath", "numba")


def prune_stale(base: str, current: str, *, keep_newest: int = KEEP_NEWEST,
                min_idle_s: float = MIN_IDLE_S, now: float | None = None) -> list[str]:
    """Delete other versions' directories under `base` that are ours and idle (module
    docstring); `current` (a name) is never touched. Returns the names removed."""
    now = time.time() if now is None else now
    ours_by_place = os.path.normpath(base) == os.path.normpath(own_base())
    try:
        names = os.listdir(base)
    except OSError:
        return []
    removed = []
    versions = []   # (mtime, name, idle and ours)
    for name in names:
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue                      # another process removed it meanwhile
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        idle = now - st.st_mtime >= min_idle_s
        if _PRUNING.fullmatch(name) and idle:     # an interrupted prune: finish it
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        elif _DIGEST.fullmatch(name) and name != current:
            ours = ours_by_place or os.path.exists(os.path.join(path, MARKER))
            versions.append((st.st_mtime, name, idle and ours))
    versions.sort()
    kept = versions[-keep_newest:] if keep_newest > 0 else []
    for mtime, name, prunable in versions[:len(versions) - len(kept)]:
        if not prunable:
            continue
        doomed = os.path.join(base, f".{name}.pruning-{os.getpid()}")
        try:
            os.rename(os.path.join(base, name), doomed)   # atomic: only one process gets it
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(name)
    return removed


def _mark_used(path: str) -> None:
    """Touch this version's directory (its mtime is "last used") and mark it as ours; the
    first process of a version makes it and prunes its idle siblings. Never raises."""
    try:
        fresh = not os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        if not os.path.exists(os.path.join(path, MARKER)):
            with open(os.path.join(path, MARKER), "w") as f:
                f.write("numba cache of one version of tickpath's sources (runtime/sys/jitcache.py)\n")
        os.utime(path)
    except OSError:
        return                            # read-only home: numba copes, so do we
    if fresh:
        prune_stale(os.path.dirname(path), os.path.basename(path))


def use_versioned_cache() -> str:
    """Point numba's cache at this version's directory (once per process); returns it."""
    global _applied
    if _applied is None:
        inherited = os.environ.get("NUMBA_CACHE_DIR", "")
        _applied = cache_dir()
        if _applied != inherited:                         # a child's parent did this already
            _mark_used(_applied)
        os.environ["NUMBA_CACHE_DIR"] = _applied        # children: the same directory
        if "numba" in sys.modules:                        # already imported: set it live too
            from numba.core import config
            config.CACHE_DIR = _applied
    return _applied
