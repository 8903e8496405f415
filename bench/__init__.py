"""tickpath.bench"""
from tickpath.runtime.sys.jitcache import use_versioned_cache as _use_versioned_cache

_use_versioned_cache()   # numba's cache per version of the sources (runtime/sys/jitcache.py says why)
