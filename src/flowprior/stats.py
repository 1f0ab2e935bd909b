"""Weighted sample statistics: the one definition of each, used by every other module.

Weights are importance weights of a chain (pocoMC, nested samplers) or multiplicities (MCMC);
every function is invariant under rescaling them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["kish_ess", "weighted_mean_sd"]


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
    """Weighted mean and standard deviation of ``x`` ``(N, D)`` along axis 0."""
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(x.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    mean = w @ x
    return mean, np.sqrt(w @ (x - mean) ** 2)
