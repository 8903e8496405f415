"""One distribution, one namespace: the folders install as tickpath.*, never as top-level
`runtime` / `kernels`, both as a wheel and as an editable install."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("runtime", "kernels", "fpga", "hostconfig", "bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list(out.glob("tickpath-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_holds_only_the_tickpath_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert not tops & set(SUBPACKAGES), tops
    for sub in SUBPACKAGES:
        assert f"tickpath/{sub}/__init__.py" in names
    assert "tickpath/runtime/core/event.py" in names and "tickpath/kernels/gpu/scan_kernels.cu" in names
    assert "tickpath/runtime/example.toml" in names
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_installs_and_imports(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert not any((target / s).exists() for s in SUBPACKAGES)
    deps = sysconfig.get_paths()["purelib"]
    # -S: no site, so the editable install's finder is not active; only the wheel is seen
    code = ("import tickpath.runtime.core.event as e, tickpath.kernels, tickpath.fpga, tickpath.hostconfig, "
            "tickpath.bench; print(e.__file__); print(e.EVENT_DTYPE.itemsize)")
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{deps}"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    path, size = r.stdout.split()
    assert path.startswith(str(target)) and size == "64"


def test_editable_install_maps_the_folders():
    code = "import tickpath.runtime, tickpath.kernels; print(tickpath.runtime.__file__); print(tickpath.kernels.__file__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr
    rt, k = r.stdout.split()
    assert Path(rt).resolve() == ROOT / "runtime" / "__init__.py"
    assert Path(k).resolve() == ROOT / "kernels" / "__init__.py"
    purelib = Path(sysconfig.get_paths()["purelib"])
    assert not any((purelib / s).exists() for s in SUBPACKAGES), "a top-level module leaked into site-packages"
    r = subprocess.run([sys.executable, "-c", "import runtime"], capture_output=True, text=True, cwd="/")
    assert r.returncode != 0
