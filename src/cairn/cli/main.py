"""Entry point of the ``cairn`` console script."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from cairn import __version__
from cairn.cli import commands
from cairn.cli.output import EXIT_ERROR, emit_error
from cairn.errors import CairnError

__all__ = ["InternalError", "build_parser", "main"]


class InternalError(CairnError):
    """An exception no part of cairn typed: reported by the CLI's backstop as exit status 2."""

    code = "internal"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn",
        description="cairn: save, inspect, scan, sign and serve AI checkpoints.",
    )
    parser.add_argument("--version", action="version", version=f"cairn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        status: int = args.handler(args)
    except CairnError as err:
        emit_error(err, as_json=bool(getattr(args, "json", False)))
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("cairn: interrupted\n")
        return 130
    except Exception as err:  # backstop: a bug or an unforeseen failure is an error (2), never "no" (1)
        emit_error(
            InternalError(f"unexpected {type(err).__name__}: {err}"[:1000]),
            as_json=bool(getattr(args, "json", False)),
        )
        return EXIT_ERROR
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
