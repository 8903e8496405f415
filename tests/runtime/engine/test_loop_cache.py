"""The receive loop loads from numba's on-disk cache in a new process (start-up is user time),
and a wrapping backend (fault injection) never runs the inner backend's cached loop."""
from __future__ import annotations

import json
import subprocess
import sys

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
