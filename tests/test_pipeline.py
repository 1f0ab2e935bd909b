"""Stage ids, seeds and the joint likelihood of flowprior.pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from flowprior.errors import InputError
from flowprior.pipeline import ProductLikelihood, derive_seed, joint_id, parse_stage, stage_id


def test_stage_ids_round_trip_and_joint_ids_are_canonical():
    assert stage_id(["A", "B", "C"]) == "A__B__C"
    assert parse_stage("A__B__C") == ["A", "B", "C"]
    assert joint_id(["B", "A"], ["A", "B", "C"]) == "A__B"
    with pytest.raises(InputError, match="may not contain"):
        stage_id(["A__x", "B"])


def test_derived_seeds_are_stable_and_distinct():
    a = derive_seed(1, "sequential", "A__B", "pocomc")
    assert a == derive_seed(1, "sequential", "A__B", "pocomc")
    others = {derive_seed(1, "sequential", "A__B", "emcee"), derive_seed(2, "sequential", "A__B", "pocomc"),
              derive_seed(1, "stage1", "A")}
    assert a not in others and len(others) == 3
    assert 0 <= a < 2**32


def test_product_likelihood_sums_and_skips_dead_points():
    calls = []

    def first(x):
        return np.where(x[:, 0] > 0, -x[:, 0], -np.inf)

    def second(x):
        calls.append(len(x))
        return -2.0 * x[:, 1]

    x = np.array([[1.0, 1.0], [-1.0, 5.0], [2.0, 0.5]])
    out = ProductLikelihood([first, second])(x)
    np.testing.assert_allclose(out, [-3.0, -np.inf, -3.0])
    assert calls == [2]  # the second factor never sees the point the first one rejected


def _log_normal(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi))


def test_flow_correction_recovers_the_joint_evidence_from_a_wrong_prior():
    """1-D closed form: p_A = N(0, 1) on a wide box, the 'flow' q = N(0.3, 1.2^2), L_B = N(1, 1).

    The stage samples L_B q exactly; log Z_(B|q) + log E[L_A pi / q] must equal log Z_AB.
    """
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    vol = 40.0
    mq, sq, mb, sb = 0.3, 1.2, 1.0, 1.0
    post_var = 1 / (1 / sq**2 + 1 / sb**2)
    post_mean = post_var * (mq / sq**2 + mb / sb**2)
    rng = np.random.default_rng(3)
    x = rng.normal(post_mean, np.sqrt(post_var), size=(200_000, 1))
    chain = Chain(space, x, log_prior=_log_normal(x[:, 0], mq, sq))

    def loglike_a(t):  # L_A with Z_A = 1/vol: p_A = N(0, 1)
        return _log_normal(t[:, 0], 0.0, 1.0)

    corr = flow_correction(chain, previous=[loglike_a])
    log_z_b_given_q = _log_normal(mb, mq, np.hypot(sq, sb))
    log_z_ab = _log_normal(mb, 0.0, np.hypot(1.0, sb)) - np.log(vol)
    total = log_z_b_given_q + corr["log_mean_ratio"]
    assert abs(total - log_z_ab) < 4 * corr["log_mean_ratio_err"]
    assert 0 < corr["log_mean_ratio_err"] < 0.01
    # the uncorrected chain log Z_A + log Z_(B|q) is off by a known amount the check detects
    assert abs(np.log(1 / vol) + log_z_b_given_q - log_z_ab) > 20 * corr["log_mean_ratio_err"]
    assert 0.5 < corr["ess_fraction"] < 1.0
    assert corr["n_likelihood_calls"] == 200_000


def test_flow_correction_of_an_exact_prior_is_the_previous_evidence():
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    x = np.random.default_rng(1).normal(0.5, 0.7, size=(1000, 1))
    chain = Chain(space, x, weights=np.linspace(1, 2, 1000), log_prior=_log_normal(x[:, 0], 0, 1))
    corr = flow_correction(chain, previous=[lambda t: _log_normal(t[:, 0], 0.0, 1.0)])
    assert corr["log_mean_ratio"] == pytest.approx(np.log(1 / 40.0), abs=1e-12)
    assert corr["log_mean_ratio_err"] == pytest.approx(0.0, abs=1e-12)
    assert corr["ess_fraction"] == pytest.approx(1.0)


def test_flow_correction_names_a_non_finite_ratio():
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    x = np.zeros((3, 1))
    chain = Chain(space, x, log_prior=np.zeros(3))
    with pytest.raises(InputError, match="sample 1"):
        flow_correction(chain, previous=[lambda t: np.array([0.0, np.nan, 0.0])])
