"""Command-line interface: ``flowprior [--debug] <command> ...``.

Subcommands are registered on the subparsers object returned by :func:`_build_parser`; each
sets ``func`` (``func(args) -> int | None``) with ``parser.set_defaults``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from flowprior import __version__
from flowprior.errors import FlowpriorError

__all__ = ["main"]

#: Exit status after a :class:`~flowprior.errors.FlowpriorError` (bad input, bad file ...).
EXIT_ERROR = 2
#: Exit status after any other exception (a bug, or a failure flowprior does not anticipate).
EXIT_UNEXPECTED = 1


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The top-level parser and its subparsers object (for registering subcommands).

    Subparsers are of the same class, so a bad option value of any command is a one-line
    error with exit status 2.
    """
    parser = _Parser(
        prog="flowprior",
        description="Normalizing-flow priors for sequential Bayesian calibration.",
    )
    parser.add_argument("--version", action="version", version=f"flowprior {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log debug messages and show tracebacks of errors",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    from flowprior.commands import register

    register(subparsers)
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also the console script's).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 after a :class:`~flowprior.errors.FlowpriorError` (one line on
        stderr; the traceback too with ``--debug``). A usage error (unknown option, bad option
        value) raises ``SystemExit(2)`` after one line on stderr. Any other exception (an
        ``Exception``, not ``KeyboardInterrupt`` or ``SystemExit``) is reported as one line
        ``flowprior: error: <Type>: <message> (run with --debug for the traceback)`` and
        gives 1; with ``--debug`` the traceback is printed instead of the hint.
    """
    parser, _ = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        status = func(args)
    except FlowpriorError as err:
        if args.debug:
            traceback.print_exc()
        print(f"flowprior: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # the CLI boundary: one line, the traceback only with --debug
        if args.debug:
            traceback.print_exc()
            hint = ""
        else:
            hint = " (run with --debug for the traceback)"
        print(f"flowprior: error: {type(err).__name__}: {_one_line(err)}{hint}", file=sys.stderr)
        return EXIT_UNEXPECTED
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
