"""A cache load without numba's compiler (runtime/sys/cacheload.py): in a new process a cached
function loads and runs — NRT allocations included — without numba importing its
implementation modules, a later compile in the same process still finds every registry, and
TICKPATH_NUMBA_CACHE_REFRESH=1 gives numba's behaviour back."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

MODULE = '''
import numpy as np
from numba import njit


@njit(cache=True)
def squares(n):
    out = np.empty(n, np.int64)       # an NRT allocation: the cached code calls NRT_* helpers
    for i in range(n):
        out[i] = i * i
    return out
'''

PROBE = '''
import sys, json, math
import tickpath.runtime                       # installs the hooks
import numpy as np
import cachedmod
got = cachedmod.squares(5).tolist()
from tickpath.runtime.sys import cacheload
before = "numba.np.linalg" in sys.modules     # imported only by numba's context refresh
hits = sum(cachedmod.squares.stats.cache_hits.values())
from numba import njit

@njit
def norm(x):                                  # needs the registries the refresh installs
    return math.hypot(3.0, 4.0) + np.sqrt(x).sum() + len(str(7))

after = norm(np.arange(4.0))
print(json.dumps(dict(got=got, hits=hits, installed=cacheload.installed(),
                      linalg_before_compile=before, norm=after)))
'''


def _run(tmp_path, env_extra):
    env = {k: v for k, v in os.environ.items() if k != "TICKPATH_NUMBA_CACHE_REFRESH"}
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "nbcache"),
               PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""), **env_extra)
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def cached(tmp_path):
    (tmp_path / "cachedmod.py").write_text(textwrap.dedent(MODULE))
    first = _run(tmp_path, {})            # compiles and writes the cache
    assert first["got"] == [0, 1, 4, 9, 16] and first["hits"] == 0
    return tmp_path


def test_a_cached_function_loads_without_numbas_compiler_and_compiles_still_work(cached):
    r = _run(cached, {})
    assert r["installed"] and r["hits"] == 1
    assert r["got"] == [0, 1, 4, 9, 16]                  # NRT allocation from the loaded code
    assert r["linalg_before_compile"] is False          # no refresh for the load
    assert abs(r["norm"] - (5.0 + sum(i ** 0.5 for i in range(4)) + 1)) < 1e-12


def test_the_off_switch_keeps_numbas_refresh(cached):
    r = _run(cached, {"TICKPATH_NUMBA_CACHE_REFRESH": "1"})
    assert not r["installed"] and r["hits"] == 1
    assert r["linalg_before_compile"] is True           # the check above can fail


def test_a_numba_of_another_shape_is_left_alone():
    import types

    from tickpath.runtime.sys import cacheload

    class Cache:
        def load_overload(self, sig, target_context):     # does something else first
            target_context.prepare()
            return self._load_overload(sig, target_context)

        def _load_overload(self, sig, target_context):
            return None

    before = Cache.load_overload
    assert cacheload.install(types.SimpleNamespace(Cache=Cache)) is False
    assert Cache.load_overload is before
