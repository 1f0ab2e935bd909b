"""Benchmark: pocoMC settings against cost and accuracy on a closed-form stage-1 posterior.

pocoMC's own internal flow training dominates its cost on CPUs. This script runs stage 1 of
``flowprior.problems.analytic:gaussian_linear`` (6-D, dataset A, uniform box prior) with several
settings and prints, per setting and seed: wall time, likelihood calls, the error of
``log Z`` against the closed form (and in units of pocoMC's reported error), the largest
marginal mean shift in posterior standard deviations, and the Kish ESS.

Usage::

    python benchmarks/bench_pocomc.py                        # default grid, 2 seeds
    python benchmarks/bench_pocomc.py --flows maf3 nsf6 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from flowprior.priors import BoxPrior  # noqa: E402
from flowprior.problems.analytic import get_analysis  # noqa: E402
from flowprior.samplers import PocoMCSettings, run_pocomc  # noqa: E402
from flowprior.stats import weighted_mean_sd  # noqa: E402

log = logging.getLogger("bench_pocomc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--flows", nargs="+", default=["maf3", "nsf6"])
    ap.add_argument("--n-effective", nargs="+", type=int, default=[512, 1024])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    problem = get_analysis("gaussian_linear")
    exact_logz = problem.log_evidence(["A"])
    mean_exact, cov = problem.posterior_moments(["A"])
    sd_exact = np.sqrt(np.diag(cov))
    rows = []
    for flow in args.flows:
        for n_eff in args.n_effective:
            for seed in args.seeds:
                settings = PocoMCSettings(n_effective=n_eff, n_active=n_eff // 2, flow=flow)
                run = run_pocomc(prior=BoxPrior(problem.params, seed=seed),
                                 loglike=problem.loglike("A"), settings=settings, seed=seed,
                                 threads=args.threads)
                mean, _ = weighted_mean_sd(run.chain.samples, run.chain.weights)
                err = run.info["log_evidence"] - exact_logz
                rows.append({
                    "flow": flow, "n_effective": n_eff, "seed": seed,
                    "wall_s": round(run.info["wall_seconds"], 1),
                    "calls": run.info["n_likelihood_calls"],
                    "logZ_err": round(err, 4),
                    "logZ_err_in_reported_sd": round(err / run.info["log_evidence_err"], 2),
                    "max_mean_shift_sd": round(float(np.max(np.abs(mean - mean_exact) / sd_exact)), 4),
                    "ess": round(run.chain.ess),
                })
                log.info("%s", rows[-1])
    log.info("\n%s", pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
