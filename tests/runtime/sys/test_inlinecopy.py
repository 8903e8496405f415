"""numba's inliner with linear IR copies (runtime/sys/inlinecopy.py): installed when numba's
inliner loads, the same machine code as without it, one scope per copied IR, and nothing
touched on a numba it was not written for."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

from tickpath.runtime.sys import inlinecopy

# a callee with loops and branches (several blocks) inlined twice, through a second level
PROGRAM = textwrap.dedent('''
    import sys
    import numpy as np
    from numba import njit
    import tickpath.runtime
    from tickpath.runtime.sys import inlinecopy

    @njit(inline="always")
    def inner(a, k):
        s = 0
        for i in range(a.shape[0]):
            if a[i] > k:
                s += a[i] - k
            elif a[i] < -k:
                s -= a[i]
        return s

    @njit(inline="always")
    def middle(a, k):
        t = inner(a, k)
        while t > 100:
            t //= 3
        return t + inner(a, k + 1)

    @njit
    def outer(a):
        return middle(a, 2) * 7 + middle(a, 5)

    a = np.arange(-50, 50, dtype=np.int64)
    print("RESULT", outer(a), inlinecopy.installed())
    asm = next(iter(outer.inspect_asm().values()))
    sys.stdout.write("".join(l + "\\n" for l in asm.splitlines()
                             if not l.strip().startswith((".file", ".ident", ".loc"))))
''')


def _compile(env_value):
    env = dict(os.environ, **{inlinecopy.ENV_OFF: env_value})
    env.pop("NUMBA_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    head, _, asm = r.stdout.partition("\n")
    return head, asm


def test_same_machine_code_with_and_without():
    on_head, on_asm = _compile("1")
    off_head, off_asm = _compile("0")
    assert on_head.endswith("True") and off_head.endswith("False"), (on_head, off_head)
    assert on_head.split()[1] == off_head.split()[1]        # the same answer
    assert len(on_asm) > 1000 and on_asm == off_asm          # byte for byte


def test_installed_when_numba_inliner_loads_and_not_before():
    code = textwrap.dedent('''
        import sys
        import tickpath.runtime
        from tickpath.runtime.sys import inlinecopy
        assert "numba" not in sys.modules          # `tickpath --help` imports no numba
        assert not inlinecopy.installed()
        import numba.core.inline_closurecall as icc
        assert inlinecopy.installed()
        assert isinstance(icc.copy, inlinecopy._SharedScopeCopies)
        assert icc.copy.copy is __import__("copy").copy   # the rest of `copy` is untouched
        print("ok")
    ''')
    env = dict(os.environ)
    env.pop(inlinecopy.ENV_OFF, None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_blocks_of_one_copy_share_one_copied_scope():
    from numba.core.compiler import run_frontend

    def f(a):
        s = 0
        for i in range(a):
            if i % 3:
                s += i
        return s
    ir = run_frontend(f)
    blocks = list(ir.blocks.values())
    assert len(blocks) >= 4 and len({id(b.scope) for b in blocks}) == 1
    shim = inlinecopy._SharedScopeCopies()
    plain = [shim.deepcopy(b) for b in blocks]        # outside inline_ir: numba's behaviour
    assert len({id(b.scope) for b in plain}) == len(blocks)
    inlinecopy._local.memos = {}
    try:
        shared = [shim.deepcopy(b) for b in blocks]
        again = [shim.deepcopy(b) for b in shared]    # a copy of the copy: its own scope
    finally:
        inlinecopy._local.memos = None
    assert len({id(b.scope) for b in shared}) == 1 and shared[0].scope is not blocks[0].scope
    assert len({id(b.scope) for b in again}) == 1 and again[0].scope is not shared[0].scope
    assert [str(s) for b in shared for s in b.body] == [str(s) for b in blocks for s in b.body]


def test_an_inliner_of_another_shape_is_left_alone():
    sentinel = object()

    class Worker:
        def inline_ir(self):
            return 1
    fake = types.SimpleNamespace(InlineWorker=Worker, copy=sentinel)
    assert inlinecopy.install(fake) is False
    assert fake.copy is sentinel and not hasattr(Worker.inline_ir, "tickpath_linear")
