"""Where the bytes are: SoupBinTCP 4.1 packets and OUCH 5.0 messages, client side.

Layout apart from algorithm (after Agrona's RecordDescriptor): this module is one table of
offsets and lengths, written from NASDAQ's specifications (../shared/REFERENCE.md "Order
entry"); codec.py and session.py move the bytes. The venue in bench/venue has its own,
deliberately independent tables; the tests check the two against each other.

SoupBinTCP packet:  u16 length (big-endian, not counting itself) | u8 type | payload
Outbound from us, every one framed as  [len][ 'U' ][ OUCH message ]:

    O enter   (47)  type 0 | uref 1/4 | side 5 | qty 6/4 | symbol 10/8 | price 18/8 | tif 26 |
                    display 27 | capacity 28 | iso 29 | cross 30 | clordid 31/14 | applen 45/2
    U replace (40)  type 0 | orig 1/4 | uref 5/4 | qty 9/4 | price 13/8 | tif 21 | display 22 |
                    iso 23 | clordid 24/14 | applen 38/2
    X cancel   (9)  type 0 | uref 1/4 | qty 5/4 (the new intended size, 0 = all)
    M modify  (10)  type 0 | uref 1/4 | side 5 | qty 6/4

Inbound sequenced OUCH messages all start  type 0 | timestamp 1/8 (ns since midnight):

    S system  (10)  event 9
    A accepted(64+) uref 9/4 side 13 qty 14/4 symbol 18/8 price 26/8 tif 34 display 35
                    ordref 36/8 capacity 44 iso 45 cross 46 state 47 clordid 48/14 applen 62/2
    U replaced(68+) orig 9/4 uref 13/4 side 17 qty 18/4 symbol 22/8 price 30/8 tif 38
                    display 39 ordref 40/8 capacity 48 iso 49 cross 50 state 51 clordid 52/14
                    applen 66/2
    C canceled(18)  uref 9/4 qty 13/4 (decrement) reason 17
    E executed(36+) uref 9/4 qty 13/4 price 17/8 liquidity 25 match 26/8 applen 34/2
    J rejected(29)  uref 9/4 reason 13/2 clordid 15/14
    P cancel pending (13)  uref 9/4
    I cancel reject  (13)  uref 9/4
    B broken  (36)  uref 9/4 match 13/8 reason 21 clordid 22/14
    M modified(18)  uref 9/4 side 13 qty 14/4
    T priority(30)  uref 9/4 price 13/8 display 21 ordref 22/8
"""
from __future__ import annotations

# -- SoupBinTCP 4.1 packet types ------------------------------------------------------------
SOUP_HDR = 3                    # u16 length + u8 type
PKT_LOGIN_REQUEST = ord("L")
PKT_UNSEQUENCED = ord("U")      # either way: from us it carries inbound OUCH
PKT_CLIENT_HEARTBEAT = ord("R")
PKT_LOGOUT_REQUEST = ord("O")
PKT_DEBUG = ord("+")
PKT_LOGIN_ACCEPTED = ord("A")
PKT_LOGIN_REJECTED = ord("J")
PKT_SEQUENCED = ord("S")
PKT_SERVER_HEARTBEAT = ord("H")
PKT_END_OF_SESSION = ord("Z")

LOGIN_USER = 6
LOGIN_PASSWORD = 10
LOGIN_SESSION = 10
LOGIN_SEQ = 20
LOGIN_TIMEOUT = 5               # 4.1: heartbeat timeout, ASCII ms
LOGIN_PAYLOAD = LOGIN_USER + LOGIN_PASSWORD + LOGIN_SESSION + LOGIN_SEQ + LOGIN_TIMEOUT  # 51
ACCEPT_PAYLOAD = LOGIN_SESSION + LOGIN_SEQ  # 30
HEARTBEAT_INTERVAL_NS = 1_000_000_000       # each side sends a heartbeat after 1 s of silence

# -- inbound (to the venue) OUCH messages ---------------------------------------------------
O_LEN = 47
O_UREF, O_SIDE, O_QTY, O_SYMBOL, O_PRICE, O_TIF = 1, 5, 6, 10, 18, 26
O_DISPLAY, O_CAPACITY, O_ISO, O_CROSS, O_CLORDID, O_APPLEN = 27, 28, 29, 30, 31, 45
U_LEN = 40
U_ORIG, U_UREF, U_QTY, U_PRICE, U_TIF, U_DISPLAY, U_ISO, U_CLORDID, U_APPLEN = \
    1, 5, 9, 13, 21, 22, 23, 24, 38
X_LEN = 9
X_UREF, X_QTY = 1, 5
M_LEN = 10
M_UREF, M_SIDE, M_QTY = 1, 5, 6
CLORDID_LEN = 14
SYMBOL_LEN = 8

# framed sizes on the wire (u16 length + 'U' + message)
O_WIRE = SOUP_HDR + O_LEN       # 50
U_WIRE = SOUP_HDR + U_LEN       # 43
X_WIRE = SOUP_HDR + X_LEN       # 12
M_WIRE = SOUP_HDR + M_LEN       # 13

# -- outbound (from the venue) OUCH messages: offsets from the message type byte ------------
TS = 1                          # every outbound message: timestamp 1/8
S_LEN, S_EVENT = 10, 9
A_LEN = 64
A_UREF, A_SIDE, A_QTY, A_SYMBOL, A_PRICE, A_TIF, A_DISPLAY, A_ORDREF = 9, 13, 14, 18, 26, 34, 35, 36
A_STATE, A_APPLEN = 47, 62
RU_LEN = 68                     # 'U' replaced
RU_ORIG, RU_UREF, RU_SIDE, RU_QTY, RU_PRICE, RU_TIF, RU_ORDREF, RU_STATE, RU_APPLEN = \
    9, 13, 17, 18, 30, 38, 40, 51, 66
C_LEN, C_UREF, C_QTY, C_REASON = 18, 9, 13, 17
E_LEN, E_UREF, E_QTY, E_PRICE, E_LIQ, E_MATCH, E_APPLEN = 36, 9, 13, 17, 25, 26, 34
J_LEN, J_UREF, J_REASON = 29, 9, 13
P_LEN, P_UREF = 13, 9
I_LEN, I_UREF = 13, 9
B_LEN, B_UREF, B_MATCH, B_REASON = 36, 9, 13, 21
MM_LEN, MM_UREF, MM_SIDE, MM_QTY = 18, 9, 13, 14
T_LEN, T_UREF, T_PRICE, T_DISPLAY, T_ORDREF = 30, 9, 13, 21, 22

MAX_APPENDAGE_BYTES = 1024      # optional fields beyond this are treated as oversize

# -- buffers --------------------------------------------------------------------------------
RX_BYTES = 1 << 17              # any SoupBinTCP packet (u16 length) fits, with room to spare
TX_BYTES = 1 << 20              # queued outbound bytes before an order is refused (ERR_TX_FULL)

# -- ctl: the session's live state, int64 slots (st.ctl) -------------------------------------
C_FD = 0                # socket fd (owned by the Python client)
C_STATE = 1             # STATE_* (acquire/release: the Python side reads it)
C_NEXT_SEQ = 2          # the sequence number the next 'S' packet carries
C_SKIP_BELOW = 3        # replayed messages below this number were applied already: skipped
C_RX_FILL = 4           # bytes in rx
C_TX_HEAD = 5           # first unsent byte in tx
C_TX_TAIL = 6           # end of queued bytes in tx
C_LAST_RX_NS = 7        # now_ns of the last byte received
C_LAST_TX_NS = 8        # now_ns of the last byte sent
C_TIMEOUT_NS = 9        # server silent this long = dead
C_SENT_NS = 10          # CLOCK_REALTIME right after the send() of the last order returned
C_LOST_REASON = 11      # LOST_* once the session is lost
C_GAP_PENDING = 12      # messages the server skipped at login (reported by the next poll)
C_LAST_UREF = 13        # the last UserRefNum sent (O/U)
C_SEND_CALL_NS = 14     # CLOCK_REALTIME just before that send() was called
N_CTL = 16

STATE_DOWN = 0          # not connected (never, or the loss was reported)
STATE_UP = 1
STATE_FAILING = 2       # an error was seen by a send; the next ouch_poll reports the loss

# why a session was lost (RESP_SESSION_LOST.reason)
LOST_EOF = 1            # the venue closed the connection
LOST_ERROR = 2          # send/recv error (errno in reason_code's counter)
LOST_TIMEOUT = 3        # nothing from the venue for the heartbeat timeout
LOST_END_OF_SESSION = 4  # 'Z'
LOST_BAD_FRAMING = 5    # a zero-length packet: framing can no longer be trusted
LOST_CLOSED_MID_MESSAGE = 6  # EOF with part of a packet buffered

# RESP_UNDECODED.reason: why a sequenced message could not become a response
BAD_TRUNCATED = 1       # shorter than its type's layout (or its appendage)
BAD_UNKNOWN_TYPE = 2    # an OUCH type this client does not know
BAD_SEQ_GAP = 3         # the venue skipped messages at login (qty = how many)

# -- hot-path return codes (< 0 = error) ---------------------------------------------------
OK_SENT = 0             # the message went out whole in this call
OK_QUEUED = 1           # part or all of it waits in the tx queue (flushed by poll/flush)
ERR_NOT_CONNECTED = -1
ERR_TX_FULL = -2        # the tx queue cannot take the message: nothing was queued
ERR_SEND_FAILED = -3    # the socket failed: the session is lost (the next poll reports it)
ERR_BAD_ARGUMENT = -4   # a value that does not fit its field (clordid > 14 digits, side)

# -- counters (st.counters) -----------------------------------------------------------------
K_SEQUENCED = 0         # sequenced messages received (all, skipped ones too)
K_RESPONSES = 1         # response records written
K_DUPLICATES = 2        # replayed messages skipped (already applied)
K_TRUNCATED = 3
K_UNKNOWN_TYPE = 4
K_OUT_OF_SEQUENCE = 5   # messages the venue skipped (gap at login)
K_OVERSIZE = 6          # messages longer than their layout + appendage (decoded, extra ignored)
K_HEARTBEATS_RX = 7
K_HEARTBEATS_TX = 8
K_UNSEQUENCED_RX = 9    # 'U' packets from the venue (OUCH sends none; ignored)
K_DEBUG_RX = 10
K_UNKNOWN_PACKETS = 11  # SoupBinTCP packet types that make no sense after login
K_ORDERS_SENT = 12      # O
K_CANCELS_SENT = 13     # X
K_REPLACES_SENT = 14    # U
K_MODIFIES_SENT = 15    # M
K_PARTIAL_WRITES = 16   # send() took fewer bytes than offered
K_WOULD_BLOCK = 17      # send() took none (EAGAIN)
K_TX_FULL = 18          # messages refused: the tx queue was full
K_BYTES_SENT = 19
K_BYTES_RECEIVED = 20
K_SESSIONS_LOST = 21
K_RX_STALLS = 22        # polls that stopped early because the response array was full
K_LAST_ERRNO = 23       # the errno of the last failed send/recv
K_TX_DISCARDED_BYTES = 24     # queued bytes dropped at a reconnect (the venue never saw them)
N_COUNTERS = 32

COUNTER_NAMES = {v: k[2:].lower() for k, v in dict(globals()).items()
                 if k.startswith("K_") and isinstance(v, int)}
