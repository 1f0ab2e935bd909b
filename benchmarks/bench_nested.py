"""Benchmark: nested samplers (nautilus 1.0.6, dynesty 3.1.0) on the built-in analyses.

Part 1, the comparison (``--compare``). On ``gaussian_linear`` (6-D) and ``bimodal`` (3-D):
stage 1 (dataset A under the uniform box prior) and the sequential stage (B under a flow prior
trained with ``flowprior.train`` defaults on nautilus' stage-1 samples), once with nautilus
(flowprior's registry runner, default settings) and once with dynesty (static nested
sampling, ``nlive`` live points, ``dlogz = 0.01``; likelihood and prior transform called per
point, as dynesty does). Per run: likelihood calls, wall time, Kish ESS, largest mean shift in
exact sd, largest ``|sd ratio - 1|``, C2ST against exact posterior samples, and the log Z
error in units of the reported error (for the sequential stage: the flow-corrected
``log Z_AB``, see below).

Part 2, the done criteria (``--criteria``), nautilus only, both orders (A then B, B then A):
stage 1 on the first dataset, the flow (``TrainConfig`` defaults but ``seed``), the sequential
stage on the second with the flow prior. Checks: means within 0.1 joint sd, sds within 10 %,
C2ST <= 0.55 against exact joint samples, and ``log Z_first + log Z_(second|first)``
(flow-corrected exactly as :func:`flowprior.pipeline.summarise_analysis` does it:
:func:`flowprior.pipeline.flow_correction` and the pipeline's evidence chain) within 3
combined reported errors of the exact ``problem.log_evidence([first, second])``.

Usage::

    python benchmarks/bench_nested.py                     # both parts
    python benchmarks/bench_nested.py --criteria --analyses bimodal
"""

from __future__ import annotations

import argparse
import logging
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from flowprior.chains import Chain  # noqa: E402
from flowprior.diagnostics.twosample import c2st  # noqa: E402
from flowprior.pipeline import _evidence_chain, flow_correction  # noqa: E402
from flowprior.priors import BoxPrior, FlowPrior  # noqa: E402
from flowprior.problems.analytic import get_analysis  # noqa: E402
from flowprior.samplers import NautilusSettings, SamplerRun, run_nautilus  # noqa: E402
from flowprior.samplers.base import CountingLikelihood  # noqa: E402
from flowprior.stats import kish_ess, weighted_mean_sd  # noqa: E402
from flowprior.train import TrainConfig, train_flow  # noqa: E402

log = logging.getLogger("bench_nested")


def run_dynesty(*, prior, loglike, seed: int, nlive: int) -> SamplerRun:
    """dynesty's static sampler with its defaults (``bound``/``sample`` "auto"), per point."""
    import dynesty

    dim = prior.dim
    counted = CountingLikelihood(loglike, dim)
    t0 = time.perf_counter()
    sampler = dynesty.NestedSampler(
        lambda x: float(counted(x[None, :])[0]),
        lambda u: prior.prior_transform(u),
        dim,
        nlive=nlive,
        rstate=np.random.default_rng(seed),
    )
    sampler.run_nested(dlogz=0.01, print_progress=False)
    wall = time.perf_counter() - t0
    res = sampler.results
    logz = float(res.logz[-1])
    x = np.asarray(res.samples, dtype=np.float64)
    logw = np.asarray(res.logwt, dtype=np.float64) - logz
    chain = Chain(prior.params, x, weights=np.exp(logw - logw.max()),
                  log_likelihood=np.asarray(res.logl, dtype=np.float64),
                  log_prior=np.asarray(prior.logpdf(x), dtype=np.float64))
    info = {"sampler": "dynesty", "seed": seed, "log_evidence": logz,
            "log_evidence_err": float(res.logzerr[-1]), "n_likelihood_calls": counted.n_calls,
            "wall_seconds": wall, "diagnostics": {"ess": kish_ess(chain.weights)}}
    return SamplerRun(chain=chain, info=info)


def run_sampler(name: str, *, prior, loglike, seed: int, nlive: int) -> SamplerRun:
    if name == "nautilus":
        return run_nautilus(prior=prior, loglike=loglike, settings=NautilusSettings(), seed=seed)
    return run_dynesty(prior=prior, loglike=loglike, seed=seed, nlive=nlive)


def accuracy(run: SamplerRun, problem, datasets, *, seed: int) -> dict:
    """Moments and C2ST against the exact posterior of ``datasets``."""
    mean_x, cov_x = problem.posterior_moments(list(datasets))
    sd_x = np.sqrt(np.diag(cov_x))
    mean, sd = weighted_mean_sd(run.chain.samples, run.chain.weights)
    exact = problem.sample_posterior(list(datasets), 5000, seed=seed)
    return {
        "max_mean_shift_sd": float(np.max(np.abs(mean - mean_x) / sd_x)),
        "max_sd_ratio_m1": float(np.max(np.abs(sd / sd_x - 1.0))),
        "c2st": c2st(run.chain.samples, exact, w_p=run.chain.weights, seed=seed),
    }


def row(analysis, stage, sampler, run, acc, *, logz, logz_err, exact) -> dict:
    err = logz - exact
    return {
        "analysis": analysis, "stage": stage, "sampler": sampler,
        "calls": run.info["n_likelihood_calls"], "wall_s": round(run.info["wall_seconds"], 1),
        "ess": round(run.chain.ess),
        "mean_shift": round(acc["max_mean_shift_sd"], 4),
        "sd_ratio-1": round(acc["max_sd_ratio_m1"], 4), "c2st": round(acc["c2st"], 3),
        "logZ_err": round(err, 4), "logZ_sd": None if logz_err is None else round(logz_err, 4),
        "n_sigma": None if not logz_err else round(err / logz_err, 2),
    }  # fmt: skip


def train(run: SamplerRun, *, seed: int) -> FlowPrior:
    t0 = time.perf_counter()
    result = train_flow(run.chain, TrainConfig(seed=seed, progress=False))
    log.info("flow trained in %.1f s", time.perf_counter() - t0)
    return FlowPrior.from_result(result, seed=seed)


def sequential(problem, first, second, sampler, prior, stage1, *, seed, nlive):
    """The sequential stage and its flow-corrected log Z_(first, second) (pipeline code)."""
    run = run_sampler(sampler, prior=prior, loglike=problem.loglike(second), seed=seed,
                      nlive=nlive)  # fmt: skip
    run.info["flow_correction"] = flow_correction(run.chain, previous=[problem.loglike(first)])
    out = {"stage1": {first: {"run_info": stage1.info}},
           "sequential": {f"{first}__{second}": {sampler: {"run_info": run.info}}}}  # fmt: skip
    chain = _evidence_chain([first, second], out, sampler)
    # Z_(first, second) = Z_(second | q) E[r]: the flow-corrected total needs no Z_first
    fc = chain["flow_corrected"]
    return run, fc["log_evidence"], fc["log_evidence_err"], chain


def compare(analyses, samplers, *, seed, nlive) -> pd.DataFrame:
    rows = []
    for analysis in analyses:
        problem = get_analysis(analysis)
        box = BoxPrior(problem.params)
        stage1 = {}
        for sampler in samplers:
            run = run_sampler(sampler, prior=box, loglike=problem.loglike("A"), seed=seed,
                              nlive=nlive)  # fmt: skip
            stage1[sampler] = run
            rows.append(row(analysis, "A", sampler, run, accuracy(run, problem, "A", seed=seed),
                            logz=run.info["log_evidence"], logz_err=run.info["log_evidence_err"],
                            exact=problem.log_evidence(["A"])))  # fmt: skip
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
        prior = train(stage1["nautilus"], seed=seed)
        for sampler in samplers:
            run, logz, err, _ = sequential(problem, "A", "B", sampler, prior, stage1[sampler],
                                           seed=seed + 1, nlive=nlive)  # fmt: skip
            rows.append(row(analysis, "A__B", sampler, run,
                            accuracy(run, problem, "AB", seed=seed), logz=logz, logz_err=err,
                            exact=problem.log_evidence(["A", "B"])))  # fmt: skip
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def criteria(analyses, *, seed) -> pd.DataFrame:
    rows = []
    for analysis in analyses:
        problem = get_analysis(analysis)
        for first, second in (("A", "B"), ("B", "A")):
            stage1 = run_sampler("nautilus", prior=BoxPrior(problem.params),
                                 loglike=problem.loglike(first), seed=seed, nlive=0)  # fmt: skip
            prior = train(stage1, seed=seed)
            run, logz, err, chain = sequential(problem, first, second, "nautilus", prior, stage1,
                                               seed=seed + 1, nlive=0)  # fmt: skip
            acc = accuracy(run, problem, [first, second], seed=seed)
            exact = problem.log_evidence([first, second])
            raw = chain["log_evidence"]
            rows.append({
                "analysis": analysis, "order": f"{first}->{second}",
                "calls_stage1": stage1.info["n_likelihood_calls"],
                "calls_seq": run.info["n_likelihood_calls"],
                "wall_s": round(stage1.info["wall_seconds"] + run.info["wall_seconds"], 1),
                "mean_shift": round(acc["max_mean_shift_sd"], 4),
                "sd_ratio-1": round(acc["max_sd_ratio_m1"], 4), "c2st": round(acc["c2st"], 3),
                "logZ_exact": round(exact, 4), "logZ_raw": round(raw, 4),
                "logZ_fc": round(logz, 4), "logZ_fc_sd": round(err, 4),
                "n_sigma_fc": round((logz - exact) / err, 2),
                "ess_fraction": round(run.info["flow_correction"]["ess_fraction"], 3),
                "pass": bool(acc["max_mean_shift_sd"] <= 0.1 and acc["max_sd_ratio_m1"] <= 0.1
                             and acc["c2st"] <= 0.55 and abs(logz - exact) <= 3 * err),
            })  # fmt: skip
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--analyses", nargs="+", default=["gaussian_linear", "bimodal"])
    ap.add_argument("--samplers", nargs="+", default=["nautilus", "dynesty"])
    ap.add_argument("--compare", action="store_true", help="part 1 only")
    ap.add_argument("--criteria", action="store_true", help="part 2 only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nlive", type=int, default=500, help="dynesty live points")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    both = not (args.compare or args.criteria)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        if args.compare or both:
            table = compare(args.analyses, args.samplers, seed=args.seed, nlive=args.nlive)
            print("\nstage 1 (A, box prior) and sequential (A -> B, flow prior):")
            print(table.to_string(index=False))
        if args.criteria or both:
            table = criteria(args.analyses, seed=args.seed)
            print("\ndone criteria (nautilus, both orders):")
            print(table.to_string(index=False))
            print("all pass:", bool(table["pass"].all()), "| log Z within 3 sd:",
                  bool((table["n_sigma_fc"].abs() <= 3).all()), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
