"""Low-level numba extensions, in one tiny module (after hftbacktest's intrinsic.py).

Why: a plain numba load inside a spin loop may be hoisted by LLVM out of the loop (an
infinite loop), and plain stores may be reordered around a publish. Atomic acquire loads
and release stores (llvmlite load_atomic / store_atomic) are neither hoisted nor reordered.
Also: the x86 PAUSE hint for spin loops, clock_gettime called straight from jitted code
(glibc's vDSO path, no syscall) with the timespec on the stack so nothing is allocated,
a cache prefetch hint, an array view without reference counting (`borrow`), and a memmove
of array elements (`move_items`).
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1


def _elem_ptr(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [idx], wraparound=False)


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] with acquire ordering (int64/uint64/int32 1-D arrays)."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    dt = arr.dtype
    sig = dt(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, arr, args[0], args[1])
        return builder.load_atomic(ptr, ordering="acquire", align=dt.bitwidth // 8)

    return sig, codegen


@intrinsic
def store_release(typingctx, arr, idx, val):
    """arr[idx] = val with release ordering."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    dt = arr.dtype
    sig = types.void(arr, idx, val)

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, arr, args[0], args[1])
        v = context.cast(builder, args[2], signature.args[2], dt)
        builder.store_atomic(v, ptr, ordering="release", align=dt.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def load_relaxed(typingctx, arr, idx):
    """arr[idx], monotonic (relaxed) atomic: a fresh read each time, no ordering."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    dt = arr.dtype

    def codegen(context, builder, signature, args):
        ptr = _elem_ptr(context, builder, arr, args[0], args[1])
        return builder.load_atomic(ptr, ordering="monotonic", align=dt.bitwidth // 8)

    return dt(arr, idx), codegen


@intrinsic
def cpu_relax(typingctx):
    """x86 PAUSE: tells the core we are spinning (saves power, frees the SMT sibling)."""

    def codegen(context, builder, signature, args):
        # the LLVM intrinsic, not inline asm: numba's JIT has no asm parser
        fnty = ir.FunctionType(ir.VoidType(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _clock_ns(typingctx, clock_id):
    sig = types.int64(clock_id)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        ts_ty = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_ty)
        fnty = ir.FunctionType(i32, [i32, ts_ty.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        cid = context.cast(builder, args[0], signature.args[0], types.int32)
        builder.call(fn, [cid, ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


@intrinsic
def borrow(typingctx, arr):
    """The same array without its reference count (meminfo NULL). Why: every array value
    numba copies gets an atomic incref/decref pair; through the books' eight arrays that
    cost several hundred ns per message. Safe while the caller holds the real array."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = context.make_array(arr)(context, builder, args[0])
        dst = context.make_array(arr)(context, builder)
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        dst.nitems = src.nitems
        dst.itemsize = src.itemsize
        dst.data = src.data
        dst.shape = src.shape
        dst.strides = src.strides
        return dst._getvalue()

    return arr(arr), codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the cache to load the line of arr[idx] (idx: a tuple, one per dimension). Why:
    the batch loop knows the next events, so it can start their cache misses early and
    overlap them instead of waiting for each in turn. Only a hint: never faults."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.BaseTuple):
        return None
    if len(idx) != arr.ndim or not all(isinstance(t, types.Integer) for t in idx):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(arr)(context, builder, args[0])
        inds = cgutils.unpack_tuple(builder, args[1], len(idx))
        inds = [context.cast(builder, v, t, types.intp) for v, t in zip(inds, idx)]
        ptr = cgutils.get_item_pointer(context, builder, arr, ary, inds, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32),
                                               ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        # read, high temporal locality (keep in all cache levels), data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit(nogil=True, inline="always")
def realtime_ns():
    """CLOCK_REALTIME in ns, callable from jitted code (the timestamp contract)."""
    return _clock_ns(CLOCK_REALTIME)


@njit(nogil=True, inline="always")
def monotonic_ns():
    """CLOCK_MONOTONIC in ns, callable from jitted code (intervals, deadlines)."""
    return _clock_ns(CLOCK_MONOTONIC)


@intrinsic
def move_items(typingctx, arr, dst, src, count):
    """Move arr[src:src+count] to arr[dst:dst+count] (the ranges may overlap): one
    llvm.memmove. Why: shifting records field by field costs a load and a store per field;
    memmove moves the bytes in vector-wide steps. Unchecked: the caller keeps both ranges
    inside the array (1-D, contiguous)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or arr.layout != "C":
        return None   # a strided view is not one run of bytes
    if not all(isinstance(t, types.Integer) for t in (dst, src, count)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(arr)(context, builder, args[0])
        d, s, n = (context.cast(builder, v, t, types.intp)
                   for v, t in zip(args[1:], sig.args[1:]))
        pd = cgutils.get_item_pointer(context, builder, arr, ary, [d], wraparound=False)
        ps = cgutils.get_item_pointer(context, builder, arr, ary, [s], wraparound=False)
        cgutils.raw_memmove(builder, pd, ps, n, context.get_abi_sizeof(
            context.get_data_type(arr.dtype)))
        return context.get_dummy_value()

    return types.void(arr, dst, src, count), codegen
