"""NIC offloads, coalescing and channels through ethtool (`NicOps`, `EthtoolOps`): defined in
runtime/sys/ethtool.py, which `tickpath info` uses as well; this name is kept for
hostconfig's checks, apply and CLI."""
from tickpath.runtime.sys.ethtool import EthtoolOps, NicOps  # noqa: F401  (re-exported)
