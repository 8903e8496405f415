"""`tickpath venue` as a user runs it: the ready line first on stdout, a client served,
the summary at the end; the TOML config and its errors."""
from __future__ import annotations

import json
import struct
import os
import subprocess
import sys

import pytest
from ouch_client import Capture, Client, enter_msg

from tickpath.bench.venue.cli import params_from
from tickpath.runtime.core.errors import ConfigError

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench", "venue", "venue.toml")


class _Args:
    def __init__(self, **kw):
        for k in ("config", "ouch_port", "ouch_host", "itch_to", "instruments", "rate", "seed",
                  "seconds", "user"):
            setattr(self, k, kw.get(k))
        self.no_self_match_prevention = kw.get("no_self_match_prevention", False)


def test_example_config_is_the_defaults():
    p, seconds = params_from(_Args(config=EXAMPLE))
    d, _ = params_from(_Args())
    assert seconds is None
    for k in ("instruments", "rate_msgs_per_s", "seed", "itch_to", "ouch_port", "session",
              "self_match_prevention", "max_orders", "history_bytes", "store_bytes",
              "max_queue_bytes", "band", "idle", "users"):
        assert getattr(p, k) == getattr(d, k), k


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "v.toml"
    bad.write_text('[venue]\nrate = "fast"\n')
    with pytest.raises(ConfigError, match="rate"):
        params_from(_Args(config=str(bad)))
    bad.write_text('[venue]\nsped = 1\n')
    with pytest.raises(ConfigError, match="sped"):
        params_from(_Args(config=str(bad)))
    with pytest.raises(ConfigError, match="NAME:PASSWORD"):
        params_from(_Args(user=["nopassword"]))
    # a destination port of 0 sends nowhere anyone listens
    with pytest.raises(ConfigError, match="venue.itch_to"):
        params_from(_Args(itch_to="127.0.0.1:0"))


def test_tickpath_venue_ready_line_client_and_summary(tmp_path):
    cap = Capture()
    ready_file = tmp_path / "ready.json"
    out = tmp_path / "summary.json"
    cfg = tmp_path / "v.toml"
    cfg.write_text('[venue]\nrate = 2000.0\nhistory_mib = 64\nstore_mib = 8\nmax_orders = 65536\n'
                   '[[instrument]]\nsymbol = "AAA"\nref_price = 100.0\n'
                   '[[instrument]]\nsymbol = "BBB"\nref_price = 20.0\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpath.runtime.cli", "venue", "--config", str(cfg), "--seconds", "30",
         "--itch-to", f"{cap.address[0]}:{cap.address[1]}", "--user", "ME:secret",
         "--ready-file", str(ready_file), "--json", str(out), "--timestamps", str(tmp_path / "ts.npz"),
         "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert set(ready) >= {"ouch", "itch", "retransmit", "session", "symbols", "users", "refdata"}
        assert ready["symbols"] == ["AAA", "BBB"] and ready["users"] == [{"username": "ME", "password": "secret"}]
        assert json.loads(ready_file.read_text()) == ready
        assert ready["refdata"][0] | {} == {"symbol": "AAA", "locate": 1, "tick": 100, "round_lot": 100,
                                            "ref_price": 1_000_000, "band_lo": 950_000, "band_hi": 1_050_000}
        host, port = ready["ouch"].rsplit(":", 1)
        c = Client((host, int(port)), "ME", "secret")
        assert c.login_reply[0] == b"A"
        c.next_msg()
        c.send(enter_msg(1, b"B", 100, b"AAA", 900_000))      # outside the band
        assert c.next_msg()["type"] == "J"
        c.close()
    finally:
        proc.send_signal(__import__("signal").SIGINT)
        rest = proc.communicate(timeout=60)[0]
        cap.close()
    assert proc.returncode == 0
    summary = json.loads(out.read_text())
    assert json.loads(rest) == summary
    assert summary["rejected_by_reason"] == {"fat_finger": 1}
    assert summary["orders_received"] == {"ME": 1} and summary["itch"]["messages"] > 0
    import numpy as np
    log = np.load(tmp_path / "ts.npz")
    assert len(log["ouch_in"]) == 1 and log["ouch_in"]["recv_ns"][0] > 0
    assert len(log["itch_pkt_send_ns"]) > 0


def test_itch_to_a_multicast_group_on_loopback():
    import socket
    from types import SimpleNamespace

    from venue_net import make_venue
    group = "239.255.13.7"
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    r.bind((group, 0))
    r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
    r.settimeout(2.0)
    try:
        v = make_venue(SimpleNamespace(address=(group, r.getsockname()[1])), multicast_if="127.0.0.1")
        try:
            pkt = r.recv(65536)
        finally:
            v.stop()
    finally:
        r.close()
    assert pkt[:10] == v.session and struct.unpack_from(">QH", pkt, 10)[0] == 1
