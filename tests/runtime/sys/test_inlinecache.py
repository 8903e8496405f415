"""numba's inliner with each callee's front end run once (runtime/sys/inlinecache.py): the same
machine code as without it, reused across call sites, and never reused once anything the
callee's IR was built from has changed (its globals, a module attribute, a nested callee)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types

import pytest

from tickpath.runtime.sys import inlinecache

# one helper inlined at six sites, through a second level, beside a function numba calls
PROGRAM = textwrap.dedent('''
    import sys
    import numpy as np
    from numba import njit
    import tickpath.runtime
    from tickpath.runtime.sys import inlinecache

    @njit(inline="always")
    def inner(a, k):
        s = 0
        for i in range(a.shape[0]):
            if a[i] > k:
                s += a[i] - k
        return s

    @njit(inline="always")
    def middle(a, k):
        return inner(a, k) + inner(a, k + 1) * 2

    @njit
    def called(a):
        return a.sum()

    @njit
    def outer(a):
        return middle(a, 2) * 7 + middle(a, 5) + inner(a, 9) + called(a)

    a = np.arange(-50, 50, dtype=np.int64)
    print("RESULT", outer(a), inlinecache.installed(), inlinecache.CACHE.hits)
    asm = next(iter(outer.inspect_asm().values()))
    sys.stdout.write("".join(l + "\\n" for l in asm.splitlines()
                             if not l.strip().startswith((".file", ".ident", ".loc"))))
''')


def _compile(env_value):
    env = dict(os.environ, **{inlinecache.ENV_OFF: env_value})
    env.pop("NUMBA_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    head, _, asm = r.stdout.partition("\n")
    # a called (not inlined) function's symbol carries numba's process-wide unique id
    return head.split(), re.sub(r"B\d+v\d+B", "BvB", asm)


def test_same_machine_code_with_and_without_and_the_cache_is_used():
    on, on_asm = _compile("1")
    off, off_asm = _compile("0")
    assert on[2:] == ["True", "3"] and off[2:] == ["False", "0"], (on, off)  # middle once, inner twice
    assert on[1] == off[1]
    assert len(on_asm) > 1000 and on_asm == off_asm


def _namespace(src: str) -> dict:
    from numba import njit
    ns = {"njit": njit}
    exec(textwrap.dedent(src), ns)    # a fresh globals dict the test can rebind names in
    return ns


@pytest.fixture
def cache():
    import numba.core.inline_closurecall  # noqa: F401  (installs through runtime's hook)
    if not inlinecache.installed():
        pytest.skip("numba's inliner is not the one runtime/sys/inlinecache.py was written for")
    return inlinecache.CACHE


def test_a_rebound_global_of_the_callee_or_of_a_nested_callee_is_seen(cache):
    ns = _namespace('''
        K = 3
        @njit(inline="always")
        def add_k(x):
            return x + K
        @njit(inline="always")
        def twice(x):
            return add_k(x) * 2
    ''')
    exec(textwrap.dedent('''
        @njit
        def f1(x):
            return add_k(x) + twice(x)
        @njit
        def f2(x):
            return add_k(x) + twice(x)
        @njit
        def f3(x):
            return twice(x)
    '''), ns)
    hits = cache.hits
    assert ns["f1"](1) == 4 + 8
    assert cache.hits == hits + 1              # add_k inside twice: the entry made just before
    ns["K"] = 10
    misses = cache.misses
    assert ns["f2"](1) == 11 + 22              # a stale entry would give 4 + 8
    assert cache.misses == misses + 2          # add_k and twice (through add_k) both rebuilt
    assert ns["f3"](1) == 22                   # twice's entry again, built with K = 10


def test_a_rebound_module_attribute_is_seen(cache):
    helpers = types.ModuleType("helpers")
    ns = _namespace('''
        @njit(inline="always")
        def one(x):
            return x + 1
        @njit(inline="always")
        def two(x):
            return x + 2
    ''')
    helpers.step = ns["one"]
    ns["helpers"] = helpers
    exec(textwrap.dedent('''
        @njit(inline="always")
        def via_module(x):
            return helpers.step(x)
        @njit
        def g1(x):
            return via_module(x)
        @njit
        def g2(x):
            return via_module(x)
    '''), ns)
    assert ns["g1"](1) == 2
    helpers.step = ns["two"]
    assert ns["g2"](1) == 3                    # the inlined body follows the module attribute


def test_an_inliner_of_another_shape_is_left_alone():
    class Worker:
        def inline_function(self, caller_ir, block, i, function, arg_typs=None):
            return self.something_else(function)
    fake = types.SimpleNamespace(InlineWorker=Worker)
    assert inlinecache.install(fake) is False
    assert not hasattr(Worker.inline_function, "tickpath_cached")


def test_snapshot_sees_closure_cells_and_globals_only_through_dicts():
    k = 1

    def f(x):
        return x + k + len(sys.argv)
    s = inlinecache.snapshot(f)
    assert s.still_valid()
    k = 2  # noqa: F841  (rebinds the cell f reads)
    assert not s.still_valid()
    s = inlinecache.snapshot(f)
    assert ("argv" in {n for ns, n, _ in s.names if ns is vars(sys)})   # sys.argv, via sys's dict
