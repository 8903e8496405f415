"""Build a reference C program (the receive floor, the tick-to-trade floor) at run time.

The binary goes into a per-user cache directory named by a hash of the source and flags, so
an edit rebuilds and a second run reuses it. The compiler is $CC, else cc/gcc/clang on PATH;
without one — or when the build fails — the caller's `unavailable` error is raised with the
reason, so the harness can skip that path and say why (the rest of the bench runs).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CFLAGS = ("-O2", "-std=c11", "-Wall")


class CUnavailable(RuntimeError):
    """No C compiler here, or the source did not build; the message says which."""


def user_cache_dir(subdir: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tickpath" / subdir


def compiler() -> str | None:
    """$CC when set and non-empty, else the first of cc/gcc/clang on PATH (None: none)."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build(source: Path, out_dir: Path, name: str, unavailable: type[Exception] = CUnavailable,
          cflags: tuple = CFLAGS, timeout_s: float = 120.0) -> Path:
    """The executable built from `source` into out_dir (reused while source and flags are the
    same); `unavailable(reason)` when there is no compiler or the build fails."""
    cc = compiler()
    if not cc:
        raise unavailable(f"no C compiler (cc/gcc/clang) on PATH: the C {name} is skipped")
    src = Path(source).read_bytes()
    key = hashlib.sha256(src + "\0".join(cflags).encode()).hexdigest()[:16]
    exe = Path(out_dir) / f"{name}-{key}"
    if exe.exists():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = exe.with_name(exe.name + f".{os.getpid()}.tmp")   # rename: a concurrent build never runs half a file
    try:
        proc = subprocess.run([cc, *cflags, "-o", str(tmp), str(source)],
                              capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise unavailable(f"{cc} could not build {Path(source).name}: {exc}") from None
    if proc.returncode != 0:
        raise unavailable(f"{cc} failed to build {Path(source).name} (rc={proc.returncode}): "
                          f"{proc.stderr.strip()[-500:]}")
    os.replace(tmp, exe)
    return exe
