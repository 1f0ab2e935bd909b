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


def test_flow_prior_matches_its_training_target(prior, gauss_chain_2d):
    x = prior.rvs(20000)
    np.testing.assert_allclose(x.mean(0), [0.5, -1.0], atol=0.08)
    np.testing.assert_allclose(x.std(0), [1.0, 0.5], rtol=0.1)


def test_emcee_with_vectorised_log_prob(prior):
    emcee = pytest.importorskip("emcee")
    logprior = prior.log_prob_fn()

    def log_prob(x):  # flow prior x Gaussian likelihood N(1, 0.5^2) on p0
        return logprior(x) - 0.5 * ((x[:, 0] - 1.0) / 0.5) ** 2

    sampler = emcee.EnsembleSampler(16, 2, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(1).get_state()
    sampler.run_mcmc(prior.rvs(16, seed=2), 600, progress=False)
    chain = sampler.get_chain(discard=200, flat=True)
    # Prior N(0.5, 1) x likelihood N(1, 0.25) -> posterior mean 0.9 on p0; p1 unchanged (-1)
    np.testing.assert_allclose(chain.mean(0), [0.9, -1.0], atol=0.15)


@pytest.mark.slow
def test_pocomc_with_flow_prior(prior):
    pc = pytest.importorskip("pocomc")

    def loglike(x):
        return -0.5 * ((x[:, 0] - 1.0) / 0.5) ** 2

    sampler = pc.Sampler(
        prior=prior, likelihood=loglike, vectorize=True, n_effective=256, n_active=128,
        random_state=1, flow="maf3", output_dir=None,
    )
    sampler.run(progress=False)
    x, w, _, _ = sampler.posterior()
    mean = np.average(x, weights=w, axis=0)
    # closed form: N(0.5, 1) x N(1, 0.25) -> mean 0.9, sd sqrt(0.2) on p0; p1 ~ N(-1, 0.25)
    np.testing.assert_allclose(mean, [0.9, -1.0], atol=0.12)
