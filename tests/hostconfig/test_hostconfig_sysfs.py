import builtins
import os

import pytest

from tickpath.hostconfig.discover.sysfs import HostFS, Unknown
from tickpath.runtime.core.errors import ConfigError, ResourceError


def _put(root, path, text):
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_reads_values_and_unknowns(tmp_path):
    _put(tmp_path, "/a/int", "42\n")
    _put(tmp_path, "/a/bad", "4x2\n")
    _put(tmp_path, "/a/list", "0-3,x\n")
    _put(tmp_path, "/a/sel", "always [madvise] never\n")
    _put(tmp_path, "/a/nosel", "always madvise never\n")
    (tmp_path / "a" / "dir").mkdir()
    fs = HostFS(str(tmp_path))
    assert fs.read_int("/a/int") == 42
    assert fs.read_selected("/a/sel") == "madvise"
    for value, words in [(fs.read_int("/a/bad"), "malformed integer"),
                         (fs.read_cpulist("/a/list"), "malformed cpulist"),
                         (fs.read_selected("/a/nosel"), "malformed: no single [selected]"),
                         (fs.read_int("/a/missing"), "missing path=/a/missing"),
                         (fs.read_text("/a/dir"), "unreadable path=/a/dir")]:
        assert isinstance(value, Unknown) and words in value.reason, value
        assert not value


def test_permission_denied_is_unknown(tmp_path, monkeypatch):
    _put(tmp_path, "/secret", "1\n")
    real_open = builtins.open

    def guarded(path, *a, **k):  # why: tests run as root, where chmod 000 still reads
        if str(path).endswith("/secret"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    v = HostFS(str(tmp_path)).read_int("/secret")
    assert isinstance(v, Unknown) and v.reason == "permission denied path=/secret"


def test_write_and_paths(tmp_path):
    _put(tmp_path, "/k/v", "1\n")
    fs = HostFS(str(tmp_path))
    fs.write_text("/k/v", "0")
    assert (tmp_path / "k/v").read_text() == "0\n"
    with pytest.raises(ResourceError, match="path='/k/none'"):
        fs.write_text("/k/none", "1")  # never creates files the kernel does not have
    assert not (tmp_path / "k/none").exists()
    with pytest.raises(ConfigError):
        fs.path("relative")
    assert fs.glob("/k/*") == ["/k/v"]
    assert fs.host_path(os.path.join(str(tmp_path), "k/v")) == "/k/v"
