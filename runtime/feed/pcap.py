"""Reading and writing packet captures of UDP frames: classic pcap and pcapng.

Captures feed the FPGA emulator (`--pcap`) and, later, capture/replay. Reading loads the
whole file into one numpy byte array plus per-packet offsets, lengths and timestamps (ns),
so a jitted consumer can walk it without Python objects. Supported link types: Ethernet (1)
and raw IPv4 (101 LINKTYPE_RAW, 228 LINKTYPE_IPV4). Anything else, a bad magic, or a record
running past the end of the file is a ConfigError naming the file, the offset and the
problem - a capture is never read half-way silently. Except on request: with
`damaged_tail="warn"` (what `tickpath replay` uses), a capture whose writer died mid-record
(a full disk, a kill) is read up to its last whole record, and `Capture.damaged_tail`
says where the damage starts and how many bytes were left unread, for the caller to warn.
Values no real capture holds are errors too, never an OverflowError: a record's orig_len
>= 2^31 (snaplen is at most 256 KiB), a pcapng timestamp beyond int64 nanoseconds.

Formats: classic pcap (tcpdump.org/manpages/pcap-savefile.5): 24-byte file header, magic
0xa1b2c3d4 (us) or 0xa1b23c4d (ns), either byte order; 16-byte record headers.
pcapng (IETF draft-ietf-opsawg-pcapng): blocks of (type, total length, body, total length);
SHB 0x0A0D0D0A with byte-order magic 0x1A2B3C4D, IDB 1 (link type, if_tsresol option 9),
EPB 6, SPB 3; other blocks are skipped.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from tickpath.runtime.core.errors import ConfigError

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
SUPPORTED_LINKTYPES = {LINKTYPE_ETHERNET: "ethernet", LINKTYPE_RAW: "raw-ipv4", LINKTYPE_IPV4: "ipv4"}

_PCAP_US = 0xA1B2C3D4
_PCAP_NS = 0xA1B23C4D
_NG_SHB = 0x0A0D0D0A
_NG_BOM = 0x1A2B3C4D
_NG_IDB = 1
_NG_SPB = 3
_NG_EPB = 6
IPV4_HEADER_BYTES = 20   # udp_frame writes no IP options
UDP_HEADER_BYTES = 8


@dataclass
class Capture:
    """A capture in memory: packet i is data[offsets[i] : offsets[i] + lengths[i]]."""

    path: str
    linktype: int
    data: np.ndarray          # uint8, all packets back to back
    offsets: np.ndarray       # int64
    lengths: np.ndarray       # int32, captured bytes
    orig_lengths: np.ndarray  # int32, bytes on the wire (> lengths when snaplen cut them)
    ts_ns: np.ndarray         # int64, ns since the epoch
    damaged_tail: tuple = ()  # (offset, bytes unread, what) when read up to a damaged tail

    def __len__(self) -> int:
        return len(self.offsets)

    def packet(self, i: int) -> bytes:
        o = int(self.offsets[i])
        return self.data[o:o + int(self.lengths[i])].tobytes()


def _check_linktype(path: str, linktype: int) -> None:
    if linktype not in SUPPORTED_LINKTYPES:
        raise ConfigError("unsupported pcap link type", path=path, linktype=linktype,
                          supported=sorted(SUPPORTED_LINKTYPES))


def _truncated(path: str, offset: int, what: str, need: int, have: int) -> ConfigError:
    return ConfigError("truncated capture", path=path, offset=offset, record=what,
                       need_bytes=need, have_bytes=have)


_MAX_ORIG_LEN = (1 << 31) - 1
_MAX_TS_NS = (1 << 63) - 1
_TAIL_MODES = ("error", "warn")


def read_capture(path: str | os.PathLike, *, damaged_tail: str = "error") -> Capture:
    """Read a classic pcap or pcapng file (detected by its magic). damaged_tail="warn":
    read up to a record cut short at the end (see the module docstring)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError("cannot read capture", path=path, reason=exc.strerror) from exc
    return parse_capture(path, raw, damaged_tail=damaged_tail)


def parse_capture(path: str, raw: bytes, *, damaged_tail: str = "error") -> Capture:
    """A capture already read into memory (from a pipe, say); path names it in errors."""
    if damaged_tail not in _TAIL_MODES:
        raise ConfigError("damaged_tail must be error or warn", damaged_tail=damaged_tail)
    if len(raw) < 4:
        raise _truncated(path, 0, "file header", 24, len(raw))
    magic_le = struct.unpack_from("<I", raw, 0)[0]
    if magic_le == _NG_SHB:
        return _read_pcapng(path, raw, damaged_tail == "warn")
    return _read_pcap(path, raw, damaged_tail == "warn")


def _read_pcap(path: str, raw: bytes, tolerate_tail: bool = False) -> Capture:
    if len(raw) < 24:
        raise _truncated(path, 0, "file header", 24, len(raw))
    for endian in ("<", ">"):
        magic = struct.unpack_from(endian + "I", raw, 0)[0]
        if magic in (_PCAP_US, _PCAP_NS):
            break
    else:
        raise ConfigError("not a pcap or pcapng file", path=path, magic=hex(struct.unpack_from("<I", raw, 0)[0]))
    tick_ns = 1 if magic == _PCAP_NS else 1000
    linktype = struct.unpack_from(endian + "I", raw, 20)[0] & 0x0FFFFFFF  # upper bits: FCS info
    _check_linktype(path, linktype)
    hdr = struct.Struct(endian + "IIII")
    offs, lens, origs, tss = [], [], [], []
    pos = 24
    tail = ()
    while pos < len(raw):
        if pos + 16 > len(raw):
            if tolerate_tail:
                tail = (pos, len(raw) - pos, "record header")
                break
            raise _truncated(path, pos, "record header", 16, len(raw) - pos)
        sec, frac, incl, orig = hdr.unpack_from(raw, pos)
        if incl > _MAX_ORIG_LEN or orig > _MAX_ORIG_LEN:
            raise ConfigError("pcap record length out of range", path=path, offset=pos,
                              incl_len=incl, orig_len=orig, max_len=_MAX_ORIG_LEN)
        if pos + 16 + incl > len(raw):
            if tolerate_tail:
                tail = (pos, len(raw) - pos, "record data")
                break
            raise _truncated(path, pos, "record data", incl, len(raw) - pos - 16)
        offs.append(pos + 16)
        lens.append(incl)
        origs.append(orig)
        tss.append(sec * 1_000_000_000 + frac * tick_ns)
        pos += 16 + incl
    return _pack(path, linktype, raw, offs, lens, origs, tss, tail)


def _read_pcapng(path: str, raw: bytes, tolerate_tail: bool = False) -> Capture:
    offs, lens, origs, tss = [], [], [], []
    ifaces: list[tuple[int, int, int]] = []   # (linktype, ticks per second, tsoffset)
    endian = "<"
    pos = 0
    tail = ()
    while pos < len(raw):
        if pos + 12 > len(raw):
            if tolerate_tail and pos > 0:
                tail = (pos, len(raw) - pos, "block header")
                break
            raise _truncated(path, pos, "block header", 12, len(raw) - pos)
        btype = struct.unpack_from(endian + "I", raw, pos)[0]
        if btype == _NG_SHB:
            bom_le = struct.unpack_from("<I", raw, pos + 8)[0]
            if bom_le == _NG_BOM:
                endian = "<"
            elif struct.unpack_from(">I", raw, pos + 8)[0] == _NG_BOM:
                endian = ">"
            else:
                raise ConfigError("pcapng section header has a bad byte-order magic", path=path, offset=pos)
            ifaces = []   # interface ids are per section
        blen = struct.unpack_from(endian + "I", raw, pos + 4)[0]
        if blen < 12 or blen % 4:
            raise ConfigError("pcapng block has a bad length", path=path, offset=pos, block_bytes=blen)
        if pos + blen > len(raw):
            if tolerate_tail and pos > 0:
                tail = (pos, len(raw) - pos, "block")
                break
            raise _truncated(path, pos, "block", blen, len(raw) - pos)
        body = pos + 8
        end = pos + blen - 4
        if btype == _NG_IDB:
            if end - body < 8:
                raise _truncated(path, pos, "interface description", 8, end - body)
            linktype = struct.unpack_from(endian + "H", raw, body)[0]
            _check_linktype(path, linktype)
            ifaces.append((linktype, *_idb_tsresol(raw, body + 8, end, endian)))
        elif btype == _NG_EPB:
            if end - body < 20:
                raise _truncated(path, pos, "enhanced packet", 20, end - body)
            iface, ts_hi, ts_lo, cap, orig = struct.unpack_from(endian + "IIIII", raw, body)
            if iface >= len(ifaces):
                raise ConfigError("pcapng packet names an undeclared interface", path=path, offset=pos,
                                  interface=iface, declared=len(ifaces))
            if body + 20 + cap > end:
                raise _truncated(path, pos, "enhanced packet data", cap, end - body - 20)
            linktype, per_s, tsoff = ifaces[iface]
            if orig > _MAX_ORIG_LEN:
                raise ConfigError("pcapng packet length out of range", path=path, offset=pos,
                                  orig_len=orig, max_len=_MAX_ORIG_LEN)
            ts = _ticks_to_ns((ts_hi << 32) | ts_lo, per_s) + tsoff * 1_000_000_000
            if not 0 <= ts <= _MAX_TS_NS:
                raise ConfigError("pcapng timestamp out of range", path=path, offset=pos,
                                  ticks=(ts_hi << 32) | ts_lo, ticks_per_s=per_s,
                                  tsoffset_s=tsoff, max_ns=_MAX_TS_NS)
            offs.append(body + 20)
            lens.append(cap)
            origs.append(orig)
            tss.append(ts)
        elif btype == _NG_SPB:
            if not ifaces:
                raise ConfigError("pcapng simple packet before any interface", path=path, offset=pos)
            orig = struct.unpack_from(endian + "I", raw, body)[0]
            if orig > _MAX_ORIG_LEN:
                raise ConfigError("pcapng packet length out of range", path=path, offset=pos,
                                  orig_len=orig, max_len=_MAX_ORIG_LEN)
            cap = min(orig, end - body - 4)
            offs.append(body + 4)
            lens.append(cap)
            origs.append(orig)
            tss.append(0)   # SPB carries no timestamp
        pos += blen
    linktypes = {lt for lt, _p, _o in ifaces}
    if len(linktypes) > 1:
        raise ConfigError("pcapng mixes link types", path=path, linktypes=sorted(linktypes))
    linktype = linktypes.pop() if linktypes else LINKTYPE_ETHERNET
    return _pack(path, linktype, raw, offs, lens, origs, tss, tail)


def _idb_tsresol(raw: bytes, pos: int, end: int, endian: str) -> tuple[int, int]:
    """(ticks per second, if_tsoffset seconds) from the IDB options; default microseconds."""
    per_s, tsoff = 1_000_000, 0
    while pos + 4 <= end:
        code, olen = struct.unpack_from(endian + "HH", raw, pos)
        if code == 0:
            break
        if pos + 4 + olen > end:
            raise ConfigError("pcapng option runs past its block", offset=pos, option=code)
        if code == 9 and olen >= 1:        # if_tsresol
            v = raw[pos + 4]
            per_s = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
        elif code == 14 and olen >= 8:     # if_tsoffset
            tsoff = struct.unpack_from(endian + "q", raw, pos + 4)[0]
        pos += 4 + ((olen + 3) & ~3)
    return per_s, tsoff


def _ticks_to_ns(ticks: int, per_s: int) -> int:
    return ticks * 1_000_000_000 // per_s


def _pack(path, linktype, raw, offs, lens, origs, tss, tail=()) -> Capture:
    data = np.frombuffer(raw, dtype=np.uint8).copy()
    return Capture(path, linktype, data, np.asarray(offs, np.int64), np.asarray(lens, np.int32),
                   np.asarray(origs, np.int32), np.asarray(tss, np.int64), tuple(tail))


def write_pcap(path, frames, ts_ns, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 65535) -> None:
    """Write a classic, nanosecond-resolution, little-endian pcap."""
    _check_linktype(os.fspath(path), linktype)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", _PCAP_NS, 2, 4, 0, 0, snaplen, linktype))
        for frame, t in zip(frames, ts_ns):
            frame = bytes(frame)
            cap = frame[:snaplen]
            f.write(struct.pack("<IIII", t // 1_000_000_000, t % 1_000_000_000, len(cap), len(frame)))
            f.write(cap)


def write_pcapng(path, frames, ts_ns, linktype: int = LINKTYPE_ETHERNET) -> None:
    """Write a little-endian pcapng: one section, one interface with ns resolution, EPBs."""
    _check_linktype(os.fspath(path), linktype)

    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    with open(path, "wb") as f:
        f.write(block(_NG_SHB, struct.pack("<IHHq", _NG_BOM, 1, 0, -1)))
        opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)   # if_tsresol = 10^-9
        f.write(block(_NG_IDB, struct.pack("<HHI", linktype, 0, 0) + opts))
        for frame, t in zip(frames, ts_ns):
            frame = bytes(frame)
            f.write(block(_NG_EPB, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame)) + frame))


def _ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(payload: bytes, dst_port: int, src_port: int = 40000, src_ip: str = "198.18.0.1",
              dst_ip: str = "233.54.12.1", linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """An IPv4/UDP datagram (in an Ethernet II frame for LINKTYPE_ETHERNET); UDP checksum 0."""
    import socket

    udp = struct.pack("!HHHH", src_port, dst_port, UDP_HEADER_BYTES + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, IPV4_HEADER_BYTES + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    if linktype == LINKTYPE_ETHERNET:
        # multicast MAC for the group, a locally administered source
        eth = bytes.fromhex("01005e360c01") + bytes.fromhex("020000000001") + b"\x08\x00"
        return eth + ip + udp
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return ip + udp
    raise ConfigError("unsupported pcap link type", linktype=linktype, supported=sorted(SUPPORTED_LINKTYPES))


def udp_payloads(cap: Capture):
    """Yield (ts_ns, dst_port, payload bytes) for each IPv4/UDP packet (not a fragment, not
    cut short; runtime/feed/netheaders.py decides); others are skipped."""
    # imported here: reading and writing captures needs no numba, only this walk does
    from tickpath.runtime.feed.netheaders import LINK_ETHERNET, LINK_RAW_IPV4, udp_payload

    link = LINK_ETHERNET if cap.linktype == LINKTYPE_ETHERNET else LINK_RAW_IPV4
    for i in range(len(cap)):
        o, n = int(cap.offsets[i]), int(cap.lengths[i])
        p, plen, dport, _vlan = udp_payload(cap.data, o, n, link, 0)
        if p >= 0:
            yield int(cap.ts_ns[i]), int(dport), cap.data[p:p + plen].tobytes()
