"""The kill switch file: created safely (private directory, O_EXCL|O_NOFOLLOW, 0600), tripped
from another process by pid, by SIGUSR1, and refused when the directory is not private."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tickpath.runtime.core.errors import ResourceError
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading.killswitch import K_FLAG, K_REASON, KillSwitch, kill_dir, running, trip_pid


def test_file_is_private_and_trippable_by_pid(tmp_path):
    ks = KillSwitch(str(tmp_path))
    try:
        st = os.lstat(ks.path)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
        d = os.lstat(kill_dir(str(tmp_path)))
        assert stat.S_IMODE(d.st_mode) == 0o700
        assert os.getpid() in running(str(tmp_path))
        assert not ks.tripped
        # from another process, as `tickpath kill --pid` does
        code = ("import sys; from tickpath.runtime.trading.killswitch import trip_pid; "
                f"print(trip_pid({os.getpid()}, {str(tmp_path)!r}))")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        assert ks.tripped and ks.flags[K_REASON] == T.K_OTHER_PROCESS
        assert ks.report()["reason"] == "kill_command"
        assert trip_pid(os.getpid(), str(tmp_path))["already_tripped"]
    finally:
        ks.close()
    assert not os.path.exists(ks.path)


def test_sigusr1_trips_it(tmp_path):
    ks = KillSwitch(str(tmp_path))
    try:
        ks.install_signal()
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not ks.tripped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ks.flags[K_FLAG] == 1 and ks.report()["reason"] == "signal"
    finally:
        ks.close()


def test_refuses_a_directory_others_can_write(tmp_path):
    d = kill_dir(str(tmp_path))
    os.mkdir(d, 0o700)
    os.chmod(d, 0o777)
    with pytest.raises(ResourceError, match="private directory"):
        KillSwitch(str(tmp_path))


def test_refuses_a_symlinked_directory(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    os.symlink(real, kill_dir(str(tmp_path)))
    with pytest.raises(ResourceError, match="private directory"):
        KillSwitch(str(tmp_path))


def test_a_planted_link_is_not_followed(tmp_path):
    """A leftover entry with our pid's name is removed and recreated with O_EXCL|O_NOFOLLOW,
    so a link planted there is never written through."""
    d = kill_dir(str(tmp_path))
    os.mkdir(d, 0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, os.path.join(d, f"kill-{os.getpid()}"))
    ks = KillSwitch(str(tmp_path))
    try:
        assert not os.path.islink(ks.path)
        assert victim.read_text() == "keep me"
    finally:
        ks.close()


def test_trip_of_a_missing_pid_says_so(tmp_path):
    os.mkdir(kill_dir(str(tmp_path)), 0o700)
    with pytest.raises(ResourceError, match="kill switch file"):
        trip_pid(999_999_999, str(tmp_path))
