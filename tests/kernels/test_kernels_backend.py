"""Backend choice in the three environments (no cupy; cupy without a device; forced), and
the GPU dispatch path run end to end with a numpy-backed stand-in for cupy."""
from __future__ import annotations

import logging
import types

import numpy as np
import pytest

import tickpath.kernels as K
from tickpath.kernels import _backend
from tickpath.kernels.gpu import cupy_batch as gpu
from tickpath.runtime.core.errors import BackendError, ConfigError


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    monkeypatch.delenv(_backend.ENV_VAR, raising=False)
    K.reset_backend()
    yield
    K.reset_backend()


def _no_cupy():
    raise ImportError("No module named 'cupy'")


class _CudaRuntimeError(RuntimeError):
    pass


def _fake_cupy(n_devices):
    """A cupy stand-in: numpy underneath, a runtime that has n devices (or raises)."""
    fake = types.ModuleType("cupy")
    fake.__getattr__ = lambda name: getattr(np, name)

    def get_count():
        if n_devices is None:
            raise _CudaRuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return n_devices

    runtime = types.SimpleNamespace(getDeviceCount=get_count,
                                    getDeviceProperties=lambda i: {"name": b"FakeGPU"})
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    fake.asnumpy = np.asarray
    fake.asarray = np.asarray
    return fake


def test_no_cupy_falls_back_to_numba_with_the_reason(monkeypatch, caplog):
    monkeypatch.setattr(_backend, "_import_cupy", _no_cupy)
    with caplog.at_level(logging.INFO, logger="tickpath.kernels"):
        b = K.backend()
    assert b.name == "numba" and not b.forced
    assert "cupy not installed" in b.reason
    assert "backend=numba" in caplog.text
    assert K.backend() is b            # chosen once
    assert b.as_dict()["name"] == "numba"


def test_this_machine_has_a_backend():
    b = K.backend()
    assert b.name in ("numba", "cupy") and b.reason


def test_cupy_without_device_falls_back(monkeypatch):
    monkeypatch.setattr(_backend, "_import_cupy", lambda: _fake_cupy(None))
    b = K.backend()
    assert b.name == "numba"
    assert "no usable CUDA device" in b.reason and "cudaErrorNoDevice" in b.reason
    K.reset_backend()
    monkeypatch.setattr(_backend, "_import_cupy", lambda: _fake_cupy(0))
    assert "getDeviceCount() is 0" in K.backend().reason


def test_forced_numba(monkeypatch):
    monkeypatch.setattr(_backend, "_import_cupy", lambda: _fake_cupy(1))
    monkeypatch.setenv(_backend.ENV_VAR, "numba")
    b = K.backend()
    assert b.name == "numba" and b.forced and "TICKPATH_KERNELS=numba" in b.reason


@pytest.mark.parametrize("fake", [None, "nodevice"])
def test_forced_cupy_without_device_fails_at_selection(monkeypatch, fake):
    monkeypatch.setattr(_backend, "_import_cupy",
                        _no_cupy if fake is None else (lambda: _fake_cupy(None)))
    monkeypatch.setenv(_backend.ENV_VAR, "cupy")
    with pytest.raises(BackendError, match="cupy forced but unusable.*TICKPATH_KERNELS"):
        K.backend()
    # and a kernel call reports the same selection error, not a failure inside the kernel
    with pytest.raises(BackendError, match="cupy forced"):
        K.sma(np.ones((100, 5000)), 5)


def test_unknown_backend_name(monkeypatch):
    monkeypatch.setenv(_backend.ENV_VAR, "opencl")
    with pytest.raises(ConfigError, match="unknown kernels backend.*opencl"):
        K.backend()


def test_gpu_path_end_to_end_with_stand_in(monkeypatch):
    """With a 'device', big host batches take the GPU route (xp programs + scans), small
    ones stay on numba; results equal the CPU kernels either way."""
    monkeypatch.setattr(_backend, "_import_cupy", lambda: _fake_cupy(1))
    monkeypatch.setenv(_backend.ENV_VAR, "cupy")
    b = K.backend()
    assert b.name == "cupy" and b.forced and b.device == "FakeGPU"
    calls = []
    for name in ("sma", "ema", "rsi", "macd", "atr", "moments", "stoch", "vwap", "obv"):
        orig = getattr(gpu, name)
        monkeypatch.setattr(gpu, name, lambda *a, _o=orig, _n=name: calls.append(_n) or _o(*a))
    rng = np.random.default_rng(2)
    big = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (K.GPU_MIN_ROWS, 4096)), axis=1))
    big[3, :40] = np.nan
    hi, lo = big * 1.01, big * 0.99
    vol = rng.random(big.shape) * 100
    assert _backend.use_gpu_for(big.shape)
    gpu_results = [K.sma(big, 20), K.ema(big, 20), K.rsi(big, 14), K.macd(big, 12, 26, 9),
                   K.atr(hi, lo, big, 14), K.bbands(big, 20, 2.0, 2.0),
                   K.stoch(hi, lo, big, 5, 3, 3), K.vwap(big, vol, 30), K.obv(big, vol)]
    assert calls == ["sma", "ema", "rsi", "macd", "atr", "moments", "stoch", "vwap", "obv"]
    monkeypatch.setenv(_backend.ENV_VAR, "numba")
    K.reset_backend()
    cpu_results = [K.sma(big, 20), K.ema(big, 20), K.rsi(big, 14), K.macd(big, 12, 26, 9),
                   K.atr(hi, lo, big, 14), K.bbands(big, 20, 2.0, 2.0),
                   K.stoch(hi, lo, big, 5, 3, 3), K.vwap(big, vol, 30), K.obv(big, vol)]
    for g, c in zip(gpu_results, cpu_results):
        for a, bb in zip(g if isinstance(g, tuple) else (g,), c if isinstance(c, tuple) else (c,)):
            np.testing.assert_allclose(a, bb, rtol=1e-9, atol=1e-9)
    # below the threshold, the CPU runs it even with a device
    monkeypatch.setenv(_backend.ENV_VAR, "cupy")
    K.reset_backend()
    calls.clear()
    K.sma(big[:2], 20)
    assert calls == [] and not _backend.use_gpu_for(big[:2].shape)
