"""Check a finished analysis of a built-in problem against its closed-form answers.

For every sequential run and the joint run: each marginal mean's shift from the exact joint
posterior in exact posterior standard deviations, each standard deviation's relative error,
and the weighted classifier two-sample test accuracy against exact joint samples; for every
sequence the evidence bookkeeping ``log Z_A + log Z_{B|A}`` against the exact ``log Z_AB``, raw
(the flow prior standing in for the stage-1 posterior) and, where the earlier likelihoods were
evaluable, flow-corrected (:func:`flowprior.pipeline.flow_correction`).

Usage (after ``make run``)::

    python benchmarks/verify_analytic.py results/gaussian_linear --problem gaussian_linear

The acceptance criteria of the pipeline issue are printed next to each number: mean shift
<= 0.1 sd, sd within 10 %, C2ST <= 0.55, evidence within 3 combined standard errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from flowprior.diagnostics import c2st
from flowprior.plan import parse_stage
from flowprior.problems.analytic import get_analysis
from flowprior.stats import weighted_mean_sd

log = logging.getLogger("verify_analytic")


def _n_sigma(diff: float, err: float | None) -> float | None:
    """``diff / err``; None (printed as NaN) when the sampler reported no error, inf for 0."""
    if err is None:
        return None
    return diff / err if err > 0 else math.inf

def _load(path: str, names) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_parquet(path)
    return frame[list(names)].to_numpy(), frame["weight"].to_numpy()


def check_run(label, path, *, problem, datasets, exact_samples) -> dict:
    names = problem.params.names
    x, w = _load(path, names)
    mean, sd = weighted_mean_sd(x, w)
    m_exact, cov = problem.posterior_moments(datasets)
    sd_exact = np.sqrt(np.diag(cov))
    row = {
        "run": label,
        "max_mean_shift_sd": float(np.max(np.abs(mean - m_exact) / sd_exact)),
        "max_sd_rel_err": float(np.max(np.abs(sd / sd_exact - 1.0))),
        "c2st_vs_exact": c2st(x, exact_samples, w_p=w, seed=0),
    }
    row["ok"] = bool(
        row["max_mean_shift_sd"] <= 0.1 and row["max_sd_rel_err"] <= 0.1 and row["c2st_vs_exact"] <= 0.55
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("results", help="results/<analysis> directory (holds summary.json)")
    ap.add_argument("--problem", required=True, help="flowprior.problems.analytic problem name")
    ap.add_argument("--offset", type=float, default=None, help="tension offset (if not 4)")
    ap.add_argument("--n-exact", type=int, default=5000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kwargs = {} if args.offset is None else {"offset": args.offset}
    problem = get_analysis(args.problem, **kwargs)
    summary = json.loads((Path(args.results) / "summary.json").read_text())

    rows = []
    for jid, entry in summary["joint"].items():
        ds = parse_stage(jid)
        exact = problem.sample_posterior(ds, args.n_exact, seed=1)
        rows.append(check_run(f"joint {jid}", entry["samples"], problem=problem, datasets=ds,
                              exact_samples=exact))
    for stage, by_sampler in summary["sequential"].items():
        ds = parse_stage(stage)
        exact = problem.sample_posterior(ds, args.n_exact, seed=1)
        for sampler, entry in by_sampler.items():
            rows.append(check_run(f"{stage} {sampler}", entry["samples"], problem=problem,
                                  datasets=ds, exact_samples=exact))
    table = pd.DataFrame(rows)
    log.info("posteriors vs the exact joint posterior (criteria: shift <= 0.1, sd err <= 0.1, "
             "C2ST <= 0.55)\n%s", table.to_string(index=False, float_format="%.4f"))

    ev_rows = []
    for seq in summary["sequences"]:
        chain = seq.get("sequential_evidence")
        if chain is None:
            continue
        exact = problem.log_evidence(seq["sequence"])
        err = chain["log_evidence_err"]
        diff = chain["log_evidence"] - exact
        ev_rows.append({
            "sequence": "->".join(seq["sequence"]),
            "sequential_logZ": chain["log_evidence"],
            "exact_logZ": exact,
            "difference": diff,
            "reported_err": err,
            "n_sigma": _n_sigma(diff, err),
            "joint_logZ": seq.get("evidence_check", {}).get("joint_log_evidence"),
        })
        fc = chain.get("flow_corrected")
        if fc:
            diff = fc["log_evidence"] - exact
            ev_rows.append({
                "sequence": "->".join(seq["sequence"]) + " (flow-corrected)",
                "sequential_logZ": fc["log_evidence"],
                "exact_logZ": exact,
                "difference": diff,
                "reported_err": fc["log_evidence_err"],
                "n_sigma": _n_sigma(diff, fc["log_evidence_err"]),
                "joint_logZ": seq.get("evidence_check", {}).get("joint_log_evidence"),
            })
    if ev_rows:
        log.info("evidence bookkeeping (criterion: |n_sigma| <= 3)\n%s",
                 pd.DataFrame(ev_rows).to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
