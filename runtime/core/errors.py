"""One error hierarchy for tickpath, with key=value messages (after agrona's
"insufficient capacity: minCapacity=…, capacity=…").

Setup code raises these; hot loops never raise (they return codes and bump counters).
OSError from the OS is translated at the boundary by `translate_oserror`, so a caller sees
what tickpath was doing and which privilege or limit was missing.
"""
from __future__ import annotations

import errno as _errno


def _fmt(msg: str, fields: dict) -> str:
    if not fields:
        return msg
    return msg + ": " + ", ".join(f"{k}={v!r}" for k, v in fields.items())


class TickpathError(Exception):
    """Base of every error tickpath raises on purpose."""

    def __init__(self, msg: str, **fields):
        self.fields = fields
        super().__init__(_fmt(msg, fields))


class ConfigError(TickpathError, ValueError):
    """A configuration value is unknown, of the wrong type, or impossible."""


class PrivilegeError(TickpathError, PermissionError):
    """The OS refused for lack of a capability or a resource limit (named in the message)."""


class ResourceError(TickpathError):
    """A resource is missing or exhausted: a device node, huge pages, memory."""


class BackendError(TickpathError):
    """A backend could not open, or failed while running."""


class DeviceGoneError(BackendError):
    """A device (or its emulator) went away mid-stream."""


# errnos that mean "you lack a privilege or a limit", as opposed to "this is wrong".
_PRIV_ERRNOS = {_errno.EPERM, _errno.EACCES}


def translate_oserror(exc: OSError, doing: str, hint: str = "", **fields) -> TickpathError:
    """Turn an OSError into a TickpathError that says what was being done and why it failed."""
    fields = dict(fields)
    fields["errno"] = _errno.errorcode.get(exc.errno or 0, str(exc.errno))
    if exc.strerror:
        fields["reason"] = exc.strerror
    if hint:
        fields["hint"] = hint
    cls = PrivilegeError if exc.errno in _PRIV_ERRNOS else ResourceError
    if exc.errno == _errno.ENOMEM and "memlock" in hint.lower():
        cls = PrivilegeError
    err = cls(doing + " failed", **fields)
    err.__cause__ = exc
    return err
