"""hostconfig's plan is read by the runtime's own config reader: the same file, the same
refusals, and what the runtime would run with (defaults included)."""
import pytest

from tickpath.hostconfig.plan import CONFIG_KEYS, load_plan, plan_from_dict
from tickpath.runtime.config import schema
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.placement import choose_cores


def test_full_and_defaults(tmp_path):
    f = tmp_path / "rt.toml"
    f.write_text('[cores]\nrx = [3]\n[nic]\ninterface = "eth0"\n[buffers]\n'
                 'frame_bytes = 2048\nframes = 1024\nring_capacity = 4096\nhugepages = true\n')
    p = load_plan(str(f))
    assert p.rx_cores == [3] and p.interface == "eth0" and p.hugepages
    assert p.buffer_bytes() == 2048 * 1024 + 4096 * 64
    assert p.hugepages_2m_needed() == 2
    e = plan_from_dict({})   # an empty file: the runtime's defaults, audited as it would run
    d = schema.defaults().buffers
    assert e.rx_cores == choose_cores(1) and e.interface is None and e.hugepages  # "auto"
    assert e.buffer_bytes() == d.frames * d.frame_bytes
    assert not plan_from_dict({"buffers": {"hugepages": "off"}}).hugepages
    assert {s for s, *_ in CONFIG_KEYS} == {"cores", "nic", "buffers"}
    for s, k, *_ in CONFIG_KEYS:   # every key the plan names is a runtime key
        assert k in schema.SCHEMA[s]


@pytest.mark.parametrize("cfg, key", [
    ({"cores": {"rx": "2"}}, "cores.rx"), ({"cores": {"rx": [True]}}, "cores.rx"),
    ({"cores": {"rx": [-1]}}, "cores.rx"), ({"cores": {"rx": [2, 3]}}, "cores.rx"),
    ({"nic": {"interface": 3}}, "nic.interface"), ({"buffers": {"frames": True}}, "buffers.frames"),
    ({"buffers": {"frames": 0}}, "buffers.frames"), ({"buffers": {"hugepages": "yes"}}, "buffers.hugepages"),
    ({"cores": 5}, "cores"), ({"feed": {"prot": 1}}, "feed.prot")])
def test_bad_values_are_refused_naming_the_key(cfg, key):
    with pytest.raises(ConfigError) as ei:
        plan_from_dict(cfg)
    assert key in str(ei.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read runtime config"):
        load_plan(str(tmp_path / "none.toml"))
    (tmp_path / "bad.toml").write_text("[cores\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(str(tmp_path / "bad.toml"))
