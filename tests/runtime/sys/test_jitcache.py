"""numba's cache directory is named by a hash of every tickpath source: an edit to any file
(not only the one defining a cached function) gives a new directory, the same sources give
the same one in another process, and a user's NUMBA_CACHE_DIR stays the base."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tickpath.runtime.sys import jitcache


def _tree(tmp_path):
    root = tmp_path / "tp"
    for pkg in ("runtime/book", "runtime/engine", "kernels", "bench"):
        (root / pkg).mkdir(parents=True)
    (root / "runtime/book/orderbook.py").write_text("X = 1\n")
    (root / "runtime/engine/pipeline.py").write_text("Y = 2\n")
    (root / "kernels/ma.py").write_text("Z = 3\n")
    return root


def test_any_source_edit_changes_the_digest(tmp_path):
    root = _tree(tmp_path)
    d0 = jitcache.sources_digest(str(root))
    assert jitcache.sources_digest(str(root)) == d0                 # stable
    (root / "runtime/book/orderbook.py").write_text("X = 1  # changed\n")
    d1 = jitcache.sources_digest(str(root))
    assert d1 != d0                                                  # a file the cached code inlines
    (root / "runtime/book/__pycache__").mkdir()
    (root / "runtime/book/__pycache__/junk.py").write_text("ignored")
    (root / "README.md").write_text("not source")
    assert jitcache.sources_digest(str(root)) == d1                  # caches and docs do not count
    shutil.move(str(root / "kernels/ma.py"), str(root / "kernels/ma2.py"))
    assert jitcache.sources_digest(str(root)) != d1                  # a rename counts


def test_this_process_and_a_child_use_the_same_directory():
    mine = jitcache.use_versioned_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == mine
    from numba.core import config
    assert config.CACHE_DIR == mine
    out = subprocess.run([sys.executable, "-c", "import tickpath.runtime, os; print(os.environ['NUMBA_CACHE_DIR'])"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == mine


def test_a_users_numba_cache_dir_is_the_base(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", "import tickpath.kernels, os; print(os.environ['NUMBA_CACHE_DIR'])"],
                         capture_output=True, text=True, check=True, env=env)
    got = out.stdout.strip()
    assert os.path.dirname(got) == str(tmp_path / "mine") and len(os.path.basename(got)) == 16
