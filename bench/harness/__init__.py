"""tickpath.bench.harness: the side-by-side benchmark of receive paths (run, backends,
report, stages, netns). Light on import: the CLI reads DEFAULT_ORDER without numba."""

# every receive path `tickpath bench` knows, in the order its report lists them (floor-recv,
# the C floor, first: the report divides each path's p50 by its own)
DEFAULT_ORDER = ("floor-recv", "python", "kernel", "kernel-busypoll", "floor-recv-veth", "afxdp",
                 "fpga-emu")
