"""The raw bpf(2) syscall and the two hand-encoded XDP programs AF_XDP needs.

No libbpf: the syscall (321 on x86-64) is called through ctypes with a zeroed bpf_attr
buffer (the kernel rejects non-zero bytes it does not know, so unused tails stay zero).
Programs are assembled by a tiny label-resolving assembler over 8-byte instructions
(uapi/linux/bpf.h: code u8, dst:4|src:4, off s16, imm s32).

* `redirect_program(map_fd)`: every frame on the queue → the XSKMAP entry for its
  rx_queue_index, XDP_PASS when no socket is there (the old libbpf xsk.c default program).
* `filter_program(map_fd, udp_port)`: only IPv4/UDP (optionally one 802.1Q tag) to the feed's
  destination port is redirected; everything else, and non-first IP fragments, go on to the
  kernel stack (XDP_PASS), so a shared NIC keeps ARP, SSH and the rest.

A load failure raises BackendError with the verifier log in the message.
"""
from __future__ import annotations

import ctypes
import os
import struct

from tickpath.runtime.core.errors import BackendError, PrivilegeError
from tickpath.runtime.backends.afxdp.layout import ETH_P_8021Q, ETH_P_IP, IPPROTO_UDP, XDP_PASS

SYS_BPF = 321              # arch/x86/entry/syscalls/syscall_64.tbl
BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_PROG_LOAD = 5
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_LINK_CREATE = 28
BPF_LINK_UPDATE = 29

BPF_MAP_TYPE_XSKMAP = 17
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37               # enum bpf_attach_type
BPF_PSEUDO_MAP_FD = 1
BPF_FUNC_redirect_map = 51

ATTR_BYTES = 128           # zero-filled; covers every field used here
LOG_BYTES = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]


def bpf(cmd: int, attr: ctypes.Array) -> int:
    """bpf(cmd, attr) → fd / 0; raises OSError with errno on failure."""
    rc = _libc.syscall(SYS_BPF, cmd, ctypes.addressof(attr), ATTR_BYTES)
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def _attr(fmt: str, *vals) -> ctypes.Array:
    buf = ctypes.create_string_buffer(ATTR_BYTES)
    struct.pack_into(fmt, buf, 0, *vals)
    return buf


def _priv_or_backend(exc: OSError, doing: str, **fields):
    if exc.errno in (1, 13):  # EPERM, EACCES
        return PrivilegeError(doing + " refused", errno=exc.errno, reason=exc.strerror,
                              hint="needs CAP_BPF + CAP_NET_ADMIN (or root)", **fields)
    return BackendError(doing + " failed", errno=exc.errno, reason=exc.strerror, **fields)


def create_xskmap(max_entries: int) -> int:
    """A BPF_MAP_TYPE_XSKMAP with `max_entries` slots (one per queue id); returns its fd."""
    name = b"tp_xsks"
    attr = _attr("=IIIIIII16s", BPF_MAP_TYPE_XSKMAP, 4, 4, max_entries, 0, 0, 0, name)
    try:
        return bpf(BPF_MAP_CREATE, attr)
    except OSError as exc:
        raise _priv_or_backend(exc, "XSKMAP create", max_entries=max_entries) from exc


def xskmap_set(map_fd: int, queue_id: int, xsk_fd: int) -> None:
    key = ctypes.c_uint32(queue_id)
    val = ctypes.c_uint32(xsk_fd)
    attr = _attr("=IIQQQ", map_fd, 0, ctypes.addressof(key), ctypes.addressof(val), 0)
    try:
        bpf(BPF_MAP_UPDATE_ELEM, attr)
    except OSError as exc:
        raise _priv_or_backend(exc, "XSKMAP update", queue_id=queue_id) from exc


def xskmap_delete(map_fd: int, queue_id: int) -> None:
    """Drop the map's reference to a socket, so the socket (and its queue) free at close."""
    key = ctypes.c_uint32(queue_id)
    attr = _attr("=IIQ", map_fd, 0, ctypes.addressof(key))
    try:
        bpf(BPF_MAP_DELETE_ELEM, attr)
    except OSError:
        pass  # not in the map (open failed before the insert)


def prog_id(fd: int) -> int:
    """The kernel id of a loaded program (bpf_prog_info.id), to recognise it once attached."""
    info = ctypes.create_string_buffer(256)
    attr = _attr("=IIQ", fd, len(info), ctypes.addressof(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return struct.unpack_from("=I", info, 4)[0]


# --- a tiny assembler -----------------------------------------------------------------
_INSN = struct.Struct("<BBhi")
# opcode pieces (uapi/linux/bpf_common.h, bpf.h)
_LDX_MEM = {4: 0x61, 2: 0x69, 1: 0x71}       # BPF_LDX|BPF_MEM|{W,H,B}
_MOV64_IMM, _MOV64_REG = 0xB7, 0xBF
_ADD64_IMM, _ADD64_REG = 0x07, 0x0F
_AND64_IMM, _LSH64_IMM = 0x57, 0x67
_JNE_IMM, _JLT_IMM, _JGT_REG = 0x55, 0xA5, 0x2D
_CALL, _EXIT, _LD_IMM64 = 0x85, 0x95, 0x18


class _Asm:
    def __init__(self):
        self.slots: list = []         # (code, dst, src, off, imm) or (..., label) for jumps
        self.labels: dict[str, int] = {}

    def op(self, code, dst=0, src=0, off=0, imm=0):
        self.slots.append((code, dst, src, off, imm, None))

    def jmp(self, code, dst, label, src=0, imm=0):
        self.slots.append((code, dst, src, 0, imm, label))

    def label(self, name):
        self.labels[name] = len(self.slots)

    def ld_map_fd(self, dst, fd):
        # 16-byte ld_imm64: the second slot carries the high 32 bits (0)
        self.op(_LD_IMM64, dst, BPF_PSEUDO_MAP_FD, 0, fd)
        self.op(0, 0, 0, 0, 0)

    def assemble(self) -> bytes:
        out = bytearray()
        for i, (code, dst, src, off, imm, label) in enumerate(self.slots):
            if label is not None:
                off = self.labels[label] - (i + 1)
            out += _INSN.pack(code, (src << 4) | dst, off, imm)
        return bytes(out)


def _be16_as_le(v: int) -> int:
    """A network-order u16 as an LE u16 load from packet memory sees it."""
    return ((v & 0xFF) << 8) | (v >> 8)


def _emit_redirect(a: _Asm, map_fd: int) -> None:
    a.op(_LDX_MEM[4], 2, 6, 16)                # r2 = ctx->rx_queue_index
    a.ld_map_fd(1, map_fd)                    # r1 = &xskmap
    a.op(_MOV64_IMM, 3, imm=XDP_PASS)         # flags: fall back to XDP_PASS if no socket
    a.op(_CALL, imm=BPF_FUNC_redirect_map)
    a.op(_EXIT)


def redirect_program(map_fd: int) -> bytes:
    a = _Asm()
    a.op(_MOV64_REG, 6, 1)                    # r6 = ctx
    _emit_redirect(a, map_fd)
    return a.assemble()


def filter_program(map_fd: int, udp_port: int) -> bytes:
    """Redirect IPv4/UDP (one optional VLAN tag) to `udp_port`; XDP_PASS everything else."""
    a = _Asm()
    a.op(_MOV64_REG, 6, 1)                    # r6 = ctx
    a.op(_LDX_MEM[4], 2, 6, 0)                # r2 = data
    a.op(_LDX_MEM[4], 3, 6, 4)                # r3 = data_end
    a.op(_MOV64_REG, 4, 2); a.op(_ADD64_IMM, 4, imm=14)
    a.jmp(_JGT_REG, 4, "pass", src=3)         # Ethernet header present?
    a.op(_LDX_MEM[2], 5, 2, 12)               # r5 = ethertype
    a.jmp(_JNE_IMM, 5, "ip", imm=_be16_as_le(ETH_P_8021Q))
    a.op(_MOV64_REG, 4, 2); a.op(_ADD64_IMM, 4, imm=18)
    a.jmp(_JGT_REG, 4, "pass", src=3)
    a.op(_LDX_MEM[2], 5, 2, 16)               # inner ethertype
    a.op(_ADD64_IMM, 2, imm=4)                # from here on r2+14 is the IP header
    a.label("ip")
    a.jmp(_JNE_IMM, 5, "pass", imm=_be16_as_le(ETH_P_IP))
    a.op(_MOV64_REG, 4, 2); a.op(_ADD64_IMM, 4, imm=14 + 20)
    a.jmp(_JGT_REG, 4, "pass", src=3)
    a.op(_LDX_MEM[1], 5, 2, 14 + 9)           # protocol
    a.jmp(_JNE_IMM, 5, "pass", imm=IPPROTO_UDP)
    a.op(_LDX_MEM[2], 5, 2, 14 + 6)           # flags + fragment offset
    a.op(_AND64_IMM, 5, imm=0xFF1F)           # offset bits only: a non-first fragment has no UDP header
    a.jmp(_JNE_IMM, 5, "pass", imm=0)
    a.op(_LDX_MEM[1], 5, 2, 14)               # version/IHL
    a.op(_AND64_IMM, 5, imm=0x0F)
    a.jmp(_JLT_IMM, 5, "pass", imm=5)
    a.op(_LSH64_IMM, 5, imm=2)                # IHL in bytes, 20..60
    a.op(_ADD64_REG, 2, 5)                    # r2+14 is now the UDP header
    a.op(_MOV64_REG, 4, 2); a.op(_ADD64_IMM, 4, imm=14 + 8)
    a.jmp(_JGT_REG, 4, "pass", src=3)
    a.op(_LDX_MEM[2], 5, 2, 14 + 2)           # UDP destination port
    a.jmp(_JNE_IMM, 5, "pass", imm=_be16_as_le(udp_port))
    _emit_redirect(a, map_fd)
    a.label("pass")
    a.op(_MOV64_IMM, 0, imm=XDP_PASS)
    a.op(_EXIT)
    return a.assemble()


def load_xdp(insns: bytes, name: str = "tp_xsk") -> int:
    """BPF_PROG_LOAD an XDP program; on failure retry with the verifier log and raise it."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")   # bpf_redirect_map is GPL-only

    def attempt(log_level: int, log) -> int:
        attr = _attr("=IIQQIIQII16sII", BPF_PROG_TYPE_XDP, len(insns) // 8,
                     ctypes.addressof(code), ctypes.addressof(lic),
                     log_level, len(log) if log is not None else 0,
                     ctypes.addressof(log) if log is not None else 0,
                     0, 0, name.encode()[:15], 0, BPF_XDP)
        return bpf(BPF_PROG_LOAD, attr)

    try:
        return attempt(0, None)
    except OSError as exc:
        if exc.errno in (1, 13):
            raise _priv_or_backend(exc, "XDP program load") from exc
        log = ctypes.create_string_buffer(LOG_BYTES)
        try:
            fd = attempt(1, log)
        except OSError as exc2:
            text = log.value.decode(errors="replace").strip()
            raise BackendError("XDP program rejected by the verifier", errno=exc2.errno,
                               reason=exc2.strerror, verifier_log=text[-2000:]) from exc2
        return fd
