"""Host-side control of the parser through its registers (card or emulator alike).

Slow path: enable/disable, drop-on-full vs back-pressure, UDP port and locate filters,
COMMAND strobes with their acknowledgement, and a decoded status/counter snapshot. The
hot path never calls this; `fpga status` and the backend's stats() do.
"""
from __future__ import annotations

import time

import numpy as np
from tickpath.runtime.core.errors import BackendError, ConfigError

from tickpath.fpga import regmap as rm
from tickpath.fpga.record import RECORD_BYTES
from tickpath.fpga.host.xdma import DEFAULT_DEVICE_DIR, UserBar

COMMAND_TIMEOUT_NS = 2_000_000_000


class ParserControl:
    def __init__(self, device_dir: str = DEFAULT_DEVICE_DIR, card: int = 0, writable: bool = True):
        self.bar = UserBar(device_dir, card, writable=writable)
        self.node = self.bar.node
        try:
            self.check_identity()
        except BaseException:
            self.bar.close()
            raise

    def check_identity(self) -> None:
        """The BAR must be a tickpath parser speaking our register map and record size."""
        ident = self.bar.read32(rm.ID)
        if ident != rm.ID_MAGIC:
            raise BackendError("user BAR is not a tickpath parser (ID register)", node=self.node,
                               id=hex(ident), expected=hex(rm.ID_MAGIC))
        major = self.bar.read32(rm.REG["VERSION"]) >> 16
        if major != rm.VERSION >> 16:
            raise BackendError("register map major version differs", node=self.node, major=major,
                               expected=rm.VERSION >> 16)
        rec = self.bar.read32(rm.REG["RECORD_BYTES"])
        if rec != RECORD_BYTES:
            raise BackendError("record stream not aligned to 64-byte records", node=self.node,
                               record_bytes=rec, expected=RECORD_BYTES)

    # -- control --
    def _set_ctrl(self, bit: int, on: bool) -> None:
        v = self.bar.read32(rm.CONTROL)
        self.bar.write32(rm.CONTROL, (v | bit) if on else (v & ~bit))

    def enable(self, on: bool = True) -> None:
        self._set_ctrl(rm.CTRL_ENABLE, on)

    def set_locates(self, locates) -> None:
        """Pass only these locates (plus locate 0); None = every locate (filter off)."""
        base = rm.LOCATE_BITMAP >> 2
        words = rm.LOCATE_BITMAP_BYTES // 4
        if locates is None:
            self._set_ctrl(rm.CTRL_LOCATE_FILTER, False)
            return
        bitmap = np.zeros(words, np.uint32)
        for loc in locates:
            if not 0 <= int(loc) <= 65535:
                raise ConfigError("locate out of range", locate=loc)
            bitmap[int(loc) >> 5] |= np.uint32(1 << (int(loc) & 31))
        self.bar.u32[base:base + words] = bitmap
        self._set_ctrl(rm.CTRL_LOCATE_FILTER, True)

    def command(self, bits: int, timeout_ns: int = COMMAND_TIMEOUT_NS) -> None:
        """Strobe COMMAND bits and wait for the card to clear them (its acknowledgement)."""
        self.bar.write32(rm.COMMAND, bits)
        deadline = time.monotonic_ns() + timeout_ns
        while self.bar.read32(rm.COMMAND) != 0:
            if time.monotonic_ns() > deadline:
                raise BackendError("card did not acknowledge a command", node=self.node,
                                   command=hex(bits), timeout_ns=timeout_ns)
            time.sleep(0.0005)

    def reset_counters(self) -> None:
        self.command(rm.CMD_RESET_COUNTERS)

    def clear_overflow(self) -> None:
        self.command(rm.CMD_CLEAR_OVERFLOW)

    def reset_session(self) -> None:
        self.command(rm.CMD_RESET_SESSION)

    # -- observation --
    def counters(self) -> dict:
        base = rm.COUNTERS_BASE >> 3
        vals = np.array(self.bar.u64[base:base + rm.N_COUNTERS])   # one snapshot copy
        return {name.lower(): int(vals[i]) for i, (name, _m) in enumerate(rm.COUNTER_NAMES)}

    def status(self) -> dict:
        r = self.bar.read32
        st = r(rm.STATUS)
        ctrl = r(rm.CONTROL)
        sess = bytes(np.asarray(self.bar.u32).view(np.uint8)[rm.SESSION:rm.SESSION + rm.SESSION_BYTES])
        return {
            "node": self.node,
            "id": hex(r(rm.ID)),
            "version": f"{r(rm.REG['VERSION']) >> 16}.{r(rm.REG['VERSION']) & 0xFFFF}",
            "record_bytes": r(rm.REG["RECORD_BYTES"]),
            "event_version": r(rm.REG["EVENT_VERSION"]),
            "fifo_depth": r(rm.REG["FIFO_DEPTH"]),
            "fifo_level": r(rm.REG["FIFO_LEVEL"]),
            "fifo_high_water": r(rm.REG["FIFO_HIGH_WATER"]),
            "link_up": bool(st & rm.ST_LINK_UP),
            "enabled": bool(st & rm.ST_ENABLED),
            "overflow": bool(st & rm.ST_OVERFLOW),
            "session_locked": bool(st & rm.ST_SESSION_LOCKED),
            "input_done": bool(st & rm.ST_INPUT_DONE),
            "drop_on_full": bool(ctrl & rm.CTRL_DROP_ON_FULL),
            "locate_filter": bool(ctrl & rm.CTRL_LOCATE_FILTER),
            "udp_port": r(rm.UDP_PORT),
            "session": sess.rstrip(b"\0").decode("ascii", "replace"),
            "expected_seq": self.bar.read64(rm.REG["EXPECTED_SEQ"]),
            "alive_ns": self.bar.read64(rm.REG["ALIVE_NS"]),
            "counters": self.counters(),
        }

    def wait_status(self, bit: int, on: bool = True, timeout_ns: int = 10_000_000_000) -> bool:
        """Poll STATUS until `bit` is on (or off); False on timeout."""
        deadline = time.monotonic_ns() + timeout_ns
        while bool(self.bar.read32(rm.STATUS) & bit) != on:
            if time.monotonic_ns() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self) -> None:
        self.bar.close()
