"""Bad input on real sockets: a clear close or a counter, and the venue keeps serving
everyone else (a well-behaved client checks that after each case)."""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from ouch_client import Client, cancel_msg, enter_msg, login_packet, packet, replace_msg

from tickpath.bench.venue import layout as L

P = 10_000


def _closed(sock, timeout=2.0) -> bool:
    """True when the venue closed the connection (whatever it sent first)."""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True


_uref = {"TEST2": 1000}


def still_serving(v):
    """TEST2 logs in, enters an order and gets it accepted."""
    c = Client(v.server.address, "TEST2", "pw2", seq=0)
    assert c.login_reply[0] == b"A"
    _uref["TEST2"] += 1
    c.send(enter_msg(_uref["TEST2"], b"B", 100, b"CCC", 49_000))
    m = c.next_msg()
    assert (m["type"], m["uref"]) == ("A", _uref["TEST2"])
    c.close()
    time.sleep(0.05)


def counts(v):
    return v.server.stats()["sessions"]


def test_length_beyond_maximum_closes_the_connection(quiet_venue):
    v, _ = quiet_venue
    before = counts(v)["bad_frame_closes"]
    c = Client(v.server.address, "TEST1", "tickpath", seq=0)
    c.send_raw(b"\xff\xffU" + b"x" * 64)
    assert _closed(c.sock)
    assert counts(v)["bad_frame_closes"] == before + 1
    still_serving(v)


def test_packet_split_across_sends_and_truncated_at_close(quiet_venue):
    v, _ = quiet_venue
    c = Client(v.server.address, "TEST1", "tickpath", seq=0)
    pk = packet(b"U", enter_msg(5000, b"B", 100, b"CCC", 49_000))
    c.send_raw(pk[:7])
    time.sleep(0.05)
    c.send_raw(pk[7:])
    m = c.next_msg()
    assert (m["type"], m["uref"]) == ("A", 5000)
    before = counts(v)["truncated_at_close"]
    c.send_raw(packet(b"U", cancel_msg(5000))[:5])          # more announced than sent
    c.close()
    time.sleep(0.2)
    assert counts(v)["truncated_at_close"] == before + 1
    still_serving(v)


def test_unknown_packet_type_wrong_length_and_unknown_ouch_are_counted(quiet_venue):
    v, _ = quiet_venue
    c = Client(v.server.address, "TEST1", "tickpath", seq=0)
    u0 = dict(v.server.stats()["users"]["TEST1"])
    c.send_raw(packet(b"Q", b"hello"))
    c.send(enter_msg(5100, b"B", 100, b"CCC", 49_000)[:-1])      # one byte short
    c.send(enter_msg(5101, b"B", 100, b"CCC", 49_000) + b"\0")   # one byte long
    c.send(b"Z" + b"\0" * 20)                                   # no such OUCH type
    c.send(b"")                                                  # empty unsequenced packet
    c.send(enter_msg(5102, b"B", 100, b"CCC", 49_000, appendage=b"\x02\x01"))  # element past its end
    c.send(enter_msg(5103, b"B", 100, b"CCC", 49_000, appendage=b"\x02\x04N"))  # CustomerType: read over
    m = c.next_msg()
    assert (m["type"], m["uref"]) == ("A", 5103)
    u1 = v.server.stats()["users"]["TEST1"]
    assert u1["soupbin_unknown_packet"] == u0["soupbin_unknown_packet"] + 1
    assert u1["ouch_bad_length"] == u0["ouch_bad_length"] + 3
    assert u1["ouch_unknown_type"] == u0["ouch_unknown_type"] + 1
    assert u1["ouch_bad_appendage"] == u0["ouch_bad_appendage"] + 1
    c.close()
    still_serving(v)


def test_cancel_and_replace_of_unknown_or_dead_orders(quiet_venue):
    """OUCH 5.0: a cancel or a replace naming no live order is silently ignored (counted)."""
    v, _ = quiet_venue
    c = Client(v.server.address, "TEST1", "tickpath", seq=0)
    cancels = int(v.engine.counters[L.C_CANCEL_UNKNOWN])
    replaces = int(v.engine.counters[L.C_REPLACE_UNKNOWN])
    c.send(cancel_msg(999_999))
    c.send(replace_msg(999_998, 5200, 100, 49_000))
    c.send(enter_msg(5201, b"B", 100, b"CCC", 49_000))
    a = c.next_msg()
    assert (a["type"], a["uref"]) == ("A", 5201)              # nothing came before it
    c.send(cancel_msg(5201))
    assert c.next_msg()["type"] == "C"
    c.send(cancel_msg(5201))                                  # dead now: ignored
    c.send(replace_msg(5201, 5202, 100, 49_000))              # dead now: ignored
    c.send(enter_msg(5203, b"B", 100, b"CCC", 49_000))        # the next answer is this one's
    a = c.next_msg()
    assert (a["type"], a["uref"]) == ("A", 5203)
    assert int(v.engine.counters[L.C_CANCEL_UNKNOWN]) == cancels + 2
    assert int(v.engine.counters[L.C_REPLACE_UNKNOWN]) == replaces + 2
    c.send(cancel_msg(5203))
    assert c.next_msg()["type"] == "C"
    c.close()
    still_serving(v)


@pytest.mark.parametrize("first, counter", [
    (packet(b"U", cancel_msg(1)), "data_before_login"),
    (packet(b"R"), "data_before_login"),
    (packet(b"L", b"short"), "bad_login_packet"),
])
def test_data_before_login_closes(quiet_venue, first, counter):
    v, _ = quiet_venue
    before = counts(v)[counter]
    s = socket.create_connection(v.server.address)
    s.sendall(first)
    assert _closed(s)
    s.close()
    assert counts(v)[counter] == before + 1
    still_serving(v)


@pytest.mark.parametrize("user, pw, session, reason, counter", [
    ("TEST1", "wrong", "", b"A", "login_rejected_auth"),
    ("NOBODY", "x", "", b"A", "login_rejected_auth"),
    ("TEST1", "tickpath", "OTHERSESS", b"S", "login_rejected_session"),
])
def test_login_rejects(quiet_venue, user, pw, session, reason, counter):
    v, _ = quiet_venue
    before = counts(v)[counter]
    c = Client(v.server.address, user, pw, session=session)
    assert c.login_reply == (b"J", reason)
    assert _closed(c.sock)
    assert counts(v)[counter] == before + 1
    still_serving(v)


def test_second_login_of_the_same_user_is_rejected(quiet_venue):
    v, _ = quiet_venue
    c1 = Client(v.server.address, "TEST1", "tickpath", seq=0)
    c2 = Client(v.server.address, "TEST1", "tickpath", seq=0)
    assert c1.login_reply[0] == b"A" and c2.login_reply == (b"J", b"A")
    c1.send(enter_msg(5300, b"B", 100, b"CCC", 49_000))
    assert c1.next_msg()["uref"] == 5300                        # the first session is untouched
    c1.close()
    c2.close()


def test_silent_client_is_logged_out_and_heartbeats_flow(quiet_venue):
    v, _ = quiet_venue
    before = counts(v)["timeouts"]
    silent = Client(v.server.address, "TEST1", "tickpath", seq=0, timeout_ms=300)
    assert _closed(silent.sock, timeout=3.0)
    assert counts(v)["timeouts"] == before + 1
    time.sleep(0.05)
    c = Client(v.server.address, "TEST1", "tickpath", seq=0, timeout_ms=5000)
    t0 = time.monotonic()
    got = None
    while time.monotonic() - t0 < 3.0 and got is None:
        c.send_raw(packet(b"R"))                               # client heartbeats keep it alive
        try:
            pk = c.read_packet(timeout=0.3)
        except TimeoutError:
            continue
        if pk and pk[0] == b"H":
            got = pk
    assert got == (b"H", b"")
    c.send_raw(packet(b"O"))                                   # logout request
    assert _closed(c.sock)
    c.close()


def test_a_client_that_stops_reading_is_logged_out_alone(quiet_venue):
    v, _ = quiet_venue
    before = counts(v)["slow_consumer_logouts"]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(v.server.address)
    s.sendall(login_packet("SLOW", "slow", seq=0))
    burst = b"".join(packet(b"U", enter_msg(i, b"B", 100, b"CCC", 5 * P - 100 * (i % 20)))
                     for i in range(1, 12_001))
    s.setblocking(False)
    sent = 0
    t0 = time.monotonic()
    while sent < len(burst) and time.monotonic() - t0 < 10:
        try:
            sent += s.send(burst[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            break
        if counts(v)["slow_consumer_logouts"] > before:
            break
    t0 = time.monotonic()
    while counts(v)["slow_consumer_logouts"] == before and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    assert counts(v)["slow_consumer_logouts"] == before + 1
    still_serving(v)                                           # nobody else was held up
    s.close()
    c = Client(v.server.address, "SLOW", "slow", seq=1)       # its messages wait in the store
    assert c.login_reply[0] == b"A" and c.next_msg()["type"] == "S" and c.next_msg()["type"] == "A"
    c.close()


def test_a_thousand_connect_disconnect_cycles_leak_nothing(quiet_venue):
    v, _ = quiet_venue
    still_serving(v)
    import tracemalloc

    def cycle(i):
        s = socket.create_connection(v.server.address)
        if i % 2:
            s.sendall(login_packet("CYCLE", "cycle", seq=0))
            n = struct.unpack(">H", s.recv(2))[0]
            assert s.recv(n)[:1] == b"A"
            s.sendall(packet(b"O"))
            _closed(s, timeout=2.0)
        s.close()

    for i in range(100):                                        # warm up (allocator, caches)
        cycle(i)
    time.sleep(0.2)
    tracemalloc.start()
    mem0 = tracemalloc.get_traced_memory()[0]
    fds0 = len(os.listdir("/proc/self/fd"))
    logins0 = counts(v)["logins"]
    for i in range(1000):
        cycle(i)
    t0 = time.monotonic()
    while v.server.stats()["open_sessions"] and time.monotonic() - t0 < 5:
        time.sleep(0.02)
    assert v.server.stats()["open_sessions"] == 0 and not v.server.active
    assert counts(v)["logins"] == logins0 + 500
    assert len(os.listdir("/proc/self/fd")) <= fds0 + 2
    grown = tracemalloc.get_traced_memory()[0] - mem0
    tracemalloc.stop()
    assert grown < 256 << 10, f"{grown} bytes still held after 1000 cycles"
    still_serving(v)
