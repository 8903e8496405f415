"""The kernel's cpulist and cpumask formats: defined in runtime/sys/cpulist.py (the runtime
reads them too, and runtime must not import hostconfig); this name is kept for hostconfig's
checks, apply and CLI."""
from tickpath.runtime.sys.cpulist import (  # noqa: F401  (re-exported)
    MAX_CPU_ID,
    format_cpulist,
    format_cpumask,
    parse_cpulist,
    parse_cpumask,
)
