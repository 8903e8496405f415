"""OUCH 5.0 over SoupBinTCP 4.1: the client side (layouts, numba codec, session)."""
