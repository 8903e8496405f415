"""Topology discovery (`discover`, `Topology`, `choose_cores`): defined in
runtime/sys/topology.py, which the runtime's placement and `tickpath info` use as well;
this name is kept for hostconfig's checks."""
from tickpath.runtime.sys.topology import (  # noqa: F401  (re-exported)
    Nic,
    Node,
    PciDevice,
    Topology,
    choose_cores,
    discover,
    format_cpulist,
    parse_cpulist,
)
