"""Prior transforms (unit cube -> box) of FlowPrior and BoxPrior, for every flow kind.

For each of nsf, maf and realnvp (small flows trained on a curved, correlated 3-D chain):

- uniform ``u`` pushed through ``prior_transform`` is distributed as the flow: a classifier
  two-sample test against ``rvs`` is at chance within four null standard deviations, and no
  marginal Kolmogorov-Smirnov test rejects;
- the density of the push-forward, ``log N(eps) - log |det dx/d eps|`` by autodiff, is the
  flow's ``logpdf`` (so the transform is the flow's inverse in density, not only in samples);
- it is the inverse of the flow's forward map (box -> latent -> base -> Phi) to 1e-8 with a
  float64 core (float32 cores to their own precision);
- it never leaves the box, on the cube's faces and next to them; bad input is a ValueError.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import make_space
from scipy import stats
from scipy.special import ndtr

from flowprior.chains import Chain
from flowprior.diagnostics.twosample import c2st
from flowprior.flows import FLOW_KINDS
from flowprior.priors import BoxPrior, FlowPrior
from flowprior.train import TrainConfig, train_flow

BOX = [(-4.0, 5.0), (-3.0, 9.0), (-6.0, 2.0)]


def _curved_chain() -> Chain:
    """A banana in (p0, p1) and a correlated p2: far from what an affine map gives."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal(2000)
    b = 0.4 * rng.standard_normal(2000)
    x = np.column_stack([a, 0.6 * a**2 + b, -1.5 + 0.5 * a + 0.3 * rng.standard_normal(2000)])
    return Chain(make_space(BOX), x, source="banana3d")


@pytest.fixture(scope="module", params=FLOW_KINDS)
def flow_prior(request) -> FlowPrior:
    cfg = TrainConfig(
        kind=request.param, transforms=2, hidden=(16, 16), max_steps=120, eval_every=40,
        batch_size=256, lr=3e-3, progress=False, seed=3,
    )  # fmt: skip
    result = train_flow(_curved_chain(), cfg)
    return FlowPrior.from_result(result, seed=5)


def _float64_copy(prior: FlowPrior) -> FlowPrior:
    """The same flow with its trainable core in float64 (the fixed maps are float64 anyway)."""
    flow = copy.deepcopy(prior.flow)
    flow.core = flow.core.to(torch.float64)
    flow.core_dtype = torch.float64
    return FlowPrior(flow, prior.params)


def _box_to_cube(prior: FlowPrior, x: np.ndarray) -> np.ndarray:
    """The flow's forward map: box -> latent z (fixed maps) -> base eps (the core) -> Phi(eps)."""
    flow = prior.flow
    with torch.inference_mode():
        z, _ = flow.to_latent(torch.from_numpy(x))
        eps = flow.core().transform(z.to(flow.core_dtype)).to(torch.float64)
    return ndtr(eps.numpy())


# ----------------------------------------------------------------------------- distribution
def test_pushforward_of_uniform_is_distributed_as_the_flow(flow_prior):
    n = 1000
    u = np.random.default_rng(1).random((n, 3))
    x_t = flow_prior.prior_transform(u)
    x_r = flow_prior.rvs(n, seed=2)
    # Under the null each held-out point is classified right with probability 1/2: the mean
    # accuracy over the 2n held-out points has sd 0.5 / sqrt(2n) (0.011 here).
    null_sd = 0.5 / np.sqrt(2 * n)
    acc = c2st(x_t, x_r, seed=0)
    assert abs(acc - 0.5) < 4 * null_sd, acc
    # Bonferroni over the marginals at a 1 % family-wise level.
    for j in range(3):
        assert stats.ks_2samp(x_t[:, j], x_r[:, j]).pvalue > 0.01 / 3, j


def test_pushforward_density_is_the_flow_logpdf(flow_prior):
    """log q(x) = log N(eps) - log|det dx/d eps| at x = T(eps), the Jacobian by autodiff."""
    prior = _float64_copy(flow_prior)
    eps = torch.from_numpy(np.random.default_rng(4).standard_normal((12, 3)))
    x = prior.flow.sample_latent_to_box(eps).detach().numpy()
    expected = []
    for e in eps:
        jac = torch.autograd.functional.jacobian(
            lambda v: prior.flow.sample_latent_to_box(v[None])[0], e
        )
        log_n = float(torch.distributions.Normal(0.0, 1.0).log_prob(e).sum())
        expected.append(log_n - float(torch.linalg.slogdet(jac)[1]))
    np.testing.assert_allclose(prior.logpdf(x), expected, rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- inverse
def test_transform_is_the_inverse_of_the_forward_map(flow_prior):
    prior = _float64_copy(flow_prior)
    rng = np.random.default_rng(6)
    u = rng.random((560, 3))
    # one coordinate at a time next to a face (every coordinate at once, a corner of the cube
    # with mass ~1e-12, can saturate the logit map at the wall, where no map is invertible)
    rows = np.arange(500, 560)
    u[rows, rows % 3] = np.where(rows < 530, 1.0, 0.0) + np.where(rows < 530, -1, 1) * (
        rng.uniform(1e-6, 1e-4, 60)
    )
    back = _box_to_cube(prior, prior.prior_transform(u))
    np.testing.assert_allclose(back, u, rtol=0, atol=1e-8)
    # and the other way round: box -> cube -> box
    x = prior.rvs(300, seed=7)
    width = prior.params.upper - prior.params.lower
    err = np.abs(prior.prior_transform(_box_to_cube(prior, x)) - x) / width
    assert err.max() < 1e-8, err.max()


def test_float32_core_inverse_to_its_precision(flow_prior):
    """The shipped float32 core: same map, round trip to float32 rounding (not 1e-8)."""
    u = np.random.default_rng(8).random((300, 3))
    back = _box_to_cube(flow_prior, flow_prior.prior_transform(u))
    err = np.abs(back - u).max()
    assert err < 1e-5, err
    close = _float64_copy(flow_prior).prior_transform(u)
    np.testing.assert_allclose(flow_prior.prior_transform(u), close, rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- the box
def _faces_and_near(dim: int) -> np.ndarray:
    corners = np.array(np.meshgrid(*[[0.0, 1.0]] * dim)).reshape(dim, -1).T
    tiny = [5e-324, 1e-300, 1e-16, 1e-12]
    near = np.array([[t] * dim for t in tiny] + [[1.0 - t] * dim for t in tiny[2:]]
                    + [[np.nextafter(1.0, 0.0)] * dim])  # fmt: skip
    mixed = np.array([[0.0, 0.5, 1.0], [1.0, 1e-300, 0.5], [np.nextafter(1.0, 0.0), 0.0, 0.3]])
    return np.concatenate([corners, near, mixed[:, :dim]])


@pytest.mark.parametrize("which", ["flow", "box"])
def test_never_leaves_the_box(flow_prior, which):
    prior = flow_prior if which == "flow" else BoxPrior(flow_prior.params)
    lo, hi = prior.params.lower, prior.params.upper
    u = np.concatenate([_faces_and_near(3), np.random.default_rng(9).random((2000, 3))])
    x = prior.prior_transform(u)
    assert x.shape == u.shape and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    assert np.all((x > lo) & (x < hi))
    assert np.all(np.isfinite(prior.logpdf(x)))


def test_box_transform_is_the_affine_map():
    params = make_space(BOX)
    prior = BoxPrior(params)
    lo, hi = params.lower, params.upper
    u = np.random.default_rng(10).random((1000, 3))
    np.testing.assert_array_equal(prior.prior_transform(u), lo + u * (hi - lo))
    # faces: just inside, the nearest representable points
    at_lo, at_hi = prior.prior_transform(np.zeros(3)), prior.prior_transform(np.ones(3))
    ulp = np.spacing(np.maximum(np.abs(lo), np.abs(hi)))
    assert np.all((at_lo > lo) & (at_lo - lo <= 4 * ulp)), at_lo - lo
    assert np.all((at_hi < hi) & (hi - at_hi <= 4 * ulp)), hi - at_hi
    # uniform in, uniform out: each marginal's CDF is the identity on the cube's coordinate
    x = prior.prior_transform(u)
    for j in range(3):
        assert stats.kstest((x[:, j] - lo[j]) / (hi[j] - lo[j]), "uniform").pvalue > 0.01 / 3


@pytest.mark.parametrize("which", ["flow", "box"])
def test_shapes_single_point_and_empty_batch(flow_prior, which):
    prior = flow_prior if which == "flow" else BoxPrior(flow_prior.params)
    one = prior.prior_transform(np.full(3, 0.5))
    assert one.shape == (3,)
    np.testing.assert_array_equal(one, prior.prior_transform(np.full((1, 3), 0.5))[0])
    assert prior.prior_transform(np.empty((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("which", ["flow", "box"])
@pytest.mark.parametrize(
    "u, match",
    [
        (np.array([[0.5, -0.1, 0.5]]), "unit cube"),
        (np.array([[0.5, 1.1, 0.5]]), "unit cube"),
        (np.array([[0.5, np.nan, 0.5]]), "unit cube"),
        (np.array([[0.5, np.inf, 0.5]]), "unit cube"),
        (np.full((4, 2), 0.5), r"shape \(N, 3\)"),
        (np.full((2, 2, 3), 0.5), r"shape \(N, 3\)"),
        (np.full(4, 0.5), r"shape \(N, 3\)"),
    ],
)
def test_bad_u_is_a_value_error(flow_prior, which, u, match):
    prior = flow_prior if which == "flow" else BoxPrior(flow_prior.params)
    with pytest.raises(ValueError, match=match):
        prior.prior_transform(u)
