"""The layering runtime/__init__.py promises: nothing under runtime/ imports the folders above
it (bench, hostconfig, fpga) — not by an import statement, and not by naming the module in a
string (importlib.import_module("tickpath.fpga..."), an entry in a list of module names).
Those folders register themselves through pyproject.toml's entry points instead."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ABOVE = ("tickpath.bench", "tickpath.hostconfig", "tickpath.fpga")
def _above(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in ABOVE)


def upward_references(path: Path) -> list[str]:
    """Every import of, or string naming, a module above runtime/ in this file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [f"line {node.lineno}: import {a.name}" for a in node.names if _above(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _above(node.module):
                out.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # a module named in a string (import_module, a list of names, "module:attr");
            # prose that mentions a folder (a docstring) has spaces and is not a reference
            word = node.value.strip()
            if " " not in word and _above(word.split(":")[0]):
                out.append(f"line {node.lineno}: string {node.value!r}")
    return out


FILES = sorted(p for p in (ROOT / "runtime").rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_runtime_does_not_reach_above_itself(path):
    if not path.exists():   # removed by a change that landed while the suite ran
        pytest.skip(f"{path} no longer exists")
    assert upward_references(path) == []


def test_the_scan_sees_each_form(tmp_path):
    """The checker itself can fail: each way of reaching up is caught, prose is not."""
    bad = {
        "import tickpath.bench.harness": 1,
        "from tickpath.fpga.host import backend": 1,
        "from tickpath.hostconfig import plan as p": 1,
        'import importlib\nimportlib.import_module("tickpath.fpga.host.backend")': 1,
        'MODS = ("tickpath.runtime.engine.cli", "tickpath.bench.cli")': 1,
        'EP = "tickpath.fpga.host.backend:CONFIG_KEYS"': 1,
        '"""see tickpath.bench.harness for the side-by-side run"""': 0,
        "from tickpath.runtime.feed import moldudp64": 0,
        "from . import sibling": 0,
    }
    for src, n in bad.items():
        f = tmp_path / "m.py"
        f.write_text(src + "\n")
        assert len(upward_references(f)) == n, src
