"""Issue 19 finding 7: the FPGA emulator created its register file O_CREAT|O_TRUNC and followed
a symlink planted at xdma0_user. Now it is made under a unique O_EXCL|O_NOFOLLOW name and
renamed over the node: a planted symlink is replaced, its target untouched — also one planted
by another user (`nobody`, os.setuid in a child; root only) in a sticky shared directory, and
that user cannot write the new register file."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator.process import create_regfile

NOBODY = 65534


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "root-only"
    v.write_bytes(b"precious")
    os.chmod(v, 0o600)
    return v


def test_a_symlink_at_the_register_file_is_replaced_not_followed(tmp_path, victim):
    node = tmp_path / "dev" / "xdma0_user"
    node.parent.mkdir()
    os.symlink(victim, node)
    regs = create_regfile(str(node))
    try:
        regs[0:4] = b"\x01\x02\x03\x04"
        assert victim.read_bytes() == b"precious"
        assert not os.path.islink(node) and os.path.getsize(node) == rm.REGFILE_BYTES
        assert os.listdir(node.parent) == ["xdma0_user"]   # no temporary file left
    finally:
        regs.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user (nobody)")
def test_a_node_planted_by_another_user_in_a_sticky_directory_is_not_followed(victim):
    shared = tempfile.mkdtemp(prefix="tp-dev-", dir="/tmp")
    os.chmod(shared, 0o1777)
    try:
        node = os.path.join(shared, "xdma0_user")
        pre = f"import os; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        r = subprocess.run([sys.executable, "-c", pre + f"os.symlink({str(victim)!r}, {node!r})"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        regs = create_regfile(node)
        regs.close()
        assert victim.read_bytes() == b"precious"
        st = os.lstat(node)
        assert not os.path.islink(node) and st.st_uid == 0 and st.st_mode & 0o007 == 0
        assert sorted(os.listdir(shared)) == ["xdma0_user"]
        r = subprocess.run([sys.executable, "-c", pre + f"os.open({node!r}, os.O_RDWR)"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "PermissionError" in r.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)
