"""Issue 19 finding 6: `host apply` / `host rollback` (root) must not be redirected.

Before: the rollback file went through `path + ".tmp"` opened with plain open("w") — a planted
`.tmp` symlink got JSON written into a root-only file and the rollback file became the
attacker's symlink, which `host rollback` followed; targets were not validated (`..` left
--root); the default name had one-second resolution (two applies shared one file).
The other user is `nobody` (os.setuid in a child process; root only, else skipped).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tickpath.hostconfig.apply import apply, default_rollback_path, load_rollback, rollback
from tickpath.hostconfig.checks.base import Context
from tickpath.hostconfig.discover.sysfs import HostFS
from tickpath.hostconfig.plan import RuntimePlan
from tickpath.runtime.core.errors import ConfigError

from fakehost import KernelLikeFS

NOBODY = 65534
need_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user "
                               "(os.setuid to nobody in a child process)")
PLAN = RuntimePlan(rx_cores=[2, 3], interface="eth0", frame_bytes=2048, frames=4096,
                   hugepages=True)   # two hot cores: the checks take any set


def _ctx(root):
    ctx = Context.build(root, plan=PLAN, nic_ops=None, memlock_bytes=1 << 30)
    ctx.fs = KernelLikeFS(root)
    return ctx


def _snapshot(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture
def shared():
    """A /tmp look-alike: world-writable with the sticky bit, reachable by nobody."""
    d = tempfile.mkdtemp(prefix="tp-shared-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "root-only"
    v.write_text("precious\n")
    os.chmod(v, 0o600)
    return v


def _as_nobody(code: str):
    # modules first: the stdlib of this venv may not be readable by nobody
    pre = f"import os, errno, json; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    r = subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


@need_root
def test_planted_tmp_and_final_symlinks_are_never_followed(make_host, shared, victim):
    root = make_host("untuned")
    rb = os.path.join(shared, "rollback.json")
    _as_nobody(f"import os; os.symlink({str(victim)!r}, {rb + '.tmp'!r})")
    rep = apply(_ctx(root), euid=0, rollback_path=rb)
    assert rep.applied
    assert victim.read_text() == "precious\n"
    assert not os.path.islink(rb) and os.lstat(rb).st_uid == 0
    assert os.lstat(rb).st_mode & 0o777 == 0o600
    assert load_rollback(rb)["entries"]
    rollback(rb, KernelLikeFS(root), euid=0)
    # a symlink planted at the rollback name itself: refused, nothing written on the host
    root2 = make_host("untuned")
    before = _snapshot(root2)
    rb2 = os.path.join(shared, "rollback2.json")
    _as_nobody(f"import os; os.symlink({str(victim)!r}, {rb2!r})")
    with pytest.raises(ConfigError, match="exists already"):
        apply(_ctx(root2), euid=0, rollback_path=rb2)
    assert victim.read_text() == "precious\n" and _snapshot(root2) == before


@need_root
def test_rollback_file_of_another_user_or_a_symlink_is_refused(make_host, shared, victim):
    root = make_host("untuned")
    doc = {"format": "tickpath-hostconfig-rollback", "version": 1, "root": root,
           "entries": [{"check": "x", "kind": "file", "target": "/proc/sys/kernel/numa_balancing",
                        "key": None, "compare": "int", "previous": "7", "new": "0"}]}
    theirs = os.path.join(shared, "theirs.json")
    _as_nobody(f"import json; open({theirs!r}, 'w').write({json.dumps(json.dumps(doc))})")
    before = _snapshot(root)
    with pytest.raises(ConfigError, match="owned by another user"):
        rollback(theirs, HostFS(root), euid=0)
    link = os.path.join(shared, "link.json")
    _as_nobody(f"import os; os.symlink({theirs!r}, {link!r})")
    with pytest.raises(ConfigError, match="symlink"):
        rollback(link, HostFS(root), euid=0)
    fifo = os.path.join(shared, "fifo.json")
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="not a regular file"):   # and no hang
        rollback(fifo, HostFS(root), euid=0)
    assert _snapshot(root) == before


def _rollback_doc(tmp_path, root, target) -> str:
    p = tmp_path / "rb.json"
    p.write_text(json.dumps({"format": "tickpath-hostconfig-rollback", "version": 1, "root": root,
                             "entries": [{"check": "x", "kind": "file", "target": target,
                                          "key": None, "compare": "word", "previous": "pwned",
                                          "new": "0"}]}))
    os.chmod(p, 0o600)
    return str(p)


@pytest.mark.parametrize("target", ["/proc/sys/../../../outside", "proc/sys/kernel/x",
                                    "/etc/passwd", "/proc/sys//kernel/x", "/sys/./kernel/x",
                                    ["/proc/sys/kernel/x"]])
def test_rollback_targets_outside_the_tunables_or_root_are_refused(make_host, tmp_path, target):
    root = make_host("untuned")
    outside = os.path.join(os.path.dirname(root), "outside")
    with open(outside, "w") as f:
        f.write("keep\n")
    before = _snapshot(root)
    with pytest.raises(ConfigError, match="refused|malformed"):
        rollback(_rollback_doc(tmp_path, root, target), HostFS(root), euid=0)
    assert _snapshot(root) == before
    assert open(outside).read() == "keep\n"


def test_rollback_target_that_is_a_symlink_out_of_root_is_refused(make_host, tmp_path, victim):
    root = make_host("untuned")
    evil = os.path.join(root, "proc/sys/kernel/evil")
    os.symlink(str(victim), evil)
    with pytest.raises(ConfigError, match="escapes --root"):
        rollback(_rollback_doc(tmp_path, root, "/proc/sys/kernel/evil"), HostFS(root), euid=0)
    assert victim.read_text() == "precious\n"


def test_concurrent_applies_never_share_a_rollback_file(make_host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = {default_rollback_path() for _ in range(200)}
    assert len(names) == 200                      # ns + pid, not one-second resolution
    root_a, root_b = make_host("untuned"), make_host("untuned")
    rb = str(tmp_path / "same.json")
    apply(_ctx(root_a), euid=0, rollback_path=rb)
    first = open(rb).read()
    before_b = _snapshot(root_b)
    with pytest.raises(ConfigError, match="exists already"):   # the second apply stops first
        apply(_ctx(root_b), euid=0, rollback_path=rb)
    assert open(rb).read() == first and _snapshot(root_b) == before_b


def test_rollback_file_in_a_missing_directory_is_a_clear_error_before_any_write(make_host):
    root = make_host("untuned")
    before = _snapshot(root)
    with pytest.raises(ConfigError) as ei:
        apply(_ctx(root), euid=0, rollback_path="/nonexistent/x")
    assert "--rollback-file" in str(ei.value)
    assert _snapshot(root) == before


def test_rollback_file_in_a_directory_others_may_write_is_refused(make_host, tmp_path):
    root = make_host("untuned")
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)                        # no sticky bit: anyone may swap our file
    with pytest.raises(ConfigError, match="writable by others"):
        apply(_ctx(root), euid=0, rollback_path=str(loose / "r.json"))
