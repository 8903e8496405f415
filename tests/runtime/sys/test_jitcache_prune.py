"""Old versions' numba cache directories are pruned: only digest-named directories that are
ours, idle for a day and not among the newest few; never the current one, a symlink, a file,
or anything else in the base; the first process of a new version does it, a child does not."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from tickpath.runtime.sys import jitcache

DAY = 86_400
NOW = 1_900_000_000.0


def _version(base, name, age_s, marker=True):
    d = base / name
    d.mkdir()
    (d / "sub").mkdir()
    (d / "sub" / "f.nbi").write_bytes(b"x")
    if marker:
        (d / jitcache.MARKER).write_text("")
    os.utime(d, (NOW - age_s, NOW - age_s))
    return d


def test_prunes_only_idle_digest_dirs_of_ours_beyond_the_newest(tmp_path):
    base = tmp_path / "numba"
    base.mkdir()
    cur = _version(base, "c" * 16, 30 * DAY)                 # the current one: never, however old
    old = [_version(base, f"{i:016x}", (10 + i) * DAY) for i in range(4)]   # idle, oldest last
    young = _version(base, "a" * 16, 3600)                   # used an hour ago
    alien = _version(base, "b" * 16, 40 * DAY, marker=False)  # no marker, not in our own base
    other = base / "work"                                    # not a digest: someone else's
    other.mkdir()
    os.utime(other, (NOW - 50 * DAY,) * 2)
    (base / ("d" * 16)).write_text("a file")                 # a file with a digest name
    os.utime(base / ("d" * 16), (NOW - 50 * DAY,) * 2)
    target = tmp_path / "elsewhere"
    _version(tmp_path, "elsewhere", 60 * DAY)
    os.rename(tmp_path / "elsewhere", target)
    (base / ("e" * 16)).symlink_to(target)                   # a symlink is never followed
    leftover = _version(base, ".0123456789abcdef.pruning-999", 2 * DAY)   # an interrupted prune

    removed = jitcache.prune_stale(str(base), cur.name, keep_newest=2, min_idle_s=DAY, now=NOW)

    # newest by use: young (kept: not idle), old[0], old[1], old[2] (10..12 days), alien (not ours)...
    # the 2 newest other versions (young, old[0]) stay; of the rest, old[1..3] are idle and ours
    assert sorted(removed) == sorted([old[1].name, old[2].name, old[3].name, leftover.name])
    left = set(os.listdir(base))
    assert left == {cur.name, old[0].name, young.name, alien.name, "work", "d" * 16, "e" * 16}
    assert (target / "sub" / "f.nbi").exists()               # through the symlink: untouched
    assert not any(n.startswith(".") for n in left)          # renamed copies are gone too


def test_nothing_idle_nothing_removed_and_a_missing_base_is_fine(tmp_path):
    base = tmp_path / "numba"
    base.mkdir()
    for i in range(6):
        _version(base, f"{i:016x}", 3600 * i)
    assert jitcache.prune_stale(str(base), "f" * 16, keep_newest=1, min_idle_s=DAY, now=NOW) == []
    assert len(os.listdir(base)) == 6
    assert jitcache.prune_stale(str(tmp_path / "none"), "f" * 16) == []


def _child(env, code="import tickpath.runtime, os; print(os.environ['NUMBA_CACHE_DIR'])"):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=120)
    return out.stdout.strip()


def test_a_new_version_prunes_on_first_use_and_marks_its_directory(tmp_path):
    base = tmp_path / "mine"
    base.mkdir()
    stale = [_version(base, f"{i:016x}", 0) for i in range(jitcache.KEEP_NEWEST + 2)]
    for i, d in enumerate(stale):   # by the real clock: idle 2..7 days
        t = time.time() - (2 + i) * DAY
        os.utime(d, (t, t))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(base)
    got = _child(env)
    assert os.path.dirname(got) == str(base) and os.path.exists(os.path.join(got, jitcache.MARKER))
    left = set(os.listdir(base)) - {os.path.basename(got)}
    # the KEEP_NEWEST most recently used stay; the two oldest went
    assert left == {d.name for d in stale[:jitcache.KEEP_NEWEST]}


def test_a_child_of_an_older_version_uses_a_sibling_not_a_nested_dir(tmp_path):
    base = tmp_path / "mine"
    base.mkdir()
    parent = _version(base, "0" * 16, 0)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(parent)          # what a parent on other sources exported
    got = _child(env)
    assert os.path.dirname(got) == str(base) and os.path.basename(got) != parent.name
