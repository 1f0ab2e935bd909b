"""The numpy evaluation path (flowprior.fastflow, issue #17) against the torch path."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import zuko

from flowprior.fastflow import FastFlow
from flowprior.flows import BoundedFlow, build_flow
from flowprior.priors import FlowPrior

from conftest import make_space

LOWER = np.array([-2.0, 0.0, 1.0, -5.0, 0.5, -1.0, 3.0])
UPPER = np.array([1.0, 4.0, 1.5, 5.0, 0.75, 2.0, 9.0])

#: Agreement with the torch path: a float64 core agrees to rounding (measured <= 2e-12
#: relative); a float32 core to float32 rounding of either path (measured <= 6e-6 relative on
#: weights of trained size; each path alone is ~4e-6 off the float64 evaluation of the same
#: weights, so the two cannot agree better).
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _flow(kind, dim, *, dtype, whiten, spread, seed=0):
    """A bounded flow with random weights of standard deviation ``spread`` (far from identity)."""
    torch.manual_seed(seed)
    core = build_flow(kind=kind, dim=dim, transforms=3, hidden=(16, 16), bins=6)
    with torch.no_grad():
        for p in core.parameters():
            p.normal_(0.0, spread)
    lower, upper = torch.tensor(LOWER[:dim]), torch.tensor(UPPER[:dim])
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randn(dim, generator=gen, dtype=torch.float64) * 0.3
    if whiten == "full":
        a = torch.randn(dim, dim, generator=gen, dtype=torch.float64) * 0.4 + torch.eye(dim)
        scale = torch.linalg.cholesky(a @ a.T + 0.1 * torch.eye(dim, dtype=torch.float64))
    else:
        scale = torch.rand(dim, generator=gen, dtype=torch.float64) + 0.5
    flow = BoundedFlow(core, lower=lower, upper=upper, shift=shift, scale=scale, core_dtype=dtype)
    return flow.eval()


def _points(dim, n=400, seed=1):
    """Random points inside, on the walls (and corners), just outside, and NaN."""
    rng = np.random.default_rng(seed)
    lo, hi = LOWER[:dim], UPPER[:dim]
    x = lo + rng.random((n, dim)) * (hi - lo)
    wall = rng.random((60, dim)) < 0.5
    x[:60] = np.where(rng.random((60, dim)) < 0.5, np.where(wall, lo, hi), x[:60])
    x[60:64] = [lo, hi, np.nextafter(lo, hi), np.nextafter(hi, lo)]
    x[64:70, 0] = np.nextafter(hi[0], np.inf)  # just outside
    x[70:74, -1] = np.nextafter(lo[-1], -np.inf)
    x[74:76, 0] = np.nan
    return x


def _torch_log_prob(flow, x):
    with torch.inference_mode():
        return flow.log_prob(torch.from_numpy(x)).numpy()


def _assert_close(got, ref, tol):
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    assert np.all(got[~finite] == -np.inf)
    err = np.abs(got[finite] - ref[finite]) / np.maximum(1.0, np.abs(ref[finite]))
    assert err.max() <= tol, err.max()


CASES = [
    (kind, dim, whiten)
    for kind in ("nsf", "maf", "realnvp")
    for dim in (2, 7)
    for whiten in ("diagonal", "full")
]


@pytest.mark.parametrize("kind, dim, whiten", CASES)
def test_float64_core_equals_torch(kind, dim, whiten):
    flow = _flow(kind, dim, dtype=torch.float64, whiten=whiten, spread=0.3)
    x = _points(dim)
    fast = FastFlow(flow)
    ref = _torch_log_prob(flow, x)
    assert np.isfinite(ref[:64]).all() and np.all(ref[64:76] == -np.inf)
    _assert_close(fast.log_prob(x), ref, TOL[torch.float64])
    eps = np.random.default_rng(2).standard_normal((200, dim)) * 1.5
    with torch.inference_mode():
        ref_x = flow.sample_latent_to_box(torch.from_numpy(eps)).numpy()
    got_x = fast.latent_to_box(eps)
    np.testing.assert_allclose(got_x, ref_x, rtol=TOL[torch.float64], atol=TOL[torch.float64])
    assert np.all((got_x > LOWER[:dim]) & (got_x < UPPER[:dim]))


@pytest.mark.parametrize("kind, dim, whiten", CASES)
def test_float32_core_equals_torch(kind, dim, whiten):
    flow = _flow(kind, dim, dtype=torch.float32, whiten=whiten, spread=0.1)
    x = _points(dim)
    _assert_close(FastFlow(flow).log_prob(x), _torch_log_prob(flow, x), TOL[torch.float32])


@pytest.mark.parametrize("kind", ["nsf", "maf", "realnvp"])
def test_float32_rounding_is_no_worse_than_torch(kind):
    """Both float32 paths against the float64 evaluation of the same weights."""
    flow32 = _flow(kind, 7, dtype=torch.float32, whiten="full", spread=0.3)
    core64 = copy.deepcopy(flow32.core)
    flow64 = BoundedFlow(
        core64,
        lower=flow32.lower,
        upper=flow32.upper,
        shift=flow32.shift,
        scale=flow32.scale,
        core_dtype=torch.float64,
    ).eval()
    x = _points(7, n=2000)[76:]  # inside only
    exact = _torch_log_prob(flow64, x)
    err_torch = np.abs(_torch_log_prob(flow32, x) - exact) / np.maximum(1, np.abs(exact))
    err_fast = np.abs(FastFlow(flow32).log_prob(x) - exact) / np.maximum(1, np.abs(exact))
    assert err_fast.max() <= 3 * err_torch.max()


@pytest.mark.parametrize("kind", ["nsf", "maf", "realnvp"])
def test_one_dimensional_flows(kind):
    """D = 1: zuko builds an element-wise transform (and realnvp falls back on maf)."""
    flow = _flow(kind, 1, dtype=torch.float64, whiten="diagonal", spread=0.3)
    x = _points(1)
    _assert_close(FastFlow(flow).log_prob(x), _torch_log_prob(flow, x), TOL[torch.float64])


def test_identity_core():
    """``transforms = 0``: the fixed maps and the standard-normal base alone."""
    core = build_flow(kind="maf", dim=3, transforms=0)
    flow = BoundedFlow(
        core,
        lower=torch.tensor(LOWER[:3]),
        upper=torch.tensor(UPPER[:3]),
        shift=torch.zeros(3, dtype=torch.float64),
        scale=torch.ones(3, dtype=torch.float64),
        core_dtype=torch.float64,
    ).eval()
    x = _points(3)
    _assert_close(FastFlow(flow).log_prob(x), _torch_log_prob(flow, x), TOL[torch.float64])


def _elu_core():
    return zuko.flows.MAF(2, transforms=2, hidden_features=(8,), activation=torch.nn.ELU)


def _shifted_base_core():
    core = zuko.flows.MAF(2, transforms=2, hidden_features=(8,))
    core.base = zuko.flows.UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.ones(2), torch.ones(2), buffer=True
    )
    return core


@pytest.mark.parametrize("make_core", [_elu_core, _shifted_base_core])
def test_unknown_module_falls_back_on_torch(make_core, caplog):
    core = make_core()
    flow = BoundedFlow(
        core,
        lower=torch.tensor(LOWER[:2]),
        upper=torch.tensor(UPPER[:2]),
        shift=torch.zeros(2, dtype=torch.float64),
        scale=torch.ones(2, dtype=torch.float64),
    ).eval()
    with caplog.at_level("INFO", logger="flowprior.fastflow"):
        assert FastFlow.build(flow) is None
    assert "using torch" in caplog.text
    prior = FlowPrior(flow, make_space(list(zip(LOWER[:2], UPPER[:2]))))
    x = _points(2)
    np.testing.assert_array_equal(prior.logpdf(x), _torch_log_prob(flow, x))
    assert prior._fastflow() is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["nsf", "maf", "realnvp"])
def test_flow_prior_dispatch(kind, dtype):
    """FlowPrior's fast and torch paths: logpdf, rvs and prior_transform, every input shape."""
    flow = _flow(kind, 2, dtype=dtype, whiten="full", spread=0.1)
    space = make_space(list(zip(LOWER[:2], UPPER[:2])))
    fast, slow = FlowPrior(flow, space, seed=5), FlowPrior(flow, space, seed=5, fast=False)
    tol = TOL[dtype]
    assert fast._fastflow() is fast._fastflow() is not None  # built once
    assert slow._fastflow() is None
    x = _points(2)
    _assert_close(fast.logpdf(x), slow.logpdf(x), tol)
    fast._fastflow().block = 64  # large batches run in blocks of rows
    _assert_close(fast.logpdf(x), slow.logpdf(x), tol)
    single = fast.logpdf(x[100])
    assert isinstance(single, float) and abs(single - slow.logpdf(x[100])) <= tol * max(
        1, abs(single)
    )
    assert fast.logpdf(x[64]) == -np.inf
    assert fast.logpdf(np.empty((0, 2))).shape == (0,)
    np.testing.assert_allclose(fast.rvs(300), slow.rvs(300), rtol=tol, atol=tol)
    u = np.random.default_rng(3).random((300, 2))
    u[:4] = [[0, 0], [1, 1], [0, 1], [0.5, 1]]
    np.testing.assert_allclose(fast.prior_transform(u), slow.prior_transform(u), rtol=tol, atol=tol)
    assert fast.prior_transform(np.empty((0, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        fast.logpdf(np.zeros((3, 3)))
    clone = pickle.loads(pickle.dumps(fast))  # sampler pools pickle the prior
    np.testing.assert_array_equal(clone.logpdf(x), fast.logpdf(x))
    with pytest.raises(ValueError, match="unit cube"):
        fast.prior_transform(np.full((1, 2), 1.5))


def test_fast_path_leaves_the_module_alone():
    """Building the evaluator changes no parameter or buffer (the model file stays the same)."""
    flow = _flow("nsf", 2, dtype=torch.float32, whiten="diagonal", spread=0.1)
    before = {k: v.clone() for k, v in flow.state_dict().items()}
    prior = FlowPrior(flow, make_space(list(zip(LOWER[:2], UPPER[:2]))))
    prior.logpdf(_points(2))
    after = flow.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
