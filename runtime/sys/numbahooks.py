"""tickpath's changes to numba's compiler, each applied when the numba module it changes loads.

Four changes, each in its own module with its reasons, measurements and off switch:
  runtime/sys/inlinecopy.py   the inliner copies callee IR in linear time (numba#8989);
  runtime/sys/inlinecache.py  the inliner runs each callee's front end once, not per call site;
  runtime/sys/literalargs.py  tickpath's functions compiled per argument type, not per constant;
  runtime/sys/cacheload.py    a cache load does not first load numba's whole compiler.
None changes what the compiled code computes. The first three make cold compiles (a user's
first start, a fresh test run) shorter, the last every later start.

Why at import: `tickpath --help` must not import numba (it costs ~0.5 s), so `install()` puts
a finder on sys.meta_path that waits for each numba module named here and runs the change
right after that module's own code; a module already loaded is changed at once. The finder
removes itself when nothing is left to wait for.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading

INLINER = "numba.core.inline_closurecall"
DISPATCHER = "numba.core.dispatcher"
CACHING = "numba.core.caching"
_pending: dict[str, list] = {}
_lock = threading.Lock()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the changes waiting for a module right after the module's code has run."""

    def find_spec(self, name, path=None, target=None):
        with _lock:
            changes = _pending.pop(name, None)
            if not _pending and self in sys.meta_path:
                sys.meta_path.remove(self)
        if changes is None:
            return None
        spec = importlib.util.find_spec(name)   # the real finder (the name is no longer pending)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for change in changes:
                change(module)
        spec.loader.exec_module = exec_module   # this spec's own loader instance
        return spec


def after_import(name: str, change) -> None:
    """Call change(module) once module `name` is loaded: now if it is, else right after."""
    if name in sys.modules:
        change(sys.modules[name])
        return
    with _lock:
        _pending.setdefault(name, []).append(change)
        if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport())


def install() -> None:
    """Register all four changes (each checks its own off switch and numba's shape)."""
    from tickpath.runtime.sys import cacheload, inlinecache, inlinecopy, literalargs
    after_import(INLINER, inlinecopy.install)
    after_import(INLINER, inlinecache.install)
    after_import(DISPATCHER, literalargs.install)
    after_import(CACHING, cacheload.install)
