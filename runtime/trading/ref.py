"""`ref(t)`: a NamedTuple of arrays passed by pointer instead of by value, with the same
`t.field` syntax — so the trading core's calls cost a pointer, not a copy of the context.

Why: numba passes a tuple to a non-inlined function as its flattened members, ~7 machine words
per array. TradeCtx (~20 arrays), the pipeline (~20) and a strategy's state together are
~350 words, copied at every call of the step's callees (strategy callbacks, the order
manager, the gate's slow paths): measured, that copying was most of the ≈ 2.5 µs per book
update left once refcounting was off (`_nrt=False`). A Ref is one pointer to the caller's
stack copy; `r.field` loads just that member (LLVM drops the rest), a NamedTuple member comes
back as a Ref too, so `pipe.books` costs a pointer as well.

Safety: the pointee lives in the frame of the function that called `ref()` (an entry point:
the step's events/responses impls, the live loop); every Ref is used by callees of that frame
only, and nothing can store one (no heap in the hot path). Fields are read-only, as a
NamedTuple's are; the arrays they hold are written through as usual.

Code written against a NamedTuple (`tctx.orders[j]`, `pipe.books`) compiles unchanged for a
Ref; `is_ref`/`deref` exist for the rare code that needs the tuple value itself.
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils, imputils
from numba.core.datamodel import models
from numba.core.extending import intrinsic, register_model
from numba.core.typing.templates import AttributeTemplate, infer_getattr
from numba.core.imputils import lower_getattr_generic


class Ref(types.Type):
    """Pointer to a (named) tuple held in an entry point's frame; `dtype` is the tuple type."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Ref({dtype})")

    @property
    def key(self):
        return self.dtype


register_model(Ref)(models.PointerModel)   # a pointer to the tuple's data representation


@infer_getattr
class _RefAttributes(AttributeTemplate):
    key = Ref

    def generic_resolve(self, typ, attr):
        base = typ.dtype
        if isinstance(base, types.BaseNamedTuple) and attr in base.fields:
            member = base.types[base.fields.index(attr)]
            return Ref(member) if isinstance(member, types.BaseNamedTuple) else member
        return None


@lower_getattr_generic(Ref)
def _ref_getattr(context, builder, typ, val, attr):
    base = typ.dtype
    i = base.fields.index(attr)
    member = base.types[i]
    ptr = cgutils.gep_inbounds(builder, val, 0, i)
    if isinstance(member, types.BaseNamedTuple):
        return ptr                      # a nested NamedTuple: a Ref to it, no copy
    dm = context.data_model_manager[member]
    value = dm.load_from_data_pointer(builder, ptr)
    return imputils.impl_ret_borrowed(context, builder, member, value)


@intrinsic
def ref(typingctx, t):
    """A Ref to a stack copy of tuple `t` (a Ref passes through unchanged)."""
    if isinstance(t, Ref):
        return t(t), lambda context, builder, sig, args: args[0]
    if not isinstance(t, types.BaseTuple):
        return None

    def codegen(context, builder, sig, args):
        dm = context.data_model_manager[sig.args[0]]
        slot = cgutils.alloca_once(builder, dm.get_data_type())   # entry block: one per frame
        builder.store(dm.as_data(builder, args[0]), slot)
        return slot

    return Ref(t)(t), codegen


@intrinsic
def deref(typingctx, r):
    """The tuple value behind a Ref (a tuple passes through unchanged)."""
    if isinstance(r, types.BaseTuple):
        return r(r), lambda context, builder, sig, args: args[0]
    if not isinstance(r, Ref):
        return None

    def codegen(context, builder, sig, args):
        dm = context.data_model_manager[sig.return_type]
        return dm.load_from_data_pointer(builder, args[0])

    return r.dtype(r), codegen
