"""tickpath.runtime — the core: contracts (event record, counters, errors), placement,
NUMA buffers, the SPSC ring, idle strategies, the poll loop, feed codecs, books, backends, CLI.

Backends and other folders depend on this package, never the reverse.
"""
from tickpath.runtime.sys.jitcache import use_versioned_cache as _use_versioned_cache

_use_versioned_cache()   # numba's cache per version of the sources (runtime/sys/jitcache.py says why)

from tickpath.runtime.sys import numbahooks as _numbahooks  # noqa: E402

_numbahooks.install()   # shorter cold compiles, when numba loads (runtime/sys/numbahooks.py says how)
