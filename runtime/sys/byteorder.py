"""Big-endian loads from uint8 arrays, for numba: one unaligned load + bswap each.

Why: assembling a u32 from four byte loads and shifts is what numba gives for
`(p[o] << 24) | ...`; LLVM does not merge them (each index goes through numba's
negative-index fix-up), so a 64-bit field costs 8 loads and 14 shift/or. These intrinsics
emit `load iN, align 1` + `llvm.bswap.iN` (MOVBE on x86), widened to int64, for
contiguous arrays; strided views get the byte-by-byte form (correct, slower).
The caller must have checked that [o, o + N) lies inside the array: nothing is checked here.
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic


def _be_load(bits: int):
    @intrinsic
    def load(typingctx, arr, offset):
        if not (isinstance(arr, types.Array) and arr.dtype == types.uint8
                and arr.ndim == 1 and isinstance(offset, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(arr)(context, builder, args[0])
            off = context.cast(builder, args[1], signature.args[1], types.intp)
            i64 = ir.IntType(64)
            if arr.layout != "C":
                # a strided view: byte by byte, most significant first
                val = ir.Constant(i64, 0)
                for k in range(bits // 8):
                    idx = builder.add(off, ir.Constant(off.type, k))
                    ptr = cgutils.get_item_pointer(context, builder, arr, ary, [idx],
                                                   wraparound=False)
                    byte = builder.zext(builder.load(ptr), i64)
                    val = builder.or_(builder.shl(val, ir.Constant(i64, 8)), byte)
                return val
            ptr = cgutils.get_item_pointer(context, builder, arr, ary, [off],
                                           wraparound=False)
            ity = ir.IntType(bits)
            raw = builder.load(builder.bitcast(ptr, ity.as_pointer()), align=1)
            fnty = ir.FunctionType(ity, [ity])
            bswap = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.bswap.i{bits}")
            val = builder.call(bswap, [raw])
            return val if bits == 64 else builder.zext(val, i64)

        return types.int64(arr, offset), codegen

    return load


load_be16 = _be_load(16)
load_be32 = _be_load(32)
load_be64 = _be_load(64)   # the u64's bit pattern as int64


@njit(nogil=True, inline="always")
def load_be48(arr, offset):
    """ITCH's 6-byte timestamp."""
    return (load_be16(arr, offset) << 32) | load_be32(arr, offset + 2)


def _be_store(bits: int):
    @intrinsic
    def store(typingctx, arr, offset, value):
        if not (isinstance(arr, types.Array) and arr.dtype == types.uint8 and arr.ndim == 1
                and isinstance(offset, types.Integer) and isinstance(value, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(arr)(context, builder, args[0])
            off = context.cast(builder, args[1], signature.args[1], types.intp)
            ity = ir.IntType(bits)
            v = context.cast(builder, args[2], signature.args[2], types.uint64)
            if bits < 64:
                v = builder.trunc(v, ity)
            if arr.layout != "C":
                # a strided view: byte by byte, most significant first
                for k in range(bits // 8):
                    idx = builder.add(off, ir.Constant(off.type, k))
                    ptr = cgutils.get_item_pointer(context, builder, arr, ary, [idx],
                                                   wraparound=False)
                    shifted = builder.lshr(v, ir.Constant(ity, bits - 8 * (k + 1)))
                    builder.store(builder.trunc(shifted, ir.IntType(8)), ptr)
                return context.get_dummy_value()
            ptr = cgutils.get_item_pointer(context, builder, arr, ary, [off], wraparound=False)
            fnty = ir.FunctionType(ity, [ity])
            bswap = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.bswap.i{bits}")
            builder.store(builder.call(bswap, [v]), builder.bitcast(ptr, ity.as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(arr, offset, value), codegen

    return store


# Big-endian stores, the mirror of the loads: one bswap + one unaligned store (low bits of
# the value; the caller checked that [o, o + N) lies inside the array).
store_be16 = _be_store(16)
store_be32 = _be_store(32)
store_be64 = _be_store(64)
