"""The `tickpath` command: the composition root.

It owns one command (`info`) and names no folder: every other subcommand is a
"tickpath.commands" entry point in pyproject.toml, `NAME = "module:function"`, where
function(subparsers) adds the command NAME (and may add close relatives: trade adds kill).
Each folder registers what it owns — runtime/engine `run` and `replay`, runtime/lines
`stats`, bench/ `demo`, `bench`, `soak`, `publish-itch`, `venue`, hostconfig/ `host`, fpga/
`fpga` — and the root reads the list with importlib.metadata, so runtime never imports the
folders above it.

`tickpath NAME ...` imports only NAME's module (fast start for `info` and `run`); `--help`
and an unknown name import them all. A module that fails to import is not hidden: its
command stays listed ("cannot be loaded: ...") and running it raises the ImportError itself.
"""
from __future__ import annotations

import argparse
import json
import sys

from tickpath.runtime.core.errors import TickpathError

COMMAND_GROUP = "tickpath.commands"


def _cmd_info(args) -> int:
    from tickpath.runtime.sys import info
    data = info.gather()
    if args.interface and isinstance(data.get("afxdp"), dict):
        try:
            from tickpath.runtime.backends.afxdp.probe import probe
            data["afxdp"] = probe(args.interface)
        except ImportError:
            pass
    if args.json:
        print(info.to_json(data))
    else:
        info.print_info(data)
        if args.interface:
            print(json.dumps(data["afxdp"].get("interface", {}), indent=2, default=str))
    return 0


def _add_info(sub) -> None:
    s = sub.add_parser("info", help="what the runtime sees on this host")
    s.add_argument("--json", action="store_true")
    s.add_argument("--interface", help="also probe AF_XDP modes of this interface")
    s.set_defaults(func=_cmd_info)


def command_entry_points() -> list:
    """The installed "tickpath.commands" entry points, in their declared order."""
    from importlib.metadata import entry_points
    return list(entry_points(group=COMMAND_GROUP))


def _unavailable(sub, name: str, exc: ImportError) -> None:
    """Keep a command whose module failed to import listed (main raises the error if it is run)."""
    sub.add_parser(name, add_help=False, help=f"cannot be loaded: {type(exc).__name__}: {exc}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command` (the first word the user typed) only that command's module
    is imported when an entry point has that name."""
    p = argparse.ArgumentParser(prog="tickpath", description="low-latency market-data runtime")
    sub = p.add_subparsers(dest="command", required=True)
    p.set_defaults(unavailable={})
    _add_info(sub)
    # `info` is the root's own: reading the entry points (importlib.metadata, ~50 ms) is skipped
    eps = [] if command == "info" else command_entry_points()
    if command is not None and any(ep.name == command for ep in eps):
        eps = [ep for ep in eps if ep.name == command]
    for ep in eps:
        try:
            add = ep.load()
        except ImportError as exc:
            _unavailable(sub, ep.name, exc)
            p.get_default("unavailable")[ep.name] = exc
            continue
        add(sub)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[0] if argv and not argv[0].startswith("-") else None
    parser = build_parser(first)
    if first in parser.get_default("unavailable"):
        raise parser.get_default("unavailable")[first]   # a broken install says so, loudly
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.parse_args([*argv, "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except TickpathError as exc:
        print(f"tickpath: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
