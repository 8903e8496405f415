"""Generated modules: how code specialised at run time still loads from numba's disk cache.

numba caches a function by the file that defines it. A function that calls another one
passed as an argument, or closed over, is keyed by that dispatcher's per-process identity and
recompiles in every process (README "Start-up is user time"). So where a loop must be
specialised on something chosen at run time — a strategy (runtime/trading), a wrapper around
a backend's poll (runtime/backends/wrapped.py) — a tiny module is written into a cache
directory (~/.cache/tickpath/loops, or $TICKPATH_LOOP_DIR), named by a hash of its text and
of everything its code depends on, that imports the parts by name and defines cached @njit
entry points calling them by name. The second start imports the same file and numba loads
the machine code.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile

GENERATED_PACKAGE = "tickpath_loops"     # sys.modules prefix of every generated module


def loop_dir() -> str:
    """Where generated modules live: $TICKPATH_LOOP_DIR, ~/.cache/tickpath/loops, else /tmp."""
    d = os.environ.get("TICKPATH_LOOP_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tickpath", "loops")
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(tempfile.gettempdir(), f"tickpath-loops-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def generate_module(text: str, stem: str, deps: bytes):
    """Write `text` to <loop_dir>/<stem>_<hash>.py (once; atomically) and import it."""
    digest = hashlib.sha256(text.encode() + deps).hexdigest()[:16]
    name = f"{stem}_{digest}"
    path = os.path.join(loop_dir(), name + ".py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    modname = f"{GENERATED_PACKAGE}.{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def importable_by_name(fn) -> bool:
    """True when a generated module can `from fn.__module__ import fn.__name__` in a new
    process: a module-level function of a module found on the import path (not a closure, a
    test file imported by path, or another generated module)."""
    modname, name = getattr(fn, "__module__", None), getattr(fn, "__name__", "")
    mod = sys.modules.get(modname or "")
    if mod is None or not name.isidentifier() or getattr(mod, name, None) is not fn:
        return False
    if modname.startswith(GENERATED_PACKAGE + "."):
        return False
    try:
        spec = importlib.util.find_spec(modname)
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None)
    return bool(origin) and os.path.realpath(origin) == os.path.realpath(getattr(mod, "__file__", "") or "")


def source_bytes(modname: str) -> bytes:
    """The source of a module by name (b"" when it has none): a generated module's hash input."""
    f = getattr(sys.modules.get(modname), "__file__", None)
    try:
        with open(f, "rb") as fh:
            return fh.read()
    except (OSError, TypeError):
        return b""
