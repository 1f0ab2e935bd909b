"""Exception types raised by flowprior.

Every error the library raises on purpose derives from :class:`FlowpriorError`.
Bad user input (files, tables, configuration) raises :class:`InputError`, whose
message is always a single line of the form::

    <file or source>: <column/row/key>: <what is wrong>
"""

from __future__ import annotations

import os
import re

__all__ = ["FlowpriorError", "InputError"]

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
