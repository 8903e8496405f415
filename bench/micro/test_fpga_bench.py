"""FPGA path: emulator throughput and the backend's host-side cost per record, beside the
software decoder's per-message cost, in the same run.

Run: .venv/bin/pytest bench/micro/test_fpga_bench.py --benchmark-enable -p no:cacheprovider
     --benchmark-columns=min,median,max,stddev,rounds
(TICKPATH_BENCH_CPU=N pins to CPU N; the CPU model and affinity go into extra_info.)
Input: the seeded synthetic market (200 k messages, 200 instruments, 1472-byte packets).
* emulator_datapath: the emulated card's parser (8-byte beats, field ROM, FIFO) in-process,
  records drained after each round: messages/s the emulator can sustain.
* software_decoder: runtime.decoder.decode_buffer on the same packets, one event array.
* backend_poll: host side of the FPGA path: fpga_poll (libc read of a pipe full of records
  through ctypes, remainder handling) + a trivial consume (sum of shares) per record.
* emulator_process: the emulator as a process replaying a pcap, read through the backend:
  end-to-end records/s over the named pipe (what the CI tests rely on).
Every round checks its counts, so a round that did less cannot pass as faster.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numba import njit


from tickpath.bench.load import market
from tickpath.fpga.emulator import datapath as dp
from tickpath.fpga import regmap as rm
from tickpath.fpga.host.backend import SW_FD, SW_WORDS, FpgaState, fpga_poll
from tickpath.fpga.emulator.model import ParserModel
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed.decoder import decode_buffer, new_mold_state
from tickpath.runtime.core.event import EVENT_DTYPE

N_MESSAGES = 200_000
N_INSTRUMENTS = 200
PIPE_RECORDS = 16_384           # a 1 MiB pipe of records per backend round
SESSION = b"FPGABENCH1"


pytestmark = pytest.mark.usefixtures("placement")  # bench/micro/conftest.py




@pytest.fixture(scope="module")
def feed():
    mkt = market.generate(2025, N_MESSAGES, N_INSTRUMENTS)
    return market.pack_mold(mkt, SESSION)


def test_emulator_datapath(benchmark, feed):
    pk = feed
    model = ParserModel(fifo_depth=1 << 18)
    model.write_control(rm.CTRL_ENABLE | rm.CTRL_DROP_ON_FULL)
    ports = np.zeros(pk.n_packets, np.int64)
    recv = np.zeros(pk.n_packets, np.int64)
    lens = pk.lengths.astype(np.int64)

    def one_round():
        model.u32[rm.COMMAND >> 2] = rm.CMD_RESET_COUNTERS | rm.CMD_RESET_SESSION
        model.service_registers()
        model.feed(pk.buf, pk.offsets, lens, ports, recv, dp.KIND_PAYLOAD)
        model.fctl[1] = model.fctl[0] * 64        # the C2H engine took everything (not timed apart)
        return model.counters()["MESSAGES_OUT"]

    out = benchmark(one_round)
    assert out == N_MESSAGES and model.counters()["FIFO_DROPPED"] == 0
    benchmark.extra_info["messages"] = N_MESSAGES
    benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median \
        if benchmark.stats else None


def test_software_decoder(benchmark, feed):
    pk = feed
    events = np.zeros(N_MESSAGES + 16, EVENT_DTYPE)
    counters = C.new_counters()
    recv = np.zeros(pk.n_packets, np.int64)

    def one_round():
        mold, sess = new_mold_state()
        counters[:] = 0
        return decode_buffer(pk.buf, pk.offsets, pk.lengths, 0, pk.n_packets, recv, mold, sess,
                             events, 0, counters)

    assert benchmark(one_round) == N_MESSAGES
    benchmark.extra_info["messages"] = N_MESSAGES
    benchmark.extra_info["msgs_per_s_median"] = N_MESSAGES / benchmark.stats.stats.median \
        if benchmark.stats else None


@njit(nogil=True)
def _drain_and_consume(state, events, want):
    """The loop's side of the FPGA path: poll records, touch each (sum shares)."""
    got = 0
    shares = np.uint64(0)
    while got < want:
        n = fpga_poll(state, events)
        if n <= 0:
            return -1 if n < 0 else got
        for i in range(n):
            shares += events[i].shares
        got += n
    return got + (shares & np.uint64(0)) * 0


def test_backend_poll(benchmark, tmp_path):
    path = tmp_path / "c2h"
    os.mkfifo(path)
    wfd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    fcntl.fcntl(wfd, 1031, PIPE_RECORDS * 64)         # F_SETPIPE_SZ
    rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    recs = np.zeros(PIPE_RECORDS, EVENT_DTYPE)
    recs["shares"] = 1
    raw = recs.tobytes()
    state = FpgaState(words=np.zeros(SW_WORDS, np.int64), remainder=np.zeros(64, np.uint8))
    state.words[SW_FD] = rfd
    events = np.zeros(256, EVENT_DTYPE)
    _drain_and_consume(state, events, 0)               # compile

    def fill():
        mv = memoryview(raw)
        while mv:
            mv = mv[os.write(wfd, mv):]
        return (state, events, PIPE_RECORDS), {}

    try:
        got = benchmark.pedantic(_drain_and_consume, setup=fill, rounds=30, iterations=1)
        assert got == PIPE_RECORDS
        benchmark.extra_info["records_per_round"] = PIPE_RECORDS
        benchmark.extra_info["batch_records"] = len(events)
    finally:
        os.close(rfd)
        os.close(wfd)


def test_emulator_process(benchmark, feed, tmp_path):
    from fpga_helpers import start_emulator, stop_emulator
    from tickpath.fpga.host.backend import FpgaBackend
    from tickpath.runtime.feed import pcap

    pk = feed
    frames = [pcap.udp_frame(pk.packet(k), 26400) for k in range(pk.n_packets)]
    pcap.write_pcap(tmp_path / "f.pcap", frames, [0] * len(frames))
    events = np.zeros(512, EVENT_DTYPE)
    live = []                                          # (proc, backend) of the current round

    def cleanup():
        while live:
            proc, be = live.pop()
            be.close()
            stop_emulator(proc)

    def setup():                                       # not timed: process start, numba load
        cleanup()
        d = tmp_path / f"dev{time.monotonic_ns()}"
        d.mkdir()
        proc = start_emulator(d, "--pcap", tmp_path / "f.pcap", "--adopt-first-seq")
        be = FpgaBackend(device_dir=str(d)).open(enable=False)
        live.append((proc, be))
        return (be,), {}

    def replay(be):                                    # timed: enable -> last record read
        be.ctl.enable(True)
        got = 0
        t0 = time.perf_counter()
        while got < N_MESSAGES and time.perf_counter() - t0 < 60:
            got += be.check_poll(be.poll(be.state, events))
        return got

    try:
        assert benchmark.pedantic(replay, setup=setup, rounds=3, iterations=1) == N_MESSAGES
    finally:
        cleanup()
    benchmark.extra_info["messages"] = N_MESSAGES
