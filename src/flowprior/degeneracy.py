"""Near-exact relations among the parameters of a weighted sample (the degeneracy guard).

A flow models a density with full support. When one column of the training chain is (almost)
a smooth function of the others -- a derived parameter such as ``omegam = (omegabh2 +
omegach2 + omeganuh2) / h^2`` carried into the flow -- the distribution lives on a
lower-dimensional surface, and the flow learns only a blurred version of it (on DES Y1 the
relation holds to 7e-8 in the chain and to 7e-5 in the flow's samples). Training such a chain
is refused (:func:`check_degeneracy`, called by :func:`flowprior.train.train_flow`).

The test (:func:`residual_fractions`): each parameter, standardised, is regressed by weighted
least squares on a polynomial in the other standardised parameters (all monomials up to the
degree, with an intercept); ``1 - R^2`` is the weighted residual variance divided by the
parameter's weighted variance. The degree is 3 up to 12 parameters (:data:`MAX_FEATURES`):
a cubic holds the commonest derived relation, ``omegam h^2 = omegabh2 + omegach2 +
omeganuh2``, exactly (a quadratic leaves ``1 - R^2`` = 3e-5 on DES Y1). A parameter that the
others do not determine leaves ``1 - R^2`` of 1e-4 or more even under strong correlations
(the SEMF coefficients: 5e-5); an exact relation leaves the chain's rounding, 1e-12 to 1e-10
on the public DES Y1 and Planck 2018 chains. The measurements behind the default tolerance
are in the ``degeneracy_tolerance`` help of :class:`flowprior.train.TrainConfig` and in
docs/flows.md. Relations that no polynomial of the degree approximates closely (``H0`` as a
function of ``theta``, ``omegabh2`` and ``omegach2`` over the wide DES-only posterior:
``1 - R^2`` = 2e-4) are not caught.

Cost: the monomials of all ``d`` parameters (``p`` of them) are computed once, with one
weighted Gram matrix (``n p^2``); each regression solves a system of the monomials free of its
parameter, refined against the data. At most :data:`MAX_ROWS` rows are used (a seeded uniform
subsample). About 0.4 s for 9 parameters and 20 000 rows, 1.5 s for 30 (one thread); a chain
that fails takes a few times longer (the carriers of each relation are searched).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Sequence

import numpy as np
import scipy.linalg

from .chains import Chain
from .errors import _input_error
from .stats import kish_ess, weighted_mean_sd

__all__ = [
    "MAX_ROWS",
    "MAX_FEATURES",
    "Relation",
    "check_degeneracy",
    "near_exact_relations",
    "polynomial_degree",
    "residual_fractions",
]

log = logging.getLogger(__name__)

#: Largest number of rows the regressions use (a seeded uniform subsample of the rest).
MAX_ROWS = 20_000
#: The polynomial's degree is the highest of 3, 2, 1 whose monomials of all d parameters number
#: at most this (``C(d + k, k) - 1``): cubic up to 12 parameters, quadratic up to 30, linear
#: above. It bounds the cost (one ``n x p`` Gram matrix, ``p x p`` solves).
MAX_FEATURES = 500
#: Fewest (effective) rows per monomial: with fewer, an overfitted regression could pass as a
#: relation (it lowers 1 - R^2 by about a factor 1 - p / ESS).
_ROWS_PER_FEATURE = 10
#: A column whose standard deviation is below this fraction of its magnitude is constant (its
#: standardised values would be rounding noise).
_CONSTANT_RTOL = 1e-12
#: Ridge added to the Gram matrix of the unit-variance features before each solve.
_RIDGE = 1e-10


@dataclass(frozen=True)
class Relation:
    """A parameter that the others determine almost exactly.

    Attributes
    ----------
    parameter : str
        The determined parameter.
    carriers : tuple of str
        The other parameters that carry the relation: what is left after dropping, one by one,
        those that the relation does not need (it still holds without them), most important
        first; empty for a constant column.
    residual : float
        ``1 - R^2`` of the parameter's regression on the others (0 for a constant column).
    """

    parameter: str
    carriers: tuple[str, ...]
    residual: float

    def describe(self) -> str:
        """``"omegam is determined by omegabh2, omegach2, H0 to 1 - R^2 = 3e-09"``."""
        if not self.carriers:
            return f"{self.parameter} is constant"
        by = ", ".join(self.carriers)
        return f"{self.parameter} is determined by {by} to 1 - R^2 = {self.residual:.1e}"


class _Design:
    """Standardised columns, their polynomial features and the weighted Gram matrix."""

    def __init__(self, x: np.ndarray, w: np.ndarray, *, degree: int) -> None:
        self.d = x.shape[1]
        self.w = w / w.sum()
        mean, sd = weighted_mean_sd(x, self.w)
        self.constant = sd <= _CONSTANT_RTOL * np.maximum(np.abs(mean), np.finfo(float).tiny)
        z = (x - mean) / np.where(self.constant, 1.0, sd)
        monomials = [
            c for k in range(1, degree + 1) for c in combinations_with_replacement(range(self.d), k)
        ]  # the first d are the parameters themselves
        self.involves = [set(m) for m in monomials]
        phi = np.column_stack([np.prod(z[:, list(m)], axis=1) for m in monomials])
        f_mean, f_sd = weighted_mean_sd(phi, self.w)
        f_sd = np.where(f_sd > 0, f_sd, 1.0)
        # Centred (the intercept) and scaled features, times sqrt(w): plain least squares.
        self.phi = (phi - f_mean) / f_sd * np.sqrt(self.w)[:, None]
        self.gram = self.phi.T @ self.phi

    def residual(self, target: int, *, without: frozenset[int] = frozenset()) -> float:
        """``1 - R^2`` of column ``target`` on the features free of ``target`` and ``without``."""
        drop = without | {target}
        cols = np.array([k for k, inv in enumerate(self.involves) if not inv & drop], dtype=int)
        y = self.phi[:, target]
        tss = float(y @ y)
        if cols.size == 0:
            return 1.0
        # Normal equations with a tiny ridge (exactly collinear features stay solvable), then
        # refined against the data: the residual is what plain least squares leaves.
        gram = self.gram[np.ix_(cols, cols)] + _RIDGE * np.eye(cols.size)
        factor = scipy.linalg.cho_factor(gram, check_finite=False)
        coef = np.zeros(self.phi.shape[1])
        r = y
        for _ in range(3):
            coef[cols] += scipy.linalg.cho_solve(factor, (self.phi.T @ r)[cols], check_finite=False)
            r = y - self.phi @ coef
        return min(float(r @ r) / tss, 1.0)


def polynomial_degree(dim: int, *, ess: float = math.inf) -> int:
    """Degree of the polynomial for ``dim`` parameters and a Kish ESS of ``ess``.

    The highest of 3, 2, 1 whose monomials (``C(dim + k, k) - 1``) number at most
    :data:`MAX_FEATURES` and at most ``ess`` / :data:`_ROWS_PER_FEATURE` (so that a fit
    cannot pass through a few heavy points); 0 when not even the linear terms qualify (the
    check is then skipped).
    """
    budget = min(MAX_FEATURES, ess / _ROWS_PER_FEATURE)
    return next((k for k in (3, 2, 1) if math.comb(dim + k, k) - 1 <= budget), 0)


def _weighted_rows(
    x: np.ndarray, w: np.ndarray | None, names: Sequence[str], *, max_rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"x must be (n, {len(names)}), got shape {x.shape}")
    w = np.ones(x.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != (x.shape[0],):
        raise ValueError(f"w must be ({x.shape[0]},), got shape {w.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise ValueError("x and w must be finite, w >= 0")
    keep = w > 0
    x, w = x[keep], w[keep]
    if x.shape[0] == 0:
        raise ValueError("no row has a positive weight")
    if x.shape[0] > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], max_rows, replace=False))
        x, w = x[rows], w[rows]
    return x, w / w.max()


def residual_fractions(
    x: np.ndarray,
    w: np.ndarray | None,
    names: Sequence[str],
    *,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    degree: int | None = None,
) -> dict[str, float]:
    """``1 - R^2`` of each parameter's polynomial regression on the others.

    Parameters
    ----------
    x : ndarray (n, d)
        Samples, columns in ``names`` order.
    w : ndarray (n,) or None
        Non-negative weights (zero-weight rows are ignored); None: equal.
    names : sequence of str, length d
    max_rows : int
        At most this many rows are used (a uniform subsample drawn with ``seed``).
    seed : int
    degree : int, optional
        Degree of the polynomial; default :func:`polynomial_degree` of ``d`` and the Kish
        ESS of the rows used.

    Returns
    -------
    dict of str to float
        Name -> weighted ``1 - R^2`` (0 for a constant column, 1 when ``d`` is 1, NaN for
        all when the ESS is below ``10 d``: too few effective rows for even a linear fit).

    Raises
    ------
    ValueError
        Shapes that do not match ``names``, non-finite values, negative weights, or no row
        with a positive weight.
    """
    x, w = _weighted_rows(x, w, names, max_rows=max_rows, seed=seed)
    degree = degree or polynomial_degree(x.shape[1], ess=kish_ess(w))
    if degree == 0:
        return {name: math.nan for name in names}
    design = _Design(x, w, degree=degree)
    gone = frozenset(np.flatnonzero(design.constant).tolist())
    return {
        name: 0.0 if j in gone else design.residual(j, without=gone) for j, name in enumerate(names)
    }


def near_exact_relations(
    x: np.ndarray,
    w: np.ndarray | None,
    names: Sequence[str],
    *,
    tolerance: float,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> list[Relation]:
    """The parameters that the others determine to ``1 - R^2 < tolerance``.

    Parameters are as for :func:`residual_fractions`; ``tolerance`` 0 finds nothing.

    Returns
    -------
    list of Relation
        Constant columns first, then by increasing ``1 - R^2``; empty when there is none.
    """
    names = [str(n) for n in names]
    x, w = _weighted_rows(x, w, names, max_rows=max_rows, seed=seed)
    d = x.shape[1]
    degree = polynomial_degree(d, ess=kish_ess(w))
    if tolerance <= 0 or degree == 0:
        if tolerance > 0:
            log.info(
                "degeneracy check skipped: Kish ESS %.0f < %d", kish_ess(w), _ROWS_PER_FEATURE * d
            )
        return []
    design = _Design(x, w, degree=degree)
    found = [Relation(names[j], (), 0.0) for j in range(d) if design.constant[j]]
    # Constant columns are reported once, and left out of the other regressions.
    gone = frozenset(np.flatnonzero(design.constant).tolist())
    for j in range(d):
        if j in gone:
            continue
        resid = design.residual(j, without=gone)
        if resid < tolerance:
            found.append(Relation(names[j], _carriers(design, j, gone, names, tolerance), resid))
    return sorted(found, key=lambda r: (bool(r.carriers), r.residual))


def _carriers(
    design: _Design,
    target: int,
    gone: frozenset[int],
    names: list[str],
    tolerance: float,
) -> tuple[str, ...]:
    """A small set of parameters that still determines ``target`` to within ``tolerance``.

    Backward elimination: the parameters are tried in the order of the residual their removal
    alone leaves (smallest first), and each is dropped if the relation still holds without it
    and those dropped before. What is left carries the relation, ordered by how much its
    removal would cost.
    """
    others = [k for k in range(design.d) if k != target and k not in gone]
    alone = {k: design.residual(target, without=gone | {k}) for k in others}
    dropped = set(gone)
    for k in sorted(others, key=alone.get):
        if len(others) - len(dropped - gone) > 1 and alone[k] < tolerance:
            if design.residual(target, without=frozenset(dropped | {k})) < tolerance:
                dropped.add(k)
    keep = [k for k in others if k not in dropped]
    cost = {k: design.residual(target, without=frozenset(dropped | {k})) for k in keep}
    return tuple(names[k] for k in sorted(keep, key=lambda k: -cost[k]))


def check_degeneracy(chain: Chain, *, tolerance: float, seed: int = 0) -> None:
    """Raise when a parameter of ``chain`` is a near-exact function of the others.

    Parameters
    ----------
    chain : Chain
    tolerance : float
        Largest ``1 - R^2`` that is a near-exact relation (``TrainConfig.degeneracy_tolerance``;
        0 disables the check).
    seed : int
        Seed of the row subsample (chains of more than :data:`MAX_ROWS` rows).

    Raises
    ------
    InputError
        One line: ``<source>: parameters: near-exact relation: <parameter> is determined by
        <others> to 1 - R^2 = ... (< degeneracy_tolerance ...); ...``.
    """
    if tolerance <= 0:
        return
    found = near_exact_relations(
        chain.samples, chain.weights, chain.params.names, tolerance=tolerance, seed=seed
    )
    if not found:
        return
    first, rest = found[0], found[1:]
    also = f"; also {', '.join(r.parameter for r in rest)}" if rest else ""
    raise _input_error(
        chain.source,
        "parameters",
        f"near-exact relation: {first.describe()} (< degeneracy_tolerance {tolerance:g}){also}; "
        "a flow cannot model a distribution on a surface: drop derived parameters from the "
        "flow (select the sampled ones), or set degeneracy_tolerance 0 to train anyway",
    )
