"""Evidence consistency between samplers: do two runs of the same stage agree on log Z?

Where two samplers estimate the evidence of the same stage (the same stage-1 dataset, the same
sequential stage under the same flow prior, the same joint reference), their difference in
units of the combined standard error,

    n_sigma = |log Z_a - log Z_b| / sqrt(err_a^2 + err_b^2),

is about |N(0, 1)| when both estimates and both error bars are right. A large value means that
at least one of them is off by more than it says (the verdict rule ``evidence_consistency``
warns above its threshold, default 3). An error that a run does not report (pocoMC with
``precondition: false``) leaves the check undone: ``n_sigma`` is None and ``skipped`` says why;
it is never taken as 0.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import _input_error

__all__ = ["evidence_consistency"]

_SRC = "flowprior.diagnostics.evidence_consistency"


def _number(value: Any, where: str) -> float | None:
    """A finite float, or None for None (unknown); InputError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _input_error(_SRC, where, f"expected a number or None, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise _input_error(_SRC, where, f"expected a finite number or None, got {value!r}")
    return value


def evidence_consistency(estimates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of samplers that estimated the log evidence of the same stage, compared.

    Parameters
    ----------
    estimates : iterable of mapping
        One per run, with ``stage`` (any hashable label of the stage; runs of the same stage
        are compared), ``sampler`` (name), ``log_evidence`` (float, or None for a sampler
        without an evidence, such as emcee: the run takes no part) and ``log_evidence_err``
        (float >= 0, or None when the sampler reports no error).

    Returns
    -------
    list of dict
        One per pair, in order of first appearance of the stage, then of the samplers:
        ``stage``, ``sampler_a``, ``sampler_b``, ``log_evidence_a``, ``log_evidence_b``,
        ``difference`` (``a - b``), ``combined_error`` (None when an error is unknown),
        ``n_sigma`` (``|difference| / combined_error``; None when it cannot be computed) and
        ``skipped`` (None, or why ``n_sigma`` is None: an unknown error, naming the sampler,
        or a combined error of 0).

    Raises
    ------
    InputError
        A missing key, a sampler listed twice for one stage, a non-numeric or non-finite log Z,
        or a negative error.
    """
    by_stage: dict[Any, list[dict[str, Any]]] = {}
    for k, est in enumerate(estimates):
        for key in ("stage", "sampler", "log_evidence", "log_evidence_err"):
            if key not in est:
                raise _input_error(_SRC, f"estimates[{k}]", f"missing key {key!r}")
        log_z = _number(est["log_evidence"], f"estimates[{k}].log_evidence")
        err = _number(est["log_evidence_err"], f"estimates[{k}].log_evidence_err")
        if err is not None and err < 0:
            raise _input_error(_SRC, f"estimates[{k}].log_evidence_err", f"negative error {err!r}")
        runs = by_stage.setdefault(est["stage"], [])
        if any(r["sampler"] == est["sampler"] for r in runs):
            raise _input_error(
                _SRC, f"estimates[{k}]",
                f"sampler {est['sampler']!r} listed twice for stage {est['stage']!r}",
            )  # fmt: skip
        if log_z is not None:
            runs.append({"sampler": est["sampler"], "log_evidence": log_z, "err": err})
    out = []
    for stage, runs in by_stage.items():
        for a, b in itertools.combinations(runs, 2):
            diff = a["log_evidence"] - b["log_evidence"]
            unknown = [r["sampler"] for r in (a, b) if r["err"] is None]
            combined = None if unknown else math.hypot(a["err"], b["err"])
            if unknown:
                skipped = (
                    f"no log Z error reported by {', '.join(map(str, unknown))}: the check "
                    "cannot be made"
                )
            elif combined == 0:
                skipped = "combined log Z error is 0: the check cannot be made"
            else:
                skipped = None
            out.append({
                "stage": stage,
                "sampler_a": a["sampler"],
                "sampler_b": b["sampler"],
                "log_evidence_a": a["log_evidence"],
                "log_evidence_b": b["log_evidence"],
                "difference": diff,
                "combined_error": combined,
                "n_sigma": None if skipped else abs(diff) / combined,
                "skipped": skipped,
            })
    return out
