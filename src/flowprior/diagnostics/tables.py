"""Tables of an analysis and of the whole study, from the ``summary.json`` contents.

:func:`analysis_tables` (verdicts, flow fidelity, agreement, tension, evidence, cost),
:func:`tables_markdown`, :func:`cost_table` and :func:`study_markdown`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .._csv import read_csv
from .sequence import FLOW_SHIFT_KEYS, cross_comparisons, quantities

__all__ = ["analysis_tables", "cost_table", "study_markdown", "tables_markdown"]

#: Columns of the ``derived`` table (one row per sequence, run and derived quantity; the
#: shift and sd ratio are against the joint posterior, empty without one).
_DERIVED_COLUMNS = ["sequence", "run", "quantity", "mean", "sd", "mean_shift_in_ref_sd", "sd_ratio"]

def analysis_tables(summary: Mapping[str, Any], *, costs: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The tables of an analysis from its ``summary.json`` content.

    The ``tension`` table has, on the configured parameters (``parameters``), the Gaussian
    shift (``parameter_shift_sigma``) and the flow shift (``shift_probability``,
    ``shift_probability_err``, ``shift_sigma``, ``shift_sigma_err``,
    ``shift_sigma_is_lower_bound``; empty where it cannot be made, ``shift_skipped`` says why),
    ``shift_disagreement`` (true when they differ by more than 1 sigma) and ``shift_used`` (the
    one the verdict used).

    The ``agreement`` table's ``reference`` is ``joint`` (a joint run) or ``reference`` (the
    analysis' reference chain, a published joint posterior); the ``derived`` table has, per
    sequence, run and derived quantity (the analysis' ``derived``), the weighted mean and sd,
    and the shift (in the joint sd) and sd ratio against the joint posterior.

    Returns ``{"verdicts", "flow_fidelity", "agreement", "derived", "tension", "evidence",
    "cost"}`` DataFrames (``cost`` only when ``costs`` is given: one row per job, from the benchmark
    files and the run records). A registered quantity with ``columns``
    (:class:`~flowprior.diagnostics.Quantity`) adds its columns to the sequence's row of
    ``verdicts``. Unknown values (e.g. the log Z error of pocoMC with ``precondition:
    false``) are None/NaN here, empty in CSV and "–" in :func:`tables_markdown`; an evidence
    row whose ``n_sigma`` could not be computed says why in ``n_sigma_skipped``.
    """
    verdicts, fid, agree, tension, evidence, derived = [], [], [], [], [], []
    for stage, f in summary.get("fidelity", {}).items():
        fid.append({
            "flow": stage,
            "held_out_nll": f.get("held_out_nll"),
            "exact_kl": f.get("exact_kl"),
            "max_moment_score": f.get("max_moment_score"),
            "c2st": f.get("c2st"),
            "sliced_wasserstein": f.get("sliced_wasserstein"),
            "chain_modes": f.get("modes", {}).get("n_modes"),
            "mode_mass_difference": f.get("mode_mass_difference"),
            "train_seconds": f.get("train_seconds"),
        })
    for seq in summary.get("sequences", []):
        label = "→".join(seq["sequence"])
        diag = seq.get("diagnostics") or {}
        v = diag.get("verdict", {})
        row = {"sequence": label, "verdict": v.get("status"),
               "reasons": "; ".join(v.get("reasons", []))}
        for q in quantities():
            if q.columns is not None and diag:
                row.update(q.columns(diag))
        verdicts.append(row)
        ref = "reference" if diag.get("agreement_reference") == "reference chain" else "joint"
        for sampler, a in diag.get("agreement", {}).items():
            agree.append(_agreement_row(label, sampler, ref, a))
        dq = diag.get("derived") or {}
        for run, by_name in dq.get("by_run", {}).items():
            for name, row in by_name.items():
                derived.append({"sequence": label, "run": ref if run == "joint" else run,
                                "quantity": name, **row})  # fmt: skip
        for other, first, a in cross_comparisons(diag):
            agree.append(_agreement_row(label, other, first, a))
        for run, e in diag.get("vs_exact", {}).items():
            agree.append({
                "sequence": label, "sampler": run, "reference": "exact",
                "max_abs_mean_shift": e["max_abs_mean_shift"],
                "max_abs_sd_ratio_deviation": e["max_abs_sd_ratio_deviation"],
                "c2st": e["c2st"],
            })
        t = diag.get("tension", {})
        tension.append({
            "sequence": label,
            "parameters": ", ".join(t["parameters"]) if t.get("parameters") else None,
            "parameter_shift_sigma": t.get("parameter_shift_sigma"),
            **{k: t.get(k) for k in FLOW_SHIFT_KEYS},
            "shift_disagreement": t.get("shift_disagreement"),
            "shift_used": t.get("shift_used"),
            "shift_skipped": t.get("shift_skipped"),
            "exact_parameter_shift_sigma": t.get("exact_parameter_shift_sigma"),
            "log_R": t.get("log_R"), "log_R_err": t.get("log_R_err"),
            "log_S": (t.get("suspiciousness") or {}).get("log_s"),
            "bayesian_dimensionality": (t.get("suspiciousness") or {}).get("bmd"),
            "suspiciousness_sigma": t.get("suspiciousness_sigma"),
        })
        ev = seq.get("sequential_evidence")
        chk = seq.get("evidence_check") or {}
        if ev:
            row = {
                "sequence": label,
                "sequential_log_Z": ev["log_evidence"], "sequential_err": ev["log_evidence_err"],
                "joint_log_Z": chk.get("joint_log_evidence"), "n_sigma": chk.get("n_sigma"),
                "exact_log_Z": diag.get("exact_log_evidence"),
            }
            fc = ev.get("flow_corrected")
            if fc:
                row.update({"corrected_log_Z": fc["log_evidence"],
                            "corrected_err": fc["log_evidence_err"],
                            "corrected_n_sigma": (chk.get("flow_corrected") or {}).get("n_sigma"),
                            "flow_bias": fc["flow_bias"], "ess_fraction": fc["ess_fraction"]})
            # an unknown error stays unknown (None: "–" in Markdown, empty in CSV); say why
            skipped = chk.get("skipped") or (chk.get("flow_corrected") or {}).get("skipped")
            if skipped:
                row["n_sigma_skipped"] = skipped
            evidence.append(row)
    tables = {
        "verdicts": pd.DataFrame(verdicts, columns=_columns(["sequence", "verdict", "reasons"], verdicts)),
        "flow_fidelity": pd.DataFrame(fid),
        "agreement": pd.DataFrame(agree),
        "derived": pd.DataFrame(derived, columns=_columns(_DERIVED_COLUMNS, derived)),
        "tension": pd.DataFrame(tension),
        "evidence": pd.DataFrame(evidence),
    }
    if costs is not None:
        tables["cost"] = costs
    return tables


def _columns(first: list[str], rows: list[dict]) -> list[str]:
    """``first``, then every other key of ``rows`` in order of appearance."""
    cols = dict.fromkeys(first)
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _agreement_row(sequence: str, sampler: str, reference: str, a: Mapping[str, Any]) -> dict:
    """One row of the agreement table from an :func:`~flowprior.diagnostics.agreement` result."""
    return {
        "sequence": sequence, "sampler": sampler, "reference": reference,
        "max_abs_mean_shift": a["max_abs_mean_shift"],
        "max_abs_sd_ratio_deviation": a["max_abs_sd_ratio_deviation"],
        "max_abs_correlation_difference": a["max_abs_correlation_difference"],
        **{f"min_overlap_{k}": val for k, val in a["min_interval_overlap"].items()},
        "c2st": a["c2st"], "sliced_wasserstein": a.get("sliced_wasserstein"),
    }


def tables_markdown(title: str, tables: Mapping[str, pd.DataFrame]) -> str:
    """The tables as one Markdown page (verdicts first)."""
    parts = [f"# {title}\n"]
    for name, frame in tables.items():
        parts.append(f"## {name.replace('_', ' ')}\n")
        if frame.empty:
            parts.append("(none)\n")
            continue
        parts.append(_markdown(frame) + "\n")
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no optional dependency)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def cost_table(
    benchmarks: Mapping[str, str | Path], runs: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """Cost of every job of an analysis: Snakemake benchmark wall time and memory, and (for
    sampler runs) the likelihood calls and the sampler's own wall time from ``run.json``.

    Parameters
    ----------
    benchmarks : mapping job label -> benchmark TSV written by Snakemake (``benchmark:``)
    runs : mapping job label -> run record (``run.json`` content), for the sampler jobs
    """
    rows = []
    for label, path in benchmarks.items():
        bench = read_csv(path, sep="\t")
        run = runs.get(label, {})
        rows.append({
            "job": label,
            "wall_seconds": float(bench["s"].iloc[-1]),
            "max_rss_mb": float(pd.to_numeric(bench.get("max_rss", pd.Series([None])), errors="coerce").iloc[-1]),
            "sampler_seconds": run.get("wall_seconds"),
            "n_likelihood_calls": run.get("n_likelihood_calls"),
            "flow_correction_calls": (run.get("flow_correction") or {}).get("n_likelihood_calls"),
        })
    return pd.DataFrame(rows)


def study_markdown(
    summaries: Sequence[Mapping[str, Any]],
    *,
    tables: Mapping[str, str],
    figures: Mapping[str, Sequence[str]],
    flows_table: str | None = None,
    root: str | Path = "results",
) -> str:
    """``results/summary.md``: one section per analysis, verdicts first, then the key numbers,
    links to the tables and figures (paths relative to ``root``).

    Parameters
    ----------
    summaries : list of ``summary.json`` contents, in the order to present them
    tables : mapping analysis -> path of its ``tables.md``
    figures : mapping analysis -> paths of its figures
    flows_table : path of the flow-fidelity study's ``flows.csv`` (optional)
    """
    root = Path(root)

    def rel(p: str) -> str:
        try:
            return str(Path(p).relative_to(root))
        except ValueError:
            return str(p)

    lines = ["# flowprior results", ""]
    lines += ["| analysis | sequence | verdict | reasons |", "|---|---|---|---|"]
    for s in summaries:
        for e in s.get("sequences", []):
            v = e.get("verdict", {})
            all_reasons = v.get("reasons", [])
            reasons = all_reasons[0] if all_reasons else "–"
            if len(all_reasons) > 1:
                reasons += f" (and {len(all_reasons) - 1} more, below)"
            lines.append(
                f"| {s['analysis']} | {'→'.join(e['sequence'])} | **{v.get('status', '–')}** "
                f"| {_fmt(reasons)} |"
            )
    lines.append("")
    for s in summaries:
        a = s["analysis"]
        lines += [f"## {a}", ""]
        frames = analysis_tables(s)
        for name in ("verdicts", "tension", "agreement", "evidence", "flow_fidelity"):
            frame = frames[name]
            if frame.empty:
                continue
            lines += [f"### {name.replace('_', ' ')}", "", _markdown(frame), ""]
        if a in tables:
            lines += [f"All tables (with the cost of every job): [{rel(tables[a])}]({rel(tables[a])})", ""]
        if figures.get(a):
            lines += ["Figures: " + ", ".join(f"[{Path(f).stem}]({rel(f)})" for f in figures[a]), ""]
    if flows_table:
        flows = read_csv(flows_table)
        lines += ["## Flow fidelity (every flow of the config)", "", _markdown(flows), ""]
    return "\n".join(lines) + "\n"
