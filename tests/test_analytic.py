"""Tests for flowprior.problems.analytic: the built-in analyses and their exact references.

The references are checked against independent computations: brute-force grid quadrature,
the data-space (predictive) form of linear-Gaussian evidences, adaptive 1-D quadrature of the
documented bimodal theta1 terms, and exact samples.
"""

from __future__ import annotations

import itertools
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import erfc, logsumexp

from flowprior.problems import analytic
from flowprior.problems.analytic import ANALYSES, AnalysisProblem, get_analysis
from flowprior.errors import InputError
from flowprior.params import load_parameters

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("gaussian_linear", "tension", "bimodal")


def subsets(names):
    return [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]


# ----------------------------------------------------------------- independent references
def theta1_logterm(dataset, t):
    """The documented bimodal theta1 terms: A log N(4; t^2, 0.8^2), B log N(1; t, 1.5^2)."""
    if dataset == "A":
        return stats.norm.logpdf(4.0, loc=t * t, scale=0.8)
    return stats.norm.logpdf(1.0, loc=t, scale=1.5)


def theta1_quad(datasets, fn=lambda t: 1.0, lo=-10.0, hi=12.0):
    """Adaptive quadrature of fn(t) * prod_k exp(theta1 term k) over [lo, hi]."""

    def f(t):
        return fn(t) * math.exp(sum(theta1_logterm(k, t) for k in datasets))

    points = [p for p in (-2.0, 0.0, 1.0, 2.0) if lo < p < hi] or None
    val, err = integrate.quad(f, lo, hi, points=points, epsabs=1e-13, epsrel=1e-11, limit=500)
    return val


def gauss_log_integral(meas):
    """log ∫ prod_k N(y_k; G_k x, Sigma_k) dx, from the stacked system (data-space form)."""
    g = np.vstack([m.G for m in meas])
    y = np.concatenate([m.y for m in meas])
    sig = np.zeros((y.size, y.size))
    i = 0
    for m in meas:
        n = m.y.size
        sig[i : i + n, i : i + n] = m.noise_cov
        i += n
    sinv = np.linalg.inv(sig)
    p = g.T @ sinv @ g
    proj = sinv - sinv @ g @ np.linalg.solve(p, g.T @ sinv)
    k = g.shape[1]
    return (
        0.5 * (k - y.size) * math.log(2 * math.pi)
        - 0.5 * np.linalg.slogdet(sig)[1]
        - 0.5 * np.linalg.slogdet(p)[1]
        - 0.5 * y @ proj @ y
    )


def predictive_logpdf(meas, mean, cov):
    """log ∫ N(y; G x, Sigma) N(x; mean, cov) dx = log N(y; G mean, Sigma + G cov G^T)."""
    return stats.multivariate_normal(
        meas.G @ mean, meas.noise_cov + meas.G @ cov @ meas.G.T
    ).logpdf(meas.y)


def independent_loglike(problem, dataset, theta):
    """log N(y; G theta, Sigma) (+ the documented theta1 term) without the library's algebra."""
    meas = problem.measurement(dataset)
    x = theta[:, list(meas.coords)]
    out = np.array(
        [stats.multivariate_normal(meas.G @ row, meas.noise_cov).logpdf(meas.y) for row in x]
    )
    if problem.name == "bimodal":
        out += theta1_logterm(dataset, theta[:, 0])
    return out


def mass_outside_bound(mean, sd, lo, hi):
    """Union bound on the mass of independent-marginal Gaussians outside [lo, hi]."""
    return float(np.sum(stats.norm.cdf((lo - mean) / sd) + stats.norm.sf((hi - mean) / sd)))


# ----------------------------------------------------------------- parameter tables and boxes
@pytest.mark.parametrize("name", NAMES)
def test_parameter_files_equal_problem_boxes(name):
    params = load_parameters(ROOT / "config" / "parameters" / f"{name}.yaml")
    problem = get_analysis(name)
    assert params == problem.params
    assert params.names == tuple(f"theta{i}" for i in range(1, problem.dim + 1))
    assert params.labels == tuple(rf"\theta_{i}" for i in range(1, problem.dim + 1))
    assert problem.dim == ANALYSES[name]["dim"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [2, None])
def test_every_posterior_lies_inside_the_box(name, dim):
    problem = get_analysis(name) if dim is None else get_analysis(name, dim=dim)
    lo, hi = problem.params.lower, problem.params.upper
    gauss = list(problem.measurement("A").coords)
    for s in subsets(problem.datasets):
        mean, cov = problem.posterior_moments(s)
        sd = np.sqrt(np.diag(cov))
        # Gaussian coordinates: exact Gaussian marginals
        assert mass_outside_bound(mean[gauss], sd[gauss], lo[gauss], hi[gauss]) < 1e-9, s
        if problem.name == "bimodal":
            inside = theta1_quad(s, lo=lo[0], hi=hi[0])
            outside = theta1_quad(s, lo=-80.0, hi=lo[0]) + theta1_quad(s, lo=hi[0], hi=80.0)
            assert outside / inside < 1e-9, s


def test_default_boxes_are_the_documented_ones():
    bim = get_analysis("bimodal")
    assert (bim.params.lower[0], bim.params.upper[0]) == (-10.0, 12.0)
    for name in NAMES:
        p = get_analysis(name)
        assert np.all(p.params.lower == np.floor(p.params.lower))
        assert np.all(p.params.upper == np.ceil(p.params.upper))


# ----------------------------------------------------------------- likelihood plug-ins
@pytest.mark.parametrize("name", NAMES)
def test_plugins_equal_loglike_and_the_data_space_density(name):
    problem = get_analysis(name)
    rng = np.random.default_rng(0)
    theta = problem.sample_posterior(problem.datasets, 5, seed=1) + 0.3 * rng.standard_normal(
        (5, problem.dim)
    )
    plugin = getattr(analytic, name)
    for k in problem.datasets:
        direct = plugin(theta, dataset=k, **problem.kwargs)
        assert direct.shape == (5,) and direct.dtype == np.float64
        np.testing.assert_array_equal(problem.loglike(k)(theta), direct)
        np.testing.assert_allclose(direct, independent_loglike(problem, k, theta), rtol=1e-10)
        # the default kwargs are the problem's defaults
        np.testing.assert_array_equal(plugin(theta, dataset=k), direct)


def test_loglike_is_picklable_and_entry_matches():
    problem = get_analysis("tension", offset=3.0)
    theta = problem.sample_posterior(("A",), 4, seed=0)
    fn = pickle.loads(pickle.dumps(problem.loglike("B")))
    np.testing.assert_array_equal(fn(theta), analytic.tension(theta, dataset="B", offset=3.0))
    entry = problem.likelihood_entry("B")
    assert entry == {
        "likelihood": "flowprior.problems.analytic:tension",
        "kwargs": {"dataset": "B", "dim": 6, "offset": 3.0},
    }


def test_plugin_rejects_bad_input():
    theta = np.zeros((3, 6))
    with pytest.raises(InputError, match="unknown dataset 'D'"):
        analytic.gaussian_linear(theta, dataset="D")
    with pytest.raises(InputError, match="unknown dataset 'C'"):
        analytic.tension(theta, dataset="C")
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        analytic.gaussian_linear(np.zeros((3, 5)), dataset="A")
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        analytic.bimodal(np.zeros(3), dataset="A")
    for bad in (1, 2.5, True, "6"):
        with pytest.raises(InputError, match="dim"):
            analytic.gaussian_linear(theta, dataset="A", dim=bad)
    for bad in (-1.0, float("nan"), float("inf"), "4"):
        with pytest.raises(InputError, match="offset"):
            analytic.tension(theta, dataset="A", offset=bad)


def test_get_analysis_errors_and_caching():
    with pytest.raises(InputError, match="unknown analysis 'nope'"):
        get_analysis("nope")
    with pytest.raises(InputError, match="unknown keyword.*offset"):
        get_analysis("bimodal", offset=2.0)
    assert get_analysis("gaussian_linear") is get_analysis("gaussian_linear", dim=6)
    assert isinstance(get_analysis("bimodal", dim=4), AnalysisProblem)
    p = get_analysis("gaussian_linear")
    with pytest.raises(InputError, match="at least one dataset"):
        p.log_evidence(())
    with pytest.raises(InputError, match="unknown dataset 'Z'"):
        p.posterior_moments(("A", "Z"))
    assert p.log_evidence("A") == p.log_evidence(("A",))
    assert p.log_evidence(("B", "A")) == p.log_evidence(("A", "B"))


def test_problems_are_deterministic_golden_values():
    """The synthetic data come from a fixed seed: pin a few numbers (rounded)."""
    gl = get_analysis("gaussian_linear")
    assert gl.log_evidence(("A",)) == pytest.approx(-21.109013, abs=2e-6)
    assert gl.log_evidence(("A", "B")) == pytest.approx(-33.701743, abs=2e-6)
    assert gl.log_evidence(("A", "B", "C")) == pytest.approx(-44.719457, abs=2e-6)
    ten = get_analysis("tension")
    assert ten.log_evidence(("A", "B")) == pytest.approx(-44.182575, abs=2e-6)
    bim = get_analysis("bimodal")
    assert bim.log_evidence(("A", "B")) == pytest.approx(-17.179064, abs=2e-6)
    # a fresh build gives identical data
    fresh = analytic._gaussian_linear_problem.__wrapped__(6)
    np.testing.assert_array_equal(fresh.measurement("C").y, gl.measurement("C").y)


def test_stage_posteriors_differ_and_the_joint_is_narrower():
    p = get_analysis("gaussian_linear")
    sd = {s: np.sqrt(np.linalg.eigvalsh(p.posterior_moments(s)[1])) for s in subsets("ABC")}
    for s in ("A", "B", "C"):
        assert 0.1 <= sd[(s,)].min() and sd[(s,)].max() <= 1.6
    assert sd[("A", "B")].max() < 0.6 * min(sd[("A",)].max(), sd[("B",)].max())
    ma, mb = p.posterior_moments("A")[0], p.posterior_moments("B")[0]
    assert np.max(np.abs(ma - mb)) > 0.3  # different stage posteriors


# ----------------------------------------------------------------- evidences
def grid_reference(problem, datasets, n=301, width=12.0):
    """Brute-force 2-D trapezoid quadrature of prod L_k / V over the box (near the mass).

    Returns log Z, mean, covariance, the nodes and the log quadrature weights.
    """
    assert problem.dim == 2
    mean, cov = problem.posterior_moments(datasets)
    sd = np.sqrt(np.diag(cov))
    lo = np.maximum(problem.params.lower, mean - width * sd)
    hi = np.minimum(problem.params.upper, mean + width * sd)
    axes = [np.linspace(lo[i], hi[i], n) for i in range(2)]
    xx, yy = np.meshgrid(*axes, indexing="ij")
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    logl = sum(problem.loglike(k)(pts) for k in datasets)
    wts = np.outer(*[np.r_[0.5, np.ones(n - 2), 0.5] * (hi[i] - lo[i]) / (n - 1) for i in range(2)])
    logw = logl + np.log(wts.ravel())
    log_z = logsumexp(logw) - problem.params.log_volume
    w = np.exp(logw - logsumexp(logw))
    m = w @ pts
    c = (pts - m).T @ ((pts - m) * w[:, None])
    return log_z, m, c, pts, logw - logl


@pytest.mark.parametrize("name", NAMES)
def test_closed_form_evidence_matches_brute_force_2d(name):
    problem = get_analysis(name, dim=2)
    for s in subsets(problem.datasets):
        log_z, m, c, pts, logwts = grid_reference(problem, s)
        assert problem.log_evidence(s) == pytest.approx(log_z, abs=1e-6), s
        mean, cov = problem.posterior_moments(s)
        np.testing.assert_allclose(mean, m, atol=1e-6)
        np.testing.assert_allclose(cov, c, atol=1e-6)
        # log_posterior is normalised: ∫ p = 1 with the same quadrature weights
        total = logsumexp(logwts + problem.log_posterior(s, pts))
        assert total == pytest.approx(0.0, abs=1e-6), s


@pytest.mark.parametrize("name", ["gaussian_linear", "tension"])
def test_evidence_equals_the_data_space_formula(name):
    problem = get_analysis(name)
    for s in subsets(problem.datasets):
        meas = [problem.measurement(k) for k in s]
        expected = gauss_log_integral(meas) - problem.params.log_volume
        assert problem.log_evidence(s) == pytest.approx(expected, abs=1e-9), s


def test_sequential_evidence_identity():
    """Z_AB = Z_A Z_{B|A}, with Z_{B|A} = ∫ L_B p(theta | A) from the moments (predictive)."""
    for problem in (get_analysis("gaussian_linear"), get_analysis("tension", dim=3)):
        order = problem.datasets
        for r in range(1, len(order)):
            before, nxt = order[:r], order[r]
            mean, cov = problem.posterior_moments(before)
            log_zcond = predictive_logpdf(problem.measurement(nxt), mean, cov)
            lhs = problem.log_evidence(order[: r + 1])
            assert lhs == pytest.approx(problem.log_evidence(before) + log_zcond, abs=1e-9)
            # and in the other order of the first two
        za, zb, zab = (problem.log_evidence(s) for s in (("A",), ("B",), ("A", "B")))
        mb, cb = problem.posterior_moments("B")
        assert zab == pytest.approx(zb + predictive_logpdf(problem.measurement("A"), mb, cb))


def test_bimodal_evidence_and_moments_are_quadrature_exact():
    problem = get_analysis("bimodal")
    gauss = list(problem.measurement("A").coords)
    for s in subsets(problem.datasets):
        z1 = theta1_quad(s)
        g = gauss_log_integral([problem.measurement(k) for k in s])
        expected = math.log(z1) + g - problem.params.log_volume
        assert problem.log_evidence(s) == pytest.approx(expected, abs=1e-8), s
        mean, cov = problem.posterior_moments(s)
        m1 = theta1_quad(s, lambda t: t) / z1
        v1 = theta1_quad(s, lambda t: (t - m1) ** 2) / z1
        assert mean[0] == pytest.approx(m1, abs=1e-8)
        assert cov[0, 0] == pytest.approx(v1, abs=1e-8)
        np.testing.assert_array_equal(cov[0, gauss], 0.0)  # separable
    # sequential identity in bimodal: the theta1 part by quadrature, the rest by prediction
    mean_a, cov_a = problem.posterior_moments("A")
    gz = predictive_logpdf(problem.measurement("B"), mean_a[gauss], cov_a[np.ix_(gauss, gauss)])
    log_zcond = math.log(theta1_quad(("A", "B")) / theta1_quad(("A",))) + gz
    assert problem.log_evidence(("A", "B")) == pytest.approx(
        problem.log_evidence("A") + log_zcond, abs=1e-8
    )


@pytest.mark.parametrize("name", NAMES)
def test_monte_carlo_conditional_evidence(name):
    """log Z_{B|A} = log E_{p(theta|A)}[L_B] from exact samples, within 4 standard errors."""
    problem = get_analysis(name)
    x = problem.sample_posterior("A", 100_000, seed=11)
    logl = problem.loglike("B")(x)
    est = logsumexp(logl) - math.log(x.shape[0])
    w = np.exp(logl - logl.max())
    se = w.std() / math.sqrt(w.size) / w.mean()  # delta method on log
    expected = problem.log_evidence(("A", "B")) - problem.log_evidence("A")
    assert abs(est - expected) < 4 * se + 1e-3


# ----------------------------------------------------------------- posterior densities, samples
@pytest.mark.parametrize("name", ["gaussian_linear", "tension"])
def test_log_posterior_is_the_gaussian_density(name):
    problem = get_analysis(name)
    for s in subsets(problem.datasets):
        mean, cov = problem.posterior_moments(s)
        x = problem.sample_posterior(s, 50, seed=3)
        np.testing.assert_allclose(
            problem.log_posterior(s, x),
            stats.multivariate_normal(mean, cov).logpdf(x),
            rtol=1e-9,
            atol=1e-9,
        )
    outside = problem.params.upper + 0.1
    assert problem.log_posterior("A", outside[None, :])[0] == -np.inf


def test_bimodal_log_posterior_at_the_modes():
    problem = get_analysis("bimodal")
    gauss = list(problem.measurement("A").coords)
    mean, cov = problem.posterior_moments("A")
    x = np.array([[2.0, *mean[gauss]], [-2.0, *mean[gauss]], [0.0, *mean[gauss]]])
    logp = problem.log_posterior("A", x)
    assert logp[0] == pytest.approx(logp[1], abs=1e-12)  # mirror symmetry
    assert logp[0] - logp[2] == pytest.approx(16.0 / (2 * 0.64), abs=1e-9)  # barrier 12.5
    expected = (
        theta1_logterm("A", 2.0)
        - math.log(theta1_quad(("A",)))
        + stats.multivariate_normal(mean[gauss], cov[np.ix_(gauss, gauss)]).logpdf(mean[gauss])
    )
    assert logp[0] == pytest.approx(expected, abs=1e-8)


def _check_sample_moments(x, mean, cov, label):
    n = x.shape[0]
    sd = np.sqrt(np.diag(cov))
    z = (x.mean(axis=0) - mean) / (sd / math.sqrt(n))
    assert np.all(np.abs(z) < 4), (label, z)
    centred = x - mean
    prods = centred[:, :, None] * centred[:, None, :]
    se = prods.std(axis=0) / math.sqrt(n)
    zc = (prods.mean(axis=0) - cov) / se
    assert np.all(np.abs(zc) < 4), (label, zc)


@pytest.mark.parametrize("name", NAMES)
def test_exact_samples_match_posterior_moments(name):
    problem = get_analysis(name)
    for s in [("A",), ("B",), problem.datasets]:
        x = problem.sample_posterior(s, 40_000, seed=5)
        assert x.shape == (40_000, problem.dim) and x.dtype == np.float64
        assert x.flags.c_contiguous and problem.params.contains(x).all()
        mean, cov = problem.posterior_moments(s)
        _check_sample_moments(x, mean, cov, (name, s))


def test_sampling_is_reproducible_and_seeded():
    problem = get_analysis("bimodal")
    a = problem.sample_posterior("A", 100, seed=1)
    np.testing.assert_array_equal(a, problem.sample_posterior("A", 100, seed=1))
    assert not np.array_equal(a, problem.sample_posterior("A", 100, seed=2))
    assert problem.sample_posterior("A", 0, seed=1).shape == (0, 3)
    state = np.random.get_state()[1].copy()
    problem.sample_posterior("B", 10, seed=None)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched


def test_moments_are_copies():
    problem = get_analysis("gaussian_linear")
    mean, cov = problem.posterior_moments("A")
    mean[:] = 99.0
    assert problem.posterior_moments("A")[0][0] != 99.0


# ----------------------------------------------------------------- tension
@pytest.mark.parametrize("dim", [2, 6])
@pytest.mark.parametrize("offset", [0.0, 1.0, 4.0, 6.0])
def test_tension_parameter_shift_equals_offset(dim, offset):
    problem = get_analysis("tension", dim=dim, offset=offset)
    assert problem.parameter_shift_sigma(("A",), ("B",)) == pytest.approx(offset, abs=1e-6)
    ma, ca = problem.posterior_moments("A")
    mb, cb = problem.posterior_moments("B")
    delta = mb - ma
    np.testing.assert_allclose(delta[1:], 0.0, atol=1e-9)  # shifted along theta1 only
    assert delta[0] >= -1e-9
    chi2 = delta @ np.linalg.solve(ca + cb, delta)
    assert chi2 == pytest.approx(stats.chi2.isf(erfc(offset / math.sqrt(2)), dim), rel=1e-9)
    # same shapes as gaussian_linear's A and B
    gl = get_analysis("gaussian_linear", dim=dim)
    np.testing.assert_allclose(ca, gl.posterior_moments("A")[1], atol=1e-12)
    np.testing.assert_allclose(cb, gl.posterior_moments("B")[1], atol=1e-12)


def test_gaussian_linear_is_not_in_tension():
    problem = get_analysis("gaussian_linear")
    assert problem.parameter_shift_sigma("A", "B") < 2.0


# ----------------------------------------------------------------- bimodal
def test_bimodal_a_has_two_equal_modes():
    problem = get_analysis("bimodal")
    # quadrature: exactly symmetric
    assert theta1_quad(("A",), lo=0.0) / theta1_quad(("A",)) == pytest.approx(0.5, abs=1e-12)
    x = problem.sample_posterior("A", 100_000, seed=2)
    frac = np.mean(x[:, 0] > 0)
    assert abs(frac - 0.5) < 0.01
    # all mass near ±2, none in between (exact masses by quadrature, then the samples)
    total = theta1_quad(("A",))
    near = (theta1_quad(("A",), lo=1.0, hi=3.0) + theta1_quad(("A",), lo=-3.0, hi=-1.0)) / total
    between = theta1_quad(("A",), lo=-0.5, hi=0.5) / total
    assert near > 0.999 and between < 1e-4
    near_x = np.mean(np.abs(np.abs(x[:, 0]) - 2.0) < 1.0)
    assert abs(near_x - near) < 4 * math.sqrt(near * (1 - near) / x.shape[0]) + 1e-5
    assert np.mean(np.abs(x[:, 0]) < 0.5) < between + 1e-4
    assert problem.posterior_moments("A")[0][0] == pytest.approx(0.0, abs=1e-10)


def test_bimodal_b_breaks_the_symmetry():
    problem = get_analysis("bimodal")
    exact = theta1_quad(("A", "B"), lo=0.0) / theta1_quad(("A", "B"))
    assert 0.75 < exact < 0.95  # unequal masses, +2 favoured, both modes present
    x = problem.sample_posterior(("A", "B"), 100_000, seed=4)
    frac = np.mean(x[:, 0] > 0)
    assert abs(frac - exact) < 4 * math.sqrt(exact * (1 - exact) / x.shape[0])
    assert np.mean(x[:, 0] < -1.0) > 0.05  # the -2 mode survives


def test_grid_inverse_cdf_is_exact_for_piecewise_linear_densities(monkeypatch):
    """The theta1 sampler inverts the CDF of the linear interpolant exactly (coarse grid)."""
    monkeypatch.setattr(analytic, "_N_GRID", 5)
    grid = analytic._Grid1D.build(lambda t: np.log1p(t), 0.0, 1.0)  # density ∝ 1 + t
    assert grid.log_norm == pytest.approx(math.log(1.5), abs=1e-14)
    u = np.linspace(0.0, 1.0, 1001)[:-1]
    np.testing.assert_allclose(grid.sample(u), np.sqrt(1.0 + 3.0 * u) - 1.0, atol=1e-12)
    # decreasing density ∝ 2 - t
    grid = analytic._Grid1D.build(lambda t: np.log(2.0 - t), 0.0, 1.0)
    np.testing.assert_allclose(grid.sample(u), 2.0 - np.sqrt(4.0 - 3.0 * u), atol=1e-12)


# ----------------------------------------------------- 12-D and 20-D (config/paper.yaml)
@pytest.mark.parametrize("dim", [12, 20])
def test_high_dim_parameter_files_equal_problem_boxes(dim):
    params = load_parameters(ROOT / "config" / "parameters" / f"gaussian_linear_{dim}d.yaml")
    problem = get_analysis("gaussian_linear", dim=dim)
    assert params == problem.params and problem.dim == dim


@pytest.mark.parametrize("dim", [12, 20])
def test_high_dim_references_equal_independent_linear_algebra(dim):
    """Grid quadrature is out of reach in 12-D and 20-D: the evidences are checked against the
    data-space (stacked-system) Gaussian integral, the moments against the precision-sum
    identity P = sum_k G_k^T Sigma_k^-1 G_k, b = sum_k G_k^T Sigma_k^-1 y_k, mean = P^-1 b,
    both computed here with plain numpy, and the sequential identity against the predictive
    density of the next dataset."""
    problem = get_analysis("gaussian_linear", dim=dim)
    lo, hi = problem.params.lower, problem.params.upper
    for s in subsets(problem.datasets):
        meas = [problem.measurement(k) for k in s]
        expected = gauss_log_integral(meas) - problem.params.log_volume
        assert problem.log_evidence(s) == pytest.approx(expected, abs=1e-8), s
        prec = sum(m.G.T @ np.linalg.solve(m.noise_cov, m.G) for m in meas)
        b = sum(m.G.T @ np.linalg.solve(m.noise_cov, m.y) for m in meas)
        mean, cov = problem.posterior_moments(s)
        np.testing.assert_allclose(mean, np.linalg.solve(prec, b), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(cov, np.linalg.inv(prec), rtol=1e-9, atol=1e-12)
        sd = np.sqrt(np.diag(cov))
        assert mass_outside_bound(mean, sd, lo, hi) < 1e-9, s
    for first, second in (("A", "B"), ("B", "A")):
        mean, cov = problem.posterior_moments(first)
        log_zcond = predictive_logpdf(problem.measurement(second), mean, cov)
        assert problem.log_evidence((first, second)) == pytest.approx(
            problem.log_evidence(first) + log_zcond, abs=1e-8
        )
    # the plug-in is the normalised density of the data (a few random points)
    theta = problem.sample_posterior(("A", "B"), 5, seed=2)
    for k in ("A", "B"):
        np.testing.assert_allclose(
            analytic.gaussian_linear(theta, dataset=k, dim=dim),
            independent_loglike(problem, k, theta),
            rtol=1e-10,
        )
