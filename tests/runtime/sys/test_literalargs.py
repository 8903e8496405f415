"""tickpath's jitted functions compiled once per argument type (runtime/sys/literalargs.py):
constants from jitted callers reuse the plain specialization, a callee that needs its literal
still gets it, functions outside tickpath keep numba's behaviour, and the hooks import no numba."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import pytest

from tickpath.runtime.sys import literalargs


def _module(name: str, src: str) -> dict:
    from numba import njit
    ns = {"__name__": name, "njit": njit}
    exec(textwrap.dedent(src), ns)     # functions get __module__ = name
    return ns


@pytest.fixture(autouse=True)
def _installed():
    import numba.core.dispatcher  # noqa: F401  (changed through runtime's hooks)
    if not literalargs.installed():
        pytest.skip("numba's dispatcher is not the one runtime/sys/literalargs.py was written for")


SRC = '''
@njit
def add(x, k):
    return x + k

@njit
def pick(t, i):          # an index into a heterogeneous tuple must be a literal
    return t[i]

@njit
def caller(x):
    n = 0
    s = add(x, 0) + add(x, 1) + add(x, 7)
    for i in range(x):
        s += add(i, n)
    return s

@njit
def picker(x):
    t = (x, 2.5)
    return pick(t, 0) + pick(t, 1)
'''


def test_constants_reuse_the_plain_specialization_in_tickpath():
    ns = _module("tickpath._literal_test", SRC)
    assert ns["caller"](4) == 4 + 5 + 11 + (0 + 1 + 2 + 3)
    assert [str(s) for s in ns["add"].signatures] == ["(int64, int64)"]


def test_a_callee_that_needs_its_literal_still_gets_it():
    ns = _module("tickpath._literal_test2", SRC)
    assert ns["picker"](3) == 5.5
    assert all("Literal" in str(s) for s in ns["pick"].signatures)


def test_functions_outside_tickpath_keep_numbas_behaviour():
    ns = _module("someone_else", SRC)
    assert ns["caller"](4) == 4 + 5 + 11 + (0 + 1 + 2 + 3)
    sigs = {str(s) for s in ns["add"].signatures}
    assert sigs == {f"(int64, Literal[int]({k}))" for k in (0, 1, 7)}  # n is always 0: a literal


def test_a_dispatcher_of_another_shape_is_left_alone():
    class Dispatcher:
        def get_call_template(self, something_else):
            return something_else
    fake = types.SimpleNamespace(Dispatcher=Dispatcher)
    assert literalargs.install(fake) is False
    assert not hasattr(Dispatcher.get_call_template, "tickpath_plain_first")


def test_off_switch_and_no_numba_before_it_is_needed():
    code = textwrap.dedent('''
        import sys
        import tickpath.runtime
        from tickpath.runtime.sys import literalargs
        assert "numba" not in sys.modules          # `tickpath --help` imports no numba
        import numba.core.dispatcher
        print(literalargs.installed())
    ''')
    out = {}
    for value in ("0", "1"):
        env = dict(os.environ, **{literalargs.ENV_KEEP: value})
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        out[value] = r.stdout.strip()
    assert out == {"0": "True", "1": "False"}
