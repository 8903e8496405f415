"""Bad input to `tickpath bench` is refused at setup with a key=value error, before traffic."""
from __future__ import annotations

import json

import pytest
from tickpath.bench.harness import run as H
from tickpath.bench.harness import report as R
from tickpath.bench.refs import sockperf as sockperf_ref
from tickpath.runtime.cli import build_parser, main
from tickpath.runtime.core.errors import ConfigError


def test_rates_parse_with_suffixes():
    assert H.parse_rates("50k,100K, 1.5M,2500") == [50_000.0, 100_000.0, 1_500_000.0, 2500.0]


@pytest.mark.parametrize("bad", ["abc", "50k,x", "10q", "", "-5k", "0", "1e5", "60M", "5k,,6k"])
def test_rates_that_are_not_numbers_are_refused(bad):
    with pytest.raises(ConfigError) as ei:
        H.parse_rates(bad)
    assert "rate" in str(ei.value)


def test_unknown_backend_names_are_refused_with_the_known_ones():
    with pytest.raises(ConfigError) as ei:
        H.parse_backends("kernel,dpdk,nope")
    msg = str(ei.value)
    assert "dpdk" in msg and "nope" in msg and "kernel" in msg and "afxdp" in msg
    with pytest.raises(ConfigError):
        H.parse_backends(" , ")
    assert H.parse_backends("kernel,python,kernel") == ["kernel", "python"]


@pytest.mark.parametrize("bad", ["a,b", "0", "0,1,2,3", "0,99999"])
def test_bad_cpus_are_refused(bad):
    with pytest.raises(ConfigError):
        H.parse_cpus(bad)


def test_default_cpus_put_sender_and_receiver_apart_when_there_are_two():
    import os
    tx, rx, _aux = H.parse_cpus(None)
    if len(os.sched_getaffinity(0)) >= 2:
        assert tx != rx and tx is not None
    assert rx in os.sched_getaffinity(0)


@pytest.mark.parametrize("kw", [dict(seconds=0), dict(seconds=-1), dict(repeats=0), dict(p99_bound_us=0),
                                dict(instruments=0), dict(msgs_per_packet=65)])
def test_out_of_range_params_are_refused(kw):
    with pytest.raises(ConfigError):
        H.BenchParams(backends=["kernel"], rates=[1000.0], **kw).check()


def _params(**kw):
    return H.BenchParams(backends=["kernel"], rates=[20_000.0], seconds=0.5, **kw)


def test_out_dir_with_a_different_run_is_refused_unless_forced(tmp_path):
    out = tmp_path / "o"
    H.prepare_out_dir(str(out), _params(), force=False)          # new: created
    (out / H.SUMMARY).write_text(json.dumps({"params": {"fingerprint": _params().fingerprint()}}))
    H.prepare_out_dir(str(out), _params(), force=False)          # the same run again: fine
    with pytest.raises(ConfigError) as ei:
        H.prepare_out_dir(str(out), _params(repeats=3), force=False)
    assert "different bench run" in str(ei.value) and "--force" in str(ei.value)
    H.prepare_out_dir(str(out), _params(repeats=3), force=True)


def test_out_dir_with_unknown_files_or_a_file_path_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="no bench summary"):
        H.prepare_out_dir(str(tmp_path / "d"), _params(), force=False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        H.prepare_out_dir(str(tmp_path / "f"), _params(), force=True)


def test_cli_refuses_bad_input_with_exit_2(tmp_path, capsys):
    assert main(["bench", "--rates", "fast", "--out", str(tmp_path / "a")]) == 2
    assert "rate" in capsys.readouterr().err
    assert main(["bench", "--backends", "kernel,warp", "--out", str(tmp_path / "b")]) == 2
    assert "warp" in capsys.readouterr().err
    assert main(["bench", "--backends", "kernel", "--rates", "1k", "--compare", str(tmp_path / "none"),
                 "--out", str(tmp_path / "c")]) == 2
    assert "compare" in capsys.readouterr().err


def test_bench_ring_subcommand_still_parses_next_to_the_bench_options():
    p = build_parser()
    a = p.parse_args(["bench", "ring", "--repeats", "1"])
    assert a.func.__name__ == "_cmd_bench_ring"
    a = p.parse_args(["bench", "--rates", "20k", "--sweep", "--p99-bound-us", "50"])
    assert a.func.__name__ == "cmd_bench" and a.sweep and a.p99_bound_us == 50.0


def test_compare_with_an_unreadable_dir_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        R.compare({"backends": {}}, str(tmp_path))


SOCKPERF_TEXT = """sockperf: [Valid Duration] RunTime=0.548 sec; SentMessages=35661; ReceivedMessages=35661
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Latency is 7.670 usec
sockperf: \x1b[2;35mTotal 35661 observations\x1b[0m; each percentile contains 356.61 observations
sockperf: ---> <MAX> observation = 2690.024
sockperf: ---> percentile 99.999 = 2690.024
sockperf: ---> percentile 99.900 =  814.466
sockperf: ---> percentile 99.000 =    8.988
sockperf: ---> percentile 50.000 =    5.613
sockperf: ---> <MIN> observation =    5.473
"""


def test_sockperf_output_is_parsed():
    r = sockperf_ref.parse_output(SOCKPERF_TEXT)
    assert r["p50_us"] == 5.613 and r["p99_us"] == 8.988 and r["p99.9_us"] == 814.466
    assert r["max_us"] == 2690.024 and r["observations"] == 35661 and r["dropped"] == 0
    assert sockperf_ref.parse_output("garbage") == {}
