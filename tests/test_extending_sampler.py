"""docs/extending.md, "Add a sampler": a toy sampler added through the documented route.

The toy is a real estimator: importance sampling from the prior. It draws ``n`` points with
``prior.rvs``, weights them by the likelihood and estimates ``log Z`` as the log of the mean
weight, with the delta-method standard error ``sd(w) / (sqrt(n) mean(w))``. It is registered
with :func:`flowprior.samplers.register_sampler` and then runs a whole A -> B analysis through
the library: stage 1, a flow prior trained on stage A, the sequential stage, the joint
reference and the summary. Its evidences must enter the bookkeeping and agree with the closed
forms of ``flowprior.problems.analytic:gaussian_linear`` (d = 2) within their errors.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pytest

from flowprior.chains import Chain
from flowprior.pipeline import run_joint, run_sequential, run_stage1, summarise_analysis
from flowprior.problems.analytic import get_analysis
from flowprior.samplers import (
    SamplerRun,
    SamplerSettings,
    SamplerSpec,
    get_sampler,
    register_sampler,
    sampler_names,
    unregister_sampler,
)
from flowprior.samplers.base import (
    CountingLikelihood,
    chain_params,
    check_int,
    check_seed,
    check_threads,
    draw_prior,
)
from flowprior.train import TrainConfig, train_flow

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the toy sampler
@dataclass
class PriorISSettings(SamplerSettings):
    """Settings of :func:`run_prior_is`.

    Attributes
    ----------
    n_samples : int
        Prior draws (likelihood calls).
    """

    _SOURCE = "prior_is settings"

    n_samples: int = 100_000

    def validate(self, *, source: str) -> None:
        check_int(source, self, "n_samples", minimum=2)


def run_prior_is(
    *,
    prior,
    loglike,
    settings: PriorISSettings,
    seed: int,
    threads: int = 1,
    progress: bool = False,
) -> SamplerRun:
    """Importance sampling from the prior: weights ``L(theta)``, ``log Z = log mean L``."""
    seed = check_seed(seed)
    check_threads(threads, source="run_prior_is")
    params = chain_params(prior)
    counted = CountingLikelihood(loglike, params.dim)
    t0 = time.perf_counter()
    x = draw_prior(prior, settings.n_samples, np.random.default_rng(seed))
    log_l = counted(x)
    shift = float(np.max(log_l))
    w = np.exp(log_l - shift)
    mean = float(np.mean(w))
    chain = Chain(
        params,
        x,
        weights=w / np.max(w),
        log_likelihood=log_l,
        log_prior=np.asarray(prior.logpdf(x), dtype=np.float64),
        source=f"prior_is(seed={seed})",
    )
    info = {
        "sampler": "prior_is",
        "settings": settings.to_dict(),
        "seed": seed,
        "log_evidence": math.log(mean) + shift,
        "log_evidence_err": float(np.std(w, ddof=1)) / math.sqrt(w.size) / mean,
        "n_likelihood_calls": counted.n_calls,
        "wall_seconds": time.perf_counter() - t0,
        "diagnostics": {"ess": chain.ess, "n_samples": chain.n},
    }
    return SamplerRun(chain=chain, info=info)


PRIOR_IS = SamplerSpec(
    name="prior_is",
    settings=PriorISSettings,
    run=run_prior_is,
    gives_evidence=True,
    needs_prior_transform=False,
    description="importance sampling from the prior (a toy with an evidence)",
    label="prior IS",
)


@pytest.fixture
def prior_is():
    """The toy, registered for one test and removed afterwards."""
    register_sampler(PRIOR_IS)
    yield PRIOR_IS
    unregister_sampler("prior_is")


# --------------------------------------------------------------------------- tests
def test_toy_sampler_is_registered_and_removed(prior_is):
    assert sampler_names()[-1] == "prior_is"
    assert get_sampler("prior_is") is prior_is


def test_toy_sampler_runs_an_analysis_and_its_evidences_enter_the_bookkeeping(
    prior_is, tmp_path
):
    problem = get_analysis("gaussian_linear", dim=2)
    params = problem.params
    datasets = {d: problem.likelihood_entry(d) for d in ("A", "B")}
    settings = {"n_samples": 100_000}
    seed = 5

    def files(name: str, run: SamplerRun) -> dict[str, str]:
        out = {"samples": str(tmp_path / f"{name}.parquet"), "run": str(tmp_path / f"{name}.json")}
        run.write(samples=out["samples"], run_json=out["run"])
        return out

    # stage 1 and the joint reference with the toy, under the box prior
    stage1 = {
        d: run_stage1(
            dataset=d, entry=datasets[d], params=params, sampler="prior_is",
            settings=settings, seed=seed,
        )
        for d in datasets
    }
    joint = run_joint(
        stage="A__B", datasets=datasets, params=params, sampler="prior_is",
        settings=settings, seed=seed,
    )
    # a flow prior trained on the toy's (weighted) stage-1 posterior of A
    cfg = TrainConfig(
        kind="maf", transforms=2, hidden=(32, 32), max_steps=600, eval_every=50,
        batch_size=512, lr=3e-3, progress=False, seed=3,
    )
    model = train_flow(stage1["A"].chain, cfg).save(tmp_path / "flow_A")
    # the sequential stage with the toy, from the flow prior
    seq = run_sequential(
        stage="A__B", sampler="prior_is", datasets=datasets, prior_model=model,
        likelihood_flow=None, settings=settings, seed=seed,
    )
    assert seq.info["sampler"] == "prior_is" and "flow_correction" in seq.info

    summary = summarise_analysis(
        analysis="toy",
        names=params.names,
        stage1={d: files(f"stage1_{d}", r) for d, r in stage1.items()},
        flows={},
        sequential={"A__B": {"prior_is": files("sequential_A__B", seq)}},
        joint={"A__B": files("joint_A__B", joint)},
        sequences=[["A", "B"]],
        dataset_order=["A", "B"],
    )

    # the toy's runs are the terms of the bookkeeping
    (entry,) = summary["sequences"]
    chain = entry["sequential_evidence"]
    assert chain["terms"] == [
        {"stage": "A", "log_evidence": stage1["A"].log_evidence},
        {"stage": "A__B", "log_evidence": seq.log_evidence},
    ]
    assert entry["evidence_check"]["joint_log_evidence"] == joint.log_evidence

    # ... and agree with the closed forms within their errors
    exact_a = problem.log_evidence(["A"])
    exact_ab = problem.log_evidence(["A", "B"])

    def n_sigma(value: float, err: float, exact: float) -> float:
        return abs(value - exact) / err

    for name, value, err, exact in (
        ("log Z_A", stage1["A"].log_evidence, stage1["A"].log_evidence_err, exact_a),
        ("log Z_B", stage1["B"].log_evidence, stage1["B"].log_evidence_err,
         problem.log_evidence(["B"])),
        ("joint log Z_AB", joint.log_evidence, joint.log_evidence_err, exact_ab),
        ("flow-corrected sequential log Z_AB", chain["flow_corrected"]["log_evidence"],
         chain["flow_corrected"]["log_evidence_err"], exact_ab),
    ):
        log.info("%s = %.4f +- %.4f (exact %.4f)", name, value, err, exact)
        assert 0 < err < 0.1, name
        assert n_sigma(value, err, exact) < 4, name
    # the uncorrected chain log Z_A + log Z_(B|flow) differs from it by the flow's bias, which
    # the flow correction measures; for a small flow on a 2-D Gaussian it is small
    bias = chain["flow_corrected"]["flow_bias"]
    log.info("flow bias %.4f; uncorrected chain %.4f +- %.4f", bias, chain["log_evidence"],
             chain["log_evidence_err"])
    assert abs(bias) < 0.2
    assert abs(entry["evidence_check"]["flow_corrected"]["n_sigma"]) < 4
