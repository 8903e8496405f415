"""The thin XDMA access layer: device nodes of the Xilinx XDMA driver, opened by card index.

No pyxdma exists, so tickpath carries this. Nodes (Xilinx/dma_ip_drivers XDMA/linux-kernel):
`<dir>/xdma<N>_user` (AXI-Lite user BAR: our parser's registers, mmap'd),
`_control` (the XDMA IP's own registers), `_c2h_<i>` / `_h2c_<i>` (DMA engines: a read or
write runs a transfer; in AXI-Stream mode buffers must be aligned and lengths a multiple of
the granularity; opening C2H with O_TRUNC sets eop_flush so a read returns at TLAST) and
`_events_<i>` (a 4-byte read blocks until user interrupt i). The device directory is
injectable (default /dev) so the software emulator can present the same nodes elsewhere.

Every failure names the node and the problem: missing node (driver not loaded / emulator
not running), permissions, a register file of the wrong size, EINVAL from a misaligned
buffer, a stream that is not a whole number of records.
"""
from __future__ import annotations

import errno
import mmap
import os
import stat

import numpy as np
from tickpath.runtime.core.errors import BackendError, ConfigError, ResourceError, translate_oserror

from tickpath.fpga import regmap
from tickpath.fpga.record import RECORD_BYTES, check_record_buffer, check_stream_length

DEFAULT_DEVICE_DIR = "/dev"
NODE_KINDS = ("user", "control", "c2h", "h2c", "events", "bypass")
_CHANNEL_KINDS = ("c2h", "h2c", "events")


def node_path(device_dir: str, card: int, kind: str, channel: int | None = None) -> str:
    """Path of a device node, e.g. /dev/xdma0_c2h_0."""
    if kind not in NODE_KINDS:
        raise ConfigError("unknown xdma node kind", kind=kind, known=NODE_KINDS)
    if not isinstance(card, int) or card < 0:
        raise ConfigError("card index must be a non-negative integer", card=card)
    name = f"xdma{card}_{kind}"
    if kind in _CHANNEL_KINDS:
        if channel is None or channel < 0:
            raise ConfigError("channel index required for this node", kind=kind, channel=channel)
        name += f"_{channel}"
    return os.path.join(device_dir, name)


def _open_node(path: str, flags: int, what: str) -> int:
    hint = "load the xdma driver (or start `tickpath fpga emulate --device-dir DIR`)"
    if not os.path.exists(path):
        raise ResourceError("device node missing", node=path, what=what, hint=hint)
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise translate_oserror(exc, f"open {what}", hint="check the node's owner/mode (udev rule)"
                                if exc.errno in (errno.EACCES, errno.EPERM) else "", node=path) from exc


class UserBar:
    """The user BAR mapped into memory: u32 / u64 register views (numpy, shared with the card)."""

    def __init__(self, device_dir: str = DEFAULT_DEVICE_DIR, card: int = 0,
                 size_bytes: int = regmap.REGFILE_BYTES, writable: bool = True):
        self.node = node_path(device_dir, card, "user")
        self.size_bytes = size_bytes
        self._fd = _open_node(self.node, os.O_RDWR if writable else os.O_RDONLY, "user BAR")
        try:
            st = os.fstat(self._fd)
            # a regular file (emulator) must be exactly the register file; a char device's
            # size is not in stat, so mmap tells us (EINVAL/ENXIO past the BAR's end)
            if stat.S_ISREG(st.st_mode) and st.st_size != size_bytes:
                raise ResourceError("register file has the wrong size", node=self.node,
                                    n_bytes=st.st_size, expected=size_bytes)
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            try:
                self._map = mmap.mmap(self._fd, size_bytes, mmap.MAP_SHARED, prot)
            except (OSError, ValueError) as exc:
                raise ResourceError("cannot map the register file (BAR smaller than the map?)",
                                    node=self.node, map_bytes=size_bytes, reason=str(exc)) from exc
        except BaseException:
            os.close(self._fd)
            raise
        self.u32, self.u64 = regmap.reg_words(self._map)
        if not writable:
            self.u32 = self.u32.view()
            self.u32.flags.writeable = False

    def read32(self, offset: int) -> int:
        return int(self.u32[offset >> 2])

    def write32(self, offset: int, value: int) -> None:
        self.u32[offset >> 2] = value & 0xFFFFFFFF

    def read64(self, offset: int) -> int:
        return int(self.u64[offset >> 3])

    def close(self) -> None:
        if self._fd >= 0:
            self.u32 = self.u64 = None
            try:
                self._map.close()
            except BufferError:
                pass   # a view is still alive somewhere; the map closes with it
            os.close(self._fd)
            self._fd = -1


def open_c2h(device_dir: str = DEFAULT_DEVICE_DIR, card: int = 0, channel: int = 0,
             nonblocking: bool = True, eop_flush: bool = False) -> tuple[int, str]:
    """Open a card-to-host stream for reading; returns (fd, node path)."""
    path = node_path(device_dir, card, "c2h", channel)
    flags = os.O_RDONLY | (os.O_NONBLOCK if nonblocking else 0) | (os.O_TRUNC if eop_flush else 0)
    fd = _open_node(path, flags, "C2H stream")
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        os.close(fd)
        raise ResourceError("C2H node is neither a character device nor a FIFO", node=path,
                            mode=oct(mode))
    return fd, path



def read_records(fd: int, buf: np.ndarray, node: str) -> int:
    """One C2H transfer into buf (EVENT_DTYPE); returns whole records read (0 = nothing now).

    Raises DeviceGoneError at EOF, BackendError for EINVAL (misaligned buffer / length) and
    for a transfer that is not a whole number of records.
    """
    from tickpath.runtime.core.errors import DeviceGoneError

    check_record_buffer(buf, what=node)
    mv = memoryview(buf.view(np.uint8))
    try:
        n = os.readv(fd, [mv])
    except BlockingIOError:
        return 0
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise BackendError("C2H read refused: buffer address or length not aligned as the engine needs",
                               node=node, address=hex(buf.ctypes.data), n_bytes=len(mv)) from exc
        raise translate_oserror(exc, "C2H read", node=node) from exc
    if n == 0:
        raise DeviceGoneError("C2H stream ended: the card or its emulator is gone", node=node)
    check_stream_length(n, node)
    return n // RECORD_BYTES
