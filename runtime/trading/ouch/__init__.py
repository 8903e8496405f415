"""OUCH 5.0 over SoupBinTCP 4.1: the client side — layout.py (where the bytes are), codec.py
(numba encode/decode), session.py (the hot path: ouch_enter/cancel/replace/modify/poll/flush),
client.py (connect, login, reconnect, state file). Import the parts from their modules."""
