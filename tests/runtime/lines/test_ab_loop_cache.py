"""The A/B lines loop loads from numba's on-disk cache in a new process (it compiled at every
start while it took its polls and sink as function arguments), and a line A that is not a
plain kernel socket gets its own loop, never the cached socket one."""
from __future__ import annotations

import json
import subprocess
import sys

from tickpath.runtime.backends.socket import SocketBackend
from tickpath.runtime.lines.loop import ab_loop, ab_socket_loop

PROBE = r"""
import json, sys
from tickpath.runtime.config import schema as config
from tickpath.runtime.lines.loop import ab_socket_loop
from tickpath.runtime.lines.runner import RuntimeAB
cfg = config.merge({"feed": {"address": "127.0.0.1", "port": 0},
                    "lines": {"enabled": True, "b_address": "127.0.0.1", "b_port": 0},
                    "recovery": {"server": sys.argv[1], "bind_address": "127.0.0.1"} if sys.argv[1] else {},
                    "buffers": {"hugepages": "off"}})
rt = RuntimeAB(cfg, live_stats=False)
with rt:
    rt.open()
    rt.warm_up()
st = ab_socket_loop.stats
print(json.dumps({"hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                  "warm_up_s": rt.warm_up_s}))
"""


def _probe(server: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, server], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_ab_loop_from_the_cache():
    _probe()                      # the first-ever run may compile (and writes the cache)
    second = _probe()
    assert second["hits"] >= 1 and second["misses"] == 0, second
    # with a retransmission server configured it is the same cached loop (the server is a flag)
    with_server = _probe("127.0.0.1:9")
    assert with_server["hits"] >= 1 and with_server["misses"] == 0, with_server


def test_a_socket_line_a_gets_the_cached_loop_and_other_polls_do_not():
    assert ab_loop(SocketBackend()) is ab_socket_loop

    class Wrapper:                # the shape of FaultBackend / CaptureBackend / AF_XDP
        poll = staticmethod(ab_socket_loop)   # any jitted function stands in for another poll

    loop = ab_loop(Wrapper)
    assert loop is not ab_socket_loop and ab_loop(Wrapper) is loop   # built once per poll
