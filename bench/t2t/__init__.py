"""Tick-to-trade, wall to wall: the closed loop against the venue, every backend, the C floor."""
