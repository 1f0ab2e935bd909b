"""The prior protocol (pocoMC / emcee) of FlowPrior and BoxPrior."""

from __future__ import annotations

import numpy as np
import pytest

from flowprior.priors import BoxPrior, FlowPrior

from conftest import make_space


@pytest.fixture(scope="module")
def prior(small_result):
    return FlowPrior.from_result(small_result, seed=0)


def test_box_prior_is_normalised_by_the_volume():
    box = BoxPrior(make_space([(-1, 1), (0, 5)]), seed=1)
    assert box.logpdf(np.array([0.0, 1.0])) == pytest.approx(-np.log(10.0))
    out = box.logpdf(np.array([[0.0, 1.0], [1.0, 5.0], [1.1, 1.0], [0.0, -0.1]]))
    np.testing.assert_allclose(out[:2], -np.log(10.0))
    assert np.all(out[2:] == -np.inf)
    x = box.rvs(5000)
    assert x.shape == (5000, 2) and x.dtype == np.float64
    assert np.all(x > box.bounds[:, 0]) and np.all(x < box.bounds[:, 1])
    np.testing.assert_array_equal(box.rvs(10, seed=3), box.rvs(10, seed=3))


def test_flow_prior_protocol(prior):
    assert prior.dim == 2 and prior.names == ("p0", "p1")
    assert prior.bounds.shape == (2, 2) and prior.bounds.dtype == np.float64
    assert prior.logpdf(np.empty((0, 2))).shape == (0,)
    single = prior.logpdf(np.array([0.5, -1.0]))
    assert isinstance(single, float) and np.isfinite(single)
    batch = prior.logpdf(np.array([[0.5, -1.0], [9.0, 0.0]]))
    assert batch.dtype == np.float64 and batch[0] == single and batch[1] == -np.inf
    x = prior.rvs(1000)
    assert x.shape == (1000, 2) and x.dtype == np.float64
    assert np.all(prior.logpdf(x) > -np.inf)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        prior.logpdf(np.zeros((3, 3)))


def test_rvs_seed_and_stream(small_result):
    a, b = FlowPrior.from_result(small_result, seed=9), FlowPrior.from_result(small_result, seed=9)
    np.testing.assert_array_equal(a.rvs(50), b.rvs(50))  # same stream
    first, second = a.rvs(50), a.rvs(50)
    assert not np.array_equal(first, second)  # the stream moves on
    np.testing.assert_array_equal(a.rvs(20, seed=1), b.rvs(20, seed=1))


def _grid_moments(prior, loglike=None):
    """Mean and sd of ``q(x) L(x)`` by quadrature of the flow's own density on a fine grid.

    The exact reference for samplers of the flow prior: the flow is not exactly its training
    target (fit error), so the closed form of the target is no reference at the 4-SE level.
    """
    g0, g1 = np.linspace(-5, 5, 801), np.linspace(-4, 3, 561)
    grid = np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2)
    logp = prior.logpdf(grid) + (0.0 if loglike is None else loglike(grid))
    p = np.exp(logp - logp.max())
    p /= p.sum()
    mean = p @ grid
    return mean, np.sqrt(p @ (grid - mean) ** 2)


def test_flow_prior_matches_its_training_target(prior, gauss_chain_2d):
    n = 20000
    x = prior.rvs(n)
    mean, sd = _grid_moments(prior)
    # rvs and logpdf describe the same density: 4 standard errors (SE of a mean sd / sqrt(n),
    # of an sd about sd / sqrt(2 n) for a near-Gaussian; measured 0.4 and 1.0 SE)
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 4 * sd / np.sqrt(n))
    np.testing.assert_array_less(np.abs(x.std(0) - sd), 4 * sd / np.sqrt(2 * n))
    # the flow's fit to its target N((0.5, -1), diag(1, 0.25)): a 150-step MAF is off by 0.03
    # and 0.08 target sd in the means and < 1 % in the sds (fit error, not sampling noise)
    target_mean, target_sd = np.array([0.5, -1.0]), np.array([1.0, 0.5])
    np.testing.assert_array_less(np.abs(mean - target_mean) / target_sd, 0.1)
    np.testing.assert_array_less(np.abs(sd / target_sd - 1), 0.03)


def _loglike_p0(x):  # Gaussian likelihood N(1, 0.5^2) on p0
    return -0.5 * ((x[:, 0] - 1.0) / 0.5) ** 2


def test_emcee_with_vectorised_log_prob(prior):
    emcee = pytest.importorskip("emcee")
    logprior = prior.log_prob_fn()

    def log_prob(x):  # flow prior x Gaussian likelihood N(1, 0.5^2) on p0
        return logprior(x) + _loglike_p0(x)

    sampler = emcee.EnsembleSampler(16, 2, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(1).get_state()
    sampler.run_mcmc(prior.rvs(16, seed=2), 600, progress=False)
    kept = sampler.get_chain(discard=200)
    chain = kept.reshape(-1, 2)
    # reference: quadrature of flow x likelihood (about (0.9, -1.0) for the exact target);
    # 4 standard errors sd / sqrt(ESS), ESS = walkers x steps / tau (measured 1.1 SE)
    mean, sd = _grid_moments(prior, _loglike_p0)
    tau = emcee.autocorr.integrated_time(kept, tol=0)
    ess = kept.shape[0] * kept.shape[1] / tau
    np.testing.assert_array_less(np.abs(chain.mean(0) - mean), 4 * sd / np.sqrt(ess))


@pytest.mark.slow
def test_pocomc_with_flow_prior(prior):
    pc = pytest.importorskip("pocomc")

    sampler = pc.Sampler(
        prior=prior, likelihood=_loglike_p0, vectorize=True, n_effective=256, n_active=128,
        random_state=1, flow="maf3", output_dir=None,
    )
    # n_total 1024 rather than pocoMC's default 4096: 4 s rather than 38 s. The tolerance
    # below is derived from the run's own Kish ESS (about 1100 rather than 4200), so it widens
    # by the factor 2 the smaller run needs (measured deviations 0.06 and 1.1 SE); it is still
    # 0.054 and 0.061 against the 0.09 and 0.53 by which ignoring the flow prior (posterior
    # mean (1, -0.5) of the box prior) would miss the reference. n_evidence: not used here.
    sampler.run(n_total=1024, n_evidence=1024, progress=False)
    x, w, _, _ = sampler.posterior()
    w = w / w.sum()
    mean = w @ x
    # reference: quadrature of flow x likelihood; 4 standard errors sd / sqrt(Kish ESS)
    ref_mean, ref_sd = _grid_moments(prior, _loglike_p0)
    ess = 1.0 / np.sum(w**2)
    np.testing.assert_array_less(np.abs(mean - ref_mean), 4 * ref_sd / np.sqrt(ess))
