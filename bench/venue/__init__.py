"""`tickpath venue`: an exchange simulator — a numba price-time matching engine that takes
OUCH 5.0 over SoupBinTCP 4.1 and publishes what its books do as ITCH 5.0 over MoldUDP64.
"""
