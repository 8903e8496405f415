"""The composition root: every folder's commands and backends come from pyproject.toml's entry
points; `tickpath --help` lists them all; a module that fails to import surfaces its
ImportError (never "invalid choice" / "unknown backend")."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from tickpath.runtime import cli
from tickpath.runtime.backends import registry
from tickpath.runtime.core.errors import ConfigError

COMMANDS = ("info", "demo", "run", "bench", "host", "fpga", "replay", "publish-itch", "stats",
            "soak", "trade", "kill", "audit", "backtest", "venue")


def test_help_lists_every_command():
    r = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert f"\n    {name} " in r.stdout, name
    assert "cannot be loaded" not in r.stdout and r.stderr == ""


def test_help_imports_neither_numba_nor_numpy():
    """Listing the commands loads every command's module: none may pull in numpy (~0.15 s)
    or numba (~0.5 s) at import (issue 12: `tickpath --help` <= 0.4 s)."""
    code = ("import sys, runpy\nsys.argv = ['tickpath', '--help']\n"
            "try:\n    runpy.run_module('tickpath.runtime.cli', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('numpy', 'numba') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY []", r.stdout[-300:]


def test_each_command_comes_from_the_folder_that_owns_it():
    owner = {ep.name: ep.value.split(":")[0] for ep in cli.command_entry_points()}
    for name in ("demo", "bench", "soak", "publish-itch", "venue"):
        assert owner[name].startswith("tickpath.bench."), (name, owner[name])
    assert owner["host"].startswith("tickpath.hostconfig.")
    assert owner["fpga"].startswith("tickpath.fpga.")
    assert owner["run"].startswith("tickpath.runtime.")


def _broken(tmp_path, monkeypatch, name: str) -> str:
    """A module on sys.path whose import fails the way a broken install does."""
    (tmp_path / f"{name}.py").write_text("import tickpath_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_command_whose_module_fails_to_import_raises_its_import_error(tmp_path, monkeypatch, capsys):
    mod = _broken(tmp_path, monkeypatch, "tp_broken_cmds")
    real = cli.command_entry_points()
    monkeypatch.setattr(cli, "command_entry_points", lambda: [
        *real, EntryPoint(name="broken", value=f"{mod}:add", group=cli.COMMAND_GROUP)])
    with pytest.raises(ImportError, match="tickpath_no_such_dependency"):
        cli.main(["broken", "--anything"])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "broken" in out and "cannot be loaded" in out and "tickpath_no_such_dependency" in out
    assert "venue" in out            # the other commands are still there


def test_a_backend_whose_module_fails_to_import_raises_its_import_error(tmp_path, monkeypatch):
    mod = _broken(tmp_path, monkeypatch, "tp_broken_backend")
    real = registry._entry_points

    def with_broken(group):
        eps = real(group)
        if group == registry.BACKEND_GROUP:
            eps["broken"] = EntryPoint(name="broken", value=mod, group=group)
        return eps
    monkeypatch.setattr(registry, "_entry_points", with_broken)
    with pytest.raises(ImportError, match="tickpath_no_such_dependency"):
        registry.get_backend("broken")
    with pytest.raises(ImportError):
        registry.backends()
    with pytest.raises(ConfigError, match="unknown backend"):   # a name nobody registers
        registry.get_backend("dpdk")
    assert registry.get_backend("kernel").name == "kernel"      # the others still load


def test_backends_are_listed_without_importing_them():
    names = registry.backend_names()
    assert {"kernel", "afxdp", "fpga", "fpga-emu"} <= set(names)
    r = subprocess.run([sys.executable, "-c",
                        "import sys; from tickpath.runtime.backends.registry import backend_names;"
                        "backend_names(); print(any(m.startswith('tickpath.fpga') for m in sys.modules))"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr
