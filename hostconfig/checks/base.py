"""Checks are data: id, title, one-line why, and a function from a context to an outcome.

An outcome says what was read, what a low-latency host expects, the verdict (ok / warn /
fail / na / unknown), the exact fix, the changes `apply` may make at run time (`Change`:
a file write, a NIC feature or coalescing value) and the kernel command line items that
need a reboot. `run_checks` turns every check into a `Result`; anything a check cannot
learn is "unknown" with the reason, never a traceback.
"""
from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Callable

from tickpath.runtime.core.errors import ConfigError, TickpathError

from tickpath.hostconfig.plan import RuntimePlan
from tickpath.hostconfig.discover.sysfs import HostFS, Unknown
from tickpath.hostconfig.discover.topology import Topology, discover

OK, WARN, FAIL, NA, UNKNOWN = "ok", "warn", "fail", "na", "unknown"
VERDICTS = (OK, WARN, FAIL, NA, UNKNOWN)

# how apply compares a file's read-back with the value it wrote
COMPARE_KINDS = ("word", "selected", "int", "cpulist", "cpumask")


@dataclass(frozen=True)
class Change:
    """One run-time change: kind "file" (target = host path), "nic_feature" or
    "nic_coalesce" (target = interface, key = feature / coalesce field)."""

    kind: str
    target: str
    value: object
    key: str | None = None
    compare: str = "word"

    def label(self) -> str:
        if self.kind == "file":
            return f"{self.target} <- {self.value}"
        return f"{self.kind} {self.target} {self.key} <- {self.value}"


@dataclass
class Outcome:
    read: str
    expected: str
    verdict: str
    fix: str = ""
    changes: list[Change] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)


@dataclass
class Result:
    id: str
    title: str
    why: str
    scope: str
    read: str
    expected: str
    verdict: str
    fix: str
    changes: list[Change]
    cmdline: list[str]

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["changes"] = [c.__dict__ for c in self.changes]
        return d


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    why: str
    scope: str  # "host": any low-latency host; "plan": needs the runtime config
    run: Callable[["Context"], Outcome]


@dataclass
class Context:
    fs: HostFS
    topo: Topology
    plan: RuntimePlan | None = None
    nic_ops: object | None = None
    # RLIMIT_MEMLOCK soft limit in bytes (resource.RLIM_INFINITY means unlimited)
    memlock_bytes: int | None = None

    @classmethod
    def build(cls, root: str = "/", plan: RuntimePlan | None = None, nic_ops=None,
              memlock_bytes: int | None = None) -> "Context":
        fs = HostFS(root)
        if nic_ops is None and fs.root == "/":
            from tickpath.hostconfig.discover.nic import EthtoolOps

            nic_ops = EthtoolOps()
        if memlock_bytes is None:
            memlock_bytes = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        return cls(fs=fs, topo=discover(fs, nic_ops), plan=plan, nic_ops=nic_ops,
                   memlock_bytes=memlock_bytes)


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str, why: str, scope: str = "host"):
    """Register a check function under `id` (ids are the names `apply --only` takes)."""

    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = Check(id, title, why, scope, fn)
        return fn

    return deco


def unknown(u: Unknown | str, expected: str = "") -> Outcome:
    reason = u.reason if isinstance(u, Unknown) else u
    return Outcome(read=f"unknown: {reason}", expected=expected, verdict=UNKNOWN)


def na(reason: str, expected: str = "") -> Outcome:
    return Outcome(read=reason, expected=expected, verdict=NA)


def all_checks() -> dict[str, Check]:
    from tickpath.hostconfig.checks import host as checks_host
    from tickpath.hostconfig.checks import nic as checks_nic
    from tickpath.hostconfig.checks import plan as checks_plan

    return REGISTRY


def run_checks(ctx: Context, only: list[str] | None = None) -> list[Result]:
    checks = all_checks()
    ids = list(checks) if only is None else list(only)
    bad = [i for i in ids if i not in checks]
    if bad:
        raise ConfigError("unknown check id", ids=",".join(bad), known=",".join(checks))
    out = []
    for cid in ids:
        c = checks[cid]
        try:
            o = c.run(ctx)
        except TickpathError as exc:
            o = unknown(str(exc))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # why: a host we did not foresee must give a verdict, not a traceback
            o = unknown(f"check could not evaluate: {type(exc).__name__}: {exc}")
        out.append(Result(c.id, c.title, c.why, c.scope, o.read, o.expected, o.verdict,
                          o.fix, list(o.changes), list(o.cmdline)))
    return out


def exit_status(results: list[Result]) -> int:
    """0 when nothing failed, 1 when any check failed."""
    return 1 if any(r.verdict == FAIL for r in results) else 0


def sysctl_name(host_path: str) -> str:
    return host_path.removeprefix("/proc/sys/").replace("/", ".")
