"""Analytic target distributions with exact densities and exact samplers.

They serve as ground truth: a flow trained on exact samples can be scored with the exact
Kullback-Leibler divergence ``E_p[log p - log q]``.

Every problem lives on a prior box that holds all but a negligible fraction of its mass (less
than 1e-9); ``log_prob`` is the untruncated density, so on the box it is normalised to that
precision. Samples are drawn exactly and rejected when they fall outside the box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ..chains import Chain
from ..params import ParameterSpace

__all__ = ["PROBLEMS", "Problem", "get_problem"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Problem:
    """A target with an exact log-density and an exact sampler.

    Attributes
    ----------
    name : str
    params : ParameterSpace
        The prior box.
    log_density : callable
        ``(N, D) float64 -> (N,) float64``, normalised.
    sampler : callable
        ``(n, numpy.random.Generator) -> (n, D) float64`` exact draws (may leave the box).
    """

    name: str
    params: ParameterSpace
    log_density: Callable[[np.ndarray], np.ndarray]
    sampler: Callable[[int, np.random.Generator], np.ndarray]

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Exact log-density ``(N,)`` at ``x`` ``(N, D)``; ``-inf`` outside the box."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = np.full(x.shape[0], -np.inf)
        ok = self.params.contains(x)
        out[ok] = self.log_density(x[ok])
        return out

    def sample(self, n: int, *, seed: int | np.random.Generator | None) -> np.ndarray:
        """Draw ``n`` exact samples inside the box, ``(n, D)`` float64."""
        rng = np.random.default_rng(seed)
        out = np.empty((0, self.params.dim))
        while out.shape[0] < n:
            draw = self.sampler(n - out.shape[0], rng)
            out = np.concatenate([out, draw[self.params.contains(draw)]])
        return np.ascontiguousarray(out[:n])

    def chain(self, n: int, *, seed: int | np.random.Generator | None) -> Chain:
        """Exact samples as an unweighted :class:`Chain` with the exact ``log_posterior``."""
        x = self.sample(n, seed=seed)
        return Chain(
            params=self.params,
            samples=x,
            weights=np.ones(n),
            log_posterior=self.log_prob(x),
            source=f"problem:{self.name}",
        )


def _space(names, lower, upper, labels) -> ParameterSpace:
    return ParameterSpace.from_dict(
        {
            "parameters": [
                {"name": n, "lower": float(lo), "upper": float(hi), "label": lab}
                for n, lo, hi, lab in zip(names, lower, upper, labels, strict=True)
            ]
        },
        source="flowprior.problems",
    )


def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    sol = np.linalg.solve(chol, (x - mean).T)
    logdet = 2.0 * np.log(np.diag(chol)).sum()
    return -0.5 * (np.sum(sol**2, axis=0) + logdet + mean.size * _LOG_2PI)


# ---------------------------------------------------------------------------- banana
def banana() -> Problem:
    """2-D Rosenbrock banana ``log p = -[(x1 - 1)^2 + 20 (x1^2 - x2)^2] + const``.

    Exactly ``x1 ~ N(1, 1/2)`` and ``x2 | x1 ~ N(x1^2, 1/40)``.
    """
    s1, s2 = np.sqrt(0.5), np.sqrt(1.0 / 40.0)

    def log_density(x):
        x1, x2 = x[:, 0], x[:, 1]
        return (
            -((x1 - 1.0) ** 2) / (2 * s1**2)
            - (x2 - x1**2) ** 2 / (2 * s2**2)
            - np.log(s1)
            - np.log(s2)
            - _LOG_2PI
        )

    def sampler(n, rng):
        x1 = rng.normal(1.0, s1, n)
        x2 = rng.normal(x1**2, s2)
        return np.column_stack([x1, x2])

    space = _space(["x1", "x2"], [-5.0, -3.0], [7.0, 50.0], ["x_1", "x_2"])
    return Problem("banana", space, log_density, sampler)


# ---------------------------------------------------------------------------- 7-D Gaussians
def _corr_cov(dim: int, rho: float, sds: np.ndarray) -> np.ndarray:
    idx = np.arange(dim)
    corr = rho ** np.abs(idx[:, None] - idx[None, :])
    return corr * np.outer(sds, sds)


_DIM7 = 7
_NAMES7 = [f"theta{i}" for i in range(1, _DIM7 + 1)]
_LABELS7 = [rf"\theta_{i}" for i in range(1, _DIM7 + 1)]


def gaussian_7d() -> Problem:
    """7-D correlated Gaussian (AR(1) correlations, rho = 0.7; unequal widths)."""
    mean = np.linspace(-1.0, 2.0, _DIM7)
    cov = _corr_cov(_DIM7, 0.7, np.linspace(0.5, 1.5, _DIM7))
    chol = np.linalg.cholesky(cov)
    sd = np.sqrt(np.diag(cov))

    def sampler(n, rng):
        return mean + rng.standard_normal((n, _DIM7)) @ chol.T

    space = _space(_NAMES7, mean - 10 * sd, mean + 10 * sd, _LABELS7)
    return Problem("gaussian_7d", space, lambda x: _gauss_logpdf(x, mean, cov), sampler)


def mixture_7d() -> Problem:
    """7-D two-component Gaussian mixture with separated modes (weights 0.4 / 0.6).

    The means differ by 4 units in every coordinate (about 6 standard deviations along the
    line joining them), the covariances are correlated with opposite signs.
    """
    w = np.array([0.4, 0.6])
    means = [np.full(_DIM7, -2.0), np.full(_DIM7, 2.0)]
    covs = [
        _corr_cov(_DIM7, 0.5, np.full(_DIM7, 0.8)),
        _corr_cov(_DIM7, -0.4, np.full(_DIM7, 0.6)),
    ]
    chols = [np.linalg.cholesky(c) for c in covs]

    def log_density(x):
        comps = [np.log(wk) + _gauss_logpdf(x, m, c) for wk, m, c in zip(w, means, covs)]
        return logsumexp(np.stack(comps), axis=0)

    def sampler(n, rng):
        k = rng.choice(2, size=n, p=w)
        eps = rng.standard_normal((n, _DIM7))
        out = np.empty((n, _DIM7))
        for j in range(2):
            sel = k == j
            out[sel] = means[j] + eps[sel] @ chols[j].T
        return out

    space = _space(_NAMES7, np.full(_DIM7, -8.0), np.full(_DIM7, 8.0), _LABELS7)
    return Problem("mixture_7d", space, log_density, sampler)


# ---------------------------------------------------------------------------- funnel
def funnel() -> Problem:
    """2-D softened Neal funnel: ``v ~ N(0, 1.5^2)``, ``x | v ~ N(0, exp(v))``.

    Neal's funnel has ``sd(v) = 3``; that version needs a box of ``|x| < 10^4`` for a 1e-9
    mass bound and its neck (``sd(x) ~ 1e-4``) is beyond any flow trained on 10^4-10^5
    samples. With ``sd(v) = 1.5`` the width of ``x`` still varies by a factor of ~90 over
    ``v`` in +-3 sd (0.1 to 9.5), the funnel shape that trips affine flows, and the box
    ``v in [-10, 10]``, ``x in [-200, 200]`` misses less than 3e-10 of the mass (``v``: 2.6e-11;
    ``x``: 1.9e-10, by quadrature of ``E_v[2 Phi(-200 exp(-v/2))]``).
    """
    sv = 1.5

    def log_density(z):
        v, x = z[:, 0], z[:, 1]
        return (
            -0.5 * (v / sv) ** 2
            - np.log(sv)
            - 0.5 * x**2 * np.exp(-v)
            - 0.5 * v
            - _LOG_2PI
        )

    def sampler(n, rng):
        v = rng.normal(0.0, sv, n)
        x = rng.normal(0.0, np.exp(0.5 * v))
        return np.column_stack([v, x])

    space = _space(["v", "x"], [-10.0, -200.0], [10.0, 200.0], ["v", "x"])
    return Problem("funnel", space, log_density, sampler)


#: Built-in problems by name.
PROBLEMS: dict[str, Callable[[], Problem]] = {
    "banana": banana,
    "gaussian_7d": gaussian_7d,
    "mixture_7d": mixture_7d,
    "funnel": funnel,
}


def get_problem(name: str) -> Problem:
    """Return the built-in problem ``name`` (see :data:`PROBLEMS`)."""
    try:
        return PROBLEMS[name]()
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}") from None
