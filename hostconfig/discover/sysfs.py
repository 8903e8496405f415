"""HostFS (every /proc and /sys access, under an injectable root) and Unknown: defined in
runtime/sys/hostfs.py, shared by the runtime and hostconfig; this name is kept for
hostconfig's checks, apply and CLI."""
from tickpath.runtime.sys.hostfs import HostFS, Unknown, is_unknown  # noqa: F401  (re-exported)
