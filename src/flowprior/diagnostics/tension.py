"""Tension between two posteriors A and B before they are combined.

:func:`evidence_ratio` (Bayes ratio ``log R``), :func:`suspiciousness` (Handley & Lemos 2019)
and :func:`parameter_shift` (Gaussian approximation). Probabilities are computed on the log
scale, so extreme tensions still give a finite equivalent Gaussian sigma.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from .._checks import check_samples, check_weights, finite_float
from ..errors import _input_error
from ..stats import weighted_mean_cov

__all__ = ["evidence_ratio", "parameter_shift", "suspiciousness"]

logger = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics"


def _sigma_from_log_p(log_p: float) -> float:
    """Two-sided Gaussian equivalent of a p-value given as ``log p``: ``norm.isf(p / 2)``.

    Solved on the log scale below ``p = 1e-300``, so a 50-sigma tension is still finite.
    """
    if math.isnan(log_p):
        return float("nan")
    if log_p >= 0.0:
        return 0.0
    if log_p > math.log(1e-300):
        return float(stats.norm.isf(0.5 * math.exp(log_p)))
    target = log_p - math.log(2.0)
    hi = math.sqrt(-2.0 * target) + 1.0  # logsf(s) < -s^2/2 for s > 1
    return float(optimize.brentq(lambda s: stats.norm.logsf(s) - target, 1.0, hi, xtol=1e-12))


def _chi2_logsf(x: float, dof: float) -> float:
    """``log chi2.sf(x, dof)``, with an asymptotic series where SciPy underflows to ``-inf``."""
    val = float(stats.chi2.logsf(x, dof))
    if math.isfinite(val) or x <= 0:
        return val
    return _chi2_logsf_asymptotic(x, dof)


def _chi2_logsf_asymptotic(x: float, dof: float) -> float:
    """Large-``x`` expansion of ``log chi2.sf(x, dof) = log Gamma(a, y) - log Gamma(a)``.

    ``Gamma(a, y) = y^(a-1) e^-y [1 + (a-1)/y + (a-1)(a-2)/y^2 + ...]`` with ``a = dof/2``,
    ``y = x/2`` (SciPy's ``logsf`` underflows near ``x ~ 1500``, where ``a / y`` is tiny for
    any sensible number of parameters).
    """
    a, y = 0.5 * dof, 0.5 * x
    term, total = 1.0, 1.0
    for k in range(1, 40):
        term *= (a - k) / y
        total += term
        if abs(term) < 1e-16 * abs(total):
            break
    return (a - 1.0) * math.log(y) - y + math.log(total) - float(special.gammaln(a))


def evidence_ratio(
    log_z_ab: float,
    log_z_a: float,
    log_z_b: float,
    *,
    errors: Sequence[float] | None = None,
) -> tuple[float, float | None]:
    """Bayes ratio ``log R = log Z_AB - log Z_A - log Z_B`` and its error.

    ``R > 1`` (``log R > 0``): the data sets are more probable under a common ``theta`` than
    under independent ones; ``log R`` depends on the prior volume (see :func:`suspiciousness`
    for the prior-independent part). In a sequential analysis
    ``log Z_AB = log Z_A + log Z_{B|A}``, so ``log R = log Z_{B|A} - log Z_B``.

    Parameters
    ----------
    log_z_ab, log_z_a, log_z_b : float
        Log evidences of the joint and of each data set alone (same prior).
    errors : (err_ab, err_a, err_b), optional
        Standard errors of the three log evidences, taken as independent.

    Returns
    -------
    (float, float or None)
        ``log R`` and ``sqrt(err_ab^2 + err_a^2 + err_b^2)`` (None without ``errors``).
    """
    vals = [
        finite_float(f"{_SRC}.evidence_ratio", n, v)
        for n, v in (("log_z_ab", log_z_ab), ("log_z_a", log_z_a), ("log_z_b", log_z_b))
    ]
    log_r = vals[0] - vals[1] - vals[2]
    if errors is None:
        return log_r, None
    errs = np.asarray(errors, dtype=np.float64)
    if errs.shape != (3,) or not np.all(np.isfinite(errs)) or np.any(errs < 0):
        raise _input_error(
            f"{_SRC}.evidence_ratio",
            "errors",
            f"expected three finite non-negative errors (err_ab, err_a, err_b), got {errors!r}",
        )
    return log_r, float(np.sqrt(np.sum(errs**2)))


def _post_stats(name: str, loglike: Any, w: Any) -> tuple[float, float]:
    """Posterior mean and variance of ``log L`` from weighted posterior samples."""
    src = f"{_SRC}.suspiciousness"
    ll = np.asarray(loglike, dtype=np.float64)
    if ll.ndim != 1 or ll.size < 2:
        raise _input_error(
            src, f"loglike_{name}", f"expected a 1-D array of >= 2 values, got shape {ll.shape}"
        )
    wn = (
        np.full(ll.size, 1.0 / ll.size)
        if w is None
        else check_weights(src, w, ll.size, wname=f"w_{name}")
    )
    if not np.all(np.isfinite(ll[wn > 0])):
        raise _input_error(
            src, f"loglike_{name}", "log-likelihoods of posterior samples must be finite"
        )
    ll, wn = ll[wn > 0], wn[wn > 0]
    mean = float(wn @ ll)
    return mean, float(wn @ (ll - mean) ** 2)


def suspiciousness(
    *,
    log_z_a: float,
    log_z_b: float,
    log_z_ab: float,
    loglike_a: np.ndarray,
    w_a: np.ndarray | None = None,
    loglike_b: np.ndarray,
    w_b: np.ndarray | None = None,
    loglike_ab: np.ndarray,
    w_ab: np.ndarray | None = None,
) -> dict[str, float]:
    """Suspiciousness tension statistic of Handley & Lemos (2019, Phys. Rev. D 100, 023512).

    From each posterior (A alone, B alone, A and B jointly; same prior):

    - KL divergence from the prior ``D = <log L>_P - log Z``;
    - Bayesian model dimensionality ``d = 2 Var_P(log L)``;

    and then ``log R = log Z_AB - log Z_A - log Z_B`` (:func:`evidence_ratio`), the information
    ratio ``log I = D_A + D_B - D_AB``, the suspiciousness ``log S = log R - log I``, the
    dimensionality of the shared constraint ``d = d_A + d_B - d_AB``, the tension probability
    ``p = chi2.sf(d - 2 log S, d)`` and its two-sided Gaussian equivalent
    ``sigma = norm.isf(p / 2)``. ``log S`` does not depend on the prior volume (as long as
    the prior is wide). For Gaussian likelihoods with a wide prior
    ``log S = d / 2 - chi2 / 2`` with ``chi2 = dmu^T (C_A + C_B)^{-1} dmu``, so ``p`` reduces
    to the parameter-shift probability (:func:`parameter_shift`).

    ``log L`` must be the (normalised or not, but the same one used for the evidence)
    log-likelihood of each data set, not the log-posterior: ``loglike_ab`` is
    ``log L_A + log L_B`` at the joint posterior samples.

    Parameters
    ----------
    log_z_a, log_z_b, log_z_ab : float
        Log evidences.
    loglike_a, loglike_b, loglike_ab : ndarray (N_a,), (N_b,), (N_ab,)
        Log-likelihood at samples of the corresponding posterior.
    w_a, w_b, w_ab : ndarray, optional
        Importance weights of those samples; equal by default.

    Returns
    -------
    dict of float
        ``log_r``, ``log_i``, ``log_s``, ``kl_a``, ``kl_b``, ``kl_ab``, ``bmd_a``, ``bmd_b``,
        ``bmd_ab``, ``bmd`` (``d``), ``chi2`` (``d - 2 log S``), ``p_value``, ``log_p_value``,
        ``sigma``. ``p_value`` is 1 (``sigma`` 0) when ``d - 2 log S <= 0``; NaN when
        ``d <= 0`` (the data sets share no constrained direction, or the estimate is noisy).
    """
    za = finite_float(f"{_SRC}.suspiciousness", "log_z_a", log_z_a)
    zb = finite_float(f"{_SRC}.suspiciousness", "log_z_b", log_z_b)
    zab = finite_float(f"{_SRC}.suspiciousness", "log_z_ab", log_z_ab)
    mean_a, var_a = _post_stats("a", loglike_a, w_a)
    mean_b, var_b = _post_stats("b", loglike_b, w_b)
    mean_ab, var_ab = _post_stats("ab", loglike_ab, w_ab)
    kl_a, kl_b, kl_ab = mean_a - za, mean_b - zb, mean_ab - zab
    log_r = zab - za - zb
    log_i = kl_a + kl_b - kl_ab
    log_s = log_r - log_i
    bmd_a, bmd_b, bmd_ab = 2.0 * var_a, 2.0 * var_b, 2.0 * var_ab
    bmd = bmd_a + bmd_b - bmd_ab
    chi2 = bmd - 2.0 * log_s
    if bmd <= 0:
        logger.warning(
            "suspiciousness: model dimensionality d = d_A + d_B - d_AB = %.3g <= 0; "
            "no tension probability",
            bmd,
        )
        log_p = float("nan")
    else:
        log_p = 0.0 if chi2 <= 0 else _chi2_logsf(chi2, bmd)
    return {
        "log_r": log_r,
        "log_i": log_i,
        "log_s": log_s,
        "kl_a": kl_a,
        "kl_b": kl_b,
        "kl_ab": kl_ab,
        "bmd_a": bmd_a,
        "bmd_b": bmd_b,
        "bmd_ab": bmd_ab,
        "bmd": bmd,
        "chi2": chi2,
        "p_value": math.exp(log_p),
        "log_p_value": log_p,
        "sigma": _sigma_from_log_p(log_p),
    }


def parameter_shift(
    a: np.ndarray,
    b: np.ndarray,
    *,
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
) -> dict[str, Any]:
    """Parameter-shift tension between two posteriors, Gaussian approximation.

    The parameter difference ``theta_a - theta_b`` of independent draws of the two posteriors
    is approximated by a Gaussian with mean ``dmu = mu_a - mu_b`` and covariance
    ``C = C_a + C_b`` (weighted means and unbiased weighted covariances,
    ``sum w (x - mu)(x - mu)^T / (1 - sum w^2)`` with ``sum w = 1``); the probability that it
    is further from its mean than zero is ``p = chi2.sf(chi2, D)`` with
    ``chi2 = dmu^T C^{-1} dmu``, and ``sigma = norm.isf(p / 2)``. Exact for Gaussian
    posteriors; for non-Gaussian ones it is the Gaussian approximation of the full
    parameter-shift distribution (Raveri & Doux 2021 estimate that one with flows or KDE).
    ``p`` is computed on the log scale, so extreme tensions give a finite ``sigma``.

    Parameters
    ----------
    a : ndarray (N, D)
    b : ndarray (M, D)
    wa, wb : ndarray (N,), (M,), optional
        Importance weights; equal by default.

    Returns
    -------
    dict
        ``chi2`` (float), ``dof`` (``D``), ``p_value``, ``log_p_value``, ``sigma`` (floats),
        ``delta_mean`` (list, ``mu_a - mu_b``).
    """
    xa, na = check_samples(f"{_SRC}.parameter_shift", a, wa, xname="a", wname="wa")
    d = xa.shape[1]
    xb, nb = check_samples(f"{_SRC}.parameter_shift", b, wb, xname="b", wname="wb", dim=d)
    ma, ca = weighted_mean_cov(xa, na)
    mb, cb = weighted_mean_cov(xb, nb)
    for name, wn, c in (("a", na, ca), ("b", nb, cb)):
        s2 = float(wn @ wn)
        if s2 >= 1.0:
            raise _input_error(
                f"{_SRC}.parameter_shift", name, "needs at least two samples with positive weight"
            )
        c /= 1.0 - s2
    delta = ma - mb
    try:
        chol = np.linalg.cholesky(ca + cb)
    except np.linalg.LinAlgError:
        raise _input_error(
            f"{_SRC}.parameter_shift",
            "a, b",
            "the summed covariance C_a + C_b is singular (a parameter with zero spread in both, "
            "or collinear parameters); drop or reparametrise it",
        ) from None
    z = np.linalg.solve(chol, delta)
    chi2 = float(z @ z)
    log_p = 0.0 if chi2 <= 0 else _chi2_logsf(chi2, d)
    return {
        "chi2": chi2,
        "dof": d,
        "p_value": math.exp(log_p),
        "log_p_value": log_p,
        "sigma": _sigma_from_log_p(log_p),
        "delta_mean": delta.tolist(),
    }
