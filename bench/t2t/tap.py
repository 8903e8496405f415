"""A wire tap: the time each answering order reached the venue's host stack,
taken per TCP segment by the kernel, independent of when the venue's thread reads it.

Why: the venue stamps an inbound order with the kernel receive timestamp of the read that
brought it, but TCP coalesces segments that arrive while the reader is busy into one buffer
carrying the first one's stamp, so on a loaded host only the first order of a read has its
own arrival time (the others get the read's return time: an upper bound). STAC-T1 stamps
orders on the network; the host's equivalent is a packet socket on `lo` with a classic BPF
filter for TCP to the venue's OUCH port, SO_TIMESTAMPNS on every frame, the outgoing copy of
each segment kept (the moment the responder's send() handed it to the device), each flow's
bytes reassembled in order and split into SoupBinTCP packets; an OUCH Enter Order whose
ClOrdID is all digits is an answer, stamped with the segment that carried its first byte.

On a veth path (bench/t2t/veth.py) the tap is made inside the venue's namespace and bound to
its end of the veth (`ifname`), keeping the incoming copy (`pkttype` PACKET_HOST): the moment
the segment arrived from the wire at the venue's host, the same place on the wire with one
more hop (the veth) before it. Ethernet framing on both, so one filter serves.

Needs CAP_NET_RAW (root); `Tap.open` raises PermissionError otherwise and the bench falls
back to the venue's own stamps, saying so.
"""
from __future__ import annotations

import ctypes
import socket
import struct
import threading

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
PACKET_HOST = 0
PACKET_OUTGOING = 4


def _filter(port: int) -> bytes:
    """Classic BPF: IPv4, TCP, not a fragment, destination port `port` (Ethernet framing: lo)."""
    prog = [
        (0x28, 0, 0, 12), (0x15, 0, 8, 0x0800),        # ethertype IPv4, else drop
        (0x30, 0, 0, 23), (0x15, 0, 6, 6),             # protocol TCP
        (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF),        # not a fragment
        (0xB1, 0, 0, 14),                              # x = IP header length
        (0x48, 0, 0, 16), (0x15, 0, 1, port),          # TCP destination port
        (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0),        # accept / drop
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


class Tap(threading.Thread):
    """Collects {clordid: first-byte arrival ns} for answers sent to `port` on `ifname`."""

    def __init__(self, port: int, ifname: str = "lo", pkttype: int = PACKET_OUTGOING):
        super().__init__(name="t2t-tap", daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        code = _filter(port)
        self._code = ctypes.create_string_buffer(code, len(code))    # must outlive the socket
        fprog = struct.pack("HxxxxxxQ", len(code) // 8, ctypes.addressof(self._code))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((ifname, 0))
        self.ifname, self.pkttype = ifname, pkttype
        self.sock.settimeout(0.1)
        self.answers: dict[int, int] = {}     # ClOrdID -> the first answer naming it
        self.by_uref: dict[int, int] = {}     # UserRefNum -> arrival, every order with a digit ClOrdID
        self.duplicates = 0
        self.segments = 0
        self.resyncs = 0
        self.flows: dict[int, list] = {}       # src port -> [next tcp seq, bytes, [(offset, ts)]]
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                data, anc, _, addr = self.sock.recvmsg(65536, 64)
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[2] != self.pkttype:      # lo shows each frame twice: keep the send side
                continue
            ts = 0
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack_from("qq", cdata)
                    ts = sec * 1_000_000_000 + nsec
            self._segment(data, ts)

    def _segment(self, frame: bytes, ts: int) -> None:
        if len(frame) < 14 + 20 + 20:
            return
        ihl = (frame[14] & 0x0F) * 4
        total = struct.unpack_from(">H", frame, 16)[0]
        t = 14 + ihl
        if len(frame) < t + 20:
            return
        sport, _, seq = struct.unpack_from(">HHI", frame, t)
        doff = (frame[t + 12] >> 4) * 4
        payload = frame[t + doff:14 + total]
        if not payload:
            return
        self.segments += 1
        flow = self.flows.get(sport)
        if flow is None:
            flow = self.flows[sport] = [seq, b"", []]
        if seq != flow[0]:          # lo and veth keep order; a gap means a missed frame: resync
            flow[1], flow[2] = b"", []
        flow[0] = (seq + len(payload)) & 0xFFFFFFFF
        flow[2].append((len(flow[1]), ts))
        flow[1] += payload
        self._packets(flow)

    def _packets(self, flow) -> None:
        buf, marks = flow[1], flow[2]
        o = 0
        while len(buf) - o >= 2:
            n = struct.unpack_from(">H", buf, o)[0]
            if n == 0 or n > 1024:      # not SoupBinTCP framing (joined mid-stream): start over
                self.resyncs += 1
                flow[1], flow[2] = b"", []
                return
            if len(buf) - o - 2 < n:
                break
            kind = buf[o + 3] if n >= 2 and buf[o + 2] == ord("U") else 0
            # Enter Order: ClOrdID at 31, UserRefNum at 1; Replace: ClOrdID at 24, new UserRefNum at 5
            if (kind == ord("O") and n >= 1 + 47) or (kind == ord("U") and n >= 1 + 40):
                cl_at, uref_at = (31, 1) if kind == ord("O") else (24, 5)
                clordid = buf[o + 3 + cl_at:o + 3 + cl_at + 14].strip()
                if clordid.isdigit():
                    ts = next(t for off, t in reversed(marks) if off <= o)
                    self.by_uref[struct.unpack_from(">I", buf, o + 3 + uref_at)[0]] = ts
                    key = int(clordid)
                    if kind != ord("O"):
                        pass
                    elif key in self.answers:
                        self.duplicates += 1
                    else:
                        self.answers[key] = ts
            o += 2 + n
        flow[1] = buf[o:]
        # rebase the stamps: the segment holding byte o keeps its stamp at offset 0
        keep = [m for m in marks if m[0] > o]
        head = [m for m in marks if m[0] <= o][-1:]
        flow[2] = [(0, head[0][1])] * len(head) + [(off - o, t) for off, t in keep]

    def close(self) -> None:
        self.stop_flag.set()
        self.join(2)
        self.sock.close()
