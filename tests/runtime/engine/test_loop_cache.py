"""The receive loop loads from numba's on-disk cache in a new process (start-up is user time),
with or without wrappers (fault injection, capture), and a wrapping backend never runs the
inner backend's cached loop."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from numba import njit

from tickpath.runtime.backends.socket import SocketBackend, socket_loop
from tickpath.runtime.engine.loop import frames_loop

PROBE = r"""
import json
from tickpath.runtime.config import schema as config
from tickpath.runtime.engine.runner import Runtime
from tickpath.runtime.backends.socket import socket_loop
cfg = config.merge({"feed": {"address": "127.0.0.1", "port": 0}})
rt = Runtime(cfg)
with rt:
    rt.open()
    rt.warm_up()
st = socket_loop.stats
print(json.dumps({"hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                  "warm_up_s": rt.warm_up_s}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_socket_loop_from_the_cache():
    _probe()                      # the first-ever run may compile (and writes the cache)
    second = _probe()
    assert second["hits"] >= 1 and second["misses"] == 0, second


def test_backends_offer_their_own_cached_loop_and_wrappers_do_not():
    assert frames_loop(SocketBackend) is socket_loop

    class Wrapper:                # the shape of FaultBackend / CaptureBackend
        loop = None
        poll = staticmethod(socket_loop)   # any jitted function stands in for the wrapped poll

    assert frames_loop(Wrapper) is not socket_loop


WRAPPED_PROBE = r"""
import json, sys
from tickpath.runtime.config import schema as config
from tickpath.runtime.engine.runner import Runtime
table = {"feed": {"address": "127.0.0.1", "port": 0}, "faults": {"drop_rate": 0.01}}
if sys.argv[1]:
    table["capture"] = {"path": sys.argv[1]}
rt = Runtime(config.merge(table))
with rt:
    rt.open()
    rt.warm_up()
    st = rt.backend.loop.stats
    print(json.dumps({"hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                      "module": rt.backend.loop.__module__, "warm_up_s": rt.warm_up_s}))
"""


@pytest.mark.parametrize("capture", [False, True], ids=["faults", "capture+faults"])
def test_a_wrapped_backend_loads_its_loop_from_the_cache_in_a_new_process(tmp_path, capture):
    # `tickpath run` with [faults] / [capture] used to compile its loop at every start (minutes)
    arg = str(tmp_path / "cap.pcap") if capture else ""

    def probe():
        out = subprocess.run([sys.executable, "-c", WRAPPED_PROBE, arg], capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    probe()                       # the first-ever run compiles and writes the cache
    second = probe()
    assert second["module"].startswith("tickpath_loops.wrapped_"), second
    assert second["hits"] >= 1 and second["misses"] == 0, second


def test_a_wrapper_around_a_poll_no_new_process_can_import_falls_back_to_a_closure():
    from tickpath.runtime.backends.faults import FaultBackend, FaultConfig
    from tickpath.runtime.backends.registry import FRAMES

    @njit(nogil=True)
    def local_poll(state, payload, lengths, recv_ns):
        return 0

    class Local:
        kind = FRAMES
        poll = staticmethod(local_poll)

    fb = FaultBackend(Local(), FaultConfig(drop_rate=0.5), 4, 64)
    assert fb.loop is None and fb.wrapped.kinds == ("faults",) and fb.wrapped.base is local_poll
    assert frames_loop(fb) is not None     # the engine builds its own (uncached) loop
