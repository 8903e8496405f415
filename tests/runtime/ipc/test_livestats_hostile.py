"""Issue 19 finding 5: the live-stats file on a shared host.

Before: /dev/shm/tickpath-<pid>-stats was opened O_CREAT|O_TRUNC mode 0644 — a symlink
planted for the next pid made root's runtime overwrite a root-owned file, a planted
regular file was adopted (its owner forged `messages=31337`, then truncated it: SIGBUS);
`tickpath stats` read any file whole (2 GiB sparse: 2.2 GB RSS), hung on a FIFO, aborted the
listing on one junk file, and stale files piled up.

Here a scratch directory with /dev/shm's mode (1777) stands in for /dev/shm; the other
user is `nobody`, reached with os.setuid in a child process (root only: skipped otherwise).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ResourceError
from tickpath.runtime.ipc import livestats

NOBODY = 65534
need_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user "
                               "(os.setuid to nobody in a child process)")


@pytest.fixture
def shm():
    """A /dev/shm look-alike: world-writable with the sticky bit, traversable by nobody."""
    d = tempfile.mkdtemp(prefix="tp-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a child Python that has dropped to uid/gid nobody first."""
    # modules first: the stdlib of this venv may not be readable by nobody
    pre = f"import os, errno, json; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True,
                          timeout=60)


def test_file_lives_in_an_owner_only_directory_with_mode_0600(shm):
    live = livestats.LiveStats(shm_dir=shm)
    try:
        d = os.lstat(livestats.dir_for(None, shm))
        f = os.lstat(live.path)
        assert (d.st_mode & 0o777, d.st_uid) == (0o700, os.geteuid())
        assert (f.st_mode & 0o777, f.st_uid) == (0o600, os.geteuid())
        live.counters[C.MESSAGES] = 7
        assert livestats.read(live.path)["counters"]["messages"] == 7
        assert livestats.running(shm) == [os.getpid()]
    finally:
        live.close()
    assert not os.path.exists(live.path)


@need_root
def test_another_user_cannot_plant_read_forge_or_truncate(shm):
    live = livestats.LiveStats(shm_dir=shm)
    try:
        live.counters[C.MESSAGES] = 5
        r = _as_nobody(f"""
import os, errno
res = []
for what, fn in (("plant", lambda: os.open({livestats.path_for(os.getpid() + 1, shm)!r}, os.O_CREAT | os.O_WRONLY, 0o644)),
                 ("open", lambda: os.open({live.path!r}, os.O_RDWR)),
                 ("truncate", lambda: os.truncate({live.path!r}, 0))):
    try:
        fn()
        res.append(what + ":done")
    except OSError as e:
        res.append(what + ":" + errno.errorcode[e.errno])
print(" ".join(res))
""")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["plant:EACCES", "open:EACCES", "truncate:EACCES"]
        assert livestats.read(live.path)["counters"]["messages"] == 5
    finally:
        live.close()


@need_root
def test_a_directory_planted_by_another_user_is_refused(shm):
    target = livestats.dir_for(None, shm)
    r = _as_nobody(f"import os; os.mkdir({target!r}, 0o777); os.chmod({target!r}, 0o777)")
    assert r.returncode == 0, r.stderr
    with pytest.raises(ResourceError) as ei:
        livestats.LiveStats(shm_dir=shm)
    assert "refused" in str(ei.value) and f"owner_uid={NOBODY}" in str(ei.value)
    assert os.listdir(target) == []


def test_a_symlink_as_the_directory_is_refused(shm, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    os.symlink(victim, livestats.dir_for(None, shm))
    with pytest.raises(ResourceError, match="symlink"):
        livestats.LiveStats(shm_dir=shm)
    assert list(victim.iterdir()) == []


def test_a_symlink_at_the_file_name_is_replaced_not_followed(shm, tmp_path):
    victim = tmp_path / "root-owned"
    victim.write_bytes(b"precious")
    d = livestats.dir_for(None, shm)
    os.mkdir(d, 0o700)
    os.symlink(victim, os.path.join(d, f"{os.getpid()}-stats"))
    live = livestats.LiveStats(shm_dir=shm)
    try:
        assert victim.read_bytes() == b"precious"
        assert not os.path.islink(live.path) and os.path.getsize(live.path) > 32
    finally:
        live.close()


def _fake(path: str, pid: int, n: int = C.N_COUNTERS, size: int | None = None,
          magic: bytes = livestats.MAGIC, mode: int = 0o600) -> None:
    raw = bytearray(livestats.HEADER_BYTES + 8 * n)
    raw[:8] = magic
    raw[8:16] = np.array([livestats.VERSION, n], np.uint32).tobytes()
    raw[16:24] = np.int64(pid).tobytes()
    with open(path, "wb") as f:
        f.write(raw)
        if size is not None:
            f.truncate(size)
    os.chmod(path, mode)


def test_reader_refuses_fifo_sparse_wrong_magic_and_world_writable_without_hanging(shm):
    d = livestats.dir_for(None, shm)
    os.mkdir(d, 0o700)
    me = os.getpid()
    fifo = os.path.join(d, "fifo-stats")
    os.mkfifo(fifo, 0o600)
    sparse = os.path.join(d, "sparse-stats")
    _fake(sparse, me, size=2 << 30)               # 2 GiB sparse: refused by size, not read
    magic = os.path.join(d, "magic-stats")
    _fake(magic, me, magic=b"NOTSTATS")
    huge_n = os.path.join(d, "n-stats")
    _fake(huge_n, me, n=1 << 20)                  # announces a million slots
    loose = os.path.join(d, "loose-stats")
    _fake(loose, me, mode=0o666)
    for path, why in ((fifo, "not a regular file"), (sparse, "size"), (magic, "not a tickpath"),
                      (huge_n, "size"), (loose, "writable by others")):
        with pytest.raises(ResourceError, match=why):
            livestats.read(path)
    link = os.path.join(d, "link-stats")
    os.symlink(sparse, link)
    with pytest.raises(ResourceError, match="symlink"):
        livestats.read(link)


def test_listing_survives_junk_and_removes_stale_files_of_dead_pids(shm):
    live = livestats.LiveStats(shm_dir=shm)
    d = livestats.dir_for(None, shm)
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(30)
        _fake(os.path.join(d, f"{dead.pid}-stats"), dead.pid)      # a SIGKILLed run's leftover
        os.mkfifo(os.path.join(d, "junk"))
        with open(os.path.join(d, "README"), "w") as f:
            f.write("not stats")
        # a live process whose file is junk (init's pid: alive, never ours)
        os.mkfifo(os.path.join(d, "1-stats"))
        assert livestats.running(shm) == [1, os.getpid()]
        assert not os.path.exists(os.path.join(d, f"{dead.pid}-stats"))
        with pytest.raises(ResourceError):
            livestats.read(os.path.join(d, "1-stats"))            # a FIFO: no hang
        assert livestats.read(live.path)["pid"] == os.getpid()
    finally:
        live.close()


def test_stats_cli_lists_good_instances_next_to_a_bad_file(shm, monkeypatch):
    """`tickpath stats` (the CLI function) with one junk file among the instances."""
    from tickpath.runtime.lines import cli
    monkeypatch.setattr(livestats, "SHM_DIR", shm)
    live = livestats.LiveStats(shm_dir=shm)
    try:
        live.counters[C.MESSAGES] = 3
        os.mkfifo(os.path.join(livestats.dir_for(), "1-stats"))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli._cmd_stats(argparse.Namespace(pid=None, all=False, uid=None))
        assert rc == 0
        out = json.loads(buf.getvalue())
        assert "not a regular file" in out["1"]["error"]
        assert out[str(os.getpid())]["counters"]["messages"] == 3
    finally:
        live.close()
