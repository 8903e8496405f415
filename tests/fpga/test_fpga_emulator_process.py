"""The emulator as a separate process, read through the fpga backend (the CI path)."""
from __future__ import annotations

import errno
import os
import signal
import socket
import time

import numpy as np
import pytest
from fpga_helpers import SESSION, decode_all, start_emulator, stop_emulator
from tickpath.fpga import regmap as rm
from tickpath.fpga.host.backend import FpgaBackend
from tickpath.fpga.host.control import ParserControl
from tickpath.fpga.emulator.inputs import h2c_frame
from tickpath.runtime.feed import pcap
from tickpath.runtime.core.errors import DeviceGoneError
from tickpath.runtime.core.event import EVENT_DTYPE

from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold

T0_NS = 1_750_000_000_000_000_000


def _read_n(be, want, timeout_s=60.0, batch=512):
    """Poll until `want` records arrived (or timeout); returns them."""
    out = []
    got = 0
    ev = np.zeros(batch, EVENT_DTYPE)
    deadline = time.monotonic() + timeout_s
    while got < want and time.monotonic() < deadline:
        n = be.check_poll(be.poll(be.state, ev))
        if n:
            out.append(ev[:n].copy())
            got += n
        else:
            time.sleep(0.001)
    return np.concatenate(out) if out else np.zeros(0, EVENT_DTYPE)


def _wait(pred, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def _feed(n_messages=20_000, seed=3):
    from tickpath.bench.load import market
    m = market.generate(seed, n_messages, 32)
    pk = market.pack_mold(m, SESSION)
    return [pk.packet(k) for k in range(pk.n_packets)]


@pytest.fixture
def emu(tmp_path):
    procs = []

    def start(*args):
        p = start_emulator(tmp_path, *args)
        procs.append(p)
        return p

    yield start
    for p in procs:
        stop_emulator(p)


def test_pcap_replay_is_byte_equal_to_decoder(tmp_path, emu):
    payloads = _feed()
    recv = [T0_NS + 1000 * i for i in range(len(payloads))]
    path = tmp_path / "feed.pcapng"
    pcap.write_pcapng(path, [pcap.udp_frame(p, 26400) for p in payloads], recv)
    want, dc = decode_all(payloads, recv)
    emu("--pcap", path)                      # starts disabled: the backend's open enables it
    be = FpgaBackend(device_dir=str(tmp_path)).open()
    try:
        got = _read_n(be, len(want))
        assert len(got) == len(want)
        assert got.tobytes() == want.tobytes()
        st = be.stats()
        assert st["counters"]["events"] == dc["events"] and st["records_read"] == len(want)
        assert st["fpga_records_c2h"] == len(want)
    finally:
        be.close()


def test_killed_emulator_reports_device_gone_promptly(tmp_path, emu):
    payloads = _feed(5_000)
    path = tmp_path / "feed.pcap"
    pcap.write_pcap(path, [pcap.udp_frame(p, 26400) for p in payloads], [T0_NS] * len(payloads))
    proc = emu("--pcap", path, "--loops", "1000000", "--adopt-first-seq", "--drop-on-full")
    be = FpgaBackend(device_dir=str(tmp_path)).open()
    try:
        assert len(_read_n(be, 1000)) >= 1000
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        ev = np.zeros(512, EVENT_DTYPE)
        t0 = time.monotonic()
        rc = 0
        while time.monotonic() - t0 < 10:
            rc = be.poll(be.state, ev)
            if rc < 0:
                break
        assert rc == -errno.ENODEV, rc
        assert time.monotonic() - t0 < 10
        with pytest.raises(DeviceGoneError, match="gone"):
            be.check_poll(rc)
        assert be.poll(be.state, ev) == -errno.ENODEV     # stays gone, never hangs
    finally:
        be.close()


def _h2c_write(tmp_path, payloads, timeout_s=30.0, stop_when_full=False):
    """Write framed packets into the H2C pipe without blocking forever: under back-pressure
    the card stops taking them until the host reads, so the writer must not wait on it."""
    data = memoryview(b"".join(h2c_frame(p) for p in payloads))
    fd = os.open(tmp_path / "xdma0_h2c_0", os.O_WRONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + timeout_s
    try:
        while data and time.monotonic() < deadline:
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                if stop_when_full:
                    return data.tobytes()       # the rest, for the caller to write later
                time.sleep(0.001)
        return data.tobytes()
    finally:
        os.close(fd)


def test_fifo_overflow_drop_on_full_is_counted_and_flagged(tmp_path, emu):
    payloads = _feed(6_000)
    want, _ = decode_all(payloads, [0] * len(payloads))
    emu("--h2c", "--fifo-depth", "64", "--pipe-bytes", "4096", "--drop-on-full")
    be = FpgaBackend(device_dir=str(tmp_path)).open()      # enabled, but the host does not read
    ctl = be.ctl
    try:
        _h2c_write(tmp_path, payloads)
        assert _wait(lambda: ctl.counters()["packets"] == len(payloads))
        c = ctl.counters()
        assert c["fifo_dropped"] > 0
        assert c["messages_out"] + c["fifo_dropped"] == len(want)   # every record: sent or counted
        assert ctl.status()["overflow"] and be.overflowed()
        assert be.stats()["counters"]["events_dropped"] == c["fifo_dropped"]
        got = _read_n(be, c["messages_out"], timeout_s=20)
        assert len(got) == c["messages_out"]
        ctl.clear_overflow()
        assert not be.overflowed()
    finally:
        be.close()


def test_fifo_backpressure_loses_nothing(tmp_path, emu):
    payloads = _feed(6_000)
    want, _ = decode_all(payloads, [0] * len(payloads))
    emu("--h2c", "--fifo-depth", "128", "--pipe-bytes", "4096")
    be = FpgaBackend(device_dir=str(tmp_path)).open()
    try:
        rest = _h2c_write(tmp_path, payloads, timeout_s=5, stop_when_full=True)
        assert rest, "the H2C pipe should fill while the card is back-pressured"
        assert _wait(lambda: be.ctl.counters()["backpressure_stalls"] > 0)
        assert be.ctl.counters()["packets"] < len(payloads)           # ingress is held back
        got = [_read_n(be, 1000)]
        fd = os.open(tmp_path / "xdma0_h2c_0", os.O_WRONLY | os.O_NONBLOCK)
        try:
            while rest:                          # the host reads and writes in turns
                try:
                    rest = rest[os.write(fd, rest):]
                except BlockingIOError:
                    pass
                got.append(_read_n(be, 256, timeout_s=0.5))
        finally:
            os.close(fd)
        got.append(_read_n(be, len(want) - sum(len(g) for g in got)))
        got = np.concatenate(got)
        assert len(got) == len(want)
        assert be.ctl.counters()["fifo_dropped"] == 0 and not be.overflowed()
        got["ts_recv"] = 0                      # H2C stamps arrival time; all else identical
        assert got.tobytes() == want.tobytes()
    finally:
        be.close()


def test_registers_enable_reset_locate_filter_through_the_process(tmp_path, emu):
    a = lambda loc, ref: itch.encode_add(loc, 0, 5, ref, "B", 10, "X", 100)
    emu("--h2c")
    ctl = ParserControl(str(tmp_path))
    be = FpgaBackend(device_dir=str(tmp_path)).open(enable=False)
    try:
        _h2c_write(tmp_path, [mold.mold_packet(SESSION, 1, [a(1, 1)])])
        assert _wait(lambda: ctl.counters()["packets_disabled"] == 1)
        assert ctl.counters()["packets"] == 0 and not ctl.status()["enabled"]
        ctl.enable(True)
        assert ctl.wait_status(rm.ST_ENABLED)
        _h2c_write(tmp_path, [mold.mold_packet(SESSION, 1, [a(1, 1), a(2, 2), a(3, 3)])])
        got = _read_n(be, 3, timeout_s=20)
        assert list(got["locate"]) == [1, 2, 3]
        ctl.reset_counters()
        c = ctl.counters()
        assert all(v == 0 for v in c.values()), c
        ctl.set_locates([2, 700])
        _h2c_write(tmp_path, [mold.mold_packet(SESSION, 4, [a(1, 4), a(2, 5), a(700, 6), a(3, 7)])])
        got = _read_n(be, 2, timeout_s=20)
        assert list(got["locate"]) == [2, 700]
        assert _wait(lambda: ctl.counters()["locate_filtered"] == 2)
        ctl.set_locates(None)
        _h2c_write(tmp_path, [mold.mold_packet(SESSION, 8, [a(3, 8)])])
        assert list(_read_n(be, 1, timeout_s=20)["locate"]) == [3]
        assert ctl.status()["session"] == SESSION.decode()
    finally:
        be.close()
        ctl.close()


def test_port_filter_and_not_feed_frames_from_pcap(tmp_path, emu):
    a = itch.encode_add(9, 0, 5, 1, "S", 10, "X", 100)
    frames = [
        pcap.udp_frame(mold.mold_packet(SESSION, 1, [a]), 26400),
        pcap.udp_frame(mold.mold_packet(SESSION, 2, [a]), 26401),      # other port
        b"\xff" * 12 + b"\x08\x06" + b"\0" * 28,                       # ARP
        pcap.udp_frame(mold.mold_packet(SESSION, 2, [a]), 26400)[:30],  # cut inside IPv4
        pcap.udp_frame(mold.mold_packet(SESSION, 2, [a]), 26400),
    ]
    path = tmp_path / "ports.pcap"
    pcap.write_pcap(path, frames, [T0_NS + i for i in range(len(frames))])
    emu("--pcap", path, "--udp-port-filter", "26400")
    be = FpgaBackend(device_dir=str(tmp_path)).open()
    try:
        got = _read_n(be, 2, timeout_s=20)
        assert list(got["seq"]) == [1, 2]
        assert be.ctl.wait_status(rm.ST_INPUT_DONE)
        c = be.ctl.counters()
        assert (c["packets_in"], c["packets_filtered"], c["packets_not_feed"], c["packets"]) == (5, 1, 2, 2)
    finally:
        be.close()


def test_udp_input_on_loopback(tmp_path, emu):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    payloads = _feed(3_000)
    want, _ = decode_all(payloads, [0] * len(payloads))
    emu("--udp", f"127.0.0.1:{port}", "--enable")
    be = FpgaBackend(device_dir=str(tmp_path)).open()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i, p in enumerate(payloads):
                tx.sendto(p, ("127.0.0.1", port))
                if i % 16 == 15:
                    time.sleep(0.0005)          # bounded, gentle: the CI machine has 2 cores
        got = _read_n(be, len(want), timeout_s=30)
        c = be.ctl.counters()
        assert len(got) <= len(want)
        if c["ingress_overrun"] == 0:
            assert len(got) == len(want)
            got["ts_recv"] = 0
            assert got.tobytes() == want.tobytes()
        else:                                   # the kernel dropped datagrams: counted, seen as gaps
            assert c["gaps"] > 0
    finally:
        be.close()


def test_fpga_status_cli_reads_emulator_registers(tmp_path, emu, capsys):
    from tickpath.fpga import cli

    emu("--h2c", "--enable", "--fifo-depth", "256")
    assert cli.main(["fpga", "status", "--device-dir", str(tmp_path), "--json"]) == 0
    import json

    st = json.loads(capsys.readouterr().out)
    assert st["link_up"] and st["enabled"] and st["fifo_depth"] == 256 and st["record_bytes"] == 64
    assert "fifo_dropped" in st["counters"]
    assert cli.main(["fpga", "status", "--device-dir", str(tmp_path / "nowhere")]) == 2
    assert "device node missing" in capsys.readouterr().err
