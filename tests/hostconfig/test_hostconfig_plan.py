import pytest

from tickpath.hostconfig.plan import CONFIG_KEYS, load_plan, plan_from_dict
from tickpath.runtime.core.errors import ConfigError


def test_full_and_empty(tmp_path):
    f = tmp_path / "rt.toml"
    f.write_text('[cores]\nrx = [3, 2]\n[nic]\ninterface = "eth0"\n[buffers]\n'
                 'frame_bytes = 2048\nframes = 1024\nring_capacity = 4096\nhugepages = true\n')
    p = load_plan(str(f))
    assert p.rx_cores == [2, 3] and p.interface == "eth0" and p.hugepages
    assert p.buffer_bytes() == 2048 * 1024 + 4096 * 64
    assert p.hugepages_2m_needed() == 2
    e = plan_from_dict({})
    assert e.rx_cores == [] and e.buffer_bytes() is None and not e.hugepages
    assert {s for s, *_ in CONFIG_KEYS} == {"cores", "nic", "buffers"}


@pytest.mark.parametrize("cfg", [
    {"cores": {"rx": "2"}}, {"cores": {"rx": [True]}}, {"cores": {"rx": [-1]}},
    {"nic": {"interface": 3}}, {"buffers": {"frames": True}}, {"buffers": {"frames": 0}},
    {"buffers": {"hugepages": "yes"}}, {"cores": 5}])
def test_bad_types(cfg):
    with pytest.raises(ConfigError):
        plan_from_dict(cfg)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_plan(str(tmp_path / "none.toml"))
    (tmp_path / "bad.toml").write_text("[cores\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(str(tmp_path / "bad.toml"))
