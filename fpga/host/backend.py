"""The FPGA backend: 64-byte event records straight from the card's C2H stream.

Kind "events": `n = poll(state, events)` fills events[0:n] with records the card (or the
emulator) already decoded; the software decoder is skipped. Registered as "fpga" (device
directory /dev by default) and "fpga-emu" (the same code, a device directory required:
where `tickpath fpga emulate` put its nodes).

Hot path: `fpga_poll` is @njit(nogil=True, cache=True) and calls libc read() (declared by symbol in
libc_nb.py, so the compiled loop caches; the buffer address passed as an integer),
non-blocking, straight into the caller's event array. A read may end inside a record (a pipe can split a transfer): the tail bytes go
to a 64-byte remainder buffer in the state and are put in front of the next read, so records
are never torn or lost. Return codes: n >= 0 records; EAGAIN/EINTR = 0; EOF (the writer
died: card removed, emulator killed) = -ENODEV; any other errno = -errno. The caller stops
its loop on a negative value and raises DeviceGoneError / BackendError from `check_poll`.

Real card note: the Xilinx XDMA driver's C2H read runs a DMA transfer and waits for it
(poll_mode=1 makes the completion a polled writeback, not an interrupt); it does not honour
O_NONBLOCK, so on a card the read returns when records arrive or at TLAST with O_TRUNC
(eop_flush=True), and the polling thread is dedicated to it anyway. The emulator's pipe
honours O_NONBLOCK, so the same code never blocks there.

Slow path: open() checks the nodes and the register identity (clear errors naming the node),
stats() merges the card's counters (register file) with the host-side poll counters.
"""
from __future__ import annotations

import errno
import os
from typing import NamedTuple

import numpy as np
from numba import njit
from tickpath.runtime.core import counters as rc
from tickpath.runtime.backends.registry import EVENTS, BackendInfo, register_backend
from tickpath.runtime.core.errors import BackendError, ConfigError, DeviceGoneError

from tickpath.fpga import regmap as rm
from tickpath.fpga.host.control import ParserControl
from tickpath.runtime.sys.libc import libc_errno, libc_read
from tickpath.fpga.record import RECORD_BYTES, check_record_buffer
from tickpath.fpga.host.xdma import DEFAULT_DEVICE_DIR, open_c2h
from tickpath.runtime.engine.loop import run_events

EAGAIN = errno.EAGAIN
EINTR = errno.EINTR
ENODEV = errno.ENODEV

# state words (int64 array)
SW_FD = 0
SW_REM_BYTES = 1       # bytes of a partial record held in the remainder buffer
SW_POLLS = 2
SW_EMPTY_POLLS = 3
SW_RECORDS = 4
SW_SPLIT_READS = 5     # reads that ended inside a record
SW_GONE = 6            # 1 once EOF was seen
SW_ERRNO = 7           # last fatal errno
SW_WORDS = 8


class FpgaState(NamedTuple):
    """What fpga_poll reads and writes (numba types it as a tuple: no run-time cost)."""
    words: np.ndarray       # int64[SW_WORDS]: the fd, the remainder's length, counts (SW_*)
    remainder: np.ndarray   # u8[RECORD_BYTES]: the start of a record a read cut short


@njit(nogil=True, inline="always")
def _copy_bytes(dst, src, n):
    for i in range(n):
        dst[i] = src[i]


@njit(nogil=True, cache=True)
def fpga_poll(state, events):
    """Read whole records into events[0:n]; returns n, or -errno (-ENODEV: device gone)."""
    sw, rem = state.words, state.remainder
    sw[SW_POLLS] += 1
    cap_bytes = events.shape[0] * RECORD_BYTES
    have = sw[SW_REM_BYTES]
    if cap_bytes <= have or sw[SW_GONE] != 0:
        return -ENODEV if sw[SW_GONE] != 0 else 0
    raw = events.view(np.uint8)
    if have > 0:
        _copy_bytes(raw, rem, have)                  # finish the partial record first
    r = libc_read(sw[SW_FD], events.ctypes.data + have, cap_bytes - have)
    if r < 0:
        e = np.int64(libc_errno())
        if e == EAGAIN or e == EINTR:
            sw[SW_EMPTY_POLLS] += 1
            return 0
        sw[SW_ERRNO] = e
        return -e
    if r == 0:
        sw[SW_GONE] = 1                              # EOF: no writer is left
        sw[SW_ERRNO] = ENODEV
        return -ENODEV
    total = have + r
    n = total // RECORD_BYTES
    left = total - n * RECORD_BYTES
    if left > 0:
        _copy_bytes(rem, raw[n * RECORD_BYTES:], left)
        sw[SW_SPLIT_READS] += 1
    sw[SW_REM_BYTES] = left
    sw[SW_RECORDS] += n
    return n


# the keys of [backend.fpga] (the config reader refuses any other)
CONFIG_KEYS = ("device_dir", "card", "channel", "eop_flush")


def _cfg(config, key, default):
    if config is None:
        return default
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def _index(value, key: str, limit: int) -> int:
    """A card or channel number from the config: an integer 0..limit, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ConfigError(f"{key} must be an integer 0..{limit}", key=f"backend.fpga.{key}", value=value)
    return value


@njit(nogil=True, cache=True)
def fpga_loop(bstate, events, pipe, ctrl, idle_params, idle_state):
    """The receive loop for this backend, cached on disk (runtime/engine/loop.py says why)."""
    return run_events(fpga_poll, bstate, events, pipe, ctrl, idle_params, idle_state)


class FpgaBackend:
    """FPGA card (or emulator) backend. open() -> poll(state, events) in the loop -> close()."""

    kind = EVENTS
    poll = staticmethod(fpga_poll)
    loop = staticmethod(fpga_loop)

    def __init__(self, config=None, *, device_dir: str | None = None, card: int | None = None,
                 channel: int | None = None, eop_flush: bool | None = None, name: str = "fpga"):
        self.name = name
        self.device_dir = device_dir or _cfg(config, "device_dir", DEFAULT_DEVICE_DIR)
        self.card = _index(card if card is not None else _cfg(config, "card", 0), "card", 255)
        self.channel = _index(channel if channel is not None else _cfg(config, "channel", 0), "channel", 3)
        self.eop_flush = bool(eop_flush if eop_flush is not None else _cfg(config, "eop_flush", False))
        self.ctl: ParserControl | None = None
        self.fd = -1
        self.state = None
        self.node = ""

    def open(self, events: np.ndarray | None = None, enable: bool = True) -> FpgaBackend:
        """Check the nodes and the register identity; open the C2H stream. `events`, if
        given, is the buffer the loop will pass to poll: checked for dtype and alignment."""
        if events is not None:
            check_record_buffer(events, what="events")
        self.ctl = ParserControl(self.device_dir, self.card)
        try:
            st = self.ctl.status()
            if not st["link_up"]:
                raise BackendError("card link is down (emulator not running, or no feed cable)",
                                   node=self.ctl.node, status=hex(self.ctl.bar.read32(rm.STATUS)))
            self.fd, self.node = open_c2h(self.device_dir, self.card, self.channel, nonblocking=True,
                                          eop_flush=self.eop_flush)
        except BaseException:
            self.ctl.close()
            self.ctl = None
            raise
        sw = np.zeros(SW_WORDS, np.int64)
        sw[SW_FD] = self.fd
        self.state = FpgaState(words=sw, remainder=np.zeros(RECORD_BYTES, np.uint8))
        if enable:
            self.ctl.enable(True)
        return self

    def check_poll(self, rc_value: int) -> int:
        """Slow path: turn a negative poll result into the error it stands for."""
        if rc_value >= 0:
            return rc_value
        e = -rc_value
        if e == ENODEV:
            raise DeviceGoneError("C2H stream ended: the card or its emulator is gone", node=self.node,
                                  partial_record_bytes=int(self.state.words[SW_REM_BYTES]))
        raise BackendError("C2H read failed", node=self.node, errno=errno.errorcode.get(e, e),
                           reason=os.strerror(e))

    def overflowed(self) -> bool:
        """The card's sticky FIFO overflow flag (records were dropped)."""
        return bool(self.ctl.bar.read32(rm.STATUS) & rm.ST_OVERFLOW)

    def stats(self) -> dict:
        sw = self.state.words if self.state is not None else np.zeros(SW_WORDS, np.int64)
        out = {
            "backend": self.name,
            "c2h_node": self.node,
            "polls": int(sw[SW_POLLS]),
            "empty_polls": int(sw[SW_EMPTY_POLLS]),
            "records_read": int(sw[SW_RECORDS]),
            "split_reads": int(sw[SW_SPLIT_READS]),
            "device_gone": bool(sw[SW_GONE]),
        }
        if self.ctl is not None:
            st = self.ctl.status()
            for k in ("link_up", "enabled", "overflow", "fifo_level", "fifo_high_water", "session",
                      "expected_seq"):
                out[f"fpga_{k}"] = st[k]
            cnt = st["counters"]
            for k, v in cnt.items():
                out[f"fpga_{k}"] = v
            merged = {rc.NAMES[slot]: cnt[name.lower()] for name, slot in rm.RUNTIME_SLOT.items()}
            merged[rc.NAMES[rc.POLLS]] = int(sw[SW_POLLS])
            merged[rc.NAMES[rc.EMPTY_POLLS]] = int(sw[SW_EMPTY_POLLS])
            out["counters"] = merged
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None


def _factory_fpga(config=None) -> FpgaBackend:
    return FpgaBackend(config, name="fpga")


def _factory_emu(config=None) -> FpgaBackend:
    d = _cfg(config, "device_dir", None)
    if not d:
        raise ConfigError("fpga-emu needs the directory `tickpath fpga emulate` uses",
                          key="backend.fpga.device_dir")
    return FpgaBackend(config, device_dir=d, name="fpga-emu")


register_backend(BackendInfo(
    name="fpga", kind=EVENTS, factory=_factory_fpga,
    from_config=lambda cfg: _factory_fpga(dict(cfg.backend.fpga)),
    requires="an FPGA card with the tickpath parser behind the Xilinx XDMA driver: "
             "/dev/xdma<N>_user and /dev/xdma<N>_c2h_<i>, readable/writable by this user",
    summary="events decoded on the card, streamed over XDMA C2H (no software decode)"))
register_backend(BackendInfo(
    name="fpga-emu", kind=EVENTS, factory=_factory_emu,
    from_config=lambda cfg: _factory_emu(dict(cfg.backend.fpga)),
    requires="a running `tickpath fpga emulate --device-dir DIR` (device_dir=DIR)",
    summary="the fpga backend against the software emulator's device directory"))
