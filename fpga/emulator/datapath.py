"""The emulated FPGA datapath: ingress front end, MoldUDP64/ITCH parser, output FIFO.

Modelled as the hardware works, not as the software decoder does: the packet enters as
8-byte beats (a 64-bit AXI-Stream with a keep mask on the last beat); each byte lane steps
one state machine (HEADER -> LEN_HI -> LEN_LO -> BODY -> LEN_HI ... -> DONE); body bytes are
routed to record fields by the field ROM (emu_rom.py) and shifted into per-field
accumulators; at a message's last byte the record is built from the accumulators and pushed
into the output FIFO - or counted and withheld (duplicate, unknown, too short, skipped type,
locate filter, FIFO full). Packet length is known at the first beat (UDP length metadata),
so a message length running past the end is caught at its length field, as in hardware.
Counters and status go straight into the register file (the shared mmap), as the card's
AXI-Lite slave would show them; control (enable, drop-on-full, filters) is sampled per
packet with relaxed atomic loads because the host writes it at any time.

Output FIFO: EVENT_DTYPE ring of FIFO_DEPTH records, `fctl = [head_records, tail_bytes]`
(monotonic; the C2H engine drains bytes, so a record half-sent to the host keeps its slot).
Drop-on-full: a record meeting a full FIFO is dropped and counted (FIFO_DROPPED, STATUS
OVERFLOW sticky). Back-pressure: a packet is admitted only when the FIFO has room for the
most records it can yield (min(worst case, depth)); otherwise ingress stalls (the input
stays queued) and BACKPRESSURE_STALLS counts the stall.

RTL: the parser is `tp_parser` (fpga/rtl/tp_parser.v: a pipeline of skid buffer, framer
(a cursor on the next length field, one length per pass), lane routing through the field ROM,
record assembly with the sequence and duplicate logic, classification, counters) and the FIFO
`tp_record_fifo` (tp_record_fifo.v), under
`tp_itch_top`; tests/fpga/rtl holds the three (this, the RTL, the decoder) equal, record for
record and counter for counter. Where they disagreed (a zero-length message below the
expected sequence: malformed here, a duplicate in the decoder and the RTL) this model was the
one fixed. This model works per byte and per packet, not per cycle: the RTL's pass timing
(one beat per cycle; an extra pass per extra length field in a beat, only in damaged input)
is the RTL's alone and measured by fpga/sim/latency.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from tickpath.runtime.core.event import EVENT_VERSION, FLAG_GAP
from tickpath.runtime.sys.intrinsics import load_relaxed
from tickpath.runtime.feed.netheaders import LINK_ETHERNET, LINK_RAW_IPV4, udp_payload

from tickpath.fpga import regmap as rm
from tickpath.fpga.emulator.rom import (
    CLASS_RECORD,
    CLASS_UNDEFINED,
    F_AUX,
    F_LOCATE,
    F_ORDER_REF,
    F_PRICE,
    F_REF2,
    F_REF2_LE,
    F_SHARES,
    F_SIDE,
    F_TRACKING,
    F_TS,
    FIELD_ROM,
    LE_SHIFT_ROM,
    MSG_BYTES,
    MSG_CLASS,
    MSG_FLAGS,
    ROM_OFFSETS,
)

BEAT_BYTES = 8
MOLD_HEADER_BYTES = 20
MIN_RECORD_MSG_BYTES = 2 + 12      # length field + the shortest record type (S, W)

# ingress kinds
KIND_PAYLOAD = 0     # UDP payloads (from a socket or H2C); port given per packet
KIND_ETHERNET = 1    # Ethernet II frames (optional one 802.1Q tag)
KIND_IPV4 = 2        # raw IPv4 datagrams

# datapath state words (int64 array)
DS_LOCKED = 0
DS_EXPECTED = 1
DS_STALLED = 2
DS_WORDS = 4

# parser states
S_HEADER = 0
S_LEN_HI = 1
S_LEN_LO = 2
S_BODY = 3
S_DONE = 4          # all messages walked: bytes after this are trailing garbage
S_DROP = 5          # packet refused or cut: the rest is drained without a look
MAX_SEQ = (1 << 62) - 1     # larger sequence numbers are damage (keeps seq + count in range)
FIRST_SEQ = 1               # MoldUDP64 numbering starts at 1: a late join shows as a gap

_CB = rm.COUNTERS_BASE >> 3
C_PACKETS_IN = _CB + rm.CNT["PACKETS_IN"]
C_NOT_FEED = _CB + rm.CNT["PACKETS_NOT_FEED"]
C_FILTERED = _CB + rm.CNT["PACKETS_FILTERED"]
C_DISABLED = _CB + rm.CNT["PACKETS_DISABLED"]
C_PACKETS = _CB + rm.CNT["PACKETS"]
C_MESSAGES = _CB + rm.CNT["MESSAGES"]
C_OUT = _CB + rm.CNT["MESSAGES_OUT"]
C_HEARTBEATS = _CB + rm.CNT["HEARTBEATS"]
C_EOS = _CB + rm.CNT["END_OF_SESSION"]
C_GAPS = _CB + rm.CNT["GAPS"]
C_GAP_MESSAGES = _CB + rm.CNT["GAP_MESSAGES"]
C_DUPLICATES = _CB + rm.CNT["DUPLICATES"]
C_MALFORMED_PACKETS = _CB + rm.CNT["MALFORMED_PACKETS"]
C_MALFORMED_MESSAGES = _CB + rm.CNT["MALFORMED_MESSAGES"]
C_UNKNOWN = _CB + rm.CNT["UNKNOWN_TYPES"]
C_SKIPPED = _CB + rm.CNT["SKIPPED_TYPES"]
C_WRONG_SESSION = _CB + rm.CNT["WRONG_SESSION"]
C_LOCATE_FILTERED = _CB + rm.CNT["LOCATE_FILTERED"]
C_FIFO_DROPPED = _CB + rm.CNT["FIFO_DROPPED"]
C_STALLS = _CB + rm.CNT["BACKPRESSURE_STALLS"]
C_BEATS = _CB + rm.CNT["BEATS_IN"]
W_CONTROL = rm.CONTROL >> 2
W_UDP_PORT = rm.UDP_PORT >> 2
W_STATUS = rm.STATUS >> 2
W_FIFO_DEPTH = rm.REG["FIFO_DEPTH"] >> 2
W_FIFO_LEVEL = rm.REG["FIFO_LEVEL"] >> 2
W_FIFO_HIGH = rm.REG["FIFO_HIGH_WATER"] >> 2
Q_EXPECTED = rm.REG["EXPECTED_SEQ"] >> 3
W_LOCATE_BITMAP = rm.LOCATE_BITMAP >> 2
SESSION_OFF = rm.SESSION


def new_datapath_state(adopt_first_seq: bool = False):
    """(ds, session, fctl): parser state words, locked session bytes, FIFO cursors.

    The expected sequence starts at FIRST_SEQ (a late join is reported as a gap), or at 0
    = adopt the first packet's number (CONTROL.ADOPT_FIRST_SEQ).
    """
    ds = np.zeros(DS_WORDS, np.int64)
    ds[DS_EXPECTED] = 0 if adopt_first_seq else FIRST_SEQ
    return ds, np.zeros(rm.SESSION_BYTES, np.uint8), np.zeros(2, np.int64)


@njit(nogil=True, cache=True, inline="always")
def _fifo_level(fctl):
    return fctl[0] - fctl[1] // 64


@njit(nogil=True, cache=True)
def _push(fifo, fctl, u32, u64, seq, ts_exch, ts_recv, order_ref, ref2, shares, price, locate,
          tracking, msg_type, side, aux, flags):
    depth = fifo.shape[0]
    level = _fifo_level(fctl)
    if level >= depth:
        u64[C_FIFO_DROPPED] += 1
        u32[W_STATUS] |= rm.ST_OVERFLOW
        return
    r = fifo[fctl[0] % depth]
    r.seq = seq
    r.ts_exch = ts_exch
    r.ts_recv = ts_recv
    r.order_ref = order_ref
    r.ref2 = ref2
    r.shares = shares
    r.price = price
    r.locate = locate
    r.tracking = tracking
    r.msg_type = msg_type
    r.side = side
    r.version = EVENT_VERSION
    r.aux = aux
    r.flags = flags
    fctl[0] += 1
    u64[C_OUT] += 1
    level += 1
    u32[W_FIFO_LEVEL] = level
    u32[W_FIFO_HIGH] = max(u32[W_FIFO_HIGH], level)


@njit(nogil=True, cache=True)
def parse_mold(buf, off, n, recv_ns, u32, u64, ds, session, fifo, fctl):
    """Parse one MoldUDP64 packet buf[off:off+n] beat by beat; records go to the FIFO."""
    u64[C_PACKETS] += 1
    ctrl = load_relaxed(u32, W_CONTROL)
    loc_filter = (ctrl & rm.CTRL_LOCATE_FILTER) != 0
    state = S_HEADER
    seq = np.uint64(0)
    count = 0
    msg_index = 0
    mlen = 0
    i = 0                       # byte index inside the current message (type byte = 0)
    mtype = 0
    locate = 0
    tracking = 0
    ts = np.uint64(0)
    order_ref = np.uint64(0)
    ref2 = np.uint64(0)
    shares = np.uint64(0)
    price = 0
    side = 0
    aux = 0
    wrong_session = False
    trailing = False            # bytes left after the last message (or after a bare header)
    n_beats = (n + BEAT_BYTES - 1) // BEAT_BYTES
    u64[C_BEATS] += n_beats
    for beat in range(n_beats):
        if state >= S_DONE:
            break               # rest of the packet is drained without parsing
        for lane in range(BEAT_BYTES):
            p = beat * BEAT_BYTES + lane
            if p >= n:
                break           # keep mask of the last beat
            b = np.int64(buf[off + p])
            if state == S_HEADER:
                if p < 10:
                    if ds[DS_LOCKED] and session[p] != b:
                        wrong_session = True
                elif p < 18:
                    seq = (seq << np.uint64(8)) | np.uint64(b)
                else:
                    count = (count << 8) | b
                if p == MOLD_HEADER_BYTES - 1:
                    state = _header_done(buf, off, seq, count, recv_ns, wrong_session, u32, u64,
                                         ds, session, fifo, fctl)
                    if state >= S_DONE:
                        trailing = state == S_DONE and p + 1 < n
                        break
            elif state == S_LEN_HI:
                mlen = b << 8
                state = S_LEN_LO
            elif state == S_LEN_LO:
                mlen |= b
                if p + mlen >= n:
                    # the length field says more than the packet holds: a damaged message
                    # that consumes no sequence number; the packet stops here
                    u64[C_MESSAGES] += 1
                    u64[C_MALFORMED_MESSAGES] += 1
                    u64[C_MALFORMED_PACKETS] += 1
                    state = S_DROP
                    break
                i = 0
                locate = 0
                tracking = 0
                ts = np.uint64(0)
                order_ref = np.uint64(0)
                ref2 = np.uint64(0)
                shares = np.uint64(0)
                price = 0
                side = 0
                aux = 0
                if mlen == 0:
                    state = _message_done(0, 0, seq + np.uint64(msg_index), recv_ns, 0, 0,
                                          np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0),
                                          0, 0, 0, loc_filter, u32, u64, ds, fifo, fctl)
                    msg_index += 1
                    if msg_index >= count:
                        state = S_DONE
                        trailing = p + 1 < n
                        break
                else:
                    state = S_BODY
            else:  # S_BODY
                if i == 0:
                    mtype = b
                elif i < ROM_OFFSETS:
                    f = FIELD_ROM[mtype, i]
                    if f == F_LOCATE:
                        locate = (locate << 8) | b
                    elif f == F_TRACKING:
                        tracking = (tracking << 8) | b
                    elif f == F_TS:
                        ts = (ts << np.uint64(8)) | np.uint64(b)
                    elif f == F_ORDER_REF:
                        order_ref = (order_ref << np.uint64(8)) | np.uint64(b)
                    elif f == F_REF2:
                        ref2 = (ref2 << np.uint64(8)) | np.uint64(b)
                    elif f == F_REF2_LE:
                        ref2 |= np.uint64(b) << np.uint64(LE_SHIFT_ROM[mtype, i])
                    elif f == F_SHARES:
                        shares = (shares << np.uint64(8)) | np.uint64(b)
                    elif f == F_PRICE:
                        price = (price << 8) | b
                    elif f == F_SIDE:
                        side = b
                    elif f == F_AUX:
                        aux = b
                i += 1
                if i == mlen:
                    _message_done(mtype, mlen, seq + np.uint64(msg_index), recv_ns, locate, tracking,
                                  ts, order_ref, ref2, shares, price, side, aux, loc_filter,
                                  u32, u64, ds, fifo, fctl)
                    msg_index += 1
                    if msg_index >= count:
                        state = S_DONE
                        trailing = p + 1 < n
                        break
                    state = S_LEN_HI
    if state == S_HEADER:
        u64[C_MALFORMED_PACKETS] += 1          # shorter than the MoldUDP64 header
    elif state == S_LEN_HI or state == S_LEN_LO:
        u64[C_MALFORMED_PACKETS] += 1          # fewer messages than the header's count
    elif trailing:
        u64[C_MALFORMED_PACKETS] += 1          # bytes after the last message
    u64[Q_EXPECTED] = ds[DS_EXPECTED]


@njit(nogil=True, cache=True)
def _header_done(buf, off, seq, count, recv_ns, wrong_session, u32, u64, ds, session, fifo, fctl):
    """Session check, gap record, heartbeat / end-of-session; returns the next parser state."""
    if wrong_session:
        u64[C_WRONG_SESSION] += 1
        return S_DROP
    if ds[DS_LOCKED] == 0:
        for k in range(10):
            session[k] = buf[off + k]
            u32.view(np.uint8)[SESSION_OFF + k] = buf[off + k]
        ds[DS_LOCKED] = 1
        u32[W_STATUS] |= rm.ST_SESSION_LOCKED
    if seq > np.uint64(MAX_SEQ):
        u64[C_MALFORMED_PACKETS] += 1
        return S_DROP
    if ds[DS_EXPECTED] == 0:
        ds[DS_EXPECTED] = np.int64(seq)        # adopt mode: first packet sets the numbering
    expected = np.uint64(ds[DS_EXPECTED])
    if seq > expected:
        missing = seq - expected
        u64[C_GAPS] += 1
        u64[C_GAP_MESSAGES] += missing
        _push(fifo, fctl, u32, u64, expected, np.uint64(0), recv_ns, np.uint64(0), np.uint64(0),
              missing, 0, 0, 0, 0, 0, 0, FLAG_GAP)
        ds[DS_EXPECTED] = np.int64(seq)
    if count == 0:
        u64[C_HEARTBEATS] += 1
        return S_DONE
    if count == 0xFFFF:
        u64[C_EOS] += 1
        return S_DONE
    return S_LEN_HI


@njit(nogil=True, cache=True)
def _message_done(mtype, mlen, mseq, recv_ns, locate, tracking, ts, order_ref, ref2, shares,
                  price, side, aux, loc_filter, u32, u64, ds, fifo, fctl):
    u64[C_MESSAGES] += 1
    expected = np.uint64(ds[DS_EXPECTED])
    if mseq >= expected:
        ds[DS_EXPECTED] = np.int64(mseq + np.uint64(1))   # every message consumes a number
    # below the expected number a message is a duplicate whatever it holds, a zero-length
    # one too: the decoder (runtime/feed/decoder.py) and the RTL (tp_parser.v) test this first
    if mseq < expected:
        u64[C_DUPLICATES] += 1
        return S_LEN_HI
    if mlen == 0:
        u64[C_MALFORMED_MESSAGES] += 1
        return S_LEN_HI
    cls = MSG_CLASS[mtype]
    if cls == CLASS_UNDEFINED:
        u64[C_UNKNOWN] += 1
    elif mlen < MSG_BYTES[mtype]:
        u64[C_MALFORMED_MESSAGES] += 1
    elif cls != CLASS_RECORD:
        u64[C_SKIPPED] += 1
    elif loc_filter and locate != 0 and (load_relaxed(u32, W_LOCATE_BITMAP + (locate >> 5))
                                         >> (locate & 31)) & 1 == 0:
        u64[C_LOCATE_FILTERED] += 1
    else:
        _push(fifo, fctl, u32, u64, mseq, ts, recv_ns, order_ref, ref2, shares, price, locate,
              tracking, mtype, side, aux, MSG_FLAGS[mtype])
    return S_LEN_HI


@njit(nogil=True, inline="always")
def _udp_payload(buf, off, n, kind):
    """(payload offset, payload bytes, dst port) of an Ethernet/IPv4 UDP frame; bytes -1 = not
    feed. The headers are parsed as the runtime parses them (runtime/feed/netheaders.py): the
    card's ingress refuses what the software path refuses; the port filter comes after."""
    link = LINK_ETHERNET if kind == KIND_ETHERNET else LINK_RAW_IPV4
    p, plen, dport, _vlan = udp_payload(buf, off, n, link, 0)
    if p < 0:
        return 0, -1, 0                        # not IPv4/UDP, options garbage, fragment, cut short
    return p, plen, dport


@njit(nogil=True, cache=True)
def run_batch(buf, offs, lens, ports, recv_ns, start, stop, kind, u32, u64, ds, session, fifo, fctl):
    """Feed packets [start, stop) through ingress and the parser; returns the next index.

    Stops early (returns < stop) only in back-pressure mode when the FIFO lacks room.
    """
    depth = fifo.shape[0]
    for k in range(start, stop):
        ctrl = load_relaxed(u32, W_CONTROL)
        off = offs[k]
        n = lens[k]
        if kind == KIND_PAYLOAD:
            poff, plen, port = off, n, ports[k]
        else:
            poff, plen, port = _udp_payload(buf, off, n, kind)
        if (ctrl & rm.CTRL_DROP_ON_FULL) == 0 and plen >= 0 and (ctrl & rm.CTRL_ENABLE) != 0:
            worst = 1 + max(plen - MOLD_HEADER_BYTES, 0) // MIN_RECORD_MSG_BYTES
            if depth - _fifo_level(fctl) < min(worst, depth):
                if ds[DS_STALLED] == 0:
                    u64[C_STALLS] += 1
                    ds[DS_STALLED] = 1
                return k
        ds[DS_STALLED] = 0
        u64[C_PACKETS_IN] += 1
        if (ctrl & rm.CTRL_ENABLE) == 0:
            u64[C_DISABLED] += 1
            continue
        if plen < 0:
            u64[C_NOT_FEED] += 1
            continue
        want_port = load_relaxed(u32, W_UDP_PORT)
        if want_port != 0 and port != 0 and port != want_port:
            u64[C_FILTERED] += 1
            continue
        parse_mold(buf, poff, plen, recv_ns[k], u32, u64, ds, session, fifo, fctl)
    return stop


def reset_session(ds, session, u32, adopt_first_seq: bool = False) -> None:
    """COMMAND.RESET_SESSION: forget the session and the expected sequence."""
    ds[DS_LOCKED] = 0
    ds[DS_EXPECTED] = 0 if adopt_first_seq else FIRST_SEQ
    u32[Q_EXPECTED * 2] = ds[DS_EXPECTED]
    u32[Q_EXPECTED * 2 + 1] = 0
    session[:] = 0
    u32.view(np.uint8)[SESSION_OFF:SESSION_OFF + rm.SESSION_BYTES] = 0
    u32[W_STATUS] &= ~np.uint32(rm.ST_SESSION_LOCKED)
