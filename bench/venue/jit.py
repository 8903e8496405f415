"""The venue's numba decorator: `njit(nogil=True)` cached on disk under a key that also covers
the source of every file the venue's compiled code is built from.

Why: numba keys a cached function by its own file's timestamp and bytecode only, but a
cached function carries the code of everything it calls (inlined, or linked in when not).
An edit to another file it calls into (itch_out.py, ring.py, byteorder.py, ...) would leave
it stale: the old code runs until its own file changes. `vjit` functions are cached by
numba's own FunctionCache with one more element in the index key, DEPS_KEY: a hash of the
files in DEPS, so an edit to any of them recompiles every venue function (and nothing
else), and an unchanged tree loads every one of them from the cache.

DEPS lists the modules whose numba code the venue compiles; a venue module that starts
calling jitted code from another module adds that module here (test_venue_cache checks
that every module the venue's jitted modules import from tickpath is listed).
"""
from __future__ import annotations

import hashlib
import importlib.util

from numba import njit
from numba.core.caching import FunctionCache

DEPS = (
    "tickpath.bench.venue.book", "tickpath.bench.venue.engine", "tickpath.bench.venue.flow",
    "tickpath.bench.venue.itch_out", "tickpath.bench.venue.jit", "tickpath.bench.venue.layout",
    "tickpath.bench.venue.matcher", "tickpath.bench.venue.orders", "tickpath.bench.venue.timestamps",
    "tickpath.bench.venue.wire",
    "tickpath.runtime.core.errors", "tickpath.runtime.engine.idle", "tickpath.runtime.engine.latency",
    "tickpath.runtime.feed.itch", "tickpath.runtime.feed.moldudp64", "tickpath.runtime.ipc.ring",
    "tickpath.runtime.ipc.ring_layout", "tickpath.runtime.sys.byteorder",
    "tickpath.runtime.sys.intrinsics", "tickpath.runtime.sys.libc",
)


def deps_key(paths) -> str:
    """sha256 over the bytes of the files, in order (a missing file counts as empty)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        h.update(str(p).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def dep_paths(modules=DEPS) -> list[str]:
    """Source files of the modules (found without importing them)."""
    out = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"venue jit dependency not found: {name}")
        out.append(spec.origin)
    return out


DEPS_KEY = deps_key(dep_paths())


class DepsKeyedCache(FunctionCache):
    """numba's on-disk function cache, its index key extended by DEPS_KEY."""

    def _index_key(self, sig, codegen):
        return super()._index_key(sig, codegen) + (DEPS_KEY,)


def vjit(fn=None, *, inline: str = "never"):
    """@vjit: njit(nogil=True), cached under DEPS_KEY. @vjit(inline="always"): numba IR
    inlining into the caller (no cache of its own: it lives in its callers' caches)."""
    def wrap(f):
        if inline == "always":
            return njit(nogil=True, inline="always")(f)
        d = njit(nogil=True)(f)
        d._cache = DepsKeyedCache(f)          # what njit(cache=True) does, with our key
        return d
    return wrap(fn) if fn is not None else wrap
