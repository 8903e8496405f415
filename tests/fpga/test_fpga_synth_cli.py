"""`tickpath fpga synth`: the synthesis report is a subcommand; without Yosys it says so."""
from __future__ import annotations

import shutil

from tickpath.runtime.cli import main


def test_synth_is_a_subcommand_and_names_a_missing_yosys(monkeypatch, capsys):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "yosys" else real_which(name, *a, **k))
    assert main(["fpga", "synth", "--generic"]) == 2
    err = capsys.readouterr().err
    assert "yosys not installed" in err and "ci/rtl-tools.sh" in err
