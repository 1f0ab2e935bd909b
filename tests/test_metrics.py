"""The weighted classifier two-sample test, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from flowprior.diagnostics import c2st
from flowprior.stats import weighted_mean_sd


def test_weighted_mean_sd_closed_form():
    x = np.array([[0.0], [1.0], [3.0]])
    mean, sd = weighted_mean_sd(x, np.array([1.0, 2.0, 1.0]))
    assert mean[0] == pytest.approx(1.25)
    assert sd[0] == pytest.approx(np.sqrt((1.25**2 + 2 * 0.25**2 + 1.75**2) / 4))


def test_c2st_identical_distributions_is_chance():
    rng = np.random.default_rng(0)
    acc = c2st(rng.standard_normal((1000, 4)), rng.standard_normal((1000, 4)), seed=1)
    assert 0.45 < acc < 0.55


def test_c2st_detects_a_half_sigma_shift():
    rng = np.random.default_rng(1)
    shifted = rng.standard_normal((1000, 4)) + np.array([0.5, 0, 0, 0])
    assert c2st(rng.standard_normal((1000, 4)), shifted, seed=1) > 0.55


def test_c2st_uses_the_weights():
    """N(0,1) samples weighted to N(1,1) are indistinguishable from exact N(1,1) samples."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1500, 2))
    w = np.exp(x[:, 0] - 0.5)  # N(0,1) -> N((1,0),1)
    target = rng.standard_normal((1500, 2)) + np.array([1.0, 0.0])
    assert c2st(x, target, w_p=w, seed=3) < 0.55
    assert c2st(x, target, seed=3) > 0.6  # ignoring the weights is caught
