"""The ``labkit`` command line (the contract in DESIGN.md).

Each subcommand is a ``cmd_*`` function plus a few lines in :func:`build_parser`. Errors
a user caused (``InvalidInput``) exit with status 2 and one line naming the file and the
field; other labkit errors exit 1 with their message; neither shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import InvalidInput, LabkitError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labkit", description="Sidecar Lab: learn Kubernetes native sidecar containers.")
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # Subcommands register below, each with set_defaults(func=cmd_...).
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInput as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 2
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
