"""Every registered backend honours the contract (psutil's test_contracts.py shape): built by
`from_config` from the runtime config; `open` either works or refuses with a TickpathError
that names what is missing (never a traceback from deep inside); an open backend polls 0 on
an idle source, reports its stats, and closes twice without complaint."""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.backends.registry import EVENTS, Backend, backends
from tickpath.runtime.config import schema as config
from tickpath.runtime.core.errors import TickpathError
from tickpath.runtime.core.event import EVENT_DTYPE

NAMES = sorted(backends())


def _events(n: int) -> np.ndarray:
    """A 64-byte-aligned record buffer (DMA engines want aligned buffers)."""
    raw = np.zeros((n + 1) * EVENT_DTYPE.itemsize, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip:skip + n * EVENT_DTYPE.itemsize].view(EVENT_DTYPE)


def _cfg():
    # an idle source: a free port nobody sends to
    return config.merge({"feed": {"address": "127.0.0.1", "port": 0}})


def test_the_builtin_backends_are_registered():
    assert {"kernel", "afxdp", "fpga", "fpga-emu"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_backend_contract(name):
    info = backends()[name]
    try:
        b = info.from_config(_cfg())
        opened = b.open(_events(256)) if info.kind == EVENTS else \
            b.open(np.zeros((8, 2048), np.uint8))
    except TickpathError as exc:
        # refused up front, with key=value detail naming what is missing
        assert "=" in str(exc), str(exc)
        pytest.skip(f"{name} cannot open here (checked: a clear refusal): {exc}")
    assert isinstance(opened, Backend) and opened.kind == info.kind
    try:
        if info.kind == EVENTS:
            n = opened.poll(opened.state, _events(256))
        else:
            n = opened.poll(opened.state, np.zeros((8, 2048), np.uint8), np.zeros(8, np.int32),
                            np.zeros(8, np.int64))
        assert n == 0
        st = opened.stats()
        assert isinstance(st, dict) and st
    finally:
        opened.close()
        opened.close()    # idempotent
