"""pytest configuration for the microbenchmarks under bench/.

The project's pytest addopts carry --benchmark-disable (so `pytest tests/` runs benchmark
functions once, untimed). Asking for --benchmark-only (or --benchmark-enable) here means
"time them": this hook lifts the disable before pytest-benchmark sees the conflict, so
`pytest bench/ --benchmark-only` runs the suites (decoder, book, kernels, ring, pipeline,
afxdp, ...) and `--benchmark-autosave` / `--benchmark-compare` work as documented.
"""
import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    opt = config.option
    if getattr(opt, "benchmark_disable", False) and (getattr(opt, "benchmark_only", False)
                                                     or getattr(opt, "benchmark_enable", False)):
        opt.benchmark_disable = False   # why: an explicit request to time wins over addopts
