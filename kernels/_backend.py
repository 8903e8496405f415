"""Which array backend runs the batch kernels: CuPy on a usable CUDA device, else numba.

The choice is made once (first call of `backend()` or of a batch kernel), logged with its
reason, and cached. Capabilities are detected, not configured (after psutil): cupy must
import AND `cupy.cuda.runtime.getDeviceCount()` must report a device. TICKPATH_KERNELS
forces a backend: `numba` always works; `cupy` on a machine where cupy or the device is
missing raises BackendError right here, at selection, never deep inside a kernel call.

Small-batch threshold: a host (numpy) array goes to the GPU only when it has at least
GPU_MIN_ROWS instruments and GPU_MIN_ELEMENTS points in all. Below that a kernel launch plus
two PCIe copies (~20-50 us each) cost more than numba's CPU pass (~1-3 ns per point per core:
262,144 points take ~0.3-0.8 ms on one core), and a single series is a sequential scan for
the recursive indicators (one GPU thread per row), which a CPU core runs faster. cupy arrays
always stay on their device.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from tickpath.runtime.core.errors import BackendError, ConfigError

log = logging.getLogger("tickpath.kernels")

ENV_VAR = "TICKPATH_KERNELS"
CHOICES = ("auto", "numba", "cupy")
GPU_MIN_ROWS = 64
GPU_MIN_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class Backend:
    name: str          # "numba" or "cupy"
    reason: str        # why this one was chosen
    forced: bool       # chosen by TICKPATH_KERNELS
    device: str = ""   # GPU name when cupy

    def as_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason, "forced": self.forced,
                "device": self.device}


_lock = threading.Lock()
_chosen: Backend | None = None


def _import_cupy():
    """Import hook (tests monkeypatch this to simulate environments)."""
    import cupy  # noqa: PLC0415 - optional dependency, imported only when probed
    return cupy


def _probe_cupy():
    """(cupy module, device name) or (None, reason it is unusable)."""
    try:
        cp = _import_cupy()
    except ImportError as exc:
        return None, f"cupy not installed ({exc})"
    except Exception as exc:  # a broken install (missing libcudart...) is also "no cupy"
        return None, f"cupy failed to import ({type(exc).__name__}: {exc})"
    try:
        n_devices = int(cp.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, no device, driver too old
        return None, f"cupy installed but no usable CUDA device or driver ({type(exc).__name__}: {exc})"
    if n_devices < 1:
        return None, "cupy installed but getDeviceCount() is 0"
    try:
        props = cp.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception:
        name = "cuda:0"
    return cp, name


def _select() -> Backend:
    want = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if want not in CHOICES:
        raise ConfigError("unknown kernels backend", variable=ENV_VAR, value=want,
                          choices=CHOICES)
    if want == "numba":
        return Backend("numba", f"forced by {ENV_VAR}=numba", True)
    cp, info = _probe_cupy()
    if cp is None:
        if want == "cupy":
            raise BackendError("kernels backend cupy forced but unusable", variable=ENV_VAR,
                               reason=info, hint=f"unset {ENV_VAR} or set it to numba")
        return Backend("numba", info, False)
    reason = f"forced by {ENV_VAR}=cupy" if want == "cupy" else "cupy and a CUDA device found"
    return Backend("cupy", reason, want == "cupy", device=info)


def backend() -> Backend:
    """The active backend (chosen once; see the module doc)."""
    global _chosen
    if _chosen is None:
        with _lock:
            if _chosen is None:
                chosen = _select()
                log.info("tickpath.kernels backend=%s reason=%s", chosen.name, chosen.reason)
                _chosen = chosen
    return _chosen


def reset_backend() -> None:
    """Forget the choice (tests, or after changing TICKPATH_KERNELS)."""
    global _chosen
    with _lock:
        _chosen = None


def use_gpu_for(shape) -> bool:
    """Send a host array of this shape to the GPU? (the small-batch threshold)."""
    if backend().name != "cupy":
        return False
    rows = shape[0] if len(shape) == 2 else 1
    total = rows * shape[-1]
    return rows >= GPU_MIN_ROWS and total >= GPU_MIN_ELEMENTS


def cupy_module():
    """The cupy module (only valid when the backend is cupy or a cupy array was passed)."""
    return _import_cupy()
