"""Glue for the workflow's rule scripts (``scripts/*.py``).

A rule script is a tiny adapter: it reads ``snakemake.input``/``params``, calls the library and
writes ``snakemake.output``. :func:`run_rule` gives every script the same behaviour: log records
(and warnings) go to the rule's log file; a :class:`~flowprior.errors.FlowpriorError` ends the
job with one readable line in the log and on stderr and a non-zero exit status; any other
exception is logged with its traceback and re-raised.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from flowprior.errors import FlowpriorError

__all__ = ["run_rule", "setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path: str | None) -> logging.Logger:
    """Send log records of this process to ``log_path`` (INFO and up) and stderr (WARNING up).

    Meant for the main program of a rule script only: it configures the root logger.

    Parameters
    ----------
    log_path : str or None
        The rule's log file (``snakemake.log[0]``); None logs to stderr only.

    Returns
    -------
    logging.Logger
        The logger ``flowprior.rule``.
    """
    handlers: list[logging.Handler] = []
    if log_path:
        file_handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        handlers.append(file_handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(logging.WARNING if log_path else logging.INFO)
    handlers.append(stream)
    logging.basicConfig(level=logging.INFO, format=_FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    return logging.getLogger("flowprior.rule")


def run_rule(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(snakemake)`` with the rule's logging and error conventions.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake injects into a rule script.
    main : callable
        The adapter: ``main(snakemake) -> None``.

    Raises
    ------
    SystemExit
        Status 1 after a :class:`~flowprior.errors.FlowpriorError` (logged as one line).
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    log = setup_logging(log_path)
    log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        main(snakemake)
    except FlowpriorError as err:
        log.error("%s", err)
        raise SystemExit(1) from None
    except Exception:
        log.exception("rule %s failed", snakemake.rule)
        raise
    log.info("done")
