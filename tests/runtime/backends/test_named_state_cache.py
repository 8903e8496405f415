"""The AF_XDP and FPGA polls take NamedTuple states (XskState, FpgaState) and still load
from numba's on-disk cache in a new process: a state type keyed by something per-process
would recompile them at every start."""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json
import numpy as np
from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.afxdp import poll as P
from tickpath.fpga.host.backend import SW_FD, SW_WORDS, FpgaState, fpga_poll
from tickpath.fpga.record import RECORD_BYTES
from tickpath.runtime.core.event import EVENT_DTYPE

u32 = lambda: np.zeros(1, np.uint32)
params = np.zeros(P.N_PARAMS, np.int64)
params[P.P_FD] = -1
params[P.P_RX_MASK] = 7
params[P.P_FILL_SIZE] = 8
xs = P.XskState(u32(), u32(), np.zeros(16, np.uint64), u32(), u32(), u32(),
                np.zeros(8, np.uint64), np.zeros(4096, np.uint8), np.zeros(2, np.int64),
                np.zeros(P.N_CURSORS, np.int64), params, C.new_counters(),
                np.zeros(P.N_DETAIL, np.int64))
n_x = P.afxdp_poll(xs, np.zeros((4, 2048), np.uint8), np.zeros(4, np.int32), np.zeros(4, np.int64))
fs = FpgaState(np.zeros(SW_WORDS, np.int64), np.zeros(RECORD_BYTES, np.uint8))
fs.words[SW_FD] = -1
n_f = fpga_poll(fs, np.zeros(4, EVENT_DTYPE))
out = {}
for name, f in (("afxdp_poll", P.afxdp_poll), ("fpga_poll", fpga_poll)):
    st = f.stats
    out[name] = {"hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values())}
print(json.dumps({"polls": [int(n_x), int(n_f)], **out}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_afxdp_and_fpga_polls_load_from_the_cache_with_named_states():
    first = _probe()              # the first-ever run may compile (and writes the cache)
    assert first["polls"][0] == 0 and first["polls"][1] < 0   # empty ring; fd -1: -EBADF
    second = _probe()
    for name in ("afxdp_poll", "fpga_poll"):
        assert second[name]["hits"] >= 1 and second[name]["misses"] == 0, second
