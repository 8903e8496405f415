"""Device nodes and the backend without an emulator process: bad directories give clear
errors at open; the poll reassembles records split across reads; EOF means device gone."""
from __future__ import annotations

import errno
import mmap
import os

import numpy as np
import pytest
from tickpath.fpga import regmap as rm
from tickpath.fpga.host.backend import FpgaBackend
from tickpath.fpga.emulator.model import ParserModel
from tickpath.fpga.record import aligned_records, check_record_buffer
from tickpath.fpga.host.xdma import UserBar, node_path, open_c2h, read_records
from tickpath.runtime.backends.registry import EVENTS, get_backend
from tickpath.runtime.core.errors import (
    BackendError,
    ConfigError,
    DeviceGoneError,
    PrivilegeError,
    ResourceError,
)
from tickpath.runtime.core.event import EVENT_DTYPE


def _fake_card(d, link_up=True, record_bytes=64, ident=rm.ID_MAGIC):
    """A device dir with a register file (as the emulator writes it) and a C2H FIFO."""
    path = os.path.join(d, "xdma0_user")
    with open(path, "wb") as f:
        f.truncate(rm.REGFILE_BYTES)
    fd = os.open(path, os.O_RDWR)
    buf = mmap.mmap(fd, rm.REGFILE_BYTES)
    os.close(fd)
    ParserModel(buf, 64)
    u32, _ = rm.reg_words(buf)
    u32[rm.ID >> 2] = ident
    u32[rm.REG["RECORD_BYTES"] >> 2] = record_bytes
    if link_up:
        u32[rm.STATUS >> 2] |= rm.ST_LINK_UP
    os.mkfifo(os.path.join(d, "xdma0_c2h_0"))
    return buf


def test_node_paths():
    assert node_path("/dev", 0, "user") == "/dev/xdma0_user"
    assert node_path("/x", 2, "c2h", 1) == "/x/xdma2_c2h_1"
    assert node_path("/x", 0, "events", 3) == "/x/xdma0_events_3"
    with pytest.raises(ConfigError, match="channel"):
        node_path("/x", 0, "h2c")
    with pytest.raises(ConfigError, match="kind"):
        node_path("/x", 0, "nope")
    with pytest.raises(ConfigError, match="card"):
        node_path("/x", -1, "user")


def test_missing_nodes_are_named(tmp_path):
    with pytest.raises(ResourceError, match=r"device node missing.*xdma0_user"):
        FpgaBackend(device_dir=str(tmp_path)).open()
    _fake_card(tmp_path)
    os.unlink(tmp_path / "xdma0_c2h_0")
    with pytest.raises(ResourceError, match=r"device node missing.*xdma0_c2h_0"):
        FpgaBackend(device_dir=str(tmp_path)).open()


def test_wrong_size_register_file(tmp_path):
    (tmp_path / "xdma0_user").write_bytes(b"\0" * 4096)
    with pytest.raises(ResourceError, match=r"wrong size.*n_bytes=4096.*expected=16384"):
        UserBar(str(tmp_path))
    with pytest.raises(ResourceError, match="wrong size"):
        FpgaBackend(device_dir=str(tmp_path)).open()


def test_not_a_parser_and_wrong_record_size(tmp_path):
    _fake_card(tmp_path, ident=0xDEADBEEF)
    with pytest.raises(BackendError, match="not a tickpath parser"):
        FpgaBackend(device_dir=str(tmp_path)).open()
    d2 = tmp_path / "b"
    d2.mkdir()
    _fake_card(d2, record_bytes=48)
    with pytest.raises(BackendError, match="not aligned to 64-byte records.*record_bytes=48"):
        FpgaBackend(device_dir=str(d2)).open()


def test_link_down_and_c2h_not_a_stream(tmp_path):
    _fake_card(tmp_path, link_up=False)
    with pytest.raises(BackendError, match="link is down"):
        FpgaBackend(device_dir=str(tmp_path)).open()
    d2 = tmp_path / "b"
    d2.mkdir()
    _fake_card(d2)
    os.unlink(d2 / "xdma0_c2h_0")
    (d2 / "xdma0_c2h_0").write_bytes(b"")
    with pytest.raises(ResourceError, match="neither a character device nor a FIFO"):
        open_c2h(str(d2))


def test_permission_denied_names_the_node(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: file modes do not refuse root, so EACCES cannot be provoked")
    _fake_card(tmp_path)
    os.chmod(tmp_path / "xdma0_user", 0)
    with pytest.raises(PrivilegeError, match="xdma0_user"):
        FpgaBackend(device_dir=str(tmp_path)).open()


def test_event_buffer_checks():
    check_record_buffer(aligned_records(8), align_bytes=4096)
    with pytest.raises(ConfigError, match="EVENT_DTYPE"):
        check_record_buffer(np.zeros(8, np.uint8))
    raw = aligned_records(9)
    with pytest.raises(ConfigError, match="not aligned"):
        check_record_buffer(raw.view(np.uint8)[8:8 + 512].view(EVENT_DTYPE))
    with pytest.raises(ConfigError, match="at least one"):
        aligned_records(0)


def test_poll_reassembles_split_records_and_reports_eof(tmp_path):
    regs = _fake_card(tmp_path)
    wfd = os.open(tmp_path / "xdma0_c2h_0", os.O_RDWR | os.O_NONBLOCK)   # the "card"
    be = FpgaBackend(device_dir=str(tmp_path)).open(events=aligned_records(4))
    try:
        assert rm.reg_words(regs)[0][rm.CONTROL >> 2] & rm.CTRL_ENABLE   # open() enabled the card
        recs = np.zeros(10, EVENT_DTYPE)
        recs["seq"] = np.arange(1, 11)
        recs["msg_type"] = ord("A")
        raw = recs.tobytes()
        ev = aligned_records(4)
        got = []
        pieces = [raw[:37], raw[37:100], raw[100:101], raw[101:330], raw[330:]]
        for piece in pieces:
            os.write(wfd, piece)
            while True:
                n = be.poll(be.state, ev)
                assert n >= 0
                if n == 0:
                    break
                got.append(ev[:n].copy())
        assert be.poll(be.state, ev) == 0                   # empty, writer alive: EAGAIN -> 0
        out = np.concatenate(got)
        assert out.tobytes() == raw
        assert be.stats()["split_reads"] >= 3
        os.write(wfd, raw[:10])                             # the card dies mid-record
        os.close(wfd)
        wfd = -1
        rc = be.poll(be.state, ev)
        rc = be.poll(be.state, ev) if rc == 0 else rc
        assert rc == -errno.ENODEV
        with pytest.raises(DeviceGoneError, match="partial_record_bytes=10"):
            be.check_poll(rc)
    finally:
        if wfd >= 0:
            os.close(wfd)
        be.close()
        be.close()                                          # idempotent


def test_read_records_python_helper(tmp_path):
    r, w = os.pipe()
    os.set_blocking(r, False)
    buf = aligned_records(4)
    try:
        assert read_records(r, buf, "pipe") == 0
        os.write(w, b"\1" * 128)
        assert read_records(r, buf, "pipe") == 2
        os.write(w, b"\1" * 100)
        with pytest.raises(BackendError, match="not aligned to the record size.*remainder=36"):
            read_records(r, buf, "pipe")
        os.close(w)
        w = -1
        with pytest.raises(DeviceGoneError):
            read_records(r, buf, "pipe")
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_backends_registered():
    info = get_backend("fpga")
    assert info.kind == EVENTS and "xdma" in info.requires
    emu = get_backend("fpga-emu")
    assert emu.kind == EVENTS
    with pytest.raises(ConfigError, match="device_dir"):
        emu.factory({})
    be = emu.factory({"device_dir": "/nonexistent"})
    assert be.device_dir == "/nonexistent" and be.name == "fpga-emu"
    assert get_backend("fpga").factory(None).device_dir == "/dev"


def test_read_records_einval_names_alignment(monkeypatch):
    from tickpath.fpga.host import xdma

    def refuse(fd, bufs):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(xdma.os, "readv", refuse)
    with pytest.raises(BackendError, match=r"not aligned as the engine needs.*node='/dev/xdma0_c2h_0'"):
        read_records(0, aligned_records(2), "/dev/xdma0_c2h_0")


def test_emulator_bad_parameters(tmp_path, capsys):
    from tickpath.fpga import cli
    from tickpath.fpga.emulator.process import Emulator, EmulatorParams

    with pytest.raises(ConfigError, match="exactly one input"):
        Emulator(EmulatorParams(device_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="device directory does not exist"):
        Emulator(EmulatorParams(device_dir=str(tmp_path / "nope"), h2c=True))
    with pytest.raises(ConfigError, match="HOST:PORT"):
        Emulator(EmulatorParams(device_dir=str(tmp_path), udp="localhost"))
    with pytest.raises(ConfigError, match="fifo depth out of range"):
        Emulator(EmulatorParams(device_dir=str(tmp_path), h2c=True, fifo_depth=1))
    assert not (tmp_path / "xdma0_c2h_0").exists()           # a failed start leaves no pipes
    (tmp_path / "x.pcap").write_bytes(b"\0" * 30)
    assert cli.main(["fpga", "emulate", "--device-dir", str(tmp_path), "--pcap", str(tmp_path / "x.pcap")]) == 2
    assert "not a pcap or pcapng" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["fpga", "emulate", "--device-dir", str(tmp_path), "--h2c", "--pcap", "x"])
