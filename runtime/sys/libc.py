"""The libc symbols jitted loops call, as cacheable numba intrinsics — the one libc binding.

Why not ctypes: a numba function that calls a ctypes function pointer cannot be cached (the
pointer is a process-specific constant baked into the code), and the runtime's loops are
specialised on the backend's poll, so every process would recompile them at start (7–10 s
here). Declaring each symbol by name lets the JIT link it when the cached code loads, so a
loop that calls `recvmmsg` caches like any other.

Every pointer argument is passed as an integer address (`arr.ctypes.data`, or 0 for NULL);
integer arguments are cast to the C type of the declaration. Return values are int64.
Slow-path code (setup, mlock, bpf()) may use ctypes directly; nothing jitted may.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VP = ir.IntType(8).as_pointer()
# C parameter kinds: "i" int (32-bit), "u" unsigned int (32-bit), "z" size_t/ssize_t (64-bit),
# "p" pointer (from an integer address)
_LL = {"i": _I32, "u": _I32, "z": _I64, "p": _VP}


def _declare(symbol: str, ret: str, params: str):
    """An intrinsic `f(*ints) -> int64` calling the libc `symbol` with the given C kinds."""
    ll_params = [_LL[k] for k in params]
    ll_ret = _LL[ret]

    def typer(typingctx, *args):
        if len(args) != len(params) or not all(isinstance(a, types.Integer) for a in args):
            return None
        sig = types.int64(*args)

        def codegen(context, builder, signature, llargs):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ll_ret, ll_params),
                                                symbol)
            cargs = []
            for kind, v, ty in zip(params, llargs, signature.args):
                if kind == "p":
                    cargs.append(builder.inttoptr(context.cast(builder, v, ty, types.uint64), _VP))
                else:
                    nb = types.int64 if kind == "z" else (types.uint32 if kind == "u" else types.int32)
                    cargs.append(context.cast(builder, v, ty, nb))
            r = builder.call(fn, cargs)
            return builder.sext(r, _I64) if ll_ret is _I32 else r

        return sig, codegen

    # numba's intrinsic wants a fixed arity: build the typer with named parameters
    names = ", ".join(f"a{i}" for i in range(len(params)))
    ns = {"typer": typer}
    exec(f"def {symbol}_typer(typingctx{', ' if names else ''}{names}):\n"
         f"    return typer(typingctx{', ' if names else ''}{names})", ns)
    fn = ns[f"{symbol}_typer"]
    fn.__name__ = f"libc_{symbol}"
    fn.__doc__ = f"libc {symbol}({params}) -> int64, a declared symbol (cacheable)"
    return intrinsic(fn)


# ssize_t read(int fd, void *buf, size_t count)
libc_read = _declare("read", "z", "ipz")
# ssize_t recv(int fd, void *buf, size_t len, int flags)
libc_recv = _declare("recv", "z", "ipzi")
# ssize_t send(int fd, const void *buf, size_t len, int flags)
libc_send = _declare("send", "z", "ipzi")
# ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *src, socklen_t *len)
libc_recvfrom = _declare("recvfrom", "z", "ipzipp")
# ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *dst, socklen_t)
libc_sendto = _declare("sendto", "z", "ipzipu")
# int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout)
libc_recvmmsg = _declare("recvmmsg", "i", "ipuip")
# int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
libc_sendmmsg = _declare("sendmmsg", "i", "ipui")
# int usleep(useconds_t usec)
libc_usleep = _declare("usleep", "i", "u")
# int sched_yield(void)
libc_sched_yield = _declare("sched_yield", "i", "")


@intrinsic
def libc_errno(typingctx):
    """The calling thread's errno (glibc __errno_location)."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(_I32.as_pointer(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "__errno_location")
        return builder.load(builder.call(fn, []))

    return sig, codegen
