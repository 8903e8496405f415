"""The host CLI through a tiny argparse harness (runtime/cli.py wires the real one)."""
import argparse
import json

import pytest

from tickpath.hostconfig.cli import add_subcommands

CONFIG = ('[cores]\nrx = [2]\n[nic]\ninterface = "eth0"\n'
          '[buffers]\nframe_bytes = 2048\nframes = 1024\nhugepages = false\n')


def _run(argv, **inject):
    p = argparse.ArgumentParser(prog="tickpath")
    add_subcommands(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(argv)
    for k, v in inject.items():  # test-only: euid, NIC ops, memlock limit
        setattr(args, k, v)
    return args.func(args)


@pytest.fixture
def cfg(tmp_path):
    f = tmp_path / "rt.toml"
    f.write_text(CONFIG)
    return str(f)


def test_audit_exit_status_and_json(make_host, fake_nic, cfg, capsys):
    tuned = make_host("tuned")
    nic_ok = fake_nic(features={"rx-gro": False}, coalesce={"use_adaptive_rx_coalesce": 0})
    assert _run(["host", "audit", "--root", tuned, "--config", cfg, "--json"],
                nic_ops=nic_ok, memlock_bytes=1 << 30) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_status"] == 0 and len(doc["results"]) >= 30
    assert _run(["host", "audit", "--root", make_host("untuned"), "--config", cfg],
                nic_ops=fake_nic(), memlock_bytes=1 << 30) == 1
    out = capsys.readouterr().out
    assert "plan_isolated" in out and "fail" in out


def test_audit_table_keeps_brackets(make_host, capsys):
    _run(["host", "audit", "--root", make_host("untuned"), "--only", "nic_gro"])
    assert "[nic] interface" in capsys.readouterr().out  # rich markup escaped


def test_bad_inputs_exit_2(make_host, tmp_path, capsys):
    root = make_host("untuned")
    assert _run(["host", "audit", "--root", root, "--config", str(tmp_path / "no.toml")]) == 2
    assert "cannot read runtime config" in capsys.readouterr().err
    assert _run(["host", "apply", "--root", root, "--only", "thp,bogus", "--dry-run"]) == 2
    assert "unknown check id" in capsys.readouterr().err
    assert _run(["host", "apply", "--root", root, "--only", "thp"], euid=1000) == 2
    assert "needs root" in capsys.readouterr().err
    assert _run(["host", "jitter", "--cpus", "0-3,x", "--seconds", "0.1"]) == 2
    assert "malformed cpulist" in capsys.readouterr().err
    assert _run(["host", "rollback", str(tmp_path / "none.json"), "--root", root],
                euid=0) == 2


def test_apply_and_rollback_commands(make_host, fake_nic, cfg, tmp_path, capsys):
    root = make_host("untuned")
    rb = str(tmp_path / "rb.json")
    nic = fake_nic()
    rc = _run(["host", "apply", "--root", root, "--config", cfg, "--only",
               "thp,ksm,plan_isolated,nic_gro", "--rollback-file", rb], euid=0, nic_ops=nic)
    out = capsys.readouterr().out
    assert rc == 0 and "applied" in out and "isolcpus=managed_irq,domain,2" in out
    assert nic.features["eth0"]["rx-gro"] is False
    with open(f"{root}/sys/kernel/mm/ksm/run") as f:
        assert f.read() == "0\n"
    assert _run(["host", "rollback", rb, "--root", root, "--json"], euid=0, nic_ops=nic) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["restored"]) == 3 and not doc["failed"]
    with open(f"{root}/sys/kernel/mm/ksm/run") as f:
        assert f.read() == "1\n"


def test_jitter_command(capsys):
    assert _run(["host", "jitter", "--cpus", "0", "--seconds", "0.1", "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert r["cpu"] == 0 and r["samples"] > 1000
