"""Kernel CPU list and CPU mask formats, parsed strictly.

The kernel prints CPU sets two ways: a "cpulist" ("0-3,8,10-11", Documentation/admin-guide/
kernel-parameters.rst "cpu lists") in files such as cpu/online, isolated, nohz_full and
irq/N/smp_affinity_list; and a hex "cpumask" in comma-separated 32-bit groups ("ff,00000003")
in irq/N/smp_affinity, irq/default_smp_affinity and workqueue/cpumask. Both parsers reject
anything malformed with a ConfigError naming the text, so callers turn it into an Unknown.
"""
from __future__ import annotations

import re

from tickpath.runtime.core.errors import ConfigError

# a cpulist item: N, N-M, or N-M:G/S (the "used/group" stride form of kernel-parameters.rst)
_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?$")
# the largest CPU id we accept: keeps a malformed "0-999999999" from building a huge set
MAX_CPU_ID = 65535


def parse_cpulist(text: str) -> list[int]:
    """"0-3,8" -> [0, 1, 2, 3, 8]; "" and "(null)" (old nohz_full) -> []; else ConfigError."""
    s = text.strip()
    if s in ("", "(null)"):
        return []
    cpus: set[int] = set()
    for item in s.split(","):
        m = _ITEM.match(item.strip())
        if not m:
            raise ConfigError("malformed cpulist", text=text, item=item)
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo or hi > MAX_CPU_ID:
            raise ConfigError("cpulist range out of order or too large", text=text, item=item)
        if m.group(3) is not None:
            used, group = int(m.group(3)), int(m.group(4))
            if group == 0 or used > group:
                raise ConfigError("malformed cpulist stride", text=text, item=item)
            cpus.update(c for c in range(lo, hi + 1) if (c - lo) % group < used)
        else:
            cpus.update(range(lo, hi + 1))
    return sorted(cpus)


def format_cpulist(cpus) -> str:
    """[0, 1, 2, 3, 8] -> "0-3,8" (the kernel's own form; empty set -> "")."""
    out: list[str] = []
    run_start = prev = None
    for c in sorted(set(int(x) for x in cpus)):
        if c < 0:
            raise ConfigError("negative cpu id", cpu=c)
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if run_start is not None:
            out.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
        run_start = prev = c
    if run_start is not None:
        out.append(str(run_start) if run_start == prev else f"{run_start}-{prev}")
    return ",".join(out)


def parse_cpumask(text: str) -> list[int]:
    """"ff,00000003" -> CPUs whose bits are set; ConfigError on anything but hex groups."""
    s = text.strip()
    if not s or not re.fullmatch(r"[0-9a-fA-F]+(,[0-9a-fA-F]+)*", s):
        raise ConfigError("malformed cpumask", text=text)
    value = int(s.replace(",", ""), 16)
    return [i for i in range(value.bit_length()) if value >> i & 1]


def format_cpumask(cpus, n_cpus: int) -> str:
    """CPUs -> the kernel's mask text: 32-bit groups, zero-padded, comma-separated."""
    value = 0
    for c in cpus:
        value |= 1 << int(c)
    n_groups = max(1, (max(n_cpus, value.bit_length()) + 31) // 32)
    groups = [(value >> (32 * i)) & 0xFFFFFFFF for i in reversed(range(n_groups))]
    # the kernel prints only as many hex digits as the CPU count needs in the top group
    top_digits = max(1, min(8, (max(n_cpus, 1) - 32 * (n_groups - 1) + 3) // 4))
    return ",".join(
        f"{g:0{top_digits}x}" if i == 0 else f"{g:08x}" for i, g in enumerate(groups)
    )
