"""tickpath.fpga: the FPGA offload path.

Where the bytes are: record.py (the C2H record format = runtime.event.EVENT_DTYPE),
regmap.py (the parser's register file). Device access: xdma.py (XDMA nodes by card and
channel, user-BAR mmap, C2H reads), control.py (registers from the host). The backend:
backend.py ("fpga", "fpga-emu"; jitted poll over libc read, libc_nb.py). The software card:
emu_rom.py (ITCH field-extraction ROM), emu_datapath.py (8-byte-beat parser, FIFO),
emu_model.py (card object), emu_inputs.py (UDP / pcap / H2C), emulator.py (the process).
CLI: cli.py (`tickpath fpga emulate`, `tickpath fpga status`).
"""
from tickpath.runtime.sys.jitcache import use_versioned_cache as _use_versioned_cache

_use_versioned_cache()   # numba's cache per version of the sources (runtime/sys/jitcache.py says why)
