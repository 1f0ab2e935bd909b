"""Training: losses, weights, determinism, early stopping, no global side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowprior.chains import Chain
from flowprior.errors import InputError
from flowprior.io import _weights_bytes
from flowprior.priors import FlowPrior
from flowprior.train import TrainConfig, loss_value, train_flow

from conftest import make_space

FAST = dict(kind="maf", transforms=2, hidden=(16, 16), eval_every=25, batch_size=256, progress=False)


def _grads(loss, flow, z, w, log_p):
    flow.zero_grad()
    log_q = flow.core_log_prob(z)
    loss_value(loss, log_q=log_q, weights=w, log_p=log_p).backward()
    return [p.grad.clone() for p in flow.core.parameters()]


@pytest.mark.parametrize("offset", [1000.0, -1000.0])
def test_jeffreys_gradient_and_value_ignore_constant_offsets_in_log_p(small_result, offset):
    flow = small_result.flow.train()
    flow.core.to(torch.float64)
    flow.core_dtype = torch.float64
    try:
        rng = np.random.default_rng(0)
        z = torch.tensor(rng.standard_normal((300, 2)))
        log_p = torch.tensor(-0.5 * (z.numpy() ** 2).sum(1) + rng.normal(0, 0.3, 300))
        w = torch.tensor(rng.uniform(0.2, 1.0, 300))
        ref = _grads("jeffreys", flow, z, w, log_p)
        shifted = _grads("jeffreys", flow, z, w, log_p + offset)
        for a, b in zip(ref, shifted):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
        with torch.no_grad():
            lq = flow.core_log_prob(z)
            v0 = loss_value("jeffreys", log_q=lq, weights=w, log_p=log_p)
            v1 = loss_value("jeffreys", log_q=lq, weights=w, log_p=log_p + offset)
        assert float(v0) == pytest.approx(float(v1), abs=1e-8)
        # the reverse part is not trivially zero: jeffreys differs from kl
        kl = loss_value("kl", log_q=lq, weights=w, log_p=log_p)
        assert abs(float(v0) - float(kl)) > 1e-3
    finally:
        flow.core.to(torch.float32)
        flow.core_dtype = torch.float32
        flow.eval()


def test_kl_gradient_equals_nll_gradient(small_result):
    flow = small_result.flow.train()
    try:
        rng = np.random.default_rng(1)
        z = torch.tensor(rng.standard_normal((200, 2)), dtype=torch.float32)
        log_p = torch.tensor(rng.normal(-40.0, 1.0, 200))
        w = torch.tensor(rng.uniform(0.1, 1.0, 200))
        for a, b in zip(_grads("kl", flow, z, w, log_p), _grads("nll", flow, z, w, None)):
            torch.testing.assert_close(a, b)
    finally:
        flow.eval()


def test_kl_without_log_posterior_is_a_clear_error(gauss_chain_2d):
    bare = Chain(gauss_chain_2d.params, gauss_chain_2d.samples, source="bare.csv")
    for loss in ("kl", "jeffreys"):
        with pytest.raises(InputError, match="bare.csv: log_posterior: .*needs a log_posterior"):
            train_flow(bare, TrainConfig(loss=loss, max_steps=1, **{k: v for k, v in FAST.items()}))


def test_log_likelihood_plus_log_prior_is_accepted_for_kl(gauss_chain_2d):
    c = gauss_chain_2d
    chain = Chain(c.params, c.samples, log_likelihood=c.log_posterior + 3.0,
                  log_prior=np.full(c.n, -np.log(70.0)))
    res = train_flow(chain, TrainConfig(loss="kl", max_steps=30, **FAST))
    assert np.isfinite(res.metrics["val_kl"])


def test_too_few_samples_is_a_clear_error():
    chain = Chain(make_space([(0, 1), (0, 1)]), np.full((20, 2), 0.5), source="tiny.csv")
    with pytest.raises(InputError, match="tiny.csv: samples: 20 samples, training needs at least"):
        train_flow(chain, TrainConfig(max_steps=1, **FAST))


def test_unknown_config_key_is_named():
    with pytest.raises(InputError, match="trasforms: unknown key"):
        TrainConfig.from_dict({"trasforms": 3})
    with pytest.raises(InputError, match="loss must be one of"):
        TrainConfig(loss="reverse")


def test_weighted_training_reproduces_the_reweighted_target():
    """Samples from N(0, 1) weighted towards N(1, 0.6^2): the flow must follow the weights."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20000, 2))
    target_mean, target_sd = np.array([1.0, -0.5]), 0.6
    logw = (-0.5 * ((x - target_mean) / target_sd) ** 2 + 0.5 * x**2).sum(1)
    w = np.exp(logw - logw.max())
    chain = Chain(make_space([(-6, 6), (-6, 6)]), x, weights=w)
    res = train_flow(chain, TrainConfig(max_steps=600, lr=3e-3, **FAST))
    flow_mean = FlowPrior.from_result(res, seed=0).rvs(40000).mean(axis=0)
    se = target_sd / np.sqrt(chain.ess) + target_sd / np.sqrt(40000)
    assert np.all(np.abs(flow_mean - target_mean) < 3 * se), (flow_mean, se)
    # an unweighted fit would sit near 0: the test can fail
    assert np.all(np.abs(np.average(x, axis=0) - target_mean) > 10 * se)


def test_same_seed_same_bytes_other_seed_other_bytes(gauss_chain_2d):
    a = train_flow(gauss_chain_2d, TrainConfig(max_steps=40, seed=11, **FAST))
    b = train_flow(gauss_chain_2d, TrainConfig(max_steps=40, seed=11, **FAST))
    c = train_flow(gauss_chain_2d, TrainConfig(max_steps=40, seed=12, **FAST))
    assert _weights_bytes(a.flow) == _weights_bytes(b.flow)
    assert _weights_bytes(a.flow) != _weights_bytes(c.flow)
    np.testing.assert_array_equal(a.split["validation"], b.split["validation"])


def test_no_global_state_is_changed(gauss_chain_2d):
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    threads = torch.get_num_threads()
    train_flow(gauss_chain_2d, TrainConfig(max_steps=20, threads=max(1, threads % 2 + 1), **FAST))
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.get_num_threads() == threads


def test_early_stopping_restores_the_best_weights(gauss_chain_2d):
    # a huge learning rate makes the validation loss worsen quickly after a few steps
    res = train_flow(gauss_chain_2d, TrainConfig(max_steps=2000, lr=0.05, patience=100, **FAST))
    m = res.metrics
    assert m["stop_reason"] == "patience" and m["steps"] < 2000
    hist = res.history
    assert m["best_val_nll"] == pytest.approx(hist["val_nll"].min())
    # the returned flow *is* the best one: recompute its validation NLL
    val = res.split["validation"]
    log_q = FlowPrior.from_result(res).logpdf(gauss_chain_2d.samples[val])
    assert -np.mean(log_q) == pytest.approx(m["best_val_nll"], rel=1e-5)


def test_max_time_caps_training(gauss_chain_2d):
    res = train_flow(gauss_chain_2d, TrainConfig(max_steps=10**6, max_time=0.5, **FAST))
    assert res.metrics["stop_reason"] == "max_time"
    assert res.metrics["train_seconds"] < 5


def test_history_has_one_row_per_evaluation(small_result):
    h = small_result.history
    assert list(h.columns) == ["step", "train_loss", "val_nll", "best_val_nll", "val_kl", "lr", "seconds"]
    assert list(h["step"]) == [50, 100, 150]
    assert np.all(np.diff(h["best_val_nll"]) <= 0)
