"""`borrow_all(t)`: the same tuple (or NamedTuple, nested) with every array in it borrowed —
no reference count (meminfo NULL), like runtime/sys/intrinsics.py `borrow` for one array.

Why: numba increfs and decrefs (atomically) every array of a tuple each time the tuple is
passed to a function or bound to a name. TradeCtx holds ~20 arrays, the pipeline ~20, a
strategy's state a few: measured, every call of a risk check that took the context cost
~200 ns of refcounting, ~1 µs per order through the gate. The step borrows them once at its
entry; the caller holds the real arrays for longer than the step runs, so this is safe.
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic


def _borrow_value(context, builder, ty, val):
    if isinstance(ty, types.Array):
        src = context.make_array(ty)(context, builder, val)
        dst = context.make_array(ty)(context, builder)
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        dst.nitems = src.nitems
        dst.itemsize = src.itemsize
        dst.data = src.data
        dst.shape = src.shape
        dst.strides = src.strides
        return dst._getvalue()
    if isinstance(ty, types.BaseTuple):
        out = val
        for i, sub in enumerate(ty.types):
            item = builder.extract_value(val, i)
            out = builder.insert_value(out, _borrow_value(context, builder, sub, item), i)
        return out
    return val


@intrinsic
def borrow_all(typingctx, t):
    if not isinstance(t, (types.BaseTuple, types.Array)):
        return None

    def codegen(context, builder, sig, args):
        return _borrow_value(context, builder, sig.args[0], args[0])

    return t(t), codegen
