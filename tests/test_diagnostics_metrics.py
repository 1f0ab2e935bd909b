"""Diagnostics metrics (fidelity, agreement, tension, modes, verdict) on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from flowprior.diagnostics import (
    ModeSummary,
    agreement,
    count_modes,
    default_thresholds,
    evidence_ratio,
    mode_masses,
    moment_scores,
    parameter_shift,
    sliced_wasserstein,
    suspiciousness,
    verdict,
)
from flowprior.diagnostics.agreement import _interval_overlap
from flowprior.diagnostics.tension import _chi2_logsf_asymptotic, _sigma_from_log_p
from flowprior.problems import get_problem
from flowprior.problems.analytic import get_analysis
from flowprior.stats import kish_ess, weighted_quantile

NAMES3 = ["theta1", "theta2", "theta3"]


def _two_gaussians(n, rng, *, p_left=0.3, sep=4.0, dim=2):
    left = rng.random(n) < p_left
    x = rng.standard_normal((n, dim))
    x[:, 0] += np.where(left, -sep, sep)
    return x


# ----------------------------------------------------------------------------- validation
def _calls(x, y, w):
    return {
        "moment_scores": lambda: moment_scores(x, y, wa=w, names=NAMES3, n_boot=5),
        "sliced_wasserstein": lambda: sliced_wasserstein(x, y, wa=w, n_projections=5),
        "agreement": lambda: agreement(x, y, wx=w, names=NAMES3),
        "parameter_shift": lambda: parameter_shift(x, y, wa=w),
        "count_modes": lambda: count_modes(x, w=w, max_components=1),
        "weighted_quantile": lambda: weighted_quantile(x, 0.5, w),
    }


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.ones(7), "shape"),
        (np.r_[-1.0, np.ones(9)], "non-negative"),
        (np.r_[np.nan, np.ones(9)], "NaN"),
        (np.zeros(10), "total weight is zero"),
    ],
)
@pytest.mark.parametrize(
    "func",
    [
        "moment_scores",
        "sliced_wasserstein",
        "agreement",
        "parameter_shift",
        "count_modes",
        "weighted_quantile",
    ],
)
def test_bad_weights_raise_value_error(func, weights, message):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((12, 3))
    with pytest.raises(ValueError, match=message):
        _calls(x, y, weights)[func]()


def test_shape_mismatch_and_names_raise():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((12, 2))
    with pytest.raises(ValueError, match="3 parameter column"):
        sliced_wasserstein(x, y)
    with pytest.raises(ValueError, match="3 parameter column"):
        parameter_shift(x, y)
    with pytest.raises(ValueError, match="names"):
        moment_scores(x, x, names=["a", "b"])
    with pytest.raises(ValueError, match="NaN or infinite"):
        agreement(np.full((4, 3), np.nan), x, names=NAMES3)
    with pytest.raises(ValueError, match="w_a"):
        suspiciousness(
            log_z_a=0.0,
            log_z_b=0.0,
            log_z_ab=0.0,
            loglike_a=np.zeros(5),
            w_a=-np.ones(5),
            loglike_b=np.zeros(5),
            loglike_ab=np.zeros(5),
        )


def test_kish_ess():
    assert kish_ess(None, 50) == 50
    assert kish_ess(np.ones(50)) == pytest.approx(50)
    assert kish_ess(np.r_[np.ones(10), np.zeros(90)]) == pytest.approx(10)


# ----------------------------------------------------------------------------- quantiles
def test_weighted_quantile_equal_weights_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((501, 3))
    q = np.array([0.0, 0.01, 0.16, 0.5, 0.84, 0.975, 1.0])
    np.testing.assert_allclose(
        weighted_quantile(x, q), np.quantile(x, q, axis=0, method="hazen"), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        weighted_quantile(x, q, np.full(501, 3.7), method="inverted_cdf"),
        np.quantile(x, q, axis=0, method="inverted_cdf"),
        rtol=0,
        atol=0,
    )
    assert weighted_quantile(x[:, 0], 0.5).shape == ()
    assert weighted_quantile(x, [0.1, 0.9]).shape == (2, 3)


def test_weighted_quantile_integer_weights_match_repeated_samples():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(2000)
    k = rng.integers(1, 6, size=x.size)
    q = np.linspace(0.01, 0.99, 25)
    rep = np.repeat(x, k)
    # the step-function definition is exactly the quantile of the repeated samples ...
    np.testing.assert_array_equal(
        weighted_quantile(x, q, k, method="inverted_cdf"),
        np.quantile(rep, q, method="inverted_cdf"),
    )
    # ... and agrees with numpy's own weighted quantile for arbitrary weights
    wr = rng.random(x.size)
    np.testing.assert_array_equal(
        weighted_quantile(x, q, wr, method="inverted_cdf"),
        np.quantile(x, q, weights=wr, method="inverted_cdf"),
    )
    # the interpolating one agrees to within the spacing of neighbouring samples
    gap = np.max(np.diff(np.sort(x))[10:-10])
    assert np.max(np.abs(weighted_quantile(x, q, k) - np.quantile(rep, q, method="hazen"))) < gap


def test_weighted_quantile_scale_invariant_symmetric_and_ignores_zero_weights():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(300)
    w = rng.random(300)
    q = np.array([0.05, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(weighted_quantile(x, q, w), weighted_quantile(x, q, 1e6 * w))
    np.testing.assert_allclose(weighted_quantile(-x, 1 - q, w), -weighted_quantile(x, q, w))
    xz = np.r_[x, 1e9 * np.ones(5)]
    wz = np.r_[w, np.zeros(5)]
    np.testing.assert_allclose(weighted_quantile(xz, q, wz), weighted_quantile(x, q, w))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        weighted_quantile(x, 1.5)


# ----------------------------------------------------------------------------- moment scores
def test_moment_scores_values_and_layout():
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=(800, 3))
    b = rng.standard_normal((900, 3))
    df = moment_scores(a, b, names=NAMES3, n_boot=20, seed=0)
    assert list(df.columns) == [
        "statistic",
        "parameters",
        "value_a",
        "value_b",
        "delta",
        "sigma",
        "score",
    ]
    assert len(df) == 4 * 3 + 3
    assert list(df.statistic[:4]) == ["mean", "mean", "mean", "variance"]
    assert list(df.parameters[-3:]) == ["theta1,theta2", "theta1,theta3", "theta2,theta3"]
    va = df.value_a.to_numpy()
    np.testing.assert_allclose(va[0:3], a.mean(axis=0))
    np.testing.assert_allclose(va[3:6], a.var(axis=0))
    np.testing.assert_allclose(va[6:9], stats.skew(a, axis=0))
    np.testing.assert_allclose(va[9:12], stats.kurtosis(a, axis=0))
    np.testing.assert_allclose(va[12], np.cov(a.T, bias=True)[0, 1])
    # delta against moments of b computed here (not value_b - value_a of the same frame)
    vb = np.r_[b.mean(axis=0), b.var(axis=0), stats.skew(b, axis=0), stats.kurtosis(b, axis=0),
               [np.cov(b.T, bias=True)[i, j] for i, j in ((0, 1), (0, 2), (1, 2))]]
    va_all = np.r_[a.mean(axis=0), a.var(axis=0), stats.skew(a, axis=0),
                   stats.kurtosis(a, axis=0),
                   [np.cov(a.T, bias=True)[i, j] for i, j in ((0, 1), (0, 2), (1, 2))]]
    np.testing.assert_allclose(df.delta, vb - va_all, atol=1e-12)


def test_moment_scores_sigma_matches_the_analytic_standard_error():
    """The bootstrap sigma against the delta-method standard errors of the mean
    (sqrt(m2 / n)) and of the variance (sqrt((m4 - m2^2) / n)), summed in quadrature over
    the two sets. With n_boot = 400 a bootstrap sd has a relative error of about
    1 / sqrt(2 * 399) = 3.5 %, so 4 of those: 14 % (measured: within 5 %)."""
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=(800, 3))
    b = rng.standard_normal((900, 3))
    df = moment_scores(a, b, names=NAMES3, n_boot=400, seed=0)

    def se(x):
        m2 = stats.moment(x, 2, axis=0)
        m4 = stats.moment(x, 4, axis=0)
        return np.sqrt(m2 / len(x)), np.sqrt((m4 - m2**2) / len(x))

    (sa_mean, sa_var), (sb_mean, sb_var) = se(a), se(b)
    expected = np.r_[np.hypot(sa_mean, sb_mean), np.hypot(sa_var, sb_var)]
    got = df.sigma.to_numpy()[:6]
    np.testing.assert_allclose(got, expected, rtol=4 / np.sqrt(2 * 399))
    # the score is |delta| in those units; a 14 % error in sigma is up to 1 / 0.86 - 1 = 16 %
    # in the score
    tol = 4 / np.sqrt(2 * 399)
    np.testing.assert_allclose(df.score.to_numpy()[:6],
                               np.abs(df.delta.to_numpy()[:6]) / expected, rtol=tol / (1 - tol))


def test_moment_scores_integer_weights_equal_repetition_and_seed_is_deterministic():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((400, 3))
    k = rng.integers(1, 4, size=400)
    b = rng.standard_normal((500, 3))
    weighted = moment_scores(a, b, wa=k, names=NAMES3, n_boot=10, seed=1)
    repeated = moment_scores(np.repeat(a, k, axis=0), b, names=NAMES3, n_boot=10, seed=1)
    np.testing.assert_allclose(weighted.value_a, repeated.value_a, atol=1e-12)
    again = moment_scores(a, b, wa=k, names=NAMES3, n_boot=10, seed=1)
    np.testing.assert_array_equal(weighted.score, again.score)


def test_moment_scores_are_calibrated_and_detect_a_wider_parameter():
    rng = np.random.default_rng(6)
    null = moment_scores(
        rng.standard_normal((4000, 3)), rng.standard_normal((4000, 3)), names=NAMES3, seed=0
    )
    # |delta / sigma| of pure noise is |N(0, 1)|: mean 0.80
    assert 0.5 < null.score.mean() < 1.1
    assert null.score.max() < 4.0
    wide = rng.standard_normal((4000, 3)) * np.array([1.0, 1.15, 1.0])
    df = moment_scores(rng.standard_normal((4000, 3)), wide, names=NAMES3, seed=0)
    row = df[(df.statistic == "variance") & (df.parameters == "theta2")]
    assert float(row.score.iloc[0]) > 5.0


def test_moment_scores_use_the_weights():
    """N(0,1) samples weighted to N(0.5,1) score like exact N(0.5,1) samples."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8000, 3))
    w = np.exp(0.5 * x[:, 0])
    exact = rng.standard_normal((4000, 3)) + np.array([0.5, 0.0, 0.0])
    assert moment_scores(x, exact, wa=w, names=NAMES3, n_boot=50).score.max() < 4.0
    assert moment_scores(x, exact, names=NAMES3, n_boot=50).score.max() > 10.0


# ----------------------------------------------------------------------------- sliced W1
def test_sliced_wasserstein_identical_sets_is_zero():
    x = np.random.default_rng(8).standard_normal((2000, 4))
    assert sliced_wasserstein(x, x, seed=0) < 1e-12
    assert sliced_wasserstein(x, x.copy(), wa=np.ones(2000), wb=np.full(2000, 2.0)) < 1e-12


@pytest.mark.parametrize("dim, shift", [(1, 1.0), (3, 1.0), (5, 0.6)])
def test_sliced_wasserstein_known_answer(dim, shift):
    """N(0, I) vs N(m e1, I): SW1 = |m| E|u_1| = |m| Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2))."""
    rng = np.random.default_rng(9 + dim)
    a = rng.standard_normal((6000, dim))
    b = rng.standard_normal((6000, dim))
    b[:, 0] += shift
    expected = shift * math.exp(gammaln(dim / 2) - gammaln((dim + 1) / 2)) / math.sqrt(math.pi)
    got = sliced_wasserstein(a, b, n_projections=200, seed=1)
    # finite-sample bias ~ +0.015 at this N, direction Monte Carlo ~ 0.02 |m|
    assert got == pytest.approx(expected, abs=0.04)


def test_sliced_wasserstein_units_and_weights():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3000, 2))
    w = np.exp(x[:, 0] - 0.5)  # N(0,1) -> N((1, 0), 1)
    target = rng.standard_normal((3000, 2)) + np.array([1.0, 0.0])
    weighted = sliced_wasserstein(x, target, wa=w, n_projections=100, seed=2)
    assert weighted < 0.06
    assert sliced_wasserstein(x, target, n_projections=100, seed=2) > 0.5  # 2/pi expected
    # in units of a's sd: rescaling both sets changes nothing
    scaled = sliced_wasserstein(10 * x, 10 * target, wa=w, n_projections=100, seed=2)
    assert scaled == pytest.approx(weighted, rel=1e-9)


# ----------------------------------------------------------------------------- agreement
def test_interval_overlap_definition():
    assert _interval_overlap(0, 1, 0, 1) == 1.0
    assert _interval_overlap(0, 1, 2, 3) == 0.0
    assert _interval_overlap(0, 2, 1, 3) == pytest.approx(1 / 3)
    assert _interval_overlap(0, 4, 1, 2) == pytest.approx(1 / 4)


def test_agreement_identical_sets():
    x = np.random.default_rng(11).standard_normal((1000, 3))
    out = agreement(x, x, names=NAMES3)
    assert out["max_abs_mean_shift"] == pytest.approx(0, abs=1e-12)
    assert out["max_abs_sd_ratio_deviation"] == pytest.approx(0, abs=1e-12)
    assert out["max_abs_correlation_difference"] == pytest.approx(0, abs=1e-12)
    assert out["min_interval_overlap"] == {0.68: 1.0, 0.95: 1.0}
    assert out["parameters"] == NAMES3


def test_agreement_known_shift_and_width():
    rng = np.random.default_rng(12)
    ref = rng.standard_normal((40000, 2))
    x = rng.standard_normal((40000, 2)) * np.array([1.2, 1.0]) + np.array([0.5, 0.0])
    out = agreement(x, ref, names=["a", "b"], levels=(0.68,))
    assert out["mean_shift_in_ref_sd"]["a"] == pytest.approx(0.5, abs=0.02)
    assert out["mean_shift_in_ref_sd"]["b"] == pytest.approx(0.0, abs=0.02)
    assert out["sd_ratio"]["a"] == pytest.approx(1.2, abs=0.02)
    z = stats.norm.isf(0.16)
    expected = _interval_overlap(0.5 - 1.2 * z, 0.5 + 1.2 * z, -z, z)
    assert out["interval_overlap"][0.68]["a"] == pytest.approx(expected, abs=0.02)
    assert out["interval_overlap"][0.68]["b"] == pytest.approx(1.0, abs=0.03)
    assert out["worst_parameter"] == {"mean_shift": "a", "sd_ratio": "a"}
    assert out["max_abs_mean_shift"] == pytest.approx(0.5, abs=0.02)


def test_agreement_correlation_and_weights():
    rng = np.random.default_rng(13)
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    ref = rng.multivariate_normal([0, 0], cov, size=20000)
    x = rng.standard_normal((20000, 2))
    out = agreement(x, ref, names=["a", "b"])
    assert out["max_abs_correlation_difference"] == pytest.approx(0.6, abs=0.03)
    k = rng.integers(1, 4, size=3000)
    xs = x[:3000]
    weighted = agreement(xs, ref, wx=k, names=["a", "b"])
    repeated = agreement(np.repeat(xs, k, axis=0), ref, names=["a", "b"])
    for key in ("mean_shift_in_ref_sd", "sd_ratio"):
        for n in ("a", "b"):
            assert weighted[key][n] == pytest.approx(repeated[key][n], abs=1e-10)


# ----------------------------------------------------------------------------- tension
def test_evidence_ratio():
    log_r, err = evidence_ratio(-10.0, -4.0, -5.0)
    assert log_r == pytest.approx(-1.0)
    assert err is None
    log_r, err = evidence_ratio(-10.0, -4.0, -5.0, errors=(0.3, 0.4, 0.0))
    assert err == pytest.approx(0.5)
    with pytest.raises(ValueError, match="errors"):
        evidence_ratio(-10.0, -4.0, -5.0, errors=(0.3, -0.4, 0.0))


def _stage_samples(problem, n, seed):
    xa = problem.sample_posterior(["A"], n, seed=seed)
    xb = problem.sample_posterior(["B"], n, seed=seed + 1)
    xab = problem.sample_posterior(["A", "B"], n, seed=seed + 2)
    return xa, xb, xab


def _suspiciousness(problem, xa, xb, xab, *, offset_a=0.0):
    la, lb = problem.loglike("A"), problem.loglike("B")
    return suspiciousness(
        log_z_a=problem.log_evidence(["A"]) + offset_a,
        log_z_b=problem.log_evidence(["B"]),
        log_z_ab=problem.log_evidence(["A", "B"]) + offset_a,
        loglike_a=la(xa) + offset_a,
        loglike_b=lb(xb),
        loglike_ab=la(xab) + lb(xab) + offset_a,
    )


@pytest.mark.parametrize("offset", [0.0, 4.0])
def test_suspiciousness_matches_the_gaussian_closed_form(offset):
    """Wide prior, Gaussian likelihoods: log S = d/2 - chi2/2, d = 6, p = chi2.sf(chi2, d)."""
    problem = get_analysis("tension", offset=offset)
    xa, xb, xab = _stage_samples(problem, 100_000, seed=1)
    out = _suspiciousness(problem, xa, xb, xab)
    ma, ca = problem.posterior_moments(["A"])
    mb, cb = problem.posterior_moments(["B"])
    chi2 = float((ma - mb) @ np.linalg.solve(ca + cb, ma - mb))
    assert out["log_s"] == pytest.approx(3.0 - chi2 / 2, abs=0.05)
    assert out["bmd"] == pytest.approx(6.0, abs=0.25)
    for key in ("bmd_a", "bmd_b", "bmd_ab"):
        assert out[key] == pytest.approx(6.0, abs=0.25)
    assert out["log_r"] == pytest.approx(
        problem.log_evidence(["A", "B"])
        - problem.log_evidence(["A"])
        - problem.log_evidence(["B"])
    )
    assert out["sigma"] == pytest.approx(problem.parameter_shift_sigma(["A"], ["B"]), abs=0.1)
    assert out["sigma"] == pytest.approx(offset, abs=0.1)
    # a constant added to log L_A (and so to log Z_A, log Z_AB) changes nothing but KL_A, KL_AB
    shifted = _suspiciousness(problem, xa, xb, xab, offset_a=40.0)
    for key in ("log_r", "log_i", "log_s", "bmd", "sigma"):
        assert shifted[key] == pytest.approx(out[key], abs=1e-8)


def test_suspiciousness_no_tension_between_consistent_data():
    problem = get_analysis("gaussian_linear")
    out = _suspiciousness(problem, *_stage_samples(problem, 50_000, seed=5))
    expected = problem.parameter_shift_sigma(["A"], ["B"])  # 0.62 sigma
    assert out["sigma"] == pytest.approx(expected, abs=0.15)
    assert out["sigma"] < 1.5


@pytest.mark.parametrize("offset", [0.0, 4.0])
def test_parameter_shift_matches_the_analytic_tension(offset):
    problem = get_analysis("tension", offset=offset)
    xa = problem.sample_posterior(["A"], 50_000, seed=7)
    xb = problem.sample_posterior(["B"], 50_000, seed=8)
    out = parameter_shift(xa, xb)
    assert out["sigma"] == pytest.approx(problem.parameter_shift_sigma(["A"], ["B"]), abs=0.15)
    assert out["dof"] == 6
    ma, mb = problem.posterior_moments(["A"])[0], problem.posterior_moments(["B"])[0]
    np.testing.assert_allclose(out["delta_mean"], ma - mb, atol=0.05)


def test_parameter_shift_identical_distributions_and_weights():
    rng = np.random.default_rng(14)
    a = rng.standard_normal((5000, 3))
    b = rng.standard_normal((5000, 3))
    assert parameter_shift(a, b)["sigma"] < 0.1
    # N(0,1) samples weighted to N(1, 1) in theta1, against exact N(0,1): 1 sd in 1 of 3 dims
    w = np.exp(a[:, 0] - 0.5)
    out = parameter_shift(a, b, wa=w)
    # chi2 = 1 / (1 + 1) = 0.5 for 3 degrees of freedom
    expected = stats.norm.isf(stats.chi2.sf(0.5, 3) / 2)
    assert out["sigma"] == pytest.approx(expected, abs=0.1)


def test_parameter_shift_extreme_tension_is_finite_and_monotone():
    rng = np.random.default_rng(15)
    a = rng.standard_normal((3000, 3))
    b = rng.standard_normal((3000, 3))
    sigmas = [parameter_shift(a, b + np.array([s, 0.0, 0.0]))["sigma"] for s in (20, 60, 200)]
    assert all(math.isfinite(s) for s in sigmas)
    assert sigmas[0] < sigmas[1] < sigmas[2]
    assert sigmas[2] > 100  # chi2 ~ 2e4, far past where chi2.sf underflows


def test_tension_helpers_on_the_log_scale():
    # asymptotic log chi2 tail agrees with SciPy where SciPy still works
    for dof in (3, 6, 20):
        for x in (600.0, 1200.0):
            assert _chi2_logsf_asymptotic(x, dof) == pytest.approx(
                stats.chi2.logsf(x, dof), rel=1e-10
            )
    # sigma from log p: continuous across the switch to the log-scale solver at p = 1e-300
    lo, hi = math.log(1e-300) - 1e-9, math.log(1e-300) + 1e-9
    assert _sigma_from_log_p(lo) == pytest.approx(_sigma_from_log_p(hi), abs=1e-6)
    assert _sigma_from_log_p(math.log(stats.norm.sf(3.0) * 2)) == pytest.approx(3.0)
    assert _sigma_from_log_p(0.0) == 0.0


# ----------------------------------------------------------------------------- modes
def test_count_modes_gaussians_are_unimodal():
    rng = np.random.default_rng(16)
    one = count_modes(rng.standard_normal(3000), seed=0)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    three = count_modes(rng.multivariate_normal(np.zeros(3), cov, size=3000), seed=0)
    assert (one.n_modes, three.n_modes) == (1, 1)
    np.testing.assert_allclose(three.masses, [1.0])


def test_count_modes_two_separated_gaussians():
    rng = np.random.default_rng(17)
    x = _two_gaussians(5000, rng, p_left=0.3)
    res = count_modes(x, seed=0)
    assert isinstance(res, ModeSummary)
    assert res.n_modes == 2
    np.testing.assert_allclose(res.masses, [0.7, 0.3], atol=0.02)
    np.testing.assert_allclose(res.centres[:, 0], [4.0, -4.0], atol=0.1)
    assert res.labels.shape == (5000,)
    assert res.component_modes.shape == (res.n_components,)
    assert res.to_dict()["n_modes"] == 2
    again = count_modes(x, seed=0)
    np.testing.assert_array_equal(again.labels, res.labels)


def test_count_modes_uses_the_weights():
    """Equal numbers in each mode, weighted 0.3 / 0.7."""
    rng = np.random.default_rng(18)
    x = _two_gaussians(6000, rng, p_left=0.5)
    w = np.where(x[:, 0] < 0, 0.3, 0.7)
    res = count_modes(x, w=w, seed=0)
    assert res.n_modes == 2
    np.testing.assert_allclose(res.masses, [0.7, 0.3], atol=0.02)


def test_count_modes_mixture_7d():
    x = get_problem("mixture_7d").sample(5000, seed=19)
    res = count_modes(x, seed=0)
    assert res.n_modes == 2
    np.testing.assert_allclose(res.masses, [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(res.centres, [np.full(7, 2.0), np.full(7, -2.0)], atol=0.1)


def test_count_modes_banana_and_lognormal_are_unimodal():
    """BIC wants several Gaussians for curved or skewed densities; the merge undoes that."""
    banana = count_modes(get_problem("banana").sample(5000, seed=20), seed=1)
    assert banana.n_components > 1
    assert banana.n_modes == 1
    skewed = count_modes(np.random.default_rng(21).lognormal(0.0, 0.6, 5000), seed=2)
    assert skewed.n_components > 1
    assert skewed.n_modes == 1


def test_count_modes_heavy_tails_do_not_bridge_modes():
    """Broad components fitted to Student-t tails sit in the valley; two modes remain."""
    rng = np.random.default_rng(22)
    left = rng.random(6000) < 0.4
    x = rng.standard_t(3, size=(6000, 2))
    x[:, 0] += np.where(left, -5.0, 5.0)
    res = count_modes(x, seed=0)
    assert res.n_modes == 2
    np.testing.assert_allclose(res.masses, [0.6, 0.4], atol=0.03)


def _bimodal_theta1_mass_positive(datasets):
    """Exact mass of theta1 > 0 by quadrature of the theta1 factor of the bimodal problem."""
    t = np.linspace(-10.0, 12.0, 2**18 + 1)
    logf = -((4.0 - t * t) ** 2) / (2 * 0.8**2)  # A
    if "B" in datasets:
        logf = logf - (1.0 - t) ** 2 / (2 * 1.5**2)
    f = np.exp(logf - logf.max())
    return float(f[t > 0].sum() / f.sum())


def test_count_modes_bimodal_problem():
    """Stage A: two mirror modes. A+B: B favours +2, but the exact joint keeps a second mode."""
    problem = get_analysis("bimodal")
    a = count_modes(problem.sample_posterior(["A"], 5000, seed=23), seed=0)
    assert a.n_modes == 2
    np.testing.assert_allclose(a.masses, [0.5, 0.5], atol=0.03)
    np.testing.assert_allclose(np.sort(a.centres[:, 0]), [-2.0, 2.0], atol=0.1)
    major = _bimodal_theta1_mass_positive(("A", "B"))
    assert major == pytest.approx(0.847, abs=0.001)  # 15 % of the exact joint sits at -2
    ab = count_modes(problem.sample_posterior(["A", "B"], 5000, seed=24), seed=0)
    assert ab.n_modes == 2
    np.testing.assert_allclose(ab.masses, [major, 1 - major], atol=0.02)
    assert ab.centres[0, 0] == pytest.approx(2.0, abs=0.1)


def test_mode_masses_compare_samples_to_the_chain_modes():
    rng = np.random.default_rng(25)
    chain = _two_gaussians(4000, rng, p_left=0.3)
    res = count_modes(chain, seed=0)
    same = mode_masses(res, _two_gaussians(4000, rng, p_left=0.3))
    np.testing.assert_allclose(same, res.masses, atol=0.03)
    smeared = mode_masses(res, _two_gaussians(4000, rng, p_left=0.5))
    np.testing.assert_allclose(smeared, [0.5, 0.5], atol=0.03)
    weighted = _two_gaussians(4000, rng, p_left=0.5)
    w = np.where(weighted[:, 0] < 0, 0.3, 0.7)
    np.testing.assert_allclose(mode_masses(res, weighted, w=w), [0.7, 0.3], atol=0.03)
    with pytest.raises(ValueError, match="2 parameter column"):
        mode_masses(res, rng.standard_normal((10, 3)))


# ----------------------------------------------------------------------------- verdict
GOOD = {
    "tension_sigma": 1.0,
    "n_modes": 1,
    "mode_mass_difference": 0.01,
    "c2st": 0.51,
    "mean_shift": {"theta1": 0.05, "theta2": -0.1},
    "sd_ratio": {"theta1": 1.05, "theta2": 0.9},
    "correlation_difference": 0.02,
    "interval_overlap": {0.68: {"theta1": 0.95}, 0.95: {"theta1": 0.9}},
    "moment_score": 1.5,
    "sliced_wasserstein": 0.02,
    "evidence_consistency": {"pocomc vs nautilus at A→B": 1.2},
}


def test_verdict_ok_and_not_measured():
    out = verdict(GOOD, default_thresholds())
    assert (out.status, out.reasons, out.not_measured) == ("ok", [], [])
    partial = verdict({"tension_sigma": 0.5, "c2st": None})
    assert partial.status == "ok"
    assert "c2st" in partial.not_measured and "moment_score" in partial.not_measured
    assert partial.to_dict()["status"] == "ok"


@pytest.mark.parametrize(
    "key, value, status, words",
    [
        ("tension_sigma", 3.0, "fail", ["tension", "3", "inconsistent data"]),
        ("tension_sigma", {"suspiciousness": 2.0, "parameter shift": 4.2}, "fail", ["4.2"]),
        ("n_modes", {"chain A": 2, "joint": 1}, "warn", ["modes", "chain A", "2", "max_modes"]),
        ("mode_mass_difference", -0.15, "fail", ["mass per mode", "0.15", "0.1"]),
        ("c2st", 0.6, "fail", ["C2ST", "0.6", "0.55"]),
        ("mean_shift", {"theta1": 0.05, "theta2": -0.3}, "fail", ["mean shift", "theta2", "0.3"]),
        ("sd_ratio", {"theta1": 0.7}, "fail", ["sd ratio", "theta1", "0.3", "0.2"]),
        ("correlation_difference", 0.25, "warn", ["correlation", "0.25"]),
        ("interval_overlap", {0.95: {"theta2": 0.5}}, "warn", ["overlap", "0.95/theta2", "0.5"]),
        ("moment_score", [1.0, 5.0], "warn", ["moment score", "5", "4"]),
        ("sliced_wasserstein", 0.3, "warn", ["Wasserstein", "0.3"]),
        ("evidence_consistency", {"pocomc vs nautilus at A→B": -3.4}, "warn",
         ["log Z difference", "pocomc vs nautilus at A→B", "3.4", "3"]),
        ("c2st", float("nan"), "warn", ["C2ST", "NaN"]),
    ],
)
def test_verdict_rules(key, value, status, words):
    out = verdict({**GOOD, key: value})
    assert out.status == status
    assert len(out.reasons) == 1
    for word in words:
        assert word in out.reasons[0]


def test_verdict_fail_outranks_warn_and_thresholds_override():
    out = verdict({**GOOD, "n_modes": 3, "c2st": 0.7})
    assert out.status == "fail"
    assert len(out.reasons) == 2 and "C2ST" in out.reasons[0]
    assert verdict({**GOOD, "c2st": 0.7}, {"c2st": 0.75}).status == "ok"
    assert verdict({**GOOD, "c2st": 0.7}, {"c2st": None}).status == "ok"  # rule disabled
    assert verdict({**GOOD, "n_modes": 2}, {"max_modes": 2}).status == "ok"
    with pytest.raises(ValueError, match="unknown key"):
        verdict({"c2s": 0.5})
    with pytest.raises(ValueError, match="unknown key"):
        verdict(GOOD, {"tension": 3.0})
    with pytest.raises(ValueError, match="expected numbers"):
        verdict({"c2st": "high"})
