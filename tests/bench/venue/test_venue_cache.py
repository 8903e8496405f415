"""The venue's numba cache: a second process loads the engine from it (no compile), and the
cache key (jit.DEPS_KEY) covers every file the venue's compiled code is built from, so an
edit to any of them recompiles instead of running stale code."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
import sys

from numba.core.registry import CPUDispatcher

from tickpath.bench.venue import jit

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from venue_helpers import Bench, enter
from tickpath.bench.venue import engine as E, flow as F
b = Bench()
b.run(enter(1, "B", 100, 99_0000))
f = F.new_flow(b.ref, 1)
F.gen(b.e, b.w, b.ring.hdr, b.ring.data, b.stop, *f, 10, 0)
st = [E.process_range.stats, F.gen.stats]
print(json.dumps({"hits": sum(sum(s.cache_hits.values()) for s in st),
                  "misses": sum(sum(s.cache_misses.values()) for s in st)}))
"""


def _probe(support_dir) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, support_dir], capture_output=True,
                         text=True, timeout=1200)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_engine_from_the_cache():
    import venue_helpers
    support = str(importlib.util.find_spec("venue_helpers").origin).rsplit("/", 1)[0]
    assert venue_helpers
    _probe(support)                   # the first-ever run may compile (and writes the cache)
    second = _probe(support)
    assert second["hits"] >= 2 and second["misses"] == 0, second


def test_deps_key_changes_with_any_dependency(tmp_path):
    a, c = tmp_path / "a.py", tmp_path / "c.py"
    a.write_text("x = 1\n")
    c.write_text("y = 2\n")
    k0 = jit.deps_key([a, c])
    assert jit.deps_key([a, c]) == k0                         # stable
    c.write_text("y = 3\n")
    assert jit.deps_key([a, c]) != k0                         # an edit anywhere changes it
    c.write_text("y = 2\n")
    assert jit.deps_key([a, c]) == k0


def _venue_jit_modules():
    return [m for m in jit.DEPS if m.startswith("tickpath.bench.venue.")]


def test_every_cached_venue_function_is_keyed_by_its_dependencies():
    n = 0
    for name in _venue_jit_modules():
        mod = importlib.import_module(name)
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == name:
                if obj.targetoptions.get("inline", "never") == "always":
                    continue
                assert isinstance(obj._cache, jit.DepsKeyedCache), f"{name}.{obj.__name__}"
                n += 1
    assert n >= 15
    from tickpath.bench.venue import engine as E
    codegen = E.process_range.targetctx.codegen()
    key = E.process_range._cache._index_key((), codegen)
    assert key[-1] == jit.DEPS_KEY


def _imported_tickpath_modules(name):
    src = open(importlib.util.find_spec(name).origin).read()
    out = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tickpath"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if importlib.util.find_spec(node.module).submodule_search_locations
                        and importlib.util.find_spec(sub) else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tickpath"))
    return out


def _has_numba_code(name):
    src = open(importlib.util.find_spec(name).origin).read()
    return any(t in src for t in ("@njit", "@vjit", "@intrinsic", "njit(", "vjit("))


def test_deps_list_every_module_with_numba_code_the_venue_reaches():
    seen, todo = set(), list(jit.DEPS)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in _imported_tickpath_modules(name):
            if _has_numba_code(dep):
                assert dep in jit.DEPS, f"{name} imports {dep} (numba code) not in jit.DEPS"
                todo.append(dep)
