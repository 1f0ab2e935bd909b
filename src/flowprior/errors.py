"""Exception types raised by flowprior.

Every error the library raises on purpose derives from :class:`FlowpriorError`.
Bad user input (files, tables, configuration) raises :class:`InputError`, whose
message is always a single line of the form::

    <file or source>: <column/row/key>: <what is wrong>
"""

from __future__ import annotations

import os
import re

__all__ = ["FlowpriorError", "InputError", "OutputError"]

_NEWLINES = re.compile(r"\s*[\r\n]+\s*")


class FlowpriorError(Exception):
    """Base class of all errors raised by flowprior."""


class InputError(FlowpriorError, ValueError):
    """Bad user input.

    The message is forced onto one line (embedded line breaks become spaces),
    so that it reads well in a Snakemake log and in a terminal.

    Parameters
    ----------
    message : str
        ``"<file or source>: <column/row/key>: <what is wrong>"``.
    """

    def __init__(self, message: object) -> None:
        super().__init__(_NEWLINES.sub(" ", str(message)).strip())


class OutputError(InputError):
    """An output path that must not or cannot be written.

    Raised before any work starts when an output would replace something flowprior did not
    write, would replace one of the command's inputs (or another of its outputs), or cannot be
    written (missing or read-only directory, a directory where a file is expected). Same
    one-line layout as :class:`InputError`: ``"<path>: <option>: <what is wrong>"``.
    """


def _input_error(source: object, where: str | None, what: str) -> InputError:
    """Build an :class:`InputError` with the standard one-line layout.

    Parameters
    ----------
    source : str or path-like
        The file (or ``"<dict>"``-style pseudo source) the problem is in.
    where : str or None
        The column, row or key; ``None`` or ``""`` when the whole source is meant.
    what : str
        What is wrong, ideally with what to do about it.
    """
    src = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    parts = [src, where, what] if where else [src, what]
    return InputError(": ".join(parts))
