"""Shared test fixtures and skip helpers."""
from __future__ import annotations

import os

import pytest


def require_root(what: str) -> None:
    """Skip (with the reason printed by -ra) unless running as root."""
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (CAP_NET_ADMIN/CAP_BPF); euid={os.geteuid()}")
