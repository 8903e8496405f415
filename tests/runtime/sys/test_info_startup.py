"""`tickpath info` without the slow paths: channels by one ioctl (not pyroute2), shared
libraries from the loader's cache (not find_library's subprocesses), no entry-point scan."""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import pytest

from tickpath.runtime.backends.afxdp.probe import shared_library
from tickpath.runtime.sys.ethtool import CHANNEL_FIELDS, read_channels


def _pyroute2_channels(name: str):
    from pyroute2.ethtool import Ethtool
    eth = Ethtool()
    try:
        return dict(eth.get_channels(name)._asdict())
    finally:
        eth.close()


@pytest.mark.parametrize("name", sorted(os.listdir("/sys/class/net")))
def test_read_channels_agrees_with_pyroute2(name):
    """Same numbers as pyroute2's ethtool on every interface here; both refuse the same ones."""
    try:
        ours = read_channels(name)
    except OSError as exc:
        ours = exc
    try:
        theirs = _pyroute2_channels(name)
    except Exception as exc:  # pyroute2 raises its own NotSupportedError
        theirs = exc
    if isinstance(theirs, Exception):
        assert isinstance(ours, OSError), (ours, theirs)
    else:
        assert ours == theirs and tuple(ours) == CHANNEL_FIELDS


def test_read_channels_refuses_bad_names():
    with pytest.raises(OSError):
        read_channels("nosuchif0")
    for bad in ("", "x" * 16):
        with pytest.raises(OSError, match="bad interface name"):
            read_channels(bad)


@pytest.mark.parametrize("lib", ["c", "m", "bpf", "xdp", "pthread", "nosuchlib0"])
def test_shared_library_agrees_with_find_library(lib):
    assert shared_library(lib) == ctypes.util.find_library(lib)


def test_shared_library_reads_the_cache_file(tmp_path):
    cache = tmp_path / "ld.so.cache"
    # a key stored as the tail of its path, and one stored on its own
    cache.write_bytes(b"glibc-ld.so.cache1.1\x00/usr/lib/libfoo.so.3\x00libbar.so.1.2\x00"
                      b"/usr/lib/libfoobar.so.9\x00")
    assert shared_library("foo", str(cache)) == "libfoo.so.3"
    assert shared_library("bar", str(cache)) == "libbar.so.1.2"
    assert shared_library("oba", str(cache)) is None
    # no cache file: the slow, standard answer
    assert shared_library("c", str(tmp_path / "none")) == ctypes.util.find_library("c")


def test_info_imports_no_pyroute2_numba_or_entry_points():
    code = ("import sys, io, contextlib\n"
            "from tickpath.runtime import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['info'])\n"
            "bad = [m for m in ('pyroute2', 'numba', 'numpy', 'importlib.metadata') if m in sys.modules]\n"
            "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
