"""The test split of training: disjoint, steering nothing, and its scores (flow NLL with its
standard error, the Gaussian baseline) against independent computations; the learning-rate
schedules and the evaluation subset."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy import stats

from flowprior.chains import Chain
from flowprior.errors import InputError
from flowprior.io import _weights_bytes
from flowprior.priors import FlowPrior
from flowprior.train import (
    TrainConfig,
    _lr_factor,
    data_split,
    gaussian_logpdf,
    split_indices,
    train_flow,
)

from conftest import make_space

FAST = dict(
    kind="maf", transforms=2, hidden=(16, 16), eval_every=25, batch_size=256, progress=False
)
BOX = [(-5.0, 5.0), (-4.0, 3.0)]


@pytest.fixture(scope="module")
def chain() -> Chain:
    """Correlated Gaussian samples with unequal weights in a box."""
    rng = np.random.default_rng(21)
    x = np.array([0.5, -1.0]) + rng.standard_normal((3000, 2)) @ np.array([[1.0, 0.0], [0.4, 0.5]])
    w = rng.uniform(0.5, 2.0, size=len(x))
    return Chain(make_space(BOX), x, weights=w, source="corr2d")


@pytest.fixture(scope="module")
def result(chain):
    return train_flow(chain, TrainConfig(max_steps=50, lr=3e-3, seed=5, **FAST))


def _log_jacobian(x: np.ndarray) -> np.ndarray:
    """log |dy/dx| of y = logit((x - l) / (u - l)), written out independently."""
    lo, hi = np.array(BOX).T
    return np.sum(np.log(hi - lo) - np.log(x - lo) - np.log(hi - x), axis=1)


def test_the_three_splits_are_disjoint_and_cover_the_chain():
    parts = data_split(1001, validation_fraction=0.2, test_fraction=0.1, seed=4)
    assert [parts[k].size for k in ("train", "validation", "test")] == [701, 200, 100]
    joined = np.concatenate(list(parts.values()))
    np.testing.assert_array_equal(np.sort(joined), np.arange(1001))
    # without a test split, the train/validation split is the earlier two-way one
    two = data_split(1001, validation_fraction=0.2, test_fraction=0.0, seed=4)
    train, val = split_indices(1001, fraction=0.2, seed=4)
    np.testing.assert_array_equal(two["train"], train)
    np.testing.assert_array_equal(two["validation"], val)
    assert two["test"].size == 0


def test_result_records_disjoint_splits(result, chain):
    s = result.split
    assert s["test"].size == round(0.1 * chain.n) and s["validation"].size == round(0.2 * chain.n)
    assert not (set(s["test"]) & set(s["train"])) and not (set(s["test"]) & set(s["validation"]))
    assert result.test["n_test"] == s["test"].size


def test_the_test_split_steers_nothing(chain, result):
    """Permuting and perturbing the test rows (samples and weights) leaves the trained weights
    bit-for-bit unchanged, while moving one training row by 0.01 does not."""
    rng = np.random.default_rng(3)
    test, train = result.split["test"], result.split["train"]
    x, w = chain.samples.copy(), chain.weights.copy()
    x[test] = np.clip(
        x[rng.permutation(test)] + 0.3 * rng.standard_normal((test.size, 2)), -3.9, 2.9
    )
    w[test] = rng.uniform(0.1, 5.0, size=test.size)
    moved = Chain(chain.params, x, weights=w, source="corr2d")
    again = train_flow(moved, result.config)
    assert _weights_bytes(again.flow) == _weights_bytes(result.flow)
    assert again.metrics["best_val_nll"] == result.metrics["best_val_nll"]
    assert again.test["test_nll"] != result.test["test_nll"]  # the test scores did see the change
    x[train[0]] += 0.01
    other = train_flow(Chain(chain.params, x, weights=w, source="corr2d"), result.config)
    assert _weights_bytes(other.flow) != _weights_bytes(result.flow)


def test_test_nll_equals_the_priors_weighted_mean_nll(chain, result):
    test = result.split["test"]
    log_q = FlowPrior.from_result(result).logpdf(chain.samples[test])
    w = chain.weights[test] / chain.weights[test].sum()
    nll = -np.sum(w * log_q)
    # the core runs in float32: relative agreement to ~1e-6 of the per-sample values
    assert result.test["test_nll"] == pytest.approx(nll, abs=1e-5)
    se = np.sqrt(np.sum(w**2 * (log_q + nll) ** 2))
    assert result.test["test_nll_se"] == pytest.approx(se, rel=1e-4)
    assert result.test["ess_test"] == pytest.approx(1 / np.sum(w**2))


def test_standard_error_is_sd_over_root_n_for_equal_weights(chain):
    """Equal weights: the SE is the plain sd / sqrt(n) (ddof 0) of -log q."""
    eq = Chain(chain.params, chain.samples, source="eq")
    res = train_flow(eq, TrainConfig(max_steps=25, seed=5, **FAST))
    log_q = FlowPrior.from_result(res).logpdf(eq.samples[res.split["test"]])
    assert res.test["test_nll_se"] == pytest.approx(np.std(log_q) / math.sqrt(log_q.size), rel=1e-4)


def test_gaussian_baseline_is_the_closed_form(chain, result):
    """A logit-space Gaussian fitted to the weighted training split, against scipy."""
    train, test = result.split["train"], result.split["test"]
    lo, hi = np.array(BOX).T
    y = np.log(chain.samples - lo) - np.log(hi - chain.samples)
    mean = np.average(y[train], axis=0, weights=chain.weights[train])
    cov = np.cov(y[train], rowvar=False, aweights=chain.weights[train], bias=True)
    ref = stats.multivariate_normal(mean, cov).logpdf(y[test]) + _log_jacobian(chain.samples[test])
    nll = -np.average(ref, weights=chain.weights[test])
    assert result.test["gaussian_test_nll"] == pytest.approx(nll, abs=1e-9)
    log_q = FlowPrior.from_result(result).logpdf(chain.samples[test])
    diff = np.average(ref - log_q, weights=chain.weights[test])
    assert result.test["flow_minus_gaussian"] == pytest.approx(diff, abs=1e-5)


def test_gaussian_baseline_integrates_to_one_on_the_box(result):
    """Gauss-Legendre quadrature of exp(log density) over the box: 1 to quadrature accuracy."""
    mean, cov = np.array([0.3, -0.8]), np.array([[0.5, 0.2], [0.2, 0.3]])
    nodes, weights = np.polynomial.legendre.leggauss(200)
    lo, hi = np.array(BOX).T
    gx = lo[0] + (hi[0] - lo[0]) * (nodes + 1) / 2
    gy = lo[1] + (hi[1] - lo[1]) * (nodes + 1) / 2
    xx, yy = np.meshgrid(gx, gy, indexing="ij")
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    dens = np.exp(gaussian_logpdf(result.flow, pts, mean=mean, cov=cov)).reshape(xx.shape)
    area = np.outer(weights, weights) * (hi[0] - lo[0]) * (hi[1] - lo[1]) / 4
    assert np.sum(dens * area) == pytest.approx(1.0, abs=1e-6)


def test_no_test_split_gives_null_scores(chain):
    res = train_flow(chain, TrainConfig(max_steps=25, test_fraction=0.0, seed=5, **FAST))
    assert res.test["n_test"] == 0 and res.split["test"].size == 0
    assert all(v is None for k, v in res.test.items() if k != "n_test")
    assert res.split["train"].size + res.split["validation"].size == chain.n


def test_gaussian_winning_is_a_warning(chain, caplog):
    """Five steps leave the flow far from the data: the Gaussian wins and the log says so."""
    with caplog.at_level(logging.WARNING, logger="flowprior.train"):
        res = train_flow(chain, TrainConfig(max_steps=5, lr=1e-4, seed=5, **FAST))
    assert res.test["flow_minus_gaussian"] > 0
    assert "a Gaussian fitted to the training split beats the maf flow" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"test_fraction": -0.1}, "test_fraction must be in \\[0, 1\\)"),
        (
            {"test_fraction": 0.5, "validation_fraction": 0.5},
            "validation_fraction \\+ test_fraction",
        ),
        ({"eval_subset": -1}, "eval_subset must be >= 0"),
        ({"warmup_steps": -1}, "warmup_steps must be >= 0"),
        ({"ema_decay": 1.0}, "ema_decay must be in \\[0, 1\\)"),
        ({"lr_schedule": "step"}, "lr_schedule must be one of"),
    ],
)
def test_bad_split_and_schedule_settings_are_input_errors(settings, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(**settings)


def test_cosine_schedule_with_warm_up_is_followed(chain):
    cfg = TrainConfig(
        max_steps=100,
        lr=2e-3,
        lr_schedule="cosine",
        warmup_steps=20,
        patience=10**6,
        seed=5,
        **FAST,
    )
    res = train_flow(chain, cfg)
    steps = res.history["step"].to_numpy()
    expected = [
        2e-3 * min(1.0, s / 20) * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / 100)))
        for s in steps
    ]
    np.testing.assert_allclose(res.history["lr"], expected, rtol=1e-12)
    assert _lr_factor(100, cfg) == pytest.approx(0.01, rel=1e-12)  # ends at lr * 1e-2


def test_evaluation_subset_is_fixed_and_weighted(chain):
    """With eval_subset, each validation NLL is the weighted mean over one fixed subset."""
    res = train_flow(chain, TrainConfig(max_steps=50, eval_subset=200, seed=5, **FAST))
    val = res.split["validation"]
    rows = np.sort(np.random.default_rng([5, 1]).choice(val.size, size=200, replace=False))
    idx = val[rows]
    log_q = FlowPrior.from_result(res).logpdf(chain.samples[idx])
    nll = -np.average(log_q, weights=chain.weights[idx])
    assert res.metrics["best_val_nll"] == pytest.approx(nll, abs=1e-5)
    full = -np.average(
        FlowPrior.from_result(res).logpdf(chain.samples[val]), weights=chain.weights[val]
    )
    assert abs(full - nll) > 1e-4  # the subset is not the whole split: the test can fail


def test_the_weight_average_is_what_is_validated_and_returned(chain):
    """ema_decay > 0 returns other weights than the raw iterate, and best_val_nll is the
    validation NLL of exactly the returned (averaged) weights."""
    cfg = dict(max_steps=60, lr=3e-3, patience=10**6, seed=5, **FAST)
    raw = train_flow(chain, TrainConfig(ema_decay=0.0, **cfg))
    avg = train_flow(chain, TrainConfig(ema_decay=0.9, **cfg))
    assert _weights_bytes(raw.flow) != _weights_bytes(avg.flow)
    for res in (raw, avg):
        val = res.split["validation"]
        log_q = FlowPrior.from_result(res).logpdf(chain.samples[val])
        nll = -np.average(log_q, weights=chain.weights[val])
        assert res.metrics["best_val_nll"] == pytest.approx(nll, abs=1e-5)
