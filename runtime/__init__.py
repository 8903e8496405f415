"""tickpath.runtime — the core: contracts (event record, counters, errors), placement,
NUMA buffers, the SPSC ring, idle strategies, the poll loop, feed codecs, books, backends, CLI.

Backends and other folders depend on this package, never the reverse.
"""
