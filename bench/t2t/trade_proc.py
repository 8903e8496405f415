"""`tickpath trade` as the responder of the tick-to-trade bench: its config per path, the child
process (started in the responder's network namespace for the veth paths), the compile before
any venue starts, and its summary at the end.

Per path the config differs only in the receive side: `kernel` / `kernel-busypoll` (the
socket backend on loopback, SO_BUSY_POLL off or 50 µs), `fpga-emu` (the FPGA backend reading
the emulated card's records), `kernel-veth` (the socket backend bound to the responder's
address on the veth) and `afxdp` (the AF_XDP backend on the responder's end of the veth, in
`afxdp_mode`: skb = generic XDP, the mode a veth supports for every kernel; drv = veth's own
XDP). The strategy is bench/t2t/responder.py throughout.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tickpath.bench.harness.backends import spawn_fpga_emulator, stop_fpga_emulator
from tickpath.bench.t2t import venue_proc as VP

TICKPATH_PATHS = ("kernel", "kernel-busypoll", "kernel-veth", "afxdp", "fpga-emu")


def _backend(path: str, p, card_dir: str, veth) -> str:
    """The [backend] table's body (and the tables it needs) for one path."""
    if path == "fpga-emu":
        return f'kind = "fpga-emu"\n[backend.fpga]\ndevice_dir = "{card_dir}"'
    if path == "afxdp":
        return (f'kind = "afxdp"\n[backend.afxdp]\nmode = "{p.afxdp_mode}"\n'
                f'[nic]\ninterface = "{veth.responder_if}"')
    busy = 50 if path == "kernel-busypoll" else 0
    return f"kind = \"kernel\"\nbusy_poll_us = {busy}"


def trade_config(path: str, ready_file: str, ouch: tuple, password: str, marker: dict, p, sc, port: int,
                 card_dir: str = "", veth=None) -> str:
    host, oport = ouch
    feed_host = veth.responder_host if veth is not None else "127.0.0.1"
    rate = int(sc.trigger_rate_per_s * 4) + 100
    rx = f"[{p.rx_cpu}]" if p.rx_cpu is not None else '"auto"'
    return f"""
[feed]
address = "{feed_host}"
port = {port}
first_seq = 0
[backend]
{_backend(path, p, card_dir, veth)}
[cores]
rx = {rx}
[idle]
strategy = "busy-spin"
[buffers]
frames = {p.frames}
[book]
instruments = {sc.instruments + 8}
[venue]
ouch = "{host}:{oport}"
user = "TP"
password = "{password}"
ready_file = "{ready_file}"
[strategy]
name = "tickpath.bench.t2t.responder"
[strategy.params]
symbols = {json.dumps([i['symbol'] for i in marker['instruments']])}
answer_symbol = "{marker['symbol']}"
answer_price = {marker['answer_price']}
answer_qty = 1
[risk]
max_order_qty = 10
max_notional = 0.0
price_collar_pct = 0.0
max_position = 0
max_total_position = 0
max_open_orders = 0
max_orders_per_s = {rate}
max_orders_per_100ms = {rate}
max_msgs_per_s = {rate * 2}
max_msgs_per_100ms = {rate * 2}
max_loss = 0.0
max_venue_rejects_per_s = 0
max_breaches = 0
[trading]
seconds = {p.seconds + p.settle_s + 1.5}
drain_s = 0.5
live_interval_s = 1.0
"""


def start(path, venue, marker, p, sc, port, workdir, card_dir="", veth=None):
    """Start `tickpath trade` against this venue; returns (process, summary path) once it is
    logged in and its loop runs. A process that does not get there is killed before raising."""
    ready_file = os.path.join(workdir, "venue.ready")
    with open(ready_file, "w") as f:
        f.write(json.dumps(venue.ready) + "\n")
    cfg = os.path.join(workdir, f"{path}.toml")
    with open(cfg, "w") as f:
        f.write(trade_config(path, ready_file, venue.ouch(), venue.password("TP"), marker, p, sc, port,
                             card_dir, veth))
    out_json = os.path.join(workdir, f"{path}.json")
    pre = veth.preexec_responder() if veth is not None else None
    proc = subprocess.Popen([sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg,
                             "--json", out_json, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=pre)
    deadline = time.monotonic() + 900     # a cold cache compiles the loop first
    err = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        err.append(line)
        if line.startswith('{"ready"'):
            return proc, out_json
    kill(proc)
    raise RuntimeError(f"tickpath trade did not start: {''.join(err)[-1500:]}")


def precompile(path: str, p, sc, veth=None) -> dict:
    """`tickpath trade --compile-only` for this path's config, before any venue or clock
    starts: a cold cache compiles for minutes, which inside a run would leave the venue's
    flow (and its timestamp log) running with nobody answering. The veth paths compile in the
    responder's namespace: the AF_XDP backend opens (and attaches to) vrx to type the loop."""
    workdir = tempfile.mkdtemp(prefix=f"tickpath-t2t-compile-{path}-")
    quiet = VP.VenueRun().quiet_symbols
    marker = {"instruments": [{"symbol": s} for s in quiet], "symbol": quiet[0], "answer_price": 10_000}
    emu = None
    try:
        card_dir = ""
        if path == "fpga-emu":    # the backend opens the card's files to learn the loop's types
            card_dir = os.path.join(workdir, "card")
            os.mkdir(card_dir)
            emu = spawn_fpga_emulator(card_dir, p.itch_port, p.venue_cpu)
        cfg = os.path.join(workdir, f"{path}.toml")
        with open(cfg, "w") as f:   # no venue: --compile-only connects to nothing
            f.write(trade_config(path, "", ("127.0.0.1", 9), "-", marker, p, sc, p.itch_port, card_dir, veth))
        pre = veth.preexec_responder() if veth is not None else None
        out = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg,
                              "--compile-only"], capture_output=True, text=True, timeout=1800, preexec_fn=pre)
        if out.returncode != 0:
            raise RuntimeError(f"tickpath trade --compile-only failed for {path}: {out.stderr[-1500:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop_fpga_emulator(emu)
        shutil.rmtree(workdir, ignore_errors=True)


def finish(proc, out_json, timeout_s):
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        kill(proc)
        return {"error": "tickpath trade did not finish"}
    rest = proc.stderr.read()
    if not os.path.exists(out_json):
        return {"error": f"tickpath trade exited {proc.returncode}: {rest[-800:]}"}
    with open(out_json) as f:
        return json.load(f)


def kill(proc) -> None:
    """End a trade process still running (an error path): by its pid, then reap it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
