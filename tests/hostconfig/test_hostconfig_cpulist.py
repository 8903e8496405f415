import pytest
from hypothesis import given, strategies as st

from tickpath.hostconfig.discover.cpulist import (
    format_cpulist,
    format_cpumask,
    parse_cpulist,
    parse_cpumask,
)
from tickpath.hostconfig.discover.topology import format_cpulist as fc2, parse_cpulist as pc2
from tickpath.runtime.core.errors import ConfigError


def test_parse_examples():
    assert parse_cpulist("0-3,8") == [0, 1, 2, 3, 8]
    assert parse_cpulist("8,0-1\n") == [0, 1, 8]
    assert parse_cpulist("") == [] and parse_cpulist("(null)\n") == []
    assert parse_cpulist("0-7:2/4") == [0, 1, 4, 5]
    assert pc2 is parse_cpulist and fc2 is format_cpulist


@pytest.mark.parametrize("bad", ["0-3,x", "3-1", "1,,2", "-1", "a", "0-", "1-2-3",
                                 "0-99999999", "0-7:5/4", "0-7:1/0"])
def test_parse_rejects_malformed(bad):
    with pytest.raises(ConfigError, match="cpulist"):
        parse_cpulist(bad)


def test_format_examples():
    assert format_cpulist([8, 0, 1, 2, 3]) == "0-3,8"
    assert format_cpulist([]) == ""
    assert format_cpulist([5]) == "5"
    with pytest.raises(ConfigError):
        format_cpulist([-1])


@given(st.sets(st.integers(0, 300)))
def test_roundtrip(cpus):
    assert parse_cpulist(format_cpulist(cpus)) == sorted(cpus)


def test_cpumask():
    assert parse_cpumask("f3") == [0, 1, 4, 5, 6, 7]
    assert parse_cpumask("00000001,00000000") == [32]
    assert format_cpumask([0, 1], 4) == "3"
    assert format_cpumask([0, 1, 4, 5, 6, 7], 8) == "f3"
    assert format_cpumask([0, 33], 40) == "02,00000001"
    for bad in ("", "xyz", "f,", "0x3"):
        with pytest.raises(ConfigError):
            parse_cpumask(bad)


@given(st.sets(st.integers(0, 127)), st.integers(1, 128))
def test_cpumask_roundtrip(cpus, n):
    assert parse_cpumask(format_cpumask(cpus, n)) == sorted(cpus)
