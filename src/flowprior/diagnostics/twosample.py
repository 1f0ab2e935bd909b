"""Two-sample fidelity scores: two weighted sample sets drawn from the same distribution?

:func:`moment_scores` (the reference study's bootstrap ``|delta / sigma|`` per moment),
:func:`sliced_wasserstein` (in units of the reference's sd) and :func:`c2st` (classifier
two-sample test). Every function takes samples ``(N, D)`` with optional importance weights
``(N,)``; bad input raises :class:`~flowprior.errors.InputError` naming the argument.

The C2ST passes the chain weights to the classifier and to the accuracy instead of resampling:
resampling with replacement puts duplicate points into both the training and the test folds
and inflates the accuracy (exact samples against exact samples scored 0.58 instead of 0.50 that
way).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._checks import check_names, check_samples
from ..errors import _input_error
from ..stats import kish_ess, weighted_mean_cov, weighted_mean_sd

__all__ = ["c2st", "moment_scores", "sliced_wasserstein"]

logger = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics"


def _subsample(x, w, n_max, rng):
    if x.shape[0] <= n_max:
        return x, w
    idx = rng.choice(x.shape[0], size=n_max, replace=False)  # uniform: weights stay exact
    return x[idx], w[idx]


def c2st(
    x_p: np.ndarray,
    x_q: np.ndarray,
    *,
    w_p: np.ndarray | None = None,
    w_q: np.ndarray | None = None,
    seed: int = 0,
    folds: int = 5,
    max_n: int = 5000,
) -> float:
    """Classifier two-sample test accuracy (0.5: indistinguishable, 1: disjoint).

    An MLP classifier is trained on standardised samples of both sets with their weights
    (each set's weights normalised to the same total, so the classes are balanced) and scored
    by weighted accuracy on held-out folds.

    Parameters
    ----------
    x_p, x_q : ndarray (N, D), (M, D)
    w_p, w_q : ndarray (N,), (M,), optional
        Importance weights (e.g. pocoMC); equal weights by default.
    seed : int
        Drives the fold split, subsampling and the classifier initialisation.
    folds : int
        Cross-validation folds.
    max_n : int
        At most this many points per set (a uniform subsample without replacement).

    Returns
    -------
    float
        Mean weighted held-out accuracy over the folds.
    """
    from threadpoolctl import threadpool_limits

    # Small dense layers: one BLAS thread is fastest, and several are 10x slower when
    # another job shares the cores. Restored on exit.
    with threadpool_limits(limits=1):
        return _c2st(x_p, x_q, w_p=w_p, w_q=w_q, seed=seed, folds=folds, max_n=max_n)


def _c2st(x_p, x_q, *, w_p, w_q, seed, folds, max_n) -> float:
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(seed)
    x_p = np.asarray(x_p, dtype=np.float64)
    x_q = np.asarray(x_q, dtype=np.float64)
    w_p = np.ones(len(x_p)) if w_p is None else np.asarray(w_p, dtype=np.float64)
    w_q = np.ones(len(x_q)) if w_q is None else np.asarray(w_q, dtype=np.float64)
    x_p, w_p = _subsample(x_p, w_p, max_n, rng)
    x_q, w_q = _subsample(x_q, w_q, max_n, rng)
    x = np.concatenate([x_p, x_q])
    y = np.concatenate([np.zeros(len(x_p), int), np.ones(len(x_q), int)])
    w = np.concatenate([w_p / w_p.sum(), w_q / w_q.sum()])
    w = w * len(w) / w.sum()  # mean weight 1: keeps the optimiser's scale
    scores = []
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(rng.integers(2**31)))
    for train, test in split.split(x, y):
        mean, sd = weighted_mean_sd(x[train], w[train])
        sd = np.where(sd > 0, sd, 1.0)
        clf = MLPClassifier(
            hidden_layer_sizes=(64, 64),
            max_iter=200,
            early_stopping=True,  # 10 % of the training fold decides when to stop
            random_state=int(rng.integers(2**31)),
        )
        clf.fit((x[train] - mean) / sd, y[train], sample_weight=w[train])
        pred = clf.predict((x[test] - mean) / sd)
        wt = w[test]
        scores.append(float(np.sum(wt * (pred == y[test])) / np.sum(wt)))
    return float(np.mean(scores))


_STATISTICS = ("mean", "variance", "skewness", "kurtosis")


def _moment_vector(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Means, variances, skewnesses, excess kurtoses (each ``D``), then covariances ``i < j``.

    Population (weighted) moments: ``m_k = sum_n w_n (x_n - mean)^k`` with ``sum w = 1``;
    skewness ``m_3 / m_2^{3/2}``, excess kurtosis ``m_4 / m_2^2 - 3``.
    """
    if w is None:
        mean = x.mean(axis=0)
        xc = x - mean
        m2 = np.mean(xc**2, axis=0)
        m3 = np.mean(xc**3, axis=0)
        m4 = np.mean(xc**4, axis=0)
        cov = xc.T @ xc / x.shape[0]
    else:
        mean = w @ x
        xc = x - mean
        m2 = w @ xc**2
        m3 = w @ xc**3
        m4 = w @ xc**4
        cov = (xc * w[:, None]).T @ xc
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = m3 / m2**1.5
        kurt = m4 / m2**2 - 3.0
    iu = np.triu_indices(x.shape[1], k=1)
    return np.concatenate([mean, m2, skew, kurt, cov[iu]])


def _bootstrap_sd(
    x: np.ndarray, w: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Spread (sd, ddof 1) of :func:`_moment_vector` over weighted bootstrap resamples."""
    n = max(2, int(round(kish_ess(w))))
    draws = np.empty((n_boot, _n_stats(x.shape[1])))
    for i in range(n_boot):
        idx = rng.choice(x.shape[0], size=n, replace=True, p=w)
        draws[i] = _moment_vector(x[idx], None)
    return draws.std(axis=0, ddof=1)


def _n_stats(d: int) -> int:
    return 4 * d + d * (d - 1) // 2


def moment_scores(
    a: np.ndarray,
    b: np.ndarray,
    *,
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
    names: Sequence[str],
    n_boot: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Moment scores ``|delta / sigma|`` of two sample sets (the reference study's validation).

    For each parameter the mean, variance, skewness and excess kurtosis, and for every pair of
    parameters the covariance, are computed for both sets (weighted population moments, see
    below). ``delta = value_b - value_a`` and ``sigma`` is the bootstrap standard error of the
    difference:

    - ``sigma_a``: draw ``n_boot`` resamples of ``a``, each of ``n = round(ESS_a)`` points
      (``ESS_a`` the Kish effective sample size ``(sum w)^2 / sum w^2``; ``N`` for equal
      weights) *with replacement* and with probability proportional to ``wa``; compute the
      statistic of each resample with equal weights; ``sigma_a`` is the standard deviation
      (``ddof=1``) of those ``n_boot`` values;
    - ``sigma_b`` the same for ``b``;
    - ``sigma = sqrt(sigma_a^2 + sigma_b^2)``.

    A score of about 1 or less is sampling noise; the reference study reads scores above about 3
    as a real difference. When ``sigma`` is 0 the score is 0 if ``delta`` is 0, else ``inf``.

    Parameters
    ----------
    a : ndarray (N, D)
        Reference samples (e.g. the chain the flow was trained on).
    b : ndarray (M, D)
        Samples to score (e.g. flow samples).
    wa, wb : ndarray (N,), (M,), optional
        Importance weights; equal by default.
    names : sequence of str, length D
        Parameter names, used in the ``parameters`` column.
    n_boot : int
        Bootstrap resamples per set (>= 2).
    seed : int
        Seeds the bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per statistic, ``4 D + D (D - 1) / 2`` rows in the order: means, variances,
        skewnesses, kurtoses (parameters in ``names`` order), then covariances of the pairs
        ``(i, j)``, ``i < j``. Columns: ``statistic`` (``"mean"``, ``"variance"``,
        ``"skewness"``, ``"kurtosis"``, ``"covariance"``), ``parameters`` (``"theta1"`` or
        ``"theta1,theta2"``), ``value_a``, ``value_b``, ``delta``, ``sigma``, ``score``.

    Notes
    -----
    Moments are population moments of the weighted empirical distribution:
    ``m_k = sum_n w_n (x_n - mean)^k`` with ``sum_n w_n = 1``; variance ``m_2``, skewness
    ``m_3 / m_2^{3/2}``, excess kurtosis ``m_4 / m_2^2 - 3``, covariance
    ``sum_n w_n (x_ni - mean_i)(x_nj - mean_j)``.
    """
    xa, na = check_samples(f"{_SRC}.moment_scores", a, wa, xname="a", wname="wa")
    d = xa.shape[1]
    xb, nb = check_samples(f"{_SRC}.moment_scores", b, wb, xname="b", wname="wb", dim=d)
    names = check_names(f"{_SRC}.moment_scores", names, d)
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 2:
        raise _input_error(
            f"{_SRC}.moment_scores", "n_boot", f"expected an int >= 2, got {n_boot!r}"
        )
    rng = np.random.default_rng(seed)
    val_a = _moment_vector(xa, na)
    val_b = _moment_vector(xb, nb)
    sd_a = _bootstrap_sd(xa, na, int(n_boot), rng)
    sd_b = _bootstrap_sd(xb, nb, int(n_boot), rng)
    sigma = np.sqrt(sd_a**2 + sd_b**2)
    delta = val_b - val_a
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(sigma > 0, np.abs(delta) / np.where(sigma > 0, sigma, 1.0), np.nan)
    score = np.where((sigma == 0) & (delta == 0), 0.0, score)
    score = np.where((sigma == 0) & (delta != 0), np.inf, score)
    stat_col = [s for s in _STATISTICS for _ in range(d)]
    par_col = [n for _ in _STATISTICS for n in names]
    for i, j in zip(*np.triu_indices(d, k=1), strict=True):
        stat_col.append("covariance")
        par_col.append(f"{names[i]},{names[j]}")
    return pd.DataFrame(
        {
            "statistic": stat_col,
            "parameters": par_col,
            "value_a": val_a,
            "value_b": val_b,
            "delta": delta,
            "sigma": sigma,
            "score": score,
        }
    )


def sliced_wasserstein(
    a: np.ndarray,
    b: np.ndarray,
    *,
    wa: np.ndarray | None = None,
    wb: np.ndarray | None = None,
    n_projections: int = 200,
    seed: int = 0,
) -> float:
    """Sliced Wasserstein-1 distance between two weighted sample sets, in units of ``a``'s sd.

    Both sets are standardised with the weighted mean and standard deviation of ``a``; then the
    1-D Wasserstein-1 distance (:func:`scipy.stats.wasserstein_distance` with the weights) of
    the projections on ``n_projections`` random unit directions (uniform on the sphere) is
    averaged.

    For ``N(0, I)`` against ``N(m e_1, I)`` in ``D`` dimensions the exact value is
    ``|m| E|u_1| = |m| Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2))``. Finite samples add a positive
    bias of order ``1/sqrt(N)`` (two independent draws of the same distribution score about
    ``0.02`` for ``N = 10^4``), and the random directions a Monte Carlo error that shrinks as
    ``1/sqrt(n_projections)``.

    Parameters
    ----------
    a : ndarray (N, D)
        Reference samples; fixes the standardisation.
    b : ndarray (M, D)
    wa, wb : ndarray (N,), (M,), optional
        Importance weights; equal by default.
    n_projections : int
        Number of random directions (>= 1).
    seed : int
        Seeds the directions.

    Returns
    -------
    float
        The mean 1-D distance, >= 0 (0 for identical sets).
    """
    xa, na = check_samples(f"{_SRC}.sliced_wasserstein", a, wa, xname="a", wname="wa")
    d = xa.shape[1]
    xb, nb = check_samples(f"{_SRC}.sliced_wasserstein", b, wb, xname="b", wname="wb", dim=d)
    if (
        isinstance(n_projections, bool)
        or not isinstance(n_projections, numbers.Integral)
        or (n_projections < 1)
    ):
        raise _input_error(
            f"{_SRC}.sliced_wasserstein",
            "n_projections",
            f"expected an int >= 1, got {n_projections!r}",
        )
    mean, cov = weighted_mean_cov(xa, na)
    sd = np.sqrt(np.diag(cov))
    if np.any(sd == 0):
        logger.warning(
            "sliced_wasserstein: a parameter of `a` has zero spread; its scale is set to 1"
        )
        sd = np.where(sd > 0, sd, 1.0)
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((int(n_projections), d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pa = ((xa - mean) / sd) @ u.T
    pb = ((xb - mean) / sd) @ u.T
    dist = [
        stats.wasserstein_distance(pa[:, k], pb[:, k], u_weights=na, v_weights=nb)
        for k in range(u.shape[0])
    ]
    return float(np.mean(dist))
