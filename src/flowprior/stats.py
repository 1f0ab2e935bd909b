"""Weighted sample statistics: the one definition of each, used by every other module.

Weights are importance weights of a chain (pocoMC, nested samplers) or multiplicities (MCMC);
every function is invariant under rescaling them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ._checks import check_samples
from .errors import _input_error

__all__ = ["kish_ess", "weighted_mean_cov", "weighted_mean_sd", "weighted_quantile"]


def kish_ess(weights: Any, n: int | None = None) -> float:
    """Kish effective sample size ``(sum w)**2 / sum(w**2)``.

    Parameters
    ----------
    weights : array_like (n,) or None
        Finite, non-negative, not all zero. ``None`` stands for ``n`` equal weights.
    n : int, optional
        Number of samples when ``weights`` is None.

    Returns
    -------
    float
        Between 1 and n; n for equal weights, 1 for a single non-zero weight.
    """
    if weights is None:
        if n is None:
            raise ValueError("kish_ess: give the weights or the number of samples n")
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"kish_ess: expected a non-empty 1-D array, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError("kish_ess: weights must be finite, >= 0 and not all zero")
    w = w / w.max()  # scale-free; avoids overflow in the squares
    return float(w.sum() ** 2 / np.dot(w, w))


def weighted_mean_sd(x: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (population) standard deviation along axis 0.

    Parameters
    ----------
    x : ndarray (N, D)
    w : ndarray (N,), optional
        Weights; equal by default.

    Returns
    -------
    (ndarray (D,), ndarray (D,))
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(x.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    mean = w @ x
    return mean, np.sqrt(w @ (x - mean) ** 2)


def weighted_mean_cov(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and (population) covariance of validated samples.

    Parameters
    ----------
    x : ndarray (N, D)
    w : ndarray (N,)
        Weights summing to one (as :func:`flowprior._checks.check_samples` returns them).

    Returns
    -------
    (ndarray (D,), ndarray (D, D))
        ``sum_n w_n x_n`` and ``sum_n w_n (x_n - mean)(x_n - mean)^T``, symmetrised.
    """
    mean = w @ x
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc
    return mean, 0.5 * (cov + cov.T)


def weighted_quantile(
    x: np.ndarray,
    q: float | Sequence[float] | np.ndarray,
    w: np.ndarray | None = None,
    *,
    method: Literal["hazen", "inverted_cdf"] = "hazen",
) -> np.ndarray:
    """Weighted quantiles along axis 0.

    Two definitions, both invariant under rescaling the weights:

    ``"hazen"`` (default; continuous)
        Sort the samples; sample ``k`` sits at the cumulative-probability position
        ``p_k = (S_k - w_k / 2) / W`` (``S_k`` the cumulative weight up to and including ``k``,
        ``W`` the total), the midpoint of its step of the weighted empirical CDF; quantiles
        are linearly interpolated between positions and clamped to the extreme samples
        outside ``[p_first, p_last]``. With equal weights this is exactly
        ``numpy.quantile(x, q, method="hazen")``; it respects reflection symmetry
        (``Q_{-x}(1 - q) = -Q_x(q)``). For integer weights it approximates the quantile of the
        repeated samples (``numpy.repeat``) to within the gap between neighbouring samples.
    ``"inverted_cdf"`` (step function)
        The smallest sample whose cumulative weight reaches ``q W`` (``numpy.quantile``'s
        ``inverted_cdf``). Exactly the quantile of the repeated samples for integer weights.

    No interpolating definition can be both scale-invariant and exactly equal to the quantile
    of repeated samples (``w = (2, 1)`` and ``(4, 2)`` repeat to different sample sets).

    Zero-weight samples are ignored.

    Parameters
    ----------
    x : ndarray (N,) or (N, D)
    q : float or array-like of floats in [0, 1]
    w : ndarray (N,), optional
        Non-negative weights; equal by default.
    method : {"hazen", "inverted_cdf"}

    Returns
    -------
    ndarray
        Shape ``np.shape(q) + x.shape[1:]`` (like ``numpy.quantile(x, q, axis=0)``).

    Raises
    ------
    InputError
        Bad samples, weights (shape, NaN, negative, zero total), ``q`` outside [0, 1] or an
        unknown ``method``.
    """
    src = "flowprior.stats.weighted_quantile"
    xa = np.asarray(x, dtype=np.float64)
    one_d = xa.ndim == 1
    arr, wn = check_samples(src, xa, w)
    qa = np.asarray(q, dtype=np.float64)
    if np.isnan(qa).any() or np.any(qa < 0) or np.any(qa > 1):
        raise _input_error(src, "q", f"quantiles must lie in [0, 1], got {q!r}")
    if method not in ("hazen", "inverted_cdf"):
        raise _input_error(src, "method", f"expected 'hazen' or 'inverted_cdf', got {method!r}")
    keep = wn > 0
    arr, wn = arr[keep], wn[keep]
    qf = qa.ravel()
    out = np.empty((qf.size, arr.shape[1]))
    for j in range(arr.shape[1]):
        order = np.argsort(arr[:, j], kind="stable")
        xs, ws = arr[order, j], wn[order]
        cum = np.cumsum(ws)
        cum /= cum[-1]
        if method == "hazen":
            pos = cum - 0.5 * ws / np.sum(ws)
            out[:, j] = np.interp(qf, pos, xs)  # clamps outside [pos[0], pos[-1]]
        else:
            # tolerance: cumulative sums of equal weights miss k/N by rounding
            idx = np.searchsorted(cum, qf - 1e-12 * np.maximum(qf, 1e-300), side="left")
            out[:, j] = xs[np.minimum(idx, xs.size - 1)]
    out = out.reshape(qa.shape + (arr.shape[1],))
    return out[..., 0] if one_d else out
