"""numba's `inline="always"` runs a callee's front end once per process, not once per call site.

Why: for every call site of an inline="always" function, numba (0.68) `InlineWorker.inline_function`
runs the whole untyped pipeline over the callee again (bytecode, IR, rewrites, and, recursively,
the inlining of the callee's own inline callees). tickpath's helpers are small and nested, and
are called from many sites: a cold `process_events` ran that pipeline 147 times for 36
functions. The pipeline's result depends only on the function (its code, globals and closure)
and the compile flags, and `inline_ir` copies it before it changes anything, so it can be
reused. numba-cuda keeps the same kind of per-callee IR cache for its inliner.

What is cached: the IR the untyped pipeline returns, keyed by the function object, the flags,
the typing context and the kind of target context (numba derives a new one from the flags for
every compile); IR with objmode blocks lifted out of it is not kept. An entry is reused only while everything it was built from is
unchanged: for the function and every function inlined into it, the same code object, the same
closure cell contents, and the same object behind every global name its code (and the code of
its closures) mentions, and behind those names in the __dict__ of any module it reads. A hit
hands `inline_ir` a shallow copy with a fresh function identity, as a new run of the pipeline
would, so inlined variables are named as before; it also leaves the caller's flags as the
pipeline would (numba's `run_untyped_passes` sets `flags.enable_ssa` to False as it runs).

How it is applied: runtime/sys/numbahooks.py calls `install` when numba's inliner loads
(tickpath --help still imports no numba). On a numba whose `inline_function` does not
look as expected, nothing is changed. TICKPATH_NUMBA_INLINE_CACHE=0 turns it off.
"""
from __future__ import annotations

import copy as _copy
import functools
import os
import threading
import types
import weakref
from typing import NamedTuple

ENV_OFF = "TICKPATH_NUMBA_INLINE_CACHE"
_MISSING = object()
_local = threading.local()   # the dependency sets of the inline_function calls in progress


class Snapshot(NamedTuple):
    """What one function's IR was built from; `still_valid()` is True while nothing changed."""
    func: types.FunctionType
    code: types.CodeType
    cells: tuple            # closure cell contents (held, so identity stays meaningful)
    names: tuple            # (namespace dict, name, object seen) for every global read

    def still_valid(self) -> bool:
        if self.func.__code__ is not self.code:
            return False
        cells = _cells(self.func)
        if len(cells) != len(self.cells) or any(a is not b for a, b in zip(cells, self.cells)):
            return False
        return all(ns.get(name, _MISSING) is seen for ns, name, seen in self.names)


class Entry(NamedTuple):
    ir: object              # numba FunctionIR, never mutated (inline_ir copies it first)
    deps: tuple             # Snapshots of the function and everything inlined into it


def _cells(func) -> tuple:
    out = []
    for cell in func.__closure__ or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:    # an empty cell
            out.append(_MISSING)
    return tuple(out)


def _code_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):   # closures and comprehensions defined inside
            names |= _code_names(const)
    return names


def snapshot(func) -> Snapshot:
    """Record the code, closure and globals (and attributes of global modules) `func` can read."""
    names = sorted(_code_names(func.__code__))
    g = func.__globals__
    seen = [(g, n, g.get(n, _MISSING)) for n in names]
    for _, _, value in list(seen):
        if isinstance(value, types.ModuleType):
            ns = vars(value)   # the module's own dict: no lazy __getattr__ is triggered
            seen.extend((ns, n, ns.get(n, _MISSING)) for n in names)
    return Snapshot(func, func.__code__, _cells(func), tuple(seen))


class InlineIRCache:
    """Per-process cache of callee IR, one entry per (function, flags, contexts)."""

    def __init__(self):
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.hits = 0
        self.misses = 0

    def untyped_ir(self, worker, function):
        """The untyped IR of `function` as `worker.run_untyped_passes(function)` returns it."""
        worker.flags.enable_ssa = False          # what run_untyped_passes does to the flags
        flags = repr(sorted(worker.flags.values().items()))   # Flags' own hash sees names only
        # numba makes a target context per compile, from the flags: its type is what is shared
        key = (flags, id(worker.typingctx), type(worker.targetctx),
               repr(sorted(worker.locals.items())) if worker.locals else "")
        per_func = self._entries.get(function)
        entry = per_func.get(key) if per_func is not None else None
        if entry is not None and all(d.still_valid() for d in entry.deps):
            self.hits += 1
            _record(entry.deps)
            fresh = _copy.copy(entry.ir)         # same blocks; inline_ir copies them
            fresh.func_id = entry.ir.func_id.derive()   # a new unique name, as a rerun gives
            return fresh
        self.misses += 1
        deps = {id(function): snapshot(function)}
        outer = getattr(_local, "deps", None)
        _local.deps = deps                       # nested inline_function calls add theirs here
        try:
            ir = worker.run_untyped_passes(function)
        finally:
            _local.deps = outer
        entry = Entry(ir, tuple(deps.values()))
        if not _has_lifted_code(ir):             # objmode blocks become dispatchers: not shared
            self._entries.setdefault(function, {})[key] = entry
        _record(entry.deps)
        return ir


def _has_lifted_code(ir) -> bool:
    from numba.core import ir as nir
    from numba.core.dispatcher import LiftedCode
    return any(isinstance(st, nir.Assign) and isinstance(st.value, nir.Global)
               and isinstance(st.value.value, LiftedCode)
               for block in ir.blocks.values() for st in block.body)


def _record(deps) -> None:
    parent = getattr(_local, "deps", None)
    if parent is not None:
        for d in deps:
            parent.setdefault(id(d.func), d)


CACHE = InlineIRCache()


def _wrap(inline_function):
    @functools.wraps(inline_function)
    def inline_function_cached(self, caller_ir, block, i, function, arg_typs=None):
        callee_ir = CACHE.untyped_ir(self, function)
        freevars = function.__code__.co_freevars
        return self.inline_ir(caller_ir, block, i, callee_ir, freevars, arg_typs=arg_typs)
    inline_function_cached.tickpath_cached = True
    return inline_function_cached


def install(icc) -> bool:
    """Apply to numba's inliner module `icc`; True when in place."""
    if os.environ.get(ENV_OFF, "1") == "0":
        return False
    worker = getattr(icc, "InlineWorker", None)
    inline_function = getattr(worker, "inline_function", None)
    if getattr(inline_function, "tickpath_cached", False):
        return True
    code = getattr(inline_function, "__code__", None)
    # the numba this was written against: inline_function = run_untyped_passes + inline_ir
    expected = {"run_untyped_passes", "inline_ir", "__code__", "co_freevars"}
    if code is None or set(code.co_names) != expected or code.co_argcount != 6:
        return False
    worker.inline_function = _wrap(inline_function)
    return True


def installed() -> bool:
    import sys
    worker = getattr(sys.modules.get("numba.core.inline_closurecall"), "InlineWorker", None)
    return getattr(getattr(worker, "inline_function", None), "tickpath_cached", False)
