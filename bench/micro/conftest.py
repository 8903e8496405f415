"""Fixtures shared by the microbenchmarks."""
from __future__ import annotations

import os

import pytest

from tickpath.bench.scenarios.demo import cpu_model


@pytest.fixture
def placement(benchmark):
    """Pin to TICKPATH_BENCH_CPU if given; record CPU model and affinity either way."""
    cpu = os.environ.get("TICKPATH_BENCH_CPU")
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})
    benchmark.extra_info["cpu_model"] = cpu_model()
    benchmark.extra_info["affinity"] = sorted(os.sched_getaffinity(0))
    yield
    os.sched_setaffinity(0, before)
