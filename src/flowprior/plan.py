"""The analysis planner: stage ids, and (issue #12) the jobs and paths of a validated config.

Vocabulary
----------
stage id
    The datasets absorbed so far, joined with :data:`SEP`: ``"A"`` is the stage-1 posterior of
    A, ``"A__B"`` the sequential posterior after A then B. This module holds the only
    definition of the separator and of the id functions; the workflow, the pipeline and the
    diagnostics use them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InputError

__all__ = ["SEP", "joint_id", "parse_stage", "stage_id"]

#: Separator of dataset names in stage ids (dataset names may not contain it).
SEP = "__"


def stage_id(datasets: Sequence[str]) -> str:
    """``["A", "B"] -> "A__B"``."""
    if not datasets:
        raise ValueError("a stage needs at least one dataset")
    for d in datasets:
        if SEP in d:
            raise InputError(f"datasets: {d}: a dataset name may not contain {SEP!r}")
    return SEP.join(datasets)


def parse_stage(stage: str) -> list[str]:
    """``"A__B" -> ["A", "B"]``."""
    return stage.split(SEP)


def joint_id(datasets: Sequence[str], order: Sequence[str]) -> str:
    """Canonical id of a joint run: the datasets in config order (``B, A`` -> ``A__B``)."""
    rank = {name: i for i, name in enumerate(order)}
    return stage_id(sorted(set(datasets), key=rank.__getitem__))


