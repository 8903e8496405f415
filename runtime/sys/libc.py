"""libc read() and errno for jitted code, as cacheable numba intrinsics.

Why not ctypes: a numba function that calls a ctypes function pointer cannot be cached
(the pointer is a process-specific global), and the runtime's loop is specialised on the
backend's poll function, so every process would recompile the whole loop. Declaring the
libc symbols by name (as runtime/intrinsics.py does for clock_gettime) lets the JIT link
them at load time, so the compiled code caches like any other.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic


@intrinsic
def libc_read(typingctx, fd, addr, n_bytes):
    """read(fd, (void *)addr, n_bytes) -> ssize_t (int64); addr is an integer address."""
    sig = types.int64(fd, addr, n_bytes)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        vp = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(i64, [i32, vp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "read")
        cfd = context.cast(builder, args[0], signature.args[0], types.int32)
        a = context.cast(builder, args[1], signature.args[1], types.uint64)
        ptr = builder.inttoptr(a, vp)
        cnt = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.call(fn, [cfd, ptr, cnt])

    return sig, codegen


@intrinsic
def libc_errno(typingctx):
    """The calling thread's errno (glibc __errno_location)."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(i32.as_pointer(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "__errno_location")
        return builder.load(builder.call(fn, []))

    return sig, codegen
