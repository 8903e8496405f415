"""tickpath's jitted functions compiled once per argument type, not once per constant value.

Why: when jitted code calls a jitted function with a constant (`process_events(pipe, events, 0)`,
`audit_write_decision(..., 0, ...)`), numba (0.68) types that argument as `Literal[int](0)` and
compiles a new specialization of the whole callee for it, beside the one for int64 it already
has: `_decode_at` was compiled five times in one test-suite run, `process_events` (~20 s
alone) twice. The machine code gains nothing a user would measure (the callees are either
inlined by numba, where this does not apply, or large enough that one constant does not
matter), and every first start and every cold test pays for each copy.

What it changes: for a function defined in tickpath (its module is `tickpath.*` or a generated
`tickpath_loops.*` loop), a call from jitted code first resolves with the literal arguments
made plain (`types.unliteral`); only if that fails to compile (a callee that needs a literal:
`literally()`, an index into a heterogeneous tuple) does it resolve as numba would, with the
literals. This is the order numba itself uses for `@overload` (prefer_literal=False). Calls
from Python are unchanged: numba already dispatches those on plain types.

How it is applied: runtime/sys/numbahooks.py installs it when numba's dispatcher module loads.
On a numba whose `Dispatcher.get_call_template` has another shape, nothing is changed.
TICKPATH_NUMBA_LITERAL_ARGS=1 keeps numba's behaviour (a specialization per constant).
"""
from __future__ import annotations

import functools
import os

ENV_KEEP = "TICKPATH_NUMBA_LITERAL_ARGS"
_OURS = ("tickpath.", "tickpath_loops.")


def _wrap(get_call_template):
    from numba.core import errors, types

    @functools.wraps(get_call_template)
    def get_call_template_plain_first(self, args, kws):
        module = getattr(getattr(self, "py_func", None), "__module__", None) or ""
        if module.startswith(_OURS):
            plain = tuple(types.unliteral(a) for a in args)
            plain_kws = {k: types.unliteral(v) for k, v in kws.items()}
            if plain != tuple(args) or plain_kws != kws:
                try:
                    return get_call_template(self, plain, plain_kws)
                except errors.NumbaError:
                    pass     # needs its literals (literally(), a tuple index): numba's way below
        return get_call_template(self, args, kws)
    get_call_template_plain_first.tickpath_plain_first = True
    return get_call_template_plain_first


def install(dispatcher_module) -> bool:
    """Apply to numba's dispatcher module; True when in place."""
    if os.environ.get(ENV_KEEP, "0") == "1":
        return False
    cls = getattr(dispatcher_module, "Dispatcher", None)
    current = getattr(cls, "get_call_template", None)
    if getattr(current, "tickpath_plain_first", False):
        return True
    code = getattr(current, "__code__", None)
    # the numba this was written against: get_call_template(self, args, kws) folding, compiling
    if code is None or code.co_varnames[:3] != ("self", "args", "kws") \
            or "compile" not in code.co_names or "fold_argument_types" not in code.co_names:
        return False
    cls.get_call_template = _wrap(current)
    return True


def installed() -> bool:
    import sys
    cls = getattr(sys.modules.get("numba.core.dispatcher"), "Dispatcher", None)
    return getattr(getattr(cls, "get_call_template", None), "tickpath_plain_first", False)
