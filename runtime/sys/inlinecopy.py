"""numba's `inline="always"` with IR copies in linear time: the same machine code, compiled 2-3x faster.

Why: before numba (0.68) inlines a callee, `InlineWorker.inline_ir` copies the callee's IR
(twice: a working copy and an untouched one), deep-copying each block on its own. Every
variable points at the function's scope, and the scope holds every variable, so each
block's copy copies the whole scope again: blocks x variables objects per copy. tickpath's
hot loops inline nested helpers (the books into the pipeline, the pipeline and the trading
step into the loops), so the callee IR is large and copied at every site. Measured with
cProfile on a cold `process_events`: 90 of 120 s in `copy.deepcopy` from `inline_ir`; plain
wall clock, 49.6 s -> 20.4 s with this module, and the assembly numba emits is the same byte
for byte. numba's own record of the problem: numba/numba#8989 (open), numba/numba#9204.

What it changes: while `inline_ir` runs, the blocks of one IR copy share one memo, so the
scope and its variables are copied once per IR copy and the copied blocks share one scope,
as the blocks of any function numba builds do. Statements, names and types are the same.

How it is applied: `install()` replaces `inline_closurecall`'s module global `copy` with a
stand-in whose `deepcopy` uses that memo for IR blocks (everything else goes to the `copy`
module unchanged) and wraps `InlineWorker.inline_ir` to open and close the memo;
runtime/sys/numbahooks.py calls it when numba's inliner loads (tickpath --help imports no
numba). If numba's module does not look as expected (another version), nothing is changed:
compiles are slower, the code is the same. TICKPATH_NUMBA_INLINE_COPY=0 turns it off.
"""
from __future__ import annotations

import copy as _copy
import functools
import os
import sys
import threading

INLINER = "numba.core.inline_closurecall"
ENV_OFF = "TICKPATH_NUMBA_INLINE_COPY"
_local = threading.local()   # memos of the inline_ir call in progress (one per thread)


class _SharedScopeCopies:
    """Stands in for the `copy` module inside numba's inliner."""

    def __getattr__(self, name):
        return getattr(_copy, name)

    @staticmethod
    def deepcopy(x, memo=None):
        memos = getattr(_local, "memos", None)
        if memo is None and memos is not None and type(x).__name__ == "Block":
            # one memo per scope: the blocks of one IR share it, a copy of a copy gets its own
            memo = memos.setdefault(id(x.scope), {})
        return _copy.deepcopy(x, memo)


def _wrap(inline_ir):
    @functools.wraps(inline_ir)
    def inline_ir_linear(self, *args, **kwargs):
        outer = getattr(_local, "memos", None)
        _local.memos = {}        # holds the originals alive, so their ids stay unique
        try:
            return inline_ir(self, *args, **kwargs)
        finally:
            _local.memos = outer
    inline_ir_linear.tickpath_linear = True
    return inline_ir_linear


def install(icc=None) -> bool:
    """Apply to numba's inliner module (imported if not given); True when in place."""
    if os.environ.get(ENV_OFF, "1") == "0":
        return False
    if icc is None:
        import importlib
        icc = importlib.import_module(INLINER)
    worker = getattr(icc, "InlineWorker", None)
    inline_ir = getattr(worker, "inline_ir", None)
    if getattr(inline_ir, "tickpath_linear", False):
        return True
    if inline_ir is None or getattr(icc, "copy", None) is not _copy:
        return False             # not the numba this was written against: leave it alone
    icc.copy = _SharedScopeCopies()
    worker.inline_ir = _wrap(inline_ir)
    return True


def installed() -> bool:
    worker = getattr(sys.modules.get(INLINER), "InlineWorker", None)
    return getattr(getattr(worker, "inline_ir", None), "tickpath_linear", False)
