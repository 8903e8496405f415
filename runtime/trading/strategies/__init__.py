"""Example strategies (numba), selectable by name in [strategy]."""
