"""Diagnostics of a sequential analysis: flow fidelity, agreement, tension, modes, verdicts.

The workflow calls three functions, one per rule:

* :func:`flow_fidelity` — a trained flow prior against the chain it learned, on the samples
  held out from training (held-out NLL; exact KL where a closed form is known; moment scores;
  C2ST; sliced Wasserstein; modes of the chain and the flow's mass per mode).
* :func:`diagnose_sequence` — one sequence ``A -> B [-> C]``: the final sequential posterior of
  every sampler against the joint posterior (and emcee against pocoMC), the tension between
  the posterior before the last update and the last dataset's own posterior, the number of
  modes of every posterior, and the verdict (:func:`flowprior.metrics.verdict`).
* :func:`analysis_tables` / :func:`tables_markdown` — the tables of an analysis' summary.

Where every dataset of a stage is a built-in analytic problem (``flowprior.analytic:*`` plug-ins
on the problem's own box), the exact posterior is used too (:func:`analytic_reference`): exact
KL of the flows, and the sequential and joint posteriors against exact joint samples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import metrics
from .chains import Chain, read_chain
from .params import ParameterSpace

__all__ = [
    "DIAGNOSTIC_SETTINGS",
    "analysis_tables",
    "analytic_reference",
    "diagnose_sequence",
    "flow_fidelity",
    "tables_markdown",
]

log = logging.getLogger(__name__)

#: Sample sizes of the diagnostics (config key ``diagnostics``, besides the thresholds).
DIAGNOSTIC_SETTINGS: dict[str, int] = {
    "n_flow_samples": 10000,  # flow samples compared with the held-out chain
    "n_exact_samples": 10000,  # exact samples of analytic problems
    "n_boot": 100,  # bootstrap subsets of the moment scores
    "c2st_max_n": 4000,  # points per set in a C2ST (subsampled uniformly)
}

_ANALYTIC_PREFIX = "flowprior.analytic:"


# ------------------------------------------------------------------------------ helpers
def _split_settings(settings: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config ``diagnostics`` mapping -> (sample-size settings, verdict thresholds)."""
    settings = dict(settings or {})
    sizes = {k: int(settings.pop(k, v)) for k, v in DIAGNOSTIC_SETTINGS.items()}
    return sizes, settings


def _arrays(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    keep = chain.weights > 0
    return chain.samples[keep], chain.weights[keep]


def _c2st(x, y, *, wx=None, wy=None, seed: int, max_n: int) -> float:
    return float(metrics.c2st(x, y, w_p=wx, w_q=wy, seed=seed, max_n=max_n))


def analytic_reference(
    datasets: Mapping[str, Mapping[str, Any]],
    stage: Sequence[str],
    params: ParameterSpace,
):
    """The built-in analytic problem behind ``stage``'s datasets, or None.

    Returns ``(problem, problem_datasets)`` when every dataset of ``stage`` is a plug-in of
    the same ``flowprior.analytic`` function with the same keyword arguments (but for
    ``dataset``) and the analysis' parameter table matches the problem's names and box;
    otherwise None (no closed form is claimed).
    """
    from .analytic import get_analysis

    specs, kwargs, names = set(), [], []
    for d in stage:
        entry = datasets.get(d, {})
        spec = entry.get("likelihood")
        if not spec or not spec.startswith(_ANALYTIC_PREFIX):
            return None
        kw = dict(entry.get("kwargs") or {})
        names.append(kw.pop("dataset", None))
        specs.add(spec[len(_ANALYTIC_PREFIX):])
        kwargs.append(kw)
    if len(specs) != 1 or any(k != kwargs[0] for k in kwargs) or None in names:
        return None
    problem = get_analysis(specs.pop(), **kwargs[0])
    same_box = (
        list(problem.params.names) == list(params.names)
        and np.allclose(problem.params.lower, params.lower)
        and np.allclose(problem.params.upper, params.upper)
    )
    return (problem, names) if same_box else None


def _modes(x: np.ndarray, w: np.ndarray, *, seed: int):
    return metrics.count_modes(x, w=w, seed=seed)


# ------------------------------------------------------------------------- flow fidelity
def flow_fidelity(
    *,
    model: str | Path,
    chain: Chain,
    validation: Mapping[str, Any],
    exact=None,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A trained flow against the held-out part of the chain it was trained on.

    Parameters
    ----------
    model : path
        The flow model (directory or zip).
    chain : Chain
        The training chain (whole: the held-out split is recomputed from the model's recorded
        seed and validation fraction, exactly as training drew it; its SHA-256 is checked).
    validation : mapping
        The training job's ``validation.json`` (held-out NLL, steps, ...).
    exact : (AnalysisProblem, list of str) or None
        From :func:`analytic_reference`: adds the exact KL divergence ``KL(p || q)``.
    settings : mapping, optional
        Sample sizes (:data:`DIAGNOSTIC_SETTINGS`); other keys are ignored here.
    seed : int

    Returns
    -------
    dict
        ``held_out_nll``, ``exact_kl`` (or None), ``moment_scores`` (list of rows),
        ``max_moment_score``, ``c2st``, ``sliced_wasserstein``, ``modes`` (chain),
        ``flow_mode_masses``, ``mode_mass_difference``, ``n_held_out``, ``ess_held_out``.
    """
    from .errors import InputError
    from .priors import FlowPrior
    from .train import split_indices

    sizes, _ = _split_settings(settings)
    prior = FlowPrior.load(model, seed=seed)
    cfg = prior.manifest.get("training", {})
    recorded = prior.manifest.get("data", {}).get("sha256")
    if np.any(chain.weights == 0):
        chain = chain.subset(chain.weights > 0)  # as training did, before the split
    if recorded and recorded != chain.sha256():
        raise InputError(
            f"{model}: manifest: chain sha256 {recorded[:12]}... does not match "
            f"{chain.source} ({chain.sha256()[:12]}...): not the chain this flow was trained on"
        )
    _, val_idx = split_indices(
        chain.n, fraction=float(cfg.get("validation_fraction", 0.2)), seed=int(cfg.get("seed", 1))
    )
    held = chain.subset(np.isin(np.arange(chain.n), val_idx))
    x, w = _arrays(held)
    y = np.asarray(prior.rvs(sizes["n_flow_samples"], seed=seed), dtype=np.float64)
    names = list(chain.params.names)

    out: dict[str, Any] = {
        "model": str(model),
        "n_held_out": int(x.shape[0]),
        "ess_held_out": float(metrics.kish_ess(w)),
        "held_out_nll": float(-np.average(prior.logpdf(x), weights=w)),
        "best_val_nll": validation.get("best_val_nll"),
        "train_seconds": validation.get("train_seconds"),
        "steps": validation.get("steps"),
        "exact_kl": None,
    }
    if exact is not None:
        problem, stage = exact
        xs = problem.sample_posterior(stage, sizes["n_exact_samples"], seed=seed)
        out["exact_kl"] = float(np.mean(problem.log_posterior(stage, xs) - prior.logpdf(xs)))
    scores = metrics.moment_scores(x, y, wa=w, names=names, n_boot=sizes["n_boot"], seed=seed)
    out["moment_scores"] = scores.to_dict(orient="records")
    out["max_moment_score"] = float(scores["score"].max())
    out["c2st"] = _c2st(x, y, wx=w, seed=seed, max_n=sizes["c2st_max_n"])
    out["sliced_wasserstein"] = float(metrics.sliced_wasserstein(x, y, wa=w, seed=seed))
    modes = _modes(chain.samples, chain.weights, seed=seed)
    flow_masses = metrics.mode_masses(modes, y)
    out["modes"] = modes.to_dict()
    out["flow_mode_masses"] = flow_masses.tolist()
    out["mode_mass_difference"] = float(np.max(np.abs(flow_masses - modes.masses)))
    return out


# --------------------------------------------------------------------------- a sequence
def diagnose_sequence(
    *,
    sequence: Sequence[str],
    params: ParameterSpace,
    datasets: Mapping[str, Mapping[str, Any]],
    stage1: Mapping[str, Mapping[str, str]],
    previous: Mapping[str, str] | None,
    sequential: Mapping[str, Mapping[str, str]],
    joint: Mapping[str, str] | None,
    fidelity: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every diagnostic of one sequence and its verdict.

    Parameters
    ----------
    sequence : list of str
        Dataset names in order, length >= 2.
    params : ParameterSpace
    datasets : mapping
        The analysis' dataset entries (for :func:`analytic_reference`).
    stage1 : mapping dataset -> {"samples", "run"}
        Stage-1 posteriors (run records as dicts under ``"run_info"``).
    previous : {"samples", "run_info"} or None
        Posterior of ``sequence[:-1]`` when it has more than one dataset (its joint run where
        there is one, else the flow sampler's sequential run); None for two datasets.
    sequential : mapping sampler -> {"samples", "run_info"}
        Final sequential posteriors.
    joint : {"samples", "run_info"} or None
        Joint posterior of all the sequence's datasets.
    fidelity : mapping flow stage -> :func:`flow_fidelity` result
        The flows this sequence went through.
    settings : mapping, optional
        Config ``diagnostics``: sample sizes (:data:`DIAGNOSTIC_SETTINGS`) and verdict
        thresholds (:data:`flowprior.metrics.DEFAULT_THRESHOLDS`).
    seed : int
    """
    from .pipeline import stage_id

    sizes, thresholds = _split_settings(settings)
    names = list(params.names)
    seq = list(sequence)
    load = lambda path: read_chain(path, params)  # noqa: E731
    out: dict[str, Any] = {"sequence": seq, "stage": stage_id(seq)}

    # -- posteriors taking part
    first = previous if previous is not None else stage1[seq[0]]
    stage1_chains = {d: load(stage1[d]["samples"]) for d in seq}  # each file read once
    before = load(previous["samples"]) if previous is not None else stage1_chains[seq[0]]
    last = stage1_chains[seq[-1]]
    finals = {s: load(v["samples"]) for s, v in sequential.items()}
    ref = load(joint["samples"]) if joint is not None else None

    # -- agreement: each sampler's final posterior vs the joint, emcee vs pocoMC
    agreement: dict[str, Any] = {}
    if ref is not None:
        xr, wr = _arrays(ref)
        for sampler, chain in finals.items():
            x, w = _arrays(chain)
            entry = metrics.agreement(x, xr, wx=w, wref=wr, names=names)
            entry["c2st"] = _c2st(x, xr, wx=w, wy=wr, seed=seed, max_n=sizes["c2st_max_n"])
            entry["sliced_wasserstein"] = float(
                metrics.sliced_wasserstein(xr, x, wa=wr, wb=w, seed=seed)
            )
            agreement[sampler] = entry
    out["agreement"] = agreement
    if {"pocomc", "emcee"} <= set(finals):
        xe, we = _arrays(finals["emcee"])
        xp, wp = _arrays(finals["pocomc"])
        cross = metrics.agreement(xe, xp, wx=we, wref=wp, names=names)
        cross["c2st"] = _c2st(xe, xp, wx=we, wy=wp, seed=seed, max_n=sizes["c2st_max_n"])
        out["emcee_vs_pocomc"] = cross

    # -- against the exact posterior (built-in problems)
    exact = analytic_reference(datasets, seq, params)
    if exact is not None:
        problem, pnames = exact
        xs = problem.sample_posterior(pnames, sizes["n_exact_samples"], seed=seed)
        mean, cov = problem.posterior_moments(pnames)
        sd = np.sqrt(np.diag(cov))
        runs = dict(finals)
        if ref is not None:
            runs["joint"] = ref
        out["vs_exact"] = {}
        for label, chain in runs.items():
            x, w = _arrays(chain)
            m, s = metrics.weighted_mean_sd(x, w)
            out["vs_exact"][label] = {
                "max_abs_mean_shift": float(np.max(np.abs(m - mean) / sd)),
                "max_abs_sd_ratio_deviation": float(np.max(np.abs(s / sd - 1.0))),
                "c2st": _c2st(x, xs, wx=w, seed=seed, max_n=sizes["c2st_max_n"]),
            }
        out["exact_log_evidence"] = float(problem.log_evidence(pnames))

    # -- tension between the posterior before the last update and the last dataset's own
    out["tension"] = _tension(
        before=before, before_run=first.get("run_info", {}), last=last,
        last_run=stage1[seq[-1]].get("run_info", {}), joint=ref,
        joint_run=(joint or {}).get("run_info", {}),
    )
    if exact is not None and len(seq) == 2:
        problem, pnames = exact
        out["tension"]["exact_parameter_shift_sigma"] = float(
            problem.parameter_shift_sigma([pnames[0]], [pnames[1]])
        )

    # -- modes of every posterior
    posteriors = {f"stage 1 {d}": c for d, c in stage1_chains.items()}
    if previous is not None:
        posteriors[f"before {seq[-1]}"] = before
    posteriors.update({f"sequential {s}": c for s, c in finals.items()})
    if ref is not None:
        posteriors["joint"] = ref
    modes = {}
    for k, (label, chain) in enumerate(posteriors.items()):
        x, w = _arrays(chain)
        modes[label] = metrics.count_modes(x, w=w, seed=seed + k).to_dict()
    out["modes"] = modes

    # -- flows this sequence used
    out["flows"] = {
        stage: {
            k: f.get(k)
            for k in ("held_out_nll", "exact_kl", "max_moment_score", "c2st",
                      "sliced_wasserstein", "mode_mass_difference")
        }
        for stage, f in fidelity.items()
    }

    # -- verdict
    tension = out["tension"]
    checks: dict[str, Any] = {
        "tension_sigma": {
            k: tension.get(k) for k in ("parameter_shift_sigma", "suspiciousness_sigma")
        },
        "n_modes": {label: m["n_modes"] for label, m in modes.items()},
        "mode_mass_difference": {f"flow {s}": f["mode_mass_difference"] for s, f in fidelity.items()},
        "c2st": {
            **{f"{s} vs joint": a["c2st"] for s, a in agreement.items()},
            **{f"flow {s} vs its chain": f["c2st"] for s, f in fidelity.items()},
        },
        "mean_shift": {s: a["mean_shift_in_ref_sd"] for s, a in agreement.items()} or None,
        "sd_ratio": {s: a["sd_ratio"] for s, a in agreement.items()} or None,
        "correlation_difference": {
            s: a["max_abs_correlation_difference"] for s, a in agreement.items()
        } or None,
        "interval_overlap": {
            s: {str(k): v for k, v in a["min_interval_overlap"].items()}
            for s, a in agreement.items()
        } or None,
        "moment_score": {f"flow {s}": f["max_moment_score"] for s, f in fidelity.items()},
        "sliced_wasserstein": {f"flow {s}": f["sliced_wasserstein"] for s, f in fidelity.items()},
    }
    out["verdict"] = metrics.verdict(checks, thresholds).to_dict()
    return out


def _tension(*, before, before_run, last, last_run, joint, joint_run) -> dict[str, Any]:
    """Tension between the posterior before the last update and the last dataset's own."""
    xa, wa = _arrays(before)
    xb, wb = _arrays(last)
    shift = metrics.parameter_shift(xa, xb, wa=wa, wb=wb)
    out: dict[str, Any] = {
        "parameter_shift_sigma": float(shift["sigma"]),
        "parameter_shift_chi2": float(shift.get("chi2", math.nan)),
        "log_R": None,
        "log_R_err": None,
        "suspiciousness_sigma": None,
    }
    za, zb, zab = (r.get("log_evidence") for r in (before_run, last_run, joint_run))
    if None in (za, zb, zab):
        return out
    errs = [float(r.get("log_evidence_err") or 0.0) for r in (joint_run, before_run, last_run)]
    log_r, log_r_err = metrics.evidence_ratio(zab, za, zb, errors=errs)
    out["log_R"], out["log_R_err"] = float(log_r), log_r_err
    lls = [c.log_likelihood for c in (before, last, joint)]
    if joint is not None and all(v is not None for v in lls):
        keep = [c.weights > 0 for c in (before, last, joint)]
        sus = metrics.suspiciousness(
            log_z_a=za, log_z_b=zb, log_z_ab=zab,
            loglike_a=before.log_likelihood[keep[0]], w_a=before.weights[keep[0]],
            loglike_b=last.log_likelihood[keep[1]], w_b=last.weights[keep[1]],
            loglike_ab=joint.log_likelihood[keep[2]], w_ab=joint.weights[keep[2]],
        )
        out["suspiciousness"] = {k: float(v) for k, v in sus.items()}
        out["suspiciousness_sigma"] = float(sus["sigma"])
    return out


# ------------------------------------------------------------------------------- tables
def analysis_tables(summary: Mapping[str, Any], *, costs: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The tables of an analysis from its ``summary.json`` content.

    Returns ``{"verdicts", "flow_fidelity", "agreement", "tension", "evidence", "cost"}``
    DataFrames (``cost`` only when ``costs`` is given: one row per job, from the benchmark
    files and the run records).
    """
    verdicts, fid, agree, tension, evidence = [], [], [], [], []
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
        verdicts.append({"sequence": label, "verdict": v.get("status"),
                         "reasons": "; ".join(v.get("reasons", []))})
        for sampler, a in diag.get("agreement", {}).items():
            agree.append(_agreement_row(label, sampler, "joint", a))
        if "emcee_vs_pocomc" in diag:
            agree.append(_agreement_row(label, "emcee", "pocomc", diag["emcee_vs_pocomc"]))
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
            "parameter_shift_sigma": t.get("parameter_shift_sigma"),
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
            evidence.append(row)
    tables = {
        "verdicts": pd.DataFrame(verdicts, columns=["sequence", "verdict", "reasons"]),
        "flow_fidelity": pd.DataFrame(fid),
        "agreement": pd.DataFrame(agree),
        "tension": pd.DataFrame(tension),
        "evidence": pd.DataFrame(evidence),
    }
    if costs is not None:
        tables["cost"] = costs
    return tables


def _agreement_row(sequence: str, sampler: str, reference: str, a: Mapping[str, Any]) -> dict:
    """One row of the agreement table from an :func:`flowprior.metrics.agreement` result."""
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
        bench = pd.read_csv(path, sep="\t")
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
        flows = pd.read_csv(flows_table)
        lines += ["## Flow-fidelity study (built-in posteriors)", "", _markdown(flows), ""]
    return "\n".join(lines) + "\n"
