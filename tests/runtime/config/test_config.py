"""The runtime config: the shipped example loads; unknown keys, wrong types and impossible
values are refused with the key and the reason."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tickpath.runtime.config import schema as config
from tickpath.runtime.core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "runtime" / "example.toml"


def test_example_config_is_complete_and_loads():
    cfg = config.load(str(EXAMPLE))
    assert cfg == dataclasses.replace(config.defaults(), buffers=cfg.buffers)  # every default documented
    text = EXAMPLE.read_text()
    for section, keys in config.SCHEMA.items():
        assert f"[{section}]" in text
        for key in keys:
            if key not in ("afxdp", "fpga"):
                assert f"\n{key} =" in text, f"{section}.{key} missing from example.toml"


@pytest.mark.parametrize("bad, words", [
    ({"feed": {"prot": 1}}, ["unknown key", "feed.prot"]),
    ({"nope": {}}, ["unknown section", "nope"]),
    ({"feed": {"port": "26400"}}, ["wrong type", "feed.port"]),
    ({"feed": {"port": True}}, ["wrong type", "feed.port"]),
    ({"feed": {"port": 70000}}, ["out of range", "feed.port"]),
    ({"buffers": {"ring_capacity": 1000}}, ["power of two", "buffers.ring_capacity"]),
    ({"buffers": {"frames": 0}}, ["out of range", "buffers.frames"]),
    ({"buffers": {"hugepages": "maybe"}}, ["not allowed", "buffers.hugepages"]),
    ({"cores": {"rx": [0, 1]}}, ["one CPU", "cores.rx"]),
    ({"cores": {"rx": "any"}}, ["not allowed", "cores.rx"]),
    ({"backend": {"kind": "dpdk"}}, ["unknown backend", "backend.kind"]),
    ({"run": {"seconds": -1}}, ["out of range", "run.seconds"]),
    ({"feed": []}, ["must be a table", "feed"]),
])
def test_bad_config_is_refused_with_key_and_reason(bad, words):
    with pytest.raises(ConfigError) as ei:
        config.merge(bad)
    for w in words:
        assert w in str(ei.value)


def test_bad_toml_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[feed\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(str(p))
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(tmp_path / "missing.toml"))


def test_hugepages_bool_is_normalised():
    assert config.merge({"buffers": {"hugepages": True}}).buffers.hugepages == "require"
    assert config.merge({"buffers": {"hugepages": False}}).buffers.hugepages == "off"


def test_sections_are_typed_and_frozen():
    cfg = config.merge({"feed": {"port": 0}, "cores": {"rx": [3]}, "run": {"seconds": 2}})
    assert cfg.feed.port == 0 and cfg.cores.rx == (3,) and cfg.run.seconds == 2
    assert cfg["feed"]["port"] == 0 and cfg["feed"].get("nope", 7) == 7   # the mapping face
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.feed.port = 1
    with pytest.raises(TypeError):
        cfg["feed"]["port"] = 1
    with pytest.raises(TypeError):
        cfg.backend.afxdp["queue_id"] = 1          # the backend sub-tables are read-only too
    with pytest.raises(KeyError):
        cfg["feed"]["prot"]


def test_a_changed_value_is_a_new_config_checked_again():
    base = config.merge({"feed": {"port": 5}})
    cfg = config.merge({"run": {"seconds": 3}}, base=base)
    assert (cfg.feed.port, cfg.run.seconds, base.run.seconds) == (5, 3, 0.0)
    with pytest.raises(ConfigError, match="feed.port"):
        config.merge({"feed": {"port": 70000}}, base=base)


def test_every_key_is_a_field_and_every_field_a_key():
    """SCHEMA (what merge checks) is derived from the dataclasses: nothing defined twice."""
    d = config.defaults()
    assert set(config.SCHEMA) == set(d.keys())
    for section, keys in config.SCHEMA.items():
        assert set(keys) == set(d[section].keys())
        for key, (types, default) in keys.items():
            assert d[section][key] == default and types


def test_hostconfig_reads_the_same_file():
    """`tickpath host audit --config` understands the runtime's own example (auto cores, ring 0)."""
    from tickpath.hostconfig.plan import load_plan
    from tickpath.runtime.sys.placement import choose_cores
    p = load_plan(str(EXAMPLE))
    assert p.rx_cores == choose_cores(1) and p.ring_capacity == 0 and p.hugepages  # "auto" audits pages
    assert p.interface is None


@pytest.mark.parametrize("bad, words", [
    ({"feed": {"prot": 1}}, ["unknown key", "feed.prot"]),
    ({"cores": {"rx": [0, 1]}}, ["one CPU", "cores.rx"]),
    ({"buffers": {"frames": 0}}, ["out of range", "buffers.frames"]),
    ({"backend": {"fpga": {"chanel": 0}}}, ["unknown key", "backend.fpga.chanel"]),
])
def test_hostconfig_refuses_what_the_runtime_refuses(bad, words):
    """One reader: `tickpath host audit --config` refuses a file with the runtime's message."""
    from tickpath.hostconfig.plan import plan_from_dict
    for read in (config.merge, plan_from_dict):
        with pytest.raises(ConfigError) as ei:
            read(bad)
        for w in words:
            assert w in str(ei.value)


@pytest.mark.parametrize("table, key", [("afxdp", "queue_idd"), ("fpga", "chanel")])
def test_a_misspelt_backend_subtable_key_is_refused_by_name(table, key):
    with pytest.raises(ConfigError) as exc:
        config.merge({"backend": {table: {key: 1}}})
    assert f"backend.{table}.{key}" in str(exc.value)


def test_known_backend_subtable_keys_load():
    cfg = config.merge({"backend": {"afxdp": {"queue_id": 1}, "fpga": {"channel": 0}}})
    assert cfg.backend.afxdp["queue_id"] == 1 and cfg.backend.fpga["channel"] == 0
