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
the hash names a subdirectory under it. Earlier versions' directories are left alone.
"""
from __future__ import annotations

import hashlib
import os
import sys

_PACKAGES = ("runtime", "kernels", "fpga", "hostconfig", "bench")
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
    if env:
        return os.path.join(env, digest)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "tickpath", "numba", digest)


def use_versioned_cache() -> str:
    """Point numba's cache at this version's directory (once per process); returns it."""
    global _applied
    if _applied is None:
        _applied = cache_dir()
        os.environ["NUMBA_CACHE_DIR"] = _applied        # children: the same directory
        if "numba" in sys.modules:                        # already imported: set it live too
            from numba.core import config
            config.CACHE_DIR = _applied
    return _applied
