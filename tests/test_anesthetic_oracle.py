"""anesthetic as an independent oracle for log R and the suspiciousness (issue #14).

anesthetic's perfect nested sampling (``anesthetic.examples.perfect_ns.correlated_gaussian``)
produces exact nested sampling runs of a Gaussian likelihood in a uniform prior box, for data
set A, data set B and their product AB. ``anesthetic.tension.tension_stats`` turns their
``stats(nsamples)`` into a distribution of ``logR``, ``I``, ``logS``, ``d_G``, ``p`` and
``sigma`` over simulated nested-sampling weightings (the nested sampling error). The same runs
go through :func:`flowprior.diagnostics.tension.suspiciousness` (log evidences, log-likelihoods
and posterior weights) and :func:`flowprior.diagnostics.shift.suspiciousness_from_chains`
(:class:`flowprior.chains.Chain` objects with ``log_likelihood`` and ``weights``):

1. fed anesthetic's weights of each simulated weighting, flowprior must reproduce anesthetic's
   statistics of that weighting to rounding (same inputs, same formulas);
2. with the point-estimate weights, flowprior must agree with the mean of anesthetic's
   distribution within its standard deviation;
3. both must agree with the Gaussian closed forms within the nested sampling error.

Names: flowprior ``log_r, log_i, log_s, bmd, p_value, sigma`` are anesthetic ``logR, I, logS,
d_G, p, sigma``; anesthetic's ``sigma = sqrt(2) erfcinv(p)`` equals flowprior's
``norm.isf(p / 2)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from anesthetic.examples.perfect_ns import correlated_gaussian
from anesthetic.tension import tension_stats
from scipy import stats

from flowprior.chains import Chain
from flowprior.diagnostics.shift import suspiciousness_from_chains
from flowprior.diagnostics.tension import suspiciousness
from flowprior.params import ParameterSpace

#: Half-width of the uniform prior box in each of the two parameters.
BOX = 10.0
#: Live points of each perfect run and simulated weightings drawn by ``stats(nsamples)``.
NLIVE = 400
NSAMPLES = 500
#: Point estimate vs the mean of anesthetic's distribution, in its standard deviations ``sd``:
#: the mean of NSAMPLES draws scatters by sd / sqrt(NSAMPLES) = 0.045 sd (5 of those: 0.22 sd),
#: and the point estimate (mean log X) differs from it by a bias of order D_KL / (2 NLIVE) in
#: log X, far below that; 0.25 sd covers both.
MEAN_TOL = 0.25
#: Closed-form checks: the estimate must lie within this many of anesthetic's standard
#: deviations (the nested sampling error of that statistic) of the exact value; the runs are
#: seeded, so this is a fixed margin, not a flaky test.
N_SIGMA = 4.0

MEAN_A = np.array([0.0, 0.0])
MEAN_B = np.array([4.0, -2.0])
COV_A = np.array([[1.0, 0.3], [0.3, 0.5]])
COV_B = np.array([[0.6, -0.2], [-0.2, 1.2]])
LOGLMAX_A, LOGLMAX_B = -1.0, -2.0  # arbitrary normalisations; they must cancel in log S


def _gaussian_loglike(x, mean, cov, loglmax):
    """``loglmax - (x - mean)^T cov^-1 (x - mean) / 2``: perfect_ns's likelihood."""
    r = x - mean
    return loglmax - 0.5 * np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r)


def _joint_gaussian():
    """Mean, covariance and peak of ``log L_A + log L_B``, itself a Gaussian in theta.

    Precision ``P_AB = P_A + P_B``, mean ``C_AB (P_A mu_A + P_B mu_B)`` and peak
    ``logLmax_A + logLmax_B - chi2 / 2`` with ``chi2 = dmu^T (C_A + C_B)^-1 dmu``.
    """
    pa, pb = np.linalg.inv(COV_A), np.linalg.inv(COV_B)
    cov = np.linalg.inv(pa + pb)
    mean = cov @ (pa @ MEAN_A + pb @ MEAN_B)
    return mean, cov, LOGLMAX_A + LOGLMAX_B - 0.5 * _chi2()


def _chi2():
    dmu = MEAN_A - MEAN_B
    return float(dmu @ np.linalg.solve(COV_A + COV_B, dmu))


def _log_z(cov, loglmax):
    """Evidence of a Gaussian likelihood well inside the box, unit-normalised uniform prior."""
    return loglmax + 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1] - 2 * math.log(2 * BOX)


@pytest.fixture(scope="module")
def runs():
    """The three perfect runs and the simulated log-weights of each (seeded; the global NumPy
    RNG, which anesthetic draws from, is restored afterwards)."""
    state = np.random.get_state()
    np.random.seed(20190314)
    try:
        bounds = [[-BOX, BOX]] * 2
        mean_ab, cov_ab, loglmax_ab = _joint_gaussian()
        out = {
            "A": correlated_gaussian(NLIVE, MEAN_A, COV_A, bounds, logLmax=LOGLMAX_A),
            "B": correlated_gaussian(NLIVE, MEAN_B, COV_B, bounds, logLmax=LOGLMAX_B),
            "AB": correlated_gaussian(NLIVE, mean_ab, cov_ab, bounds, logLmax=loglmax_ab),
        }
        logw = {k: s.logw(nsamples=NSAMPLES) for k, s in out.items()}
    finally:
        np.random.set_state(state)
    # One set of weightings per run, shared by anesthetic's stats and flowprior's inputs.
    st = {k: out[k].stats(nsamples=logw[k]) for k in out}
    oracle = tension_stats(st["AB"], st["A"], st["B"]).drop_labels()
    return out, logw, st, oracle


def _logl(s):
    return s.logL.to_numpy()


def _weights(logw, log_z):
    return np.exp(np.asarray(logw, dtype=float) - log_z)


def test_joint_run_is_the_product_likelihood(runs):
    samples, _, _, _ = runs
    mean_ab, cov_ab, loglmax_ab = _joint_gaussian()
    x = samples["AB"][[0, 1]].to_numpy()
    sum_ab = _gaussian_loglike(x, MEAN_A, COV_A, LOGLMAX_A) + _gaussian_loglike(
        x, MEAN_B, COV_B, LOGLMAX_B
    )
    # the AB run's log L is log L_A + log L_B at every sample (normalisation included) ...
    np.testing.assert_allclose(_logl(samples["AB"]), sum_ab, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        _gaussian_loglike(x, mean_ab, cov_ab, loglmax_ab), sum_ab, rtol=0, atol=1e-9
    )
    # ... and perfect_ns's A run uses the likelihood we think it does
    xa = samples["A"][[0, 1]].to_numpy()
    np.testing.assert_allclose(
        _logl(samples["A"]), _gaussian_loglike(xa, MEAN_A, COV_A, LOGLMAX_A), atol=1e-9
    )


def test_flowprior_reproduces_each_simulated_weighting(runs):
    """Same log Z, log L and weights in: flowprior's numbers equal anesthetic's to rounding."""
    samples, logw, st, oracle = runs
    ll = {k: _logl(s) for k, s in samples.items()}
    lw = {k: v.to_numpy() for k, v in logw.items()}
    lz = {k: st[k]["logZ"].to_numpy() for k in samples}
    names = {"log_r": "logR", "log_i": "I", "log_s": "logS", "bmd": "d_G", "p_value": "p",
             "sigma": "sigma"}
    ours = {n: np.empty(NSAMPLES) for n in names}
    for j in range(NSAMPLES):
        r = suspiciousness(
            log_z_a=lz["A"][j], log_z_b=lz["B"][j], log_z_ab=lz["AB"][j],
            loglike_a=ll["A"], w_a=_weights(lw["A"][:, j], lz["A"][j]),
            loglike_b=ll["B"], w_b=_weights(lw["B"][:, j], lz["B"][j]),
            loglike_ab=ll["AB"], w_ab=_weights(lw["AB"][:, j], lz["AB"][j]),
        )
        for n in names:
            ours[n][j] = r[n]
    for n, theirs in names.items():
        np.testing.assert_allclose(ours[n], oracle[theirs].to_numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=n)
    # the weightings span a range of tensions, so the p -> sigma conversion is tested across it
    assert np.ptp(ours["sigma"]) > 0.1


def _chain(samples, weights, *, source):
    space = ParameterSpace(("x0", "x1"), [-BOX, -BOX], [BOX, BOX])
    return Chain(space, samples[[0, 1]].to_numpy(), weights=weights,
                 log_likelihood=_logl(samples), source=source)


def test_chains_reproduce_simulated_weightings(runs):
    """suspiciousness_from_chains (evidences cancel in log S) on a few weightings."""
    samples, logw, st, oracle = runs
    for j in range(0, NSAMPLES, NSAMPLES // 10):
        chains = [
            _chain(samples[k], _weights(logw[k].iloc[:, j], float(st[k]["logZ"].iloc[j])),
                   source=k)
            for k in ("A", "B", "AB")
        ]
        r = suspiciousness_from_chains(*chains)
        ref = oracle.iloc[j]
        assert r["log_S"] == pytest.approx(ref["logS"], rel=1e-9, abs=1e-9)
        assert r["bayesian_dimensionality"] == pytest.approx(ref["d_G"], rel=1e-9)
        assert r["suspiciousness_sigma"] == pytest.approx(ref["sigma"], rel=1e-9)
        assert r["suspiciousness_p_value"] == pytest.approx(ref["p"], rel=1e-8)


def test_point_estimates_and_closed_forms(runs):
    """flowprior with the runs' own posterior weights (mean log X) against anesthetic's
    distribution and the Gaussian closed forms.

    Tolerances: ``sd`` is the standard deviation of anesthetic's distribution of the statistic
    over its NSAMPLES simulated weightings, i.e. the nested sampling error of the estimate (a
    perfect run has no other error: log L is a function of X). The point estimate and the mean
    of that distribution are two estimators of one quantity from one run; they differ by the
    spread of log t (a small bias) and by the Monte Carlo error of the mean (MEAN_TOL). The
    closed forms are exact, so the run's estimate must lie within N_SIGMA ``sd`` of them.
    """
    samples, _, st, oracle = runs
    z = {k: float(s.logZ()) for k, s in samples.items()}
    w = {k: _weights(samples[k].logw(), z[k]) for k in samples}
    r = suspiciousness(
        log_z_a=z["A"], log_z_b=z["B"], log_z_ab=z["AB"],
        loglike_a=_logl(samples["A"]), w_a=w["A"],
        loglike_b=_logl(samples["B"]), w_b=w["B"],
        loglike_ab=_logl(samples["AB"]), w_ab=w["AB"],
    )
    chains = suspiciousness_from_chains(
        *(_chain(samples[k], w[k], source=k) for k in ("A", "B", "AB"))
    )
    mean, sd = oracle.mean(), oracle.std()

    # Gaussian closed forms (2 parameters, every direction constrained by A, B and AB):
    # log R = log V - chi2/2 - log det(2 pi (C_A + C_B))/2; D_X = log V - log det(2 pi C_X)/2 - 1;
    # d_X = D = 2, so d = 2 and log S = d/2 - chi2/2; p = chi2.sf(chi2, 2).
    chi2 = _chi2()
    _, cov_ab, loglmax_ab = _joint_gaussian()
    log_v = 2 * math.log(2 * BOX)

    def kl(cov):
        return log_v - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1] - 1.0

    p = float(stats.chi2.sf(chi2, 2))
    exact = {
        "logR": log_v - 0.5 * chi2 - 0.5 * np.linalg.slogdet(2 * np.pi * (COV_A + COV_B))[1],
        "I": kl(COV_A) + kl(COV_B) - kl(cov_ab),
        "logS": 1.0 - 0.5 * chi2,
        "d_G": 2.0,
        "p": p,
        "sigma": float(stats.norm.isf(p / 2)),
    }
    assert exact["logR"] - exact["I"] == pytest.approx(exact["logS"], abs=1e-12)
    assert exact["sigma"] > 2.5  # the case is a real tension, not p ~ 1

    ours = {"logR": r["log_r"], "I": r["log_i"], "logS": r["log_s"], "d_G": r["bmd"],
            "p": r["p_value"], "sigma": r["sigma"]}
    for name, value in ours.items():
        assert value == pytest.approx(mean[name], abs=MEAN_TOL * sd[name]), name
        assert value == pytest.approx(exact[name], abs=N_SIGMA * sd[name]), name
        assert mean[name] == pytest.approx(exact[name], abs=N_SIGMA * sd[name]), name
    # the chain route gives the same numbers as the direct call
    assert chains["log_S"] == pytest.approx(r["log_s"], rel=1e-12)
    assert chains["bayesian_dimensionality"] == pytest.approx(r["bmd"], rel=1e-12)
    assert chains["suspiciousness_sigma"] == pytest.approx(r["sigma"], rel=1e-12)
    # the evidences themselves against the closed form (checks the oracle's runs)
    for k, (cov, loglmax) in {"A": (COV_A, LOGLMAX_A), "B": (COV_B, LOGLMAX_B),
                              "AB": (cov_ab, loglmax_ab)}.items():
        sd_z = float(st[k]["logZ"].std())
        assert z[k] == pytest.approx(_log_z(cov, loglmax), abs=N_SIGMA * sd_z), k
