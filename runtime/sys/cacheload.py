"""A function loaded from numba's disk cache without first loading numba's whole compiler.

Why: numba (0.68) begins every cache load with `target_context.refresh()`, which the first
time imports ~40 of numba's implementation modules (strings, lists, dicts, linalg, random,
datetime...) and installs every typing and lowering registry: 0.3-0.55 s of each start on the
development VM, in a process that will compile nothing. It is most of what `tickpath run` and
`tickpath replay` do before their first line once their loops are cached (bench/RESULTS.md,
"Issue 12, closing"). A cached function needs none of it: its machine code is rebuilt from
the cache's object code, its environment and its type descriptors (unpickled), and linked
against the NRT's C helpers — the one part of the refresh that it does need, so that is kept.

What it changes: `Cache.load_overload` initialises the NRT and loads, without the refresh.
Nothing is skipped for good: a compile (a cache miss, a new signature) builds a numba
`CompilerBase`, whose constructor refreshes both contexts itself, so the registries are in
place before anything is typed or lowered. The code that runs is the same object code.

Applied by runtime/sys/numbahooks.py when numba's caching module loads; a numba whose
`load_overload` does something else than refresh-then-load is left alone.
TICKPATH_NUMBA_CACHE_REFRESH=1 keeps numba's behaviour.
"""
from __future__ import annotations

import functools
import os

ENV_KEEP = "TICKPATH_NUMBA_CACHE_REFRESH"


def _wrap(load_overload):
    @functools.wraps(load_overload)
    def load_overload_without_refresh(self, sig, target_context):
        from numba.core.runtime import rtsys
        rtsys.initialize(target_context)     # cached code may call NRT_* helpers
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
    load_overload_without_refresh.tickpath_no_refresh = True
    return load_overload_without_refresh


def install(caching_module) -> bool:
    """Apply to numba's caching module; True when in place."""
    if os.environ.get(ENV_KEEP, "0") == "1":
        return False
    cls = getattr(caching_module, "Cache", None)
    current = getattr(cls, "load_overload", None)
    if getattr(current, "tickpath_no_refresh", False):
        return True
    code = getattr(current, "__code__", None)
    # the numba this was written against: refresh, then _load_overload under the I/O guard
    if code is None or code.co_varnames[:3] != ("self", "sig", "target_context") \
            or set(code.co_names) != {"refresh", "_guard_against_spurious_io_errors",
                                      "_load_overload"} \
            or not hasattr(cls, "_load_overload") or not hasattr(cls, "_guard_against_spurious_io_errors"):
        return False
    cls.load_overload = _wrap(current)
    return True


def installed() -> bool:
    import sys
    cls = getattr(sys.modules.get("numba.core.caching"), "Cache", None)
    return getattr(getattr(cls, "load_overload", None), "tickpath_no_refresh", False)
