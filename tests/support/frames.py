"""Build raw Ethernet frames for the AF_XDP tests (IPv4/UDP, VLAN, fragments, junk)."""
from __future__ import annotations

import socket
import struct

from netns import RX_MAC, TX_MAC


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def ip_checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, body: bytes, frag: int = 0, options: bytes = b"",
         ident: int = 1) -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(body), ident, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", ip_checksum(hdr)) + hdr[12:]
    return hdr + body


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def eth(ethertype: int, body: bytes, vlan: int | None = None, dst: str = RX_MAC,
        src: str = TX_MAC) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return mac(dst) + mac(src) + tag + struct.pack("!H", ethertype) + body


def udp_frame(src: str, dst: str, dport: int, payload: bytes, vlan: int | None = None,
              frag: int = 0, options: bytes = b"") -> bytes:
    return eth(0x0800, ipv4(src, dst, 17, udp(40000, dport, payload), frag, options), vlan)
