"""Sampler comparison of an analysis: every sampler run of every stage side by side.

:func:`comparison_runs` lists the runs of an analysis plan (stage 1 of each dataset with a
likelihood, each sequential stage for every sampler, each joint reference);
:func:`sampler_comparison` turns them into two tables:

``samplers`` (one row per run)
    cost (likelihood calls, the sampler's wall time), the run's own ``log Z`` and the ``log Z``
    of all the stage's datasets together, and, where the stage is a built-in analytic problem
    (:func:`~flowprior.diagnostics.analytic_reference`), the accuracy against the exact answer:
    largest mean shift in exact posterior sd, largest |sd ratio - 1|, C2ST against exact
    samples and the ``log Z`` errors in units of the reported error. Without an exact answer
    these columns are empty (never 0) and ``notes`` says so.
``evidence_consistency`` (one row per pair of samplers with a ``log Z`` for the same stage)
    their difference in combined standard errors (:func:`evidence_consistency`) and a
    ``flag`` above the analysis' ``evidence_consistency`` threshold.

Samplers are named by the registry (:func:`flowprior.samplers.get_sampler`), so a newly
registered sampler appears without any change here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..chains import read_chain
from ..errors import _input_error
from ..params import ParameterSpace
from ..plan import SEP, parse_stage
from .evidence import evidence_consistency
from .sequence import _arrays, analytic_reference, exact_accuracy
from .settings import split_settings

__all__ = [
    "CONSISTENCY_COLUMNS",
    "KINDS",
    "SAMPLER_COLUMNS",
    "comparison_runs",
    "sampler_comparison",
    "stage_label",
]

log = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics.sampler_comparison"

#: Kinds of sampler runs, in table order.
KINDS = ("stage1", "sequential", "joint")

#: Columns of the ``samplers`` table, in order.
SAMPLER_COLUMNS = (
    "kind", "stage", "sampler", "sampler_label",
    "n_likelihood_calls", "wall_seconds",
    "log_Z", "log_Z_err", "exact_log_Z", "log_Z_error_sigma",
    "log_Z_total", "log_Z_total_err", "log_Z_total_route", "exact_log_Z_total",
    "log_Z_total_error_sigma",
    "max_abs_mean_shift", "max_abs_sd_ratio_deviation", "c2st",
    "notes",
)  # fmt: skip

#: Columns of the ``evidence_consistency`` table, in order.
CONSISTENCY_COLUMNS = (
    "kind", "stage", "sampler_a", "sampler_b", "log_Z_a", "log_Z_b", "difference",
    "combined_error", "n_sigma", "threshold", "flag", "skipped",
)  # fmt: skip

_NO_EXACT = "no exact answer: the accuracy and exact log Z columns are empty"


def stage_label(kind: str, stage: str) -> str:
    """Display label of a run's stage: ``"A"``, ``"A→B"``, ``"A+B"`` (joint)."""
    names = parse_stage(stage)
    return ("+" if kind == "joint" else "→").join(names)


def comparison_runs(plan: Any) -> list[dict[str, str]]:
    """Every sampler run of an analysis, in table order.

    Parameters
    ----------
    plan : flowprior.plan.AnalysisPlan

    Returns
    -------
    list of dict
        ``kind`` (:data:`KINDS`), ``stage`` (stage id), ``sampler`` (registry name),
        ``samples`` and ``run`` (paths of the run's files). Stage-1 runs of chain datasets are
        left out (no sampler ran).
    """
    lay, name = plan.layout, plan.name
    runs = []
    for d in plan.stage1_jobs():
        if plan.has_likelihood(d):
            files = lay.run_files(lay.stage1(name, d))
            runs.append({"kind": "stage1", "stage": d, "sampler": plan.stage1_sampler, **files})
    for s in plan.sequential:
        for m in plan.samplers:
            files = lay.run_files(lay.sequential(name, s, m))
            runs.append({"kind": "sequential", "stage": s, "sampler": m, **files})
    for j in plan.joint:
        files = lay.run_files(lay.joint(name, j))
        runs.append({"kind": "joint", "stage": j, "sampler": plan.joint_sampler, **files})
    return runs


def _label(sampler: str) -> str:
    from ..samplers import get_sampler, sampler_names

    return get_sampler(sampler).label if sampler in sampler_names() else sampler


def _gives_evidence(sampler: str) -> bool | None:
    from ..samplers import get_sampler, sampler_names

    return get_sampler(sampler).gives_evidence if sampler in sampler_names() else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _sigma(value: float | None, exact: float | None, err: float | None) -> float | None:
    """``(value - exact) / err``; None when any is unknown or the error is 0."""
    if value is None or exact is None or err is None or err <= 0:
        return None
    return (value - exact) / err


def _read_run(path: str | Path) -> dict[str, Any]:
    from ..samplers.base import read_run_info  # lazy: the registry imports the samplers

    return read_run_info(path)


def _total(
    run: Mapping[str, Any],
    info: Mapping[str, Any],
    records: Mapping[tuple[str, str, str], Mapping[str, Any]],
    stage1: Mapping[str, str],
) -> tuple[float | None, float | None, str | None, list[str]]:
    """``log Z`` of all the stage's datasets from one run's route, its error, the route and
    notes on what is unknown."""
    log_z, err = _float(info.get("log_evidence")), _float(info.get("log_evidence_err"))
    if run["kind"] != "sequential":
        return log_z, err, ("own" if log_z is not None else None), []
    if log_z is None:
        return None, None, None, []
    corr = info.get("flow_correction")
    if corr:
        total = log_z + float(corr["log_mean_ratio"])
        if err is None:
            return total, None, "flow-corrected", ["no log Z error reported: total error unknown"]
        return total, math.hypot(err, float(corr["log_mean_ratio_err"])), "flow-corrected", []
    seq = parse_stage(run["stage"])
    first = records.get(("stage1", seq[0], stage1.get(seq[0], "")))
    terms = [first] + [
        records.get(("sequential", SEP.join(seq[:k]), run["sampler"]))
        for k in range(2, len(seq) + 1)
    ]
    if any(t is None or t.get("log_evidence") is None for t in terms):
        return None, None, None, ["no log Z for every earlier stage: total unknown"]
    total = sum(float(t["log_evidence"]) for t in terms)
    errs = [t.get("log_evidence_err") for t in terms]
    if any(e is None for e in errs):
        note = "a log Z error of the chain is unknown: total error unknown"
        return total, None, "stage 1 + sequential terms", [note]
    return total, math.sqrt(sum(float(e) ** 2 for e in errs)), "stage 1 + sequential terms", []


def sampler_comparison(
    *,
    runs: Sequence[Mapping[str, str]],
    params: ParameterSpace,
    datasets: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """The ``samplers`` and ``evidence_consistency`` tables of an analysis.

    Parameters
    ----------
    runs : sequence of mapping
        From :func:`comparison_runs`: ``kind``, ``stage``, ``sampler``, ``samples``, ``run``.
    params : ParameterSpace
    datasets : mapping
        The analysis' dataset entries (for :func:`analytic_reference`).
    settings : mapping, optional
        Config ``diagnostics`` (sample sizes; the ``evidence_consistency`` threshold, else
        the rule's default).
    seed : int
        Seeds the exact samples and the C2ST (the same as the sequence diagnostics, so a final
        sequential posterior gets the same numbers as its ``vs_exact`` record there).

    Returns
    -------
    dict
        ``{"samplers": DataFrame, "evidence_consistency": DataFrame}`` with the columns
        :data:`SAMPLER_COLUMNS` and :data:`CONSISTENCY_COLUMNS`; unknown values are None
        (empty in CSV).

    Raises
    ------
    InputError
        An unknown kind, a run listed twice, an unreadable run record or chain.
    """
    from .verdict import default_thresholds

    sizes, thresholds = split_settings(settings)
    threshold = thresholds.get("evidence_consistency", default_thresholds()["evidence_consistency"])
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    stage1: dict[str, str] = {}
    for k, run in enumerate(runs):
        if run.get("kind") not in KINDS:
            raise _input_error(_SRC, f"runs[{k}].kind", f"expected one of {KINDS}, got "
                               f"{run.get('kind')!r}")  # fmt: skip
        key = (run["kind"], run["stage"], run["sampler"])
        if key in records:
            raise _input_error(_SRC, f"runs[{k}]", f"run {key} listed twice")
        records[key] = _read_run(run["run"])
        if run["kind"] == "stage1":
            stage1[run["stage"]] = run["sampler"]
    exact_cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    rows = []
    for run in runs:
        info = records[(run["kind"], run["stage"], run["sampler"])]
        names = parse_stage(run["stage"])
        notes: list[str] = []
        log_z, err = _float(info.get("log_evidence")), _float(info.get("log_evidence_err"))
        if log_z is None:
            gives = _gives_evidence(run["sampler"])
            notes.append(f"{_label(run['sampler'])} gives no evidence" if gives is False
                         else "no log Z reported")  # fmt: skip
        elif err is None:
            notes.append("no log Z error reported: its error in sigma is unknown")
        total, total_err, route, more = _total(run, info, records, stage1)
        notes += more
        row: dict[str, Any] = {
            "kind": run["kind"],
            "stage": stage_label(run["kind"], run["stage"]),
            "sampler": run["sampler"],
            "sampler_label": _label(run["sampler"]),
            "n_likelihood_calls": info.get("n_likelihood_calls"),
            "wall_seconds": _float(info.get("wall_seconds")),
            "log_Z": log_z,
            "log_Z_err": err,
            "log_Z_total": total,
            "log_Z_total_err": total_err,
            "log_Z_total_route": route,
        }
        ref = analytic_reference(datasets, names, params)
        if ref is None:
            notes.append(_NO_EXACT)
        else:
            problem, pnames = ref
            exact_total = float(problem.log_evidence(pnames))
            exact_own = exact_total
            if run["kind"] == "sequential":
                exact_own -= float(problem.log_evidence(pnames[:-1]))
            key = tuple(sorted(pnames))
            if key not in exact_cache:
                mean, cov = problem.posterior_moments(pnames)
                xs = problem.sample_posterior(pnames, sizes["n_exact_samples"], seed=seed)
                exact_cache[key] = (xs, mean, np.sqrt(np.diag(cov)))
            xs, mean, sd = exact_cache[key]
            x, w = _arrays(read_chain(run["samples"], params))
            row.update(exact_accuracy(
                x, w, exact=xs, mean=mean, sd=sd, seed=seed, max_n=sizes["c2st_max_n"]
            ))  # fmt: skip
            row.update({
                "exact_log_Z": exact_own,
                "log_Z_error_sigma": _sigma(log_z, exact_own, err),
                "exact_log_Z_total": exact_total,
                "log_Z_total_error_sigma": _sigma(total, exact_total, total_err),
            })
        row["notes"] = "; ".join(notes) or None
        rows.append(row)
    samplers = pd.DataFrame(rows, columns=list(SAMPLER_COLUMNS)).astype(object)
    samplers = samplers.where(pd.notna(samplers), None)

    estimates = [
        {
            "stage": (run["kind"], run["stage"]),
            "sampler": run["sampler"],
            "log_evidence": records[key].get("log_evidence"),
            "log_evidence_err": records[key].get("log_evidence_err"),
        }
        for run in runs
        for key in [(run["kind"], run["stage"], run["sampler"])]
    ]
    pairs = []
    for p in evidence_consistency(estimates):
        kind, stage = p["stage"]
        n_sigma = p["n_sigma"]
        flag = None if n_sigma is None or threshold is None else bool(n_sigma > threshold)
        if flag:
            log.warning(
                "%s %s: log Z of %s and %s differ by %.3g combined errors (> %g)",
                kind, stage_label(kind, stage), p["sampler_a"], p["sampler_b"], n_sigma,
                threshold,
            )  # fmt: skip
        pairs.append({
            "kind": kind,
            "stage": stage_label(kind, stage),
            "sampler_a": p["sampler_a"],
            "sampler_b": p["sampler_b"],
            "log_Z_a": p["log_evidence_a"],
            "log_Z_b": p["log_evidence_b"],
            "difference": p["difference"],
            "combined_error": p["combined_error"],
            "n_sigma": n_sigma,
            "threshold": threshold,
            "flag": flag,
            "skipped": p["skipped"],
        })
    consistency = pd.DataFrame(pairs, columns=list(CONSISTENCY_COLUMNS)).astype(object)
    consistency = consistency.where(pd.notna(consistency), None)
    return {"samplers": samplers, "evidence_consistency": consistency}
