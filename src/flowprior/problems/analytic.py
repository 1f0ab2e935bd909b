r"""Built-in analysis problems with exact references: likelihood plug-ins and closed forms.

Three sequential-calibration problems, each a set of datasets whose likelihoods are plug-in
functions (``f(theta, **kwargs)`` on ``(n, d)`` float64 parameters, returning ``(n,)``
log-likelihoods) addressable from a config as ``"flowprior.problems.analytic:<name>"``:

- ``gaussian_linear``: datasets ``A``, ``B``, ``C``; kwargs ``dim=6``;
- ``tension``: datasets ``A``, ``B``; kwargs ``dim=6``, ``offset=4.0`` (sigma);
- ``bimodal``: datasets ``A``, ``B``; kwargs ``dim=3``;

besides ``dataset`` itself, e.g. ``{likelihood: "flowprior.problems.analytic:tension",
kwargs: {dataset: B, offset: 4.0}}`` (:meth:`AnalysisProblem.likelihood_entry` writes such
entries; :data:`SPEC_PREFIX` is the common prefix of the specs).

Every log-likelihood is *fully normalised*: it is the log-density of fixed synthetic data given
``theta``, so every evidence is a well-defined number. :func:`get_analysis` returns the
matching :class:`AnalysisProblem` with the prior box and the exact references of any
combination of datasets: evidence, posterior moments, iid posterior samples and the normalised
log posterior density.

Conventions
-----------
The prior is uniform on the box, ``pi(theta) = 1 / V``. For a tuple of datasets ``S`` the
posterior is ``p(theta | S) ∝ prod_{k in S} L_k(theta) / V`` and its evidence is
``Z_S = (1/V) ∫_box prod_k L_k(theta) dtheta``. A sequential stage that absorbs ``B`` after
``A`` has evidence ``Z_{B|A} = Z_AB / Z_A``. Parameters are named ``theta1 .. thetaD`` with
labels ``\theta_1 .. \theta_D``.

Synthetic data (deterministic)
------------------------------
Every dataset of the Gaussian problems is a linear-Gaussian measurement
``y_k = G_k theta + e_k``, ``e_k ~ N(0, Sigma_k)``, with ``m = d`` measurements. All constants
come from ``numpy.random.default_rng([20260404, problem_id, d])`` (``problem_id`` 1 for
``gaussian_linear``, 3 for ``bimodal``) in float64, drawn in this order:

1. ``theta_true ~ U(-1, 1)^d`` (``bimodal``: ``d - 1`` coordinates, see below);
2. for each dataset in turn (A, B, C): a random orthogonal ``Q_k`` (QR decomposition of a
   ``d x d`` standard-normal matrix, columns signed so that ``diag(R) > 0``), noise standard
   deviations ``sigma_k ~ U(0.5, 2)^d`` and a noise draw ``eps_k ~ N(0, 1)^d``; then
   ``G_k = diag(sigma_k / s_k) Q_k^T``, ``Sigma_k = diag(sigma_k^2)``,
   ``y_k = G_k theta_true + sigma_k * eps_k``.

So ``P_k = G_k^T Sigma_k^{-1} G_k = Q_k diag(s_k^{-2}) Q_k^T``: dataset ``k`` alone constrains
the orthonormal directions ``Q_k`` with posterior standard deviations ``s_k``:

- ``A``: ``s = geomspace(0.15, 1.0, d)``; ``B``: the same widths along other (independent,
  random) directions; ``C``: ``s = geomspace(0.25, 1.5, d)``. The joint posterior of A and B
  is clearly narrower than either (d = 6: largest posterior sd 1.0 for A or B alone, 0.51
  for A+B).

Each likelihood is held exactly as a quadratic form ``log L_k = -1/2 theta^T P_k theta +
b_k^T theta + c_k`` with ``P_k = G^T Sigma^{-1} G``, ``b_k = G^T Sigma^{-1} y``,
``c_k = -1/2 y^T Sigma^{-1} y - 1/2 log det(2 pi Sigma)``; products add ``P``, ``b``, ``c`` and
``∫ exp(...) dtheta = exp(c + 1/2 b^T P^{-1} b) (2 pi)^{d/2} det(P)^{-1/2}``. The plug-ins
evaluate the same density in the better-conditioned whitened residual form.
The draws are bit-for-bit reproducible for a given NumPy (the ``Generator`` stream), and the
derived matrices agree across platforms to floating-point rounding of LAPACK's QR.

``tension``
    Dataset ``A`` is ``gaussian_linear``'s ``A`` (same ``G``, ``Sigma``, ``y``). Dataset ``B``
    has ``gaussian_linear``'s ``G_B`` and ``Sigma_B`` and the data ``y_B = G_B (mu_A + Delta)``
    where ``mu_A`` is A's posterior mean and ``Delta = delta e_1``: B alone has posterior mean
    exactly ``mu_A + Delta`` (B's data are A's best fit shifted by ``G_B Delta``). ``delta > 0``
    is chosen so that the parameter-shift statistic
    ``chi2 = Delta^T (C_A + C_B)^{-1} Delta`` equals ``chi2.isf(p, d)`` with
    ``p = erfc(offset / sqrt(2))``, i.e. the shift between the two posteriors has an
    equivalent Gaussian significance of ``offset`` sigma for ``d`` degrees of freedom
    (:meth:`AnalysisProblem.parameter_shift_sigma` computes it back).

``bimodal`` (separable in ``theta1`` and ``theta2 .. thetaD``)
    ``log L_A = log N(4.0; theta1^2, 0.8^2) + log L_A^G(theta2..D)`` and
    ``log L_B = log N(1.0; theta1, 1.5^2) + log L_B^G(theta2..D)``, where
    ``N(y; m, s^2) = exp(-(y - m)^2 / (2 s^2)) / sqrt(2 pi s^2)`` is the density of a datum
    ``y`` and ``L^G`` are linear-Gaussian measurements of the ``d - 1`` other coordinates built
    as above (A: ``s = geomspace(0.15, 1.0, d - 1)``, B: the same widths, other directions).
    A alone has two mirror-image modes at ``theta1 = ±2`` (width about 0.2, equal masses,
    a barrier of 12.5 nats at 0); B's ``theta1`` term breaks the symmetry and favours the
    ``+2`` mode (about 85 % of the A+B mass). The ``theta1`` references are 1-D quadrature
    (trapezoid rule on 2**18 + 1 equally spaced nodes over the box edge to edge; the integrand
    is smooth and negligible at both edges, so the rule converges exponentially): evidence
    and moments agree with adaptive quadrature to < 1e-8 (tested). ``log_posterior`` is the
    closed unnormalised form minus the quadrature normaliser. ``theta1`` samples are drawn by
    inverting the CDF of the piecewise-linear interpolant of the density on that grid
    (total-variation distance to the exact ``theta1`` posterior of order 1e-8, far below what
    any sample can resolve); the other coordinates are drawn exactly.

Prior boxes
-----------
For the Gaussian coordinates the box is, per coordinate,
``[floor(min_S(mu_S - 7 sd_S)), ceil(max_S(mu_S + 7 sd_S))]`` over every non-empty subset
``S`` of the datasets (each single stage, each sequential stage and the joint): the mass of
any of these posteriors outside the box is below ``2 d Phi(-7) < 3e-12 d`` (< 1e-9). The
``theta1`` range of ``bimodal`` is ``[-10, 12]``: B alone (``N(1, 1.5^2)`` in ``theta1``) puts
< 1e-12 outside it (7.3 sd), A's modes are at ±2 with width 0.2. Truncation is therefore
negligible and the evidences use untruncated Gaussian integrals. The boxes of the default
dimensions (and ``offset=4``) are shipped as ``config/parameters/<name>.yaml``; a different
``dim`` or ``offset`` has another box (write it with ``get_analysis(...).params.write(path)``).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import erfc

from ..errors import _input_error
from ..params import ParameterSpace

__all__ = [
    "ANALYSES",
    "SPEC_PREFIX",
    "AnalysisProblem",
    "LinearGaussian",
    "bimodal",
    "gaussian_linear",
    "get_analysis",
    "tension",
]

logger = logging.getLogger(__name__)

_SEED = 20260404
_LOG_2PI = math.log(2.0 * math.pi)
#: Prior-box half-width in posterior standard deviations (before rounding outward).
_BOX_SIGMAS = 7.0
#: Quadrature nodes for the bimodal theta1 references.
_N_GRID = 2**18 + 1
_BIMODAL_THETA1_BOX = (-10.0, 12.0)
_MODULE = "flowprior.problems.analytic"
#: Prefix of the plug-in specs of the built-in analyses: ``SPEC_PREFIX + "tension"``.
SPEC_PREFIX = f"{_MODULE}:"


# ----------------------------------------------------------------------------- building blocks
@dataclass(frozen=True, eq=False)
class LinearGaussian:
    """One linear-Gaussian measurement ``y = G theta[coords] + e``, ``e ~ N(0, noise_cov)``.

    Attributes
    ----------
    G : ndarray (m, k)
        Design matrix acting on the coordinates ``coords`` of theta.
    noise_cov : ndarray (m, m)
        Noise covariance ``Sigma``.
    y : ndarray (m,)
        The fixed synthetic data.
    coords : tuple of int, length k
        0-based indices of the parameters the measurement depends on.
    """

    G: np.ndarray
    noise_cov: np.ndarray
    y: np.ndarray
    coords: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("G", "noise_cov", "y"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        chol = np.linalg.cholesky(self.noise_cov)
        white_g = np.linalg.solve(chol, self.G)
        white_y = np.linalg.solve(chol, self.y)
        lognorm = -float(np.log(np.diag(chol)).sum()) - 0.5 * self.y.size * _LOG_2PI
        object.__setattr__(self, "_white_g", white_g)
        object.__setattr__(self, "_white_y", white_y)
        object.__setattr__(self, "_lognorm", lognorm)

    def loglike(self, theta: np.ndarray) -> np.ndarray:
        """``log N(y; G theta[:, coords], Sigma)`` for theta ``(n, d)`` -> ``(n,)``."""
        resid = self._white_y - theta[:, self.coords] @ self._white_g.T
        return -0.5 * np.einsum("ij,ij->i", resid, resid) + self._lognorm

    def quadratic_form(self) -> _Quad:
        """The exact quadratic form ``-1/2 x^T P x + b^T x + c`` of the log-likelihood."""
        return _Quad(
            P=self._white_g.T @ self._white_g,
            b=self._white_g.T @ self._white_y,
            c=-0.5 * float(self._white_y @ self._white_y) + self._lognorm,
        )


@dataclass(frozen=True, eq=False)
class _Quad:
    """``-1/2 x^T P x + b^T x + c`` on ``k`` coordinates (P symmetric positive definite)."""

    P: np.ndarray
    b: np.ndarray
    c: float

    def __add__(self, other: _Quad) -> _Quad:
        return _Quad(self.P + other.P, self.b + other.b, self.c + other.c)

    @functools.cached_property
    def _chol(self) -> np.ndarray:
        return np.linalg.cholesky(0.5 * (self.P + self.P.T))

    @property
    def mean(self) -> np.ndarray:
        """``P^{-1} b``."""
        return _chol_solve(self._chol, self.b)

    @property
    def cov(self) -> np.ndarray:
        """``P^{-1}``."""
        inv = _chol_solve(self._chol, np.eye(self.b.size))
        return 0.5 * (inv + inv.T)

    def log_integral(self) -> float:
        """``log ∫ exp(-1/2 x^T P x + b^T x + c) dx`` over R^k."""
        logdet = 2.0 * float(np.log(np.diag(self._chol)).sum())
        return (
            self.c + 0.5 * float(self.b @ self.mean) + 0.5 * self.b.size * _LOG_2PI - 0.5 * logdet
        )


def _chol_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))


@dataclass(frozen=True)
class _Theta1Term:
    """A datum ``y ~ N(h(theta1), sd^2)`` with ``h(t) = t`` (linear) or ``t^2`` (square)."""

    kind: str
    y: float
    sd: float

    def loglike(self, t: np.ndarray) -> np.ndarray:
        h = t * t if self.kind == "square" else t
        z = (self.y - h) / self.sd
        return -0.5 * z * z - math.log(self.sd) - 0.5 * _LOG_2PI


@dataclass(frozen=True, eq=False)
class _Grid1D:
    """Trapezoid quadrature of ``exp(g(t))`` on ``[lo, hi]`` and an inverse-CDF sampler."""

    lo: float
    h: float
    w: np.ndarray  # exp(g - gmax) at the nodes
    cum: np.ndarray  # cumulative trapezoid cell masses, (N-1,)
    log_norm: float  # log ∫ exp(g)
    mean: float
    var: float

    @classmethod
    def build(cls, g: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> _Grid1D:
        t = np.linspace(lo, hi, _N_GRID)
        h = (hi - lo) / (_N_GRID - 1)
        logw = g(t)
        gmax = float(logw.max())
        w = np.exp(logw - gmax)
        cells = 0.5 * h * (w[:-1] + w[1:])
        cum = np.cumsum(cells)
        mass = float(cum[-1])
        mean = _trapz(t * w, h) / mass
        var = _trapz((t - mean) ** 2 * w, h) / mass
        w.setflags(write=False)
        cum.setflags(write=False)
        return cls(lo, h, w, cum, gmax + math.log(mass), mean, var)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms ``u`` in [0, 1) through the inverse CDF of the linear interpolant."""
        target = u * self.cum[-1]
        j = np.minimum(np.searchsorted(self.cum, target, side="right"), self.cum.size - 1)
        before = np.where(j > 0, self.cum[np.maximum(j - 1, 0)], 0.0)
        r = np.clip(target - before, 0.0, None)
        w0, w1 = self.w[j], self.w[j + 1]
        a = (w1 - w0) / (2.0 * self.h)
        # solve w0 s + a s^2 = r for s in [0, h] (stable form, valid for a of either sign)
        disc = np.maximum(w0 * w0 + 4.0 * a * r, 0.0)
        denom = w0 + np.sqrt(disc)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(denom > 0, 2.0 * r / denom, 0.0)
        s = np.clip(s, 0.0, self.h)
        return self.lo + (j + s / self.h) * self.h


def _trapz(f: np.ndarray, h: float) -> float:
    return h * (float(f.sum()) - 0.5 * (float(f[0]) + float(f[-1])))


def _orthogonal(rng: np.random.Generator, k: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


def _measurements(
    rng: np.random.Generator,
    *,
    truth: np.ndarray,
    widths: Mapping[str, np.ndarray],
    coords: tuple[int, ...],
) -> dict[str, LinearGaussian]:
    """Draw one linear-Gaussian measurement per dataset (order of ``widths``)."""
    k = truth.size
    out = {}
    for name, s in widths.items():
        q = _orthogonal(rng, k)
        sigma = rng.uniform(0.5, 2.0, k)
        eps = rng.standard_normal(k)
        g = (sigma / s)[:, None] * q.T
        out[name] = LinearGaussian(
            G=g, noise_cov=np.diag(sigma**2), y=g @ truth + sigma * eps, coords=coords
        )
    return out


def _subsets(names: Sequence[str]) -> list[tuple[str, ...]]:
    return [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]


def _gauss_box(meas: Mapping[str, LinearGaussian]) -> tuple[np.ndarray, np.ndarray]:
    """Integer box holding every subset posterior to ``_BOX_SIGMAS`` standard deviations."""
    lows, highs = [], []
    for subset in _subsets(list(meas)):
        quad = _sum_quads(meas[k].quadratic_form() for k in subset)
        mean, sd = quad.mean, np.sqrt(np.diag(quad.cov))
        lows.append(mean - _BOX_SIGMAS * sd)
        highs.append(mean + _BOX_SIGMAS * sd)
    return np.floor(np.min(lows, axis=0)), np.ceil(np.max(highs, axis=0))


def _sum_quads(quads) -> _Quad:
    total = None
    for q in quads:
        total = q if total is None else total + q
    return total


def _space(lower: np.ndarray, upper: np.ndarray, *, source: str) -> ParameterSpace:
    d = len(lower)
    return ParameterSpace.from_dict(
        {
            "parameters": [
                {
                    "name": f"theta{i + 1}",
                    "lower": float(lower[i]),
                    "upper": float(upper[i]),
                    "label": rf"\theta_{i + 1}",
                }
                for i in range(d)
            ]
        },
        source=source,
    )


# ----------------------------------------------------------------------------- the problem
@dataclass(frozen=True, eq=False)
class _Posterior:
    """Exact reference of one combination of datasets."""

    log_evidence: float
    mean: np.ndarray
    cov: np.ndarray
    gauss_mean: np.ndarray
    gauss_chol: np.ndarray
    grid: _Grid1D | None


class AnalysisProblem:
    """A built-in analysis: datasets with normalised likelihoods, a prior box, exact references.

    Obtain one with :func:`get_analysis`; do not construct directly.

    Attributes
    ----------
    name : str
        ``"gaussian_linear"``, ``"tension"`` or ``"bimodal"``.
    params : ParameterSpace
        Names ``theta1 .. thetaD``, labels ``\\theta_i`` and the uniform prior box.
    datasets : tuple of str
        Dataset names.
    kwargs : dict
        The problem's keyword arguments (``dim``, and ``offset`` for tension), as the plug-in
        takes them.
    plugin : str
        The plug-in spec, ``"flowprior.problems.analytic:<name>"``.
    """

    def __init__(
        self,
        name: str,
        *,
        params: ParameterSpace,
        kwargs: Mapping[str, Any],
        gauss: Mapping[str, LinearGaussian],
        theta1: Mapping[str, _Theta1Term] | None = None,
    ) -> None:
        self.name = name
        self.params = params
        self.kwargs = dict(kwargs)
        self.plugin = f"{SPEC_PREFIX}{name}"
        self.datasets = tuple(gauss)
        self._gauss = dict(gauss)
        self._theta1 = dict(theta1) if theta1 is not None else None
        self._gauss_coords = next(iter(self._gauss.values())).coords
        self._cache: dict[tuple[str, ...], _Posterior] = {}

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"AnalysisProblem({self.name!r}, {kw}, datasets={list(self.datasets)})"

    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return self.params.dim

    # ------------------------------------------------------------------ likelihoods
    def loglike(self, dataset: str) -> Callable[[np.ndarray], np.ndarray]:
        """The plug-in for ``dataset`` with its kwargs bound: ``(n, d) -> (n,)`` (picklable)."""
        self._check_dataset(dataset)
        return functools.partial(_PLUGINS[self.name], dataset=dataset, **self.kwargs)

    def likelihood_entry(self, dataset: str) -> dict[str, Any]:
        """The config entry of ``dataset``: ``{"likelihood": plugin, "kwargs": {...}}``."""
        self._check_dataset(dataset)
        return {"likelihood": self.plugin, "kwargs": {"dataset": dataset, **self.kwargs}}

    def measurement(self, dataset: str) -> LinearGaussian:
        """The linear-Gaussian measurement of ``dataset`` (for bimodal: of theta2..D)."""
        self._check_dataset(dataset)
        return self._gauss[dataset]

    def _evaluate(self, dataset: str, theta: Any) -> np.ndarray:
        """Log-likelihood of ``dataset`` at theta ``(n, d)`` -> ``(n,)`` float64."""
        self._check_dataset(dataset)
        x = np.asarray(theta, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{self.plugin}: expected theta of shape (n, {self.dim}), got "
                f"{np.shape(theta)}; the kwarg dim must equal the number of parameters"
            )
        out = self._gauss[dataset].loglike(x)
        if self._theta1 is not None:
            out = out + self._theta1[dataset].loglike(x[:, 0])
        return out

    # ------------------------------------------------------------------ exact references
    def log_evidence(self, datasets: Sequence[str]) -> float:
        """Exact ``log Z`` of the product of the datasets' likelihoods under the box prior.

        ``log ∫_box prod_k L_k(theta) dtheta - log V`` (truncation below 1e-9). For a sequential
        stage, ``log Z_{B|A} = log_evidence(("A", "B")) - log_evidence(("A",))``.
        """
        return self._posterior(datasets).log_evidence

    def posterior_moments(self, datasets: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean ``(d,)`` and covariance ``(d, d)`` given ``datasets``."""
        post = self._posterior(datasets)
        return post.mean.copy(), post.cov.copy()

    def sample_posterior(
        self, datasets: Sequence[str], n: int, *, seed: int | np.random.Generator | None
    ) -> np.ndarray:
        """``(n, d)`` float64 iid samples of ``p(theta | datasets)`` inside the box.

        Gaussian coordinates are drawn exactly (the rare draw outside the box is redrawn);
        bimodal's theta1 by inverse CDF on the quadrature grid (see the module docstring).
        """
        post = self._posterior(datasets)
        n = int(n)
        if n < 0:
            raise ValueError(f"sample_posterior: n must be >= 0, got {n}")
        rng = np.random.default_rng(seed)
        out = np.empty((0, self.dim))
        while out.shape[0] < n:
            draw = self._draw(post, n - out.shape[0], rng)
            out = np.concatenate([out, draw[self.params.contains(draw)]])
        return np.ascontiguousarray(out[:n])

    def _draw(self, post: _Posterior, m: int, rng: np.random.Generator) -> np.ndarray:
        x = np.empty((m, self.dim))
        if post.grid is not None:
            x[:, 0] = post.grid.sample(rng.random(m))
        z = rng.standard_normal((m, len(self._gauss_coords)))
        x[:, self._gauss_coords] = post.gauss_mean + z @ post.gauss_chol.T
        return x

    def log_posterior(self, datasets: Sequence[str], theta: Any) -> np.ndarray:
        """Exact normalised log density of ``p(theta | datasets)`` on the box.

        ``sum_k log L_k(theta) - log V - log Z``: the closed unnormalised form divided by the
        exact normaliser. ``theta (n, d)`` -> ``(n,)`` float64; ``-inf`` outside the box.
        """
        names = self._check_datasets(datasets)
        post = self._posterior(names)
        x = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        out = np.full(x.shape[0], -np.inf)
        inside = self.params.contains(x)
        if inside.any():
            xi = x[inside]
            total = sum(self._evaluate(k, xi) for k in names)
            out[inside] = total - self.params.log_volume - post.log_evidence
        return out

    def parameter_shift_sigma(self, first: Sequence[str], second: Sequence[str]) -> float:
        """Parameter-shift tension between two posteriors, as an equivalent Gaussian sigma.

        ``chi2 = (mu_2 - mu_1)^T (C_1 + C_2)^{-1} (mu_2 - mu_1)`` with exact posterior moments,
        ``p = chi2.sf(chi2, d)`` and ``sigma = norm.isf(p / 2)`` (so that
        ``p = erfc(sigma / sqrt(2))``). Exact for the Gaussian problems; a Gaussian
        approximation for bimodal.
        """
        m1, c1 = self.posterior_moments(first)
        m2, c2 = self.posterior_moments(second)
        delta = m2 - m1
        chi2 = float(delta @ np.linalg.solve(c1 + c2, delta))
        return float(stats.norm.isf(0.5 * stats.chi2.sf(chi2, self.dim)))

    # ------------------------------------------------------------------ internals
    def _check_dataset(self, dataset: Any) -> None:
        if not isinstance(dataset, str) or dataset not in self._gauss:
            raise _input_error(
                self.plugin,
                "dataset",
                f"unknown dataset {dataset!r}; choose one of {', '.join(self.datasets)}",
            )

    def _check_datasets(self, datasets: Sequence[str]) -> tuple[str, ...]:
        names = (datasets,) if isinstance(datasets, str) else tuple(datasets)
        if not names:
            raise _input_error(self.plugin, "datasets", "at least one dataset is needed")
        for k in names:
            self._check_dataset(k)
        return names

    def _posterior(self, datasets: Sequence[str]) -> _Posterior:
        key = tuple(sorted(self._check_datasets(datasets)))
        if key not in self._cache:
            self._cache[key] = self._build_posterior(key)
        return self._cache[key]

    def _build_posterior(self, key: tuple[str, ...]) -> _Posterior:
        quad = _sum_quads(self._gauss[k].quadratic_form() for k in key)
        gmean, gcov = quad.mean, quad.cov
        mean = np.zeros(self.dim)
        cov = np.zeros((self.dim, self.dim))
        idx = np.array(self._gauss_coords)
        mean[idx] = gmean
        cov[np.ix_(idx, idx)] = gcov
        log_z = quad.log_integral()
        grid = None
        if self._theta1 is not None:
            terms = [self._theta1[k] for k in key]
            lo, hi = float(self.params.lower[0]), float(self.params.upper[0])
            grid = _Grid1D.build(lambda t: sum(term.loglike(t) for term in terms), lo, hi)
            log_z += grid.log_norm
            mean[0], cov[0, 0] = grid.mean, grid.var
        for arr in (mean, cov):
            arr.setflags(write=False)
        return _Posterior(
            log_evidence=log_z - self.params.log_volume,
            mean=mean,
            cov=cov,
            gauss_mean=gmean,
            gauss_chol=np.linalg.cholesky(gcov),
            grid=grid,
        )


# ----------------------------------------------------------------------------- constructors
def _check_dim(dim: Any, *, source: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or int(dim) < 2:
        raise _input_error(source, "dim", f"expected an integer >= 2, got {dim!r}")
    return int(dim)


def _check_offset(offset: Any, *, source: str) -> float:
    ok = isinstance(offset, numbers.Real) and not isinstance(offset, bool)
    if not ok or not math.isfinite(float(offset)) or float(offset) < 0:
        raise _input_error(source, "offset", f"expected a finite number >= 0, got {offset!r}")
    return float(offset)


def _gaussian_measurements(dim: int) -> dict[str, LinearGaussian]:
    rng = np.random.default_rng([_SEED, 1, dim])
    truth = rng.uniform(-1.0, 1.0, dim)
    widths = {
        "A": np.geomspace(0.15, 1.0, dim),
        "B": np.geomspace(0.15, 1.0, dim),
        "C": np.geomspace(0.25, 1.5, dim),
    }
    return _measurements(rng, truth=truth, widths=widths, coords=tuple(range(dim)))


@functools.lru_cache(maxsize=16)
def _gaussian_linear_problem(dim: int) -> AnalysisProblem:
    meas = _gaussian_measurements(dim)
    lo, hi = _gauss_box(meas)
    space = _space(lo, hi, source=f"{SPEC_PREFIX}gaussian_linear")
    return AnalysisProblem("gaussian_linear", params=space, kwargs={"dim": dim}, gauss=meas)


def _tension_shift(c_a: np.ndarray, c_b: np.ndarray, offset: float) -> float:
    """``delta`` such that ``(delta e1)^T (C_A + C_B)^{-1} (delta e1)`` has ``offset`` sigma."""
    dim = c_a.shape[0]
    chi2 = float(stats.chi2.isf(erfc(offset / math.sqrt(2.0)), dim))
    m11 = float(np.linalg.inv(c_a + c_b)[0, 0])
    return math.sqrt(chi2 / m11)


@functools.lru_cache(maxsize=16)
def _tension_problem(dim: int, offset: float) -> AnalysisProblem:
    base = _gaussian_measurements(dim)
    qa, qb = base["A"].quadratic_form(), base["B"].quadratic_form()
    delta = np.zeros(dim)
    delta[0] = _tension_shift(qa.cov, qb.cov, offset)
    b = base["B"]
    shifted = LinearGaussian(
        G=b.G, noise_cov=b.noise_cov, y=b.G @ (qa.mean + delta), coords=b.coords
    )
    meas = {"A": base["A"], "B": shifted}
    lo, hi = _gauss_box(meas)
    space = _space(lo, hi, source=f"{SPEC_PREFIX}tension")
    return AnalysisProblem(
        "tension", params=space, kwargs={"dim": dim, "offset": offset}, gauss=meas
    )


@functools.lru_cache(maxsize=16)
def _bimodal_problem(dim: int) -> AnalysisProblem:
    rng = np.random.default_rng([_SEED, 3, dim])
    k = dim - 1
    truth = rng.uniform(-1.0, 1.0, k)
    widths = {"A": np.geomspace(0.15, 1.0, k), "B": np.geomspace(0.15, 1.0, k)}
    meas = _measurements(rng, truth=truth, widths=widths, coords=tuple(range(1, dim)))
    glo, ghi = _gauss_box(meas)
    lo = np.concatenate([[_BIMODAL_THETA1_BOX[0]], glo])
    hi = np.concatenate([[_BIMODAL_THETA1_BOX[1]], ghi])
    space = _space(lo, hi, source=f"{SPEC_PREFIX}bimodal")
    theta1 = {
        "A": _Theta1Term("square", 4.0, 0.8),
        "B": _Theta1Term("linear", 1.0, 1.5),
    }
    return AnalysisProblem("bimodal", params=space, kwargs={"dim": dim}, gauss=meas, theta1=theta1)


# ----------------------------------------------------------------------------- plug-ins
def gaussian_linear(theta: np.ndarray, *, dataset: str, dim: int = 6) -> np.ndarray:
    """Log-likelihood of dataset ``A``, ``B`` or ``C`` of the linear-Gaussian problem.

    Parameters
    ----------
    theta : ndarray (n, dim) float64
        Parameters ``theta1 .. thetaD`` in table order.
    dataset : {"A", "B", "C"}
    dim : int, >= 2

    Returns
    -------
    ndarray (n,) float64
        ``log N(y_k; G_k theta, Sigma_k)`` (see the module docstring).
    """
    src = f"{SPEC_PREFIX}gaussian_linear"
    return _gaussian_linear_problem(_check_dim(dim, source=src))._evaluate(dataset, theta)


def tension(theta: np.ndarray, *, dataset: str, dim: int = 6, offset: float = 4.0) -> np.ndarray:
    """Log-likelihood of dataset ``A`` or ``B`` of the tension problem.

    Parameters
    ----------
    theta : ndarray (n, dim) float64
    dataset : {"A", "B"}
    dim : int, >= 2
    offset : float, >= 0
        Parameter-shift tension between the A and B posteriors, in Gaussian sigma.

    Returns
    -------
    ndarray (n,) float64
    """
    src = f"{SPEC_PREFIX}tension"
    problem = _tension_problem(_check_dim(dim, source=src), _check_offset(offset, source=src))
    return problem._evaluate(dataset, theta)


def bimodal(theta: np.ndarray, *, dataset: str, dim: int = 3) -> np.ndarray:
    """Log-likelihood of dataset ``A`` (two modes in theta1) or ``B`` of the bimodal problem.

    Parameters
    ----------
    theta : ndarray (n, dim) float64
    dataset : {"A", "B"}
    dim : int, >= 2

    Returns
    -------
    ndarray (n,) float64
        A: ``log N(4; theta1^2, 0.8^2) + log L_A^G``; B: ``log N(1; theta1, 1.5^2) + log L_B^G``.
    """
    src = f"{SPEC_PREFIX}bimodal"
    return _bimodal_problem(_check_dim(dim, source=src))._evaluate(dataset, theta)


_PLUGINS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_linear": gaussian_linear,
    "tension": tension,
    "bimodal": bimodal,
}


def _get_gaussian_linear(*, dim: int = 6) -> AnalysisProblem:
    return _gaussian_linear_problem(_check_dim(dim, source=f"{SPEC_PREFIX}gaussian_linear"))


def _get_tension(*, dim: int = 6, offset: float = 4.0) -> AnalysisProblem:
    return _tension_problem(
        _check_dim(dim, source=f"{SPEC_PREFIX}tension"),
        _check_offset(offset, source=f"{SPEC_PREFIX}tension"),
    )


def _get_bimodal(*, dim: int = 3) -> AnalysisProblem:
    return _bimodal_problem(_check_dim(dim, source=f"{SPEC_PREFIX}bimodal"))


#: Built-in analyses by name, with their keyword arguments and defaults.
ANALYSES: dict[str, dict[str, Any]] = {
    "gaussian_linear": {"dim": 6},
    "tension": {"dim": 6, "offset": 4.0},
    "bimodal": {"dim": 3},
}
_BUILDERS: dict[str, Callable[..., AnalysisProblem]] = {
    "gaussian_linear": _get_gaussian_linear,
    "tension": _get_tension,
    "bimodal": _get_bimodal,
}


def get_analysis(name: str, **kwargs: Any) -> AnalysisProblem:
    """Return the built-in analysis ``name`` (see :data:`ANALYSES`).

    Parameters
    ----------
    name : {"gaussian_linear", "tension", "bimodal"}
    **kwargs
        ``dim`` (all), ``offset`` (tension); defaults in :data:`ANALYSES`.

    Returns
    -------
    AnalysisProblem
        Shared (cached) and read-only: the same object for the same arguments.

    Raises
    ------
    InputError
        Unknown name, unknown keyword or invalid value.
    """
    if name not in _BUILDERS:
        raise _input_error(
            _MODULE,
            "analysis",
            f"unknown analysis {name!r}; choose one of " f"{', '.join(ANALYSES)}",
        )
    unknown = sorted(set(kwargs) - set(ANALYSES[name]))
    if unknown:
        raise _input_error(
            f"{SPEC_PREFIX}{name}",
            "kwargs",
            f"unknown keyword(s) {', '.join(unknown)}; expected {', '.join(ANALYSES[name])}",
        )
    return _BUILDERS[name](**kwargs)
