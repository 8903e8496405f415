"""Where the emulated card's packets come from: a UDP socket, a pcap file, or its H2C stream.

Each source hands the datapath batches in one shape - packets back to back in a byte
buffer with offsets, lengths, destination ports and receive times (ns, CLOCK_REALTIME) -
plus the ingress kind (UDP payloads or whole Ethernet / IPv4 frames). A batch the datapath
could not take completely (back-pressure) is offered again from where it stopped, so a
source never loses what it already read.

* UDP: the card's network port, played by a non-blocking socket bound to HOST:PORT. The
  kernel's drops on a full socket buffer are read back with SO_RXQ_OVFL (a running total
  on every datagram) and reported, so back-pressure that spills into the kernel is counted.
* pcap: classic pcap or pcapng (runtime/pcap.py), Ethernet or raw IPv4 frames, replayed as
  fast as the datapath takes them; receive time = the capture's timestamp (`recv_time=
  "pcap"`, reproducible) or the replay time ("now"). Replay pauses while the card is disabled.
* H2C: the named pipe `xdma<N>_h2c_<i>`, framed as u16 big-endian length + UDP payload (the
  MoldUDP64 packet); port 0 (the port filter does not apply: it is past the UDP front end).
"""
from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np
from tickpath.runtime.feed import pcap
from tickpath.runtime.core.errors import ConfigError, translate_oserror

from tickpath.fpga.emulator import datapath as dp

SO_RXQ_OVFL = 40                 # linux/asm-generic/socket.h
MAX_DATAGRAM_BYTES = 65536
H2C_MAX_PACKET_BYTES = 0xFFFF


class Batch:
    """Packets back to back; `next` is the first packet the datapath has not taken yet."""

    def __init__(self, buf, offs, lens, ports, recv_ns, kind):
        self.buf, self.offs, self.lens, self.ports, self.recv_ns = buf, offs, lens, ports, recv_ns
        self.kind = kind
        self.next = 0

    @property
    def done(self) -> bool:
        return self.next >= len(self.offs)


class PcapSource:
    exhausted_means_done = True

    def __init__(self, path: str, batch_packets: int = 256, recv_time: str = "pcap", loops: int = 1):
        if recv_time not in ("pcap", "now"):
            raise ConfigError("recv_time must be pcap or now", recv_time=recv_time)
        if loops < 1:
            raise ConfigError("loops must be at least 1", loops=loops)
        self.cap = pcap.read_capture(path)
        self.kind = dp.KIND_ETHERNET if self.cap.linktype == pcap.LINKTYPE_ETHERNET else dp.KIND_IPV4
        self.batch_packets = batch_packets
        self.recv_time = recv_time
        self.loops_left = loops
        self.pos = 0
        self._ports = np.zeros(batch_packets, np.int64)
        self._offs = self.cap.offsets.astype(np.int64)
        self._lens = self.cap.lengths.astype(np.int64)

    def poll(self, enabled: bool) -> Batch | None:
        if not enabled:
            return None                 # a file is not a wire: replay waits for ENABLE
        n = len(self.cap)
        if self.pos >= n:
            self.loops_left -= 1
            if self.loops_left <= 0 or n == 0:
                return None
            self.pos = 0
        end = min(n, self.pos + self.batch_packets)
        sl = slice(self.pos, end)
        self.pos = end
        recv = self.cap.ts_ns[sl]
        if self.recv_time == "now":
            recv = np.full(end - sl.start, time.clock_gettime_ns(time.CLOCK_REALTIME), np.int64)
        return Batch(self.cap.data, self._offs[sl], self._lens[sl], self._ports[:end - sl.start],
                     recv, self.kind)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.cap) and self.loops_left <= 1

    def close(self) -> None:
        pass


class UdpSource:
    exhausted_means_done = False

    def __init__(self, host: str, port: int, batch_packets: int = 64, rcvbuf_bytes: int = 4 << 20):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise translate_oserror(exc, "bind the emulator's UDP port", host=host, port=port) from exc
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.batch_packets = batch_packets
        self.buf = np.zeros(batch_packets * MAX_DATAGRAM_BYTES, np.uint8)
        self._mv = memoryview(self.buf)
        self.kernel_drops = 0           # datagrams the kernel dropped on a full socket buffer
        self.exhausted = False
        # reused per batch: the datapath has taken a batch before the next poll overwrites it
        self._offs = np.arange(batch_packets, dtype=np.int64) * MAX_DATAGRAM_BYTES
        self._lens = np.zeros(batch_packets, np.int64)
        self._recv = np.zeros(batch_packets, np.int64)
        self._ports = np.full(batch_packets, self.port, np.int64)

    def poll(self, enabled: bool) -> Batch | None:
        offs, lens, recv = self._offs, self._lens, self._recv
        n = 0
        cspace = socket.CMSG_SPACE(4)
        while n < self.batch_packets:
            o = n * MAX_DATAGRAM_BYTES
            try:
                nbytes, anc, _flags, _addr = self.sock.recvmsg_into([self._mv[o:o + MAX_DATAGRAM_BYTES]], cspace)
            except BlockingIOError:
                break
            recv[n] = time.clock_gettime_ns(time.CLOCK_REALTIME)
            for level, ctype, data in anc:
                if level == socket.SOL_SOCKET and ctype == SO_RXQ_OVFL and len(data) >= 4:
                    self.kernel_drops = struct.unpack("I", data[:4])[0]
            lens[n] = nbytes
            n += 1
        if n == 0:
            return None
        return Batch(self.buf, offs[:n], lens[:n], self._ports[:n], recv[:n], dp.KIND_PAYLOAD)

    def close(self) -> None:
        self.sock.close()


class H2cSource:
    exhausted_means_done = False

    def __init__(self, path: str, batch_packets: int = 256):
        # O_RDWR: the emulator holds a writer end itself, so writers coming and going never
        # give it EOF, and opening never blocks
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.pending = bytearray()
        self.batch_packets = batch_packets
        self.exhausted = False
        self.framing_errors = 0

    def poll(self, enabled: bool) -> Batch | None:
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            chunk = b""
        if chunk:
            self.pending += chunk
        if len(self.pending) < 2:
            return None
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        offs, lens = [], []
        pos = 0
        view = self.pending
        while len(offs) < self.batch_packets and pos + 2 <= len(view):
            n = (view[pos] << 8) | view[pos + 1]
            if pos + 2 + n > len(view):
                break                   # the rest of this frame has not arrived yet
            offs.append(pos + 2)
            lens.append(n)
            pos += 2 + n
        if not offs:
            return None
        buf = np.frombuffer(bytes(view[:pos]), np.uint8)
        del self.pending[:pos]
        k = len(offs)
        return Batch(buf, np.asarray(offs, np.int64), np.asarray(lens, np.int64),
                     np.zeros(k, np.int64), np.full(k, now, np.int64), dp.KIND_PAYLOAD)

    def close(self) -> None:
        os.close(self.fd)


def h2c_frame(packet: bytes) -> bytes:
    """Frame one UDP payload for the emulator's H2C stream: u16 BE length + bytes."""
    if len(packet) > H2C_MAX_PACKET_BYTES:
        raise ConfigError("packet too long for the H2C framing", n_bytes=len(packet),
                          max_bytes=H2C_MAX_PACKET_BYTES)
    return struct.pack(">H", len(packet)) + bytes(packet)
