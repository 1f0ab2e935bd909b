"""The registry's nested sampler (nautilus): settings, closed-form accuracy, flow priors, seeds.

Accuracy tolerances come from the run's own errors: log Z within 3 of its reported standard
errors, weighted means within 4 standard errors ``sd / sqrt(ESS)`` and standard deviations
within ``4 / sqrt(2 ESS)`` (Kish ESS). The sampler runs are small (about 5000 likelihood
calls) but statistical, hence ``slow``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_space
from scipy.special import ndtr

from flowprior.errors import InputError
from flowprior.pipeline import run_sampler
from flowprior.priors import BoxPrior, FlowPrior
from flowprior.samplers import (
    NautilusSettings,
    SamplerError,
    get_sampler,
    run_nautilus,
    sampler_names,
)
from flowprior.stats import weighted_mean_sd

SPACE = make_space([(-5, 5), (-4, 3)])
MU, SD = np.array([0.5, -1.0]), np.array([1.0, 0.5])
#: Small runs: about 5000 likelihood calls, one emulator network per bound.
SMALL = {"n_live": 200, "n_eff": 2000, "n_networks": 1}


def gauss_loglike(x: np.ndarray) -> np.ndarray:
    """Normalised N(MU, diag SD^2) density, so Z = mass in the box / volume."""
    return -0.5 * np.sum(((x - MU) / SD) ** 2, axis=1) - np.log(SD).sum() - math.log(2 * math.pi)


def exact_log_z(space, mu, sd) -> float:
    lo, hi = space.lower, space.upper
    mass = np.prod(ndtr((hi - mu) / sd) - ndtr((lo - mu) / sd))
    return float(math.log(mass) - space.log_volume)


class Recorder:
    def __init__(self, fn):
        self.fn, self.n = fn, 0

    def __call__(self, x):
        self.n += len(x)
        return self.fn(x)


def check_moments(run, mean_x, sd_x):
    ess = run.chain.ess
    mean, sd = weighted_mean_sd(run.chain.samples, run.chain.weights)
    assert np.all(np.abs(mean - mean_x) < 4 * sd_x / math.sqrt(ess)), (mean, mean_x, ess)
    assert np.all(np.abs(sd / sd_x - 1) < 4 / math.sqrt(2 * ess)), (sd / sd_x, ess)


# --------------------------------------------------------------------------- settings


def test_defaults_and_round_trip():
    s = NautilusSettings()
    assert (s.n_live, s.n_eff, s.f_live, s.discard_exploration) == (1000, 10000, 0.01, True)
    assert (s.n_networks, s.n_batch, s.n_like_max) == (4, None, None)
    assert NautilusSettings.from_dict(s.to_dict(), source="cfg") == s
    assert NautilusSettings.from_dict(None, source="cfg") == s


def test_unknown_key_is_one_line_input_error():
    with pytest.raises(InputError, match=r"^cfg: nlive: unknown key; known: n_live, n_eff") as e:
        NautilusSettings.from_dict({"nlive": 100}, source="cfg")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "d, key",
    [
        ({"n_live": 5}, "n_live"),
        ({"n_live": 100.0}, "n_live"),
        ({"n_eff": 0}, "n_eff"),
        ({"f_live": 0}, "f_live"),
        ({"f_live": 1.0}, "f_live"),
        ({"f_live": float("nan")}, "f_live"),
        ({"f_live": True}, "f_live"),
        ({"discard_exploration": "yes"}, "discard_exploration"),
        ({"n_networks": 0}, "n_networks"),
        ({"n_batch": 0}, "n_batch"),
        ({"n_like_max": -1}, "n_like_max"),
        ({"n_like_max": True}, "n_like_max"),
    ],
)
def test_invalid_values(d, key):
    with pytest.raises(InputError, match=rf"^cfg: {key}: must"):
        NautilusSettings.from_dict(d, source="cfg")


def test_direct_construction_validates():
    with pytest.raises(InputError, match="^nautilus settings: f_live: must be a number in"):
        NautilusSettings(f_live=2.0)


def test_registered_with_its_capabilities():
    spec = get_sampler("nautilus")
    assert "nautilus" in sampler_names()
    assert (spec.settings, spec.run, spec.label) == (NautilusSettings, run_nautilus, "nautilus")
    assert spec.gives_evidence and spec.needs_prior_transform


def test_prior_without_transform_is_refused():
    class DensityOnly:
        dim, bounds = 2, SPACE.bounds

        def logpdf(self, x):
            return np.zeros(len(x))

    with pytest.raises(InputError, match="^run_nautilus: prior: DensityOnly has no prior_tr"):
        run_nautilus(prior=DensityOnly(), loglike=gauss_loglike,
                     settings=NautilusSettings(**SMALL), seed=1)  # fmt: skip
    with pytest.raises(InputError, match="needs a prior transform"):
        run_sampler("nautilus", prior=DensityOnly(), loglike=gauss_loglike, settings=SMALL,
                    seed=1, where="stage1: A")  # fmt: skip


def test_bad_seed_threads_and_likelihood_output():
    kwargs = dict(prior=BoxPrior(SPACE), settings=NautilusSettings(**SMALL))
    with pytest.raises(InputError, match="seed"):
        run_nautilus(loglike=gauss_loglike, seed=-1, **kwargs)
    with pytest.raises(InputError, match="^run_nautilus: threads: must be"):
        run_nautilus(loglike=gauss_loglike, seed=1, threads=0, **kwargs)
    with pytest.raises(SamplerError, match="nan"):
        run_nautilus(loglike=lambda x: np.full(len(x), np.nan), seed=1, **kwargs)


# --------------------------------------------------------------------------- stage 1


@pytest.fixture(scope="module")
def stage1():
    rec = Recorder(gauss_loglike)
    np_state = np.random.get_state()[1].copy()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # != the threads nautilus is given (1), so a leak would show
    try:
        run = run_nautilus(prior=BoxPrior(SPACE, seed=0), loglike=rec,
                           settings=NautilusSettings(**SMALL), seed=3)  # fmt: skip
        threads = (2, torch.get_num_threads())  # (before, after)
    finally:
        torch.set_num_threads(old_threads)
    return run, rec, np_state, threads


@pytest.mark.slow
def test_stage1_evidence_matches_closed_form(stage1):
    run, *_ = stage1
    err = run.info["log_evidence_err"]
    assert err is not None and 0 < err < 0.1
    assert abs(run.info["log_evidence"] - exact_log_z(SPACE, MU, SD)) < 3 * err


@pytest.mark.slow
def test_stage1_weighted_moments_match_closed_form(stage1):
    run, *_ = stage1
    assert run.chain.ess > 1000
    check_moments(run, MU, SD)


@pytest.mark.slow
def test_stage1_record_and_columns(stage1):
    run, rec, np_state, threads = stage1
    info = run.info
    assert info["sampler"] == "nautilus" and info["seed"] == 3
    assert info["settings"] == NautilusSettings(**SMALL).to_dict()
    assert info["n_likelihood_calls"] == rec.n == info["diagnostics"]["nautilus_calls"]
    assert info["wall_seconds"] > 0 and info["diagnostics"]["converged"] is True
    assert set(info["versions"]) == {"nautilus", "numpy", "torch"}
    chain = run.chain
    assert chain.weights.max() == 1.0 and np.all(chain.weights >= 0)
    np.testing.assert_allclose(chain.log_likelihood, gauss_loglike(chain.samples), atol=1e-12)
    np.testing.assert_array_equal(chain.log_prior, -SPACE.log_volume)
    assert np.all(SPACE.contains(chain.samples))
    # no global state touched
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert threads[1] == threads[0]


@pytest.mark.slow
def test_reproducible_with_the_same_seed(stage1):
    first, *_ = stage1
    again = run_nautilus(prior=BoxPrior(SPACE, seed=99), loglike=gauss_loglike,
                         settings=NautilusSettings(**SMALL), seed=3)  # fmt: skip
    np.testing.assert_array_equal(again.chain.samples, first.chain.samples)
    np.testing.assert_array_equal(again.chain.weights, first.chain.weights)
    assert again.info["log_evidence"] == first.info["log_evidence"]


# --------------------------------------------------------------------------- flow prior


@pytest.mark.slow
def test_sequential_with_a_flow_prior_matches_importance_sampling(small_result):
    """Z_(B|q) = E_q[L_B] and the posterior mean, against plain Monte Carlo from the flow."""
    prior = FlowPrior.from_result(small_result, seed=0)
    mu_b, sd_b = np.array([1.0, -0.7]), np.array([0.8, 0.6])

    def loglike_b(x):
        return -0.5 * np.sum(((x - mu_b) / sd_b) ** 2, axis=1) - np.log(sd_b).sum() - math.log(
            2 * math.pi
        )

    run = run_nautilus(prior=prior, loglike=loglike_b, settings=NautilusSettings(**SMALL), seed=4)
    np.testing.assert_allclose(run.chain.log_prior, prior.logpdf(run.chain.samples), atol=1e-12)
    # independent reference: draws of the flow, likelihood-weighted
    x = prior.rvs(200_000, seed=5)
    w = np.exp(loglike_b(x))
    log_z_mc = math.log(w.mean())
    se_mc = float(w.std(ddof=1) / math.sqrt(w.size) / w.mean())
    err = run.info["log_evidence_err"]
    assert err is not None
    assert abs(run.info["log_evidence"] - log_z_mc) < 3 * math.hypot(err, se_mc)
    mean_mc, sd_mc = weighted_mean_sd(x, w)
    check_moments(run, mean_mc, sd_mc)


# --------------------------------------------------------------------------- pipeline, 1-D


@pytest.mark.slow
def test_through_the_pipeline_by_name_in_one_dimension():
    """run_sampler("nautilus", ...) and a 1-D prior (nautilus needs 2: padded, Z unchanged)."""
    space = make_space([(-3, 6)])
    mu, sd = np.array([1.2]), np.array([0.7])

    def loglike(x):
        return -0.5 * (((x[:, 0] - mu[0]) / sd[0]) ** 2) - math.log(sd[0] * math.sqrt(2 * math.pi))

    run = run_sampler("nautilus", prior=BoxPrior(space), loglike=loglike, settings=SMALL,
                      seed=8, where="stage1: A")  # fmt: skip
    assert run.info["sampler"] == "nautilus" and run.chain.samples.shape[1] == 1
    assert run.info["settings"]["n_live"] == 200
    assert abs(run.info["log_evidence"] - exact_log_z(space, mu, sd)) < 3 * run.info[
        "log_evidence_err"
    ]
    check_moments(run, mu, sd)
