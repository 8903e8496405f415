"""The one network-header parser: where a UDP payload lies in a frame (numba, hot).

Every receive path that sees whole frames calls `udp_payload`: the AF_XDP poll (each RX
descriptor), replay and backtest (`locate_udp` over a capture), `pcap.udp_payloads` and
the FPGA emulator's ingress. It walks Ethernet II, at most one 802.1Q tag, IPv4 and UDP,
and checks every length before the read it guards (numba does not bounds-check):

    Ethernet  dst(6) src(6) type(2) [0x8100 tci(2) type(2)]     link = LINK_ETHERNET only
    IPv4      ver/ihl(1) tos(1) total(2) id(2) flags/frag(2) ttl(1) proto(1) ...  (ihl*4)
    UDP       sport(2) dport(2) length(2) checksum(2) payload

Rules: IHL >= 5; the IP total length must fit in the frame (frames are padded on the wire,
so the frame may be longer, never shorter) and hold the IP and UDP headers; the UDP length
must hold its header and fit in the IP total; fragments are refused (not reassembled), and
a first fragment addressed to the feed port is told apart, because it is feed data lost.

Returns (payload_offset, payload_len, dst_port, vlan_tagged). A payload_offset < 0 is the
reason the frame is not a feed datagram (NH_*); each caller maps reasons to its own
counters. port = 0 accepts every destination port (dst_port then says which it was).
"""
from __future__ import annotations

import numpy as np
from numba import njit

LINK_RAW_IPV4 = 0     # the frame starts at the IPv4 header (pcap LINKTYPE_RAW / _IPV4)
LINK_ETHERNET = 1     # an Ethernet II frame

ETH_HEADER_BYTES = 14
VLAN_TAG_BYTES = 4
IPV4_MIN_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
IPPROTO_UDP = 17

# reasons (negative payload offsets)
NH_SHORT = -1          # frame shorter than its headers, or an IP/UDP length past it
NH_NOT_IPV4 = -2       # another ethertype (ARP, IPv6, QinQ...) or IP version != 4
NH_NOT_UDP = -3        # IPv4, another protocol
NH_FRAGMENT = -4       # an IPv4 fragment (MF set or offset != 0)
NH_FEED_FRAGMENT = -5  # the first fragment of a datagram to the feed port: feed data lost
NH_WRONG_PORT = -6     # UDP to another port
REASON_NAMES = {NH_SHORT: "short", NH_NOT_IPV4: "not_ipv4", NH_NOT_UDP: "not_udp",
                NH_FRAGMENT: "fragment", NH_FEED_FRAGMENT: "feed_fragment",
                NH_WRONG_PORT: "wrong_port"}


@njit(nogil=True, inline="always")
def _be16(buf, i):
    return (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])


# inlined into each caller (a call per frame measured slower; bench/RESULTS.md, issue 12);
# numba keys a cached caller on its own file, so after editing this one touch the callers
# (afxdp/poll.py, engine/replay.py, fpga/emulator/datapath.py) or set NUMBA_DISABLE_CACHE=1
@njit(nogil=True, inline="always", cache=True)
def udp_payload(buf, off, n, link, port):
    """(payload_offset, payload_len, dst_port, vlan_tagged) of the frame buf[off:off+n]
    (the caller checked that range lies inside buf); payload_offset < 0 is an NH_* reason.
    Every read is inside [off, off + n)."""
    end = off + n
    l3 = off
    vlan = 0
    if link == LINK_ETHERNET:
        if n < ETH_HEADER_BYTES:
            return NH_SHORT, 0, 0, 0
        et = _be16(buf, off + 12)
        l3 = off + ETH_HEADER_BYTES
        if et == ETH_P_8021Q:
            if n < ETH_HEADER_BYTES + VLAN_TAG_BYTES:
                return NH_SHORT, 0, 0, 0
            vlan = 1
            et = _be16(buf, off + 16)
            l3 += VLAN_TAG_BYTES
        if et != ETH_P_IP:
            return NH_NOT_IPV4, 0, 0, vlan
    if l3 + IPV4_MIN_HEADER_BYTES > end:
        return NH_SHORT, 0, 0, vlan
    vihl = np.int64(buf[l3])
    ihl = (vihl & 0x0F) * 4
    total = _be16(buf, l3 + 2)
    frag = _be16(buf, l3 + 6) & 0x3FFF
    proto = np.int64(buf[l3 + 9])
    l4 = l3 + ihl
    bad_ip = (vihl >> 4) != 4
    # the IP total length, not the frame's: short frames are padded on the wire
    short = ihl < IPV4_MIN_HEADER_BYTES or total < ihl + UDP_HEADER_BYTES or l3 + total > end
    # one test on the common path, the reasons told apart after it (one branch per check
    # measured slower; bench/RESULTS.md, issue 12)
    if bad_ip or short or proto != IPPROTO_UDP or frag != 0:
        if bad_ip:
            return NH_NOT_IPV4, 0, 0, vlan
        if short:
            return NH_SHORT, 0, 0, vlan
        if proto != IPPROTO_UDP:
            return NH_NOT_UDP, 0, 0, vlan
        # only a first fragment carries the UDP header: if it is the feed's, feed data is lost
        if (frag & 0x1FFF) == 0 and port != 0 and _be16(buf, l4 + 2) == port:
            return NH_FEED_FRAGMENT, 0, port, vlan
        return NH_FRAGMENT, 0, 0, vlan
    dport = _be16(buf, l4 + 2)              # l4 + 8 <= l3 + total <= end (checked above)
    ulen = _be16(buf, l4 + 4)
    if port != 0 and dport != port:
        return NH_WRONG_PORT, 0, dport, vlan
    if ulen < UDP_HEADER_BYTES or ulen > total - ihl:
        return NH_SHORT, 0, dport, vlan
    return l4 + UDP_HEADER_BYTES, ulen - UDP_HEADER_BYTES, dport, vlan
