"""The ``ecad-hub`` command line.

Every command prints one line per problem and exits with status 1 on bad input (any
:class:`~ecad_hub.errors.EcadError`), 130 on Ctrl-C, 0 on success. Run ``ecad-hub COMMAND -h``.

Errors and Python warnings are printed as one ``error: ...`` / ``warning: ...`` line each, phrased
with the command's flags (:mod:`.messages`); flags mean the same in every command (:mod:`.common`).

The commands live in :mod:`.format` (import, validate, show, macs; validate's checks are in
:mod:`.validate`), :mod:`.inspect` (inspect), :mod:`.hub` (export, push, pull, browse, generate),
:mod:`.search` (search, quickstart) and :mod:`.compare` (compare); each module's ``add_parsers(sub)``
adds its sub-commands with their handler (``set_defaults(handler=...)``).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EcadError
from . import compare as compare_commands
from . import format as format_commands
from . import hub as hub_commands
from . import inspect as inspect_commands
from . import search as search_commands

#: the modules adding sub-commands, in ``--help`` order
COMMAND_MODULES = (format_commands, inspect_commands, hub_commands, search_commands, compare_commands)


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(prog="ecad-hub", description="Learned caching schedules for diffusion transformers.")
    parser.add_argument("--version", action="version", version=f"ecad-hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    """The sub-parser of ``command`` in the parser :func:`build_parser` made."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command)
    return None


def main(argv: list[str] | None = None) -> int:
    import warnings

    from .messages import WarningPrinter, cli_message

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 1
    sub = subparser(parser, args.command)
    # a Python warning that reaches the terminal is one `warning: ...` line, in CLI terms (formatwarning:
    # what warnings.showwarning writes; whoever records warnings instead, e.g. pytest, still gets them)
    saved = warnings.formatwarning
    warnings.formatwarning = WarningPrinter(args.command, sub, args).format
    try:
        return args.handler(args)
    except EcadError as e:
        print(f"error: {cli_message(str(e), command=args.command, parser=sub, args=args, error=e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ecad-hub show x | head`
        return 0
    except OSError as e:  # a file the user named cannot be read or written (--out under a file, read-only, ...)
        from ..errors import escape_control
        from ..utils.io import os_error_message

        print(f"error: {escape_control(os_error_message(e, action='failed'))}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = saved


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
