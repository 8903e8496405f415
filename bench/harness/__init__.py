"""tickpath.bench.harness: the side-by-side benchmark of receive paths (run, backends,
report, stages, netns). Light on import: the CLI reads DEFAULT_ORDER without numba."""

# every receive path `tickpath bench` knows, in the order its report lists them
DEFAULT_ORDER = ("python", "kernel", "kernel-busypoll", "afxdp", "fpga-emu")
