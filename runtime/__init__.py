"""tickpath.runtime — the core: contracts (event record, counters, errors), placement,
NUMA buffers, the SPSC ring, idle strategies, the poll loop, feed codecs, books, backends, CLI.

Backends and other folders depend on this package, never the reverse.
"""
from tickpath.runtime.sys.jitcache import use_versioned_cache as _use_versioned_cache

_use_versioned_cache()   # numba's cache per version of the sources (runtime/sys/jitcache.py says why)

from tickpath.runtime.sys.inlinecopy import install_when_imported as _install_inline_copy  # noqa: E402

_install_inline_copy()   # numba's inliner without its quadratic IR copies (runtime/sys/inlinecopy.py)
