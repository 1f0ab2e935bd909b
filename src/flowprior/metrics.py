"""Weight-aware comparison of two sample sets.

The classifier two-sample test (C2ST) passes the chain weights to the classifier and to the
accuracy instead of resampling: resampling with replacement puts duplicate points into both the
training and the test folds and inflates the accuracy (exact samples against exact samples
scored 0.58 instead of 0.50 that way).
"""

from __future__ import annotations

import numpy as np

__all__ = ["c2st", "weighted_mean_sd"]


def weighted_mean_sd(x: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of ``x`` ``(N, D)`` along axis 0."""
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(x.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    w = w / w.sum()
    mean = w @ x
    return mean, np.sqrt(w @ (x - mean) ** 2)


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
