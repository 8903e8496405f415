"""Test hosts made by the test: two network namespaces joined by a veth pair.

    ns <tx>  [vtx 198.18.x.1/30] <==veth==> [vrx 198.18.x.2/30]  ns <rx>

The one implementation is tickpath.bench.harness.netns.BenchLink (the bench makes the same link for
its AF_XDP path); this module gives the tests a fresh index per pair, so several pairs in
one process never clash, and the names the tests use. `close()` deletes both namespaces
even when a test fails (context manager / fixture finalizer, plus atexit).
"""
from __future__ import annotations

import itertools

from tickpath.bench.harness.netns import RX_MAC, TX_MAC, BenchLink
from tickpath.bench.harness.netns import unavailable_reason as netns_unavailable_reason

__all__ = ["RX_MAC", "TX_MAC", "VethPair", "netns_unavailable_reason"]

# test pairs count from 1000: the bench's own links in the same process use small indexes
_COUNTER = itertools.count(1000)


class VethPair(BenchLink):
    def __init__(self):
        super().__init__(index=next(_COUNTER))
