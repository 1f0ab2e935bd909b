"""Absolute densities of the bounded flow against closed forms, normalisation, Jacobians."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import special, stats

from flowprior.flows import FLOW_KINDS, BoundedFlow, build_flow


def _flow(kind, dim, *, transforms=2, shift=None, scale=None, bounds=None, perturb=0.0, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        core = build_flow(kind=kind, dim=dim, transforms=transforms, hidden=(8, 8), bins=6)
        if perturb:
            with torch.no_grad():
                for p in core.parameters():
                    p.add_(perturb * torch.randn_like(p))
    bounds = np.asarray(bounds if bounds is not None else [(-2.0, 3.0)] * dim, dtype=float)
    return BoundedFlow(
        core,
        lower=torch.tensor(bounds[:, 0]),
        upper=torch.tensor(bounds[:, 1]),
        shift=torch.tensor(shift if shift is not None else np.zeros(dim)),
        scale=torch.tensor(scale if scale is not None else np.ones(dim)),
        core_dtype=torch.float64,
    ).eval()


def _logpdf(flow, x):
    with torch.no_grad():
        return flow.log_prob(torch.as_tensor(np.asarray(x, dtype=float))).numpy()


def test_identity_core_is_closed_form_logit_normal():
    lo, hi = np.array([-2.0, 10.0, 0.0]), np.array([3.0, 11.0, 1e-3])
    m, s = np.array([0.3, -1.2, 2.0]), np.array([0.7, 1.5, 0.4])
    flow = _flow("nsf", 3, transforms=0, shift=m, scale=s, bounds=np.column_stack([lo, hi]))
    rng = np.random.default_rng(1)
    x = lo + (hi - lo) * rng.uniform(0.001, 0.999, size=(500, 3))
    u = (x - lo) / (hi - lo)
    y = special.logit(u)
    # density of x: N(y; m, s) * |dy/du| * |du/dx|
    expected = np.sum(stats.norm.logpdf(y, m, s) - np.log(u * (1 - u)) - np.log(hi - lo), axis=1)
    np.testing.assert_allclose(_logpdf(flow, x), expected, rtol=0, atol=1e-10)


def test_full_whitening_is_closed_form_correlated_logit_normal():
    """Matrix scale L: the density is the logit-normal with covariance L L^T, to 1e-10."""
    lo, hi = np.array([-2.0, 10.0, 0.0]), np.array([3.0, 11.0, 1e-3])
    m = np.array([0.3, -1.2, 2.0])
    chol = np.array([[0.7, 0.0, 0.0], [1.2, 0.5, 0.0], [-0.3, 0.2, 0.4]])
    flow = _flow("maf", 3, transforms=0, shift=m, scale=chol, bounds=np.column_stack([lo, hi]))
    rng = np.random.default_rng(2)
    x = lo + (hi - lo) * rng.uniform(0.001, 0.999, size=(500, 3))
    u = (x - lo) / (hi - lo)
    y = special.logit(u)
    expected = stats.multivariate_normal(m, chol @ chol.T).logpdf(y) - np.sum(
        np.log(u * (1 - u)) + np.log(hi - lo), axis=1
    )
    np.testing.assert_allclose(_logpdf(flow, x), expected, rtol=0, atol=1e-10)
    # sampling inverts the map: samples have the logit-space mean and covariance
    with torch.no_grad():
        xs = flow.sample(20000, generator=torch.Generator().manual_seed(0)).numpy()
    ys = special.logit((xs - lo) / (hi - lo))
    np.testing.assert_allclose(ys.mean(axis=0), m, atol=0.05)
    np.testing.assert_allclose(np.cov(ys.T), chol @ chol.T, atol=0.06)


def test_matrix_scale_must_be_a_cholesky_factor():
    with pytest.raises(ValueError, match="lower-triangular"):
        _flow("maf", 2, transforms=0, scale=np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="diagonal must be positive"):
        _flow("maf", 2, transforms=0, scale=np.array([[1.0, 0.0], [0.5, -1.0]]))


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_normalised_on_the_box_1d(kind):
    flow = _flow(kind, 1, shift=[0.4], scale=[0.8], perturb=0.3, bounds=[(-2.0, 3.0)])
    # integrate in u = logit-space-friendly grid: x over the box, fine trapezoid
    x = np.linspace(-2.0, 3.0, 200_001)[:, None]
    integral = np.trapezoid(np.exp(_logpdf(flow, x)), x[:, 0])
    assert abs(integral - 1.0) < 1e-3


@pytest.mark.parametrize("kind", ["nsf", "maf", "realnvp"])
def test_normalised_on_the_box_2d(kind):
    bounds = [(-2.0, 3.0), (0.0, 0.5)]
    flow = _flow(kind, 2, shift=[0.2, -0.3], scale=[0.9, 0.7], perturb=0.2, bounds=bounds)
    g1 = np.linspace(*bounds[0], 601)
    g2 = np.linspace(*bounds[1], 601)
    xx, yy = np.meshgrid(g1, g2, indexing="ij")
    dens = np.exp(_logpdf(flow, np.column_stack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    integral = np.trapezoid(np.trapezoid(dens, g2, axis=1), g1)
    assert abs(integral - 1.0) < 1e-3


def test_a_wrong_jacobian_would_be_caught():
    """Sanity of the integral test itself: dropping the box Jacobian changes the integral."""
    flow = _flow("maf", 1, shift=[0.4], scale=[0.8], perturb=0.3, bounds=[(-2.0, 3.0)])
    x = np.linspace(-2.0, 3.0, 200_001)[:, None]
    with torch.no_grad():
        xt = torch.tensor(x)
        z, ladj = flow.to_latent(xt)
        wrong = flow.core_log_prob(z).numpy()  # no fixed-map Jacobian
    assert abs(np.trapezoid(np.exp(wrong), x[:, 0]) - 1.0) > 0.05


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_log_prob_equals_autodiff_log_det(kind):
    flow = _flow(kind, 3, shift=[0.1, 0.2, -0.1], scale=[0.5, 1.2, 0.9], perturb=0.2)
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1.5, 2.5, size=(5, 3))

    def to_base(x):
        z, _ = flow.to_latent(x[None])
        return flow.core().transform(z)[0]

    for p in pts:
        x = torch.tensor(p)
        jac = torch.autograd.functional.jacobian(to_base, x)
        eps = to_base(x).detach()
        base = stats.norm.logpdf(eps.numpy()).sum()
        expected = base + torch.linalg.slogdet(jac)[1].item()
        assert _logpdf(flow, p[None])[0] == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("kind", FLOW_KINDS)
def test_round_trip(kind):
    flow = _flow(kind, 3, shift=[0.1, 0.2, -0.1], scale=[0.5, 1.2, 0.9], perturb=0.2)
    x = flow.sample(200, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z, _ = flow.to_latent(x)
        eps = flow.core().transform(z)
        back = flow.sample_latent_to_box(eps)
    np.testing.assert_allclose(back.numpy(), x.numpy(), rtol=0, atol=1e-9)


def test_outside_and_nan_are_minus_inf_boundary_is_finite():
    flow = _flow("nsf", 2, perturb=0.1)
    pts = np.array([[-2.0, 3.0], [3.0, -2.0], [-2.0001, 0.0], [0.0, 3.0001], [np.nan, 0.0]])
    out = _logpdf(flow, pts)
    assert np.all(np.isfinite(out[:2]))
    assert np.all(out[2:] == -np.inf)


def test_samples_strictly_inside_even_when_pushed_into_walls():
    flow = _flow("maf", 2, shift=[60.0, -60.0], scale=[1.0, 1.0])
    x = flow.sample(2000, generator=torch.Generator().manual_seed(1)).numpy()
    assert np.all(x > flow.lower.numpy()) and np.all(x < flow.upper.numpy())


def test_build_flow_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown flow kind"):
        build_flow(kind="glow", dim=2)
