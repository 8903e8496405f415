"""The plain-Python responder: what one would otherwise write (a blocking UDP socket, struct
parsing, a socket.send), answering the same triggers the same way as the C floor — the
baseline beside tickpath in the tick-to-trade bench. Run as its own process:

    python -m tickpath.bench.t2t.pyresponder UDP_FD TCP_FD LOCATE_LO LOCATE_HI SHARES SECONDS ORDER_HEX
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import time

_HDR = struct.Struct(">10sQH")


def main(argv: list[str]) -> int:
    ufd, tfd, loc_lo, loc_hi, shares = (int(a) for a in argv[:5])
    seconds, order = float(argv[5]), bytearray(bytes.fromhex(argv[6]))
    udp = socket.socket(fileno=ufd)
    tcp = socket.socket(fileno=tfd)
    udp.setblocking(True)
    udp.settimeout(0.2)
    tcp.setblocking(True)
    end = time.monotonic() + seconds
    uref = sent = triggers = packets = 0
    last_send = time.monotonic()
    while time.monotonic() < end:
        try:
            pkt = udp.recv(65536)
        except socket.timeout:
            pkt = b""
        if len(pkt) >= 20:
            packets += 1
            _, seq, count = _HDR.unpack_from(pkt)
            p = 20
            for m in range(count):
                if p + 2 > len(pkt):
                    break
                (ln,) = struct.unpack_from(">H", pkt, p)
                p += 2
                msg = pkt[p:p + ln]
                p += ln
                if (ln >= 36 and msg[0] == 0x41 and loc_lo <= struct.unpack_from(">H", msg, 1)[0] <= loc_hi
                        and struct.unpack_from(">I", msg, 20)[0] == shares):
                    triggers += 1
                    uref += 1
                    struct.pack_into(">I", order, 4, uref)
                    order[34:48] = str(seq + m).rjust(14, "0").encode()
                    tcp.sendall(order)
                    sent += 1
                    last_send = time.monotonic()
        try:   # the venue's answers: read and dropped, so its slow-consumer guard never trips
            while tcp.recv(65536, socket.MSG_DONTWAIT):
                pass
        except BlockingIOError:
            pass
        if time.monotonic() - last_send > 1.0:
            tcp.sendall(b"\x00\x01R")
            last_send = time.monotonic()
    print(json.dumps({"packets": packets, "triggers": triggers, "orders_sent": sent}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
