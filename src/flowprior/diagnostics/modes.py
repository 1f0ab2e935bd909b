"""Multimodality: :func:`count_modes` (BIC-selected Gaussian mixture, merged by
persistence of the fitted density) and :func:`mode_masses` (other samples per found mode)."""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import check_samples
from ..errors import _input_error
from ..stats import weighted_mean_cov

__all__ = ["ModeSummary", "count_modes", "mode_masses"]

logger = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics"


@dataclass(eq=False)
class ModeSummary:
    """Modes found by :func:`count_modes`.

    Attributes
    ----------
    n_modes : int
        Number of modes after merging.
    masses : ndarray (n_modes,)
        Weighted fraction of the input samples assigned to each mode, descending; modes are
        numbered in this order.
    centres : ndarray (n_modes, D)
        Weighted mean of the input samples assigned to each mode, original units.
    component_modes : ndarray (n_components,) int
        Mode of each Gaussian-mixture component (the component -> mode map).
    labels : ndarray (N,) int
        Mode of each input sample.
    model : sklearn.mixture.GaussianMixture
        The BIC-selected mixture, fitted in standardised coordinates ``(x - mean) / scale``.
    mean, scale : ndarray (D,)
        The weighted standardisation of the input.
    n_components : int
        Components chosen by BIC (before merging).
    bic : dict of int to float
        BIC of each number of components tried.
    """

    n_modes: int
    masses: np.ndarray
    centres: np.ndarray
    component_modes: np.ndarray
    labels: np.ndarray
    model: Any
    mean: np.ndarray
    scale: np.ndarray
    n_components: int
    bic: dict[int, float] = field(default_factory=dict)

    def assign(self, y: np.ndarray) -> np.ndarray:
        """Mode of each sample ``y`` ``(M, D)`` -> ``(M,)`` int.

        The mode with the largest summed responsibility of its components.
        """
        z = (np.asarray(y, dtype=np.float64) - self.mean) / self.scale
        resp = self.model.predict_proba(z)
        per_mode = np.zeros((z.shape[0], self.n_modes))
        np.add.at(per_mode.T, self.component_modes, resp.T)
        return np.argmax(per_mode, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no model)."""
        return {
            "n_modes": int(self.n_modes),
            "masses": self.masses.tolist(),
            "centres": self.centres.tolist(),
            "n_components": int(self.n_components),
            "component_modes": self.component_modes.tolist(),
            "bic": {int(k): float(v) for k, v in self.bic.items()},
        }


def _climb(model: Any, start: np.ndarray, *, max_iter: int = 500, tol: float = 1e-9) -> np.ndarray:
    """Fixed-point ascent of a Gaussian-mixture density from each row of ``start`` ``(k, D)``.

    Carreira-Perpiñán (2000): ``x <- [sum_k r_k(x) P_k]^{-1} sum_k r_k(x) P_k mu_k`` with
    ``r_k`` the responsibilities and ``P_k`` the precisions; the density never decreases.
    """
    prec = model.precisions_  # (K, D, D)
    pm = np.einsum("kij,kj->ki", prec, model.means_)  # (K, D)
    x = start.copy()
    for _ in range(max_iter):
        r = model.predict_proba(x)  # (S, K)
        lhs = np.einsum("sk,kij->sij", r, prec)
        rhs = r @ pm
        new = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        step = np.max(np.abs(new - x))
        x = new
        if step < tol:
            break
    return x


def count_modes(
    x: np.ndarray,
    *,
    w: np.ndarray | None = None,
    max_components: int = 6,
    seed: int = 0,
    n_fit: int = 5000,
    n_init: int = 2,
    merge_ratio: float = 0.8,
    min_mass: float = 0.01,
    n_graph: int = 2000,
    n_neighbors: int = 10,
    n_segment: int = 20,
) -> ModeSummary:
    """Count the modes of a weighted sample with a BIC-selected Gaussian mixture, merged.

    1. Standardise with the weighted mean and sd.
    2. Fitting points: all samples when the weights are equal and ``N <= n_fit``; otherwise
       ``n_fit`` points drawn with probability proportional to ``w`` (with replacement; equal
       weights: a uniform subsample without replacement).
    3. Fit :class:`sklearn.mixture.GaussianMixture` (full covariances, ``n_init`` starts) for
       ``k = 1 .. max_components`` and keep the ``k`` of lowest BIC.
    4. Merge components that belong to the same bump of the fitted density ``f``: BIC alone
       over-counts, since a skewed or curved (banana) unimodal density needs several
       Gaussians. From each component mean, climb ``f`` to its local maximum (fixed-point
       iteration). Build a graph of those maxima and of up to ``n_graph`` fitting points,
       first moved uphill onto the ridges of ``f`` (a few damped steps): each node joined to
       its ``n_neighbors`` nearest neighbours, plus the shortest edges that make the graph
       connected; an edge's height is the lowest ``f`` on its straight segment
       (``n_segment`` points). Then persistence-based clustering (as in ToMATo): edges are
       added by decreasing height, and when one joins two clusters they merge if its height
       (the saddle) is at least ``merge_ratio`` times the lower of the two cluster peaks,
       i.e. unless there is a real valley between them. Components whose maxima end in the
       same cluster form one mode. (The simpler test, the density on the straight segment
       between two component means, cuts across the inside of a curved ridge: it found 4 to
       5 modes in the Rosenbrock banana. Graph paths follow the ridge.)
    5. Assign every input sample to the mode with the largest summed responsibility of its
       components. Modes holding less than ``min_mass`` of the weight are dissolved one at a
       time (smallest first) and their samples reassigned the same way to the remaining
       modes: mixtures fit a broad low-weight component to heavy or skewed tails, whose
       mean can sit alone in a valley. Mode masses are the weighted fractions; modes are
       ordered by mass (descending).

    Parameters
    ----------
    x : ndarray (N, D)
    w : ndarray (N,), optional
        Importance weights; equal by default.
    max_components : int
        Largest number of mixture components tried (>= 1).
    seed : int
        Seeds the resampling and the mixture fits.
    n_fit : int
        Number of fitting points (bounds the cost).
    n_init : int
        Initialisations per mixture fit (>= 1).
    merge_ratio : float in (0, 1]
        Valley criterion of step 4: merge when saddle >= ``merge_ratio`` x lower peak.
    min_mass : float in [0, 0.5)
        Smallest mass of a mode (step 5); 0 keeps every mode.
    n_graph : int
        Largest number of fitting points in the graph of step 4.
    n_neighbors : int
        Neighbours per point in that graph.
    n_segment : int
        Points on each graph edge where the density is evaluated (>= 2).

    Returns
    -------
    ModeSummary
    """
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    src = f"{_SRC}.count_modes"
    xx, wn = check_samples(f"{_SRC}.count_modes", x, w)
    n, d = xx.shape
    for name, val, lo in (
        ("max_components", max_components, 1),
        ("n_fit", n_fit, 2),
        ("n_init", n_init, 1),
        ("n_graph", n_graph, 2),
        ("n_neighbors", n_neighbors, 1),
        ("n_segment", n_segment, 2),
    ):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < lo:
            raise _input_error(src, name, f"expected an int >= {lo}, got {val!r}")
    if not (0.0 < float(merge_ratio) <= 1.0):
        raise _input_error(src, "merge_ratio", f"expected a number in (0, 1], got {merge_ratio!r}")
    if not (0.0 <= float(min_mass) < 0.5):
        raise _input_error(src, "min_mass", f"expected a number in [0, 0.5), got {min_mass!r}")
    mean, cov = weighted_mean_cov(xx, wn)
    scale = np.sqrt(np.diag(cov))
    scale = np.where(scale > 0, scale, 1.0)
    z = (xx - mean) / scale
    rng = np.random.default_rng(seed)
    equal = bool(np.all(wn == wn[0]))
    if equal and n <= n_fit:
        z_fit = z
    elif equal:
        z_fit = z[rng.choice(n, size=int(n_fit), replace=False)]
    else:
        z_fit = z[rng.choice(n, size=int(n_fit), replace=True, p=wn)]
    uniq = np.unique(z_fit, axis=0)
    if uniq.shape[0] < 2:
        raise _input_error(src, "x", "needs at least two distinct samples with positive weight")
    k_max = max(1, min(int(max_components), uniq.shape[0] // (d + 2)))
    if uniq.shape[0] > n_graph:
        z_graph = uniq[rng.choice(uniq.shape[0], size=int(n_graph), replace=False)]
    else:
        z_graph = uniq
    bic: dict[int, float] = {}
    best = None
    with threadpool_limits(limits=1):
        for k in range(1, k_max + 1):
            gm = GaussianMixture(
                n_components=k,
                covariance_type="full",
                n_init=int(n_init),
                max_iter=500,
                reg_covar=1e-6,
                random_state=int(rng.integers(2**31)),
            ).fit(z_fit)
            bic[k] = float(gm.bic(z_fit))
            if best is None or bic[k] < bic[best[0]]:
                best = (k, gm)
        k_best, model = best
        comp_modes = _merge_components(
            model,
            z_graph,
            merge_ratio=float(merge_ratio),
            n_segment=int(n_segment),
            n_neighbors=int(n_neighbors),
        )
        resp = model.predict_proba(z)
    comp_modes, labels, masses = _assign_modes(resp, wn, comp_modes, float(min_mass))
    centres = np.array(
        [(wn[labels == m] @ xx[labels == m]) / masses[m] for m in range(masses.size)]
    )
    summary = ModeSummary(
        n_modes=int(masses.size),
        masses=masses,
        centres=centres,
        component_modes=comp_modes,
        labels=labels,
        model=model,
        mean=mean,
        scale=scale,
        n_components=k_best,
        bic=bic,
    )
    logger.info(
        "count_modes: %d component(s) by BIC -> %d mode(s), masses %s",
        k_best,
        summary.n_modes,
        np.round(masses, 3).tolist(),
    )
    return summary


def _assign_modes(
    resp: np.ndarray, wn: np.ndarray, comp_modes: np.ndarray, min_mass: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and masses from responsibilities ``(N, K)``; dissolve modes below ``min_mass``.

    Returns the component -> mode map, the labels ``(N,)`` and the masses, with modes
    renumbered by decreasing mass.
    """
    alive = sorted(set(comp_modes.tolist()))
    while True:
        per_mode = np.zeros((resp.shape[0], len(alive)))
        for j, m in enumerate(alive):
            per_mode[:, j] = resp[:, comp_modes == m].sum(axis=1)
        lab = np.argmax(per_mode, axis=1)
        mass = np.bincount(lab, weights=wn, minlength=len(alive))
        small = [j for j in np.argsort(mass, kind="stable") if mass[j] < min_mass]
        if not small or len(alive) == 1:
            break
        alive.pop(small[0])
    order = np.argsort(-mass, kind="stable")
    rank = np.empty(len(alive), dtype=int)
    rank[order] = np.arange(len(alive))
    # components of dissolved modes go to the mode holding most of their responsibility
    share = np.zeros((resp.shape[1], len(alive)))
    for j in range(len(alive)):
        share[:, j] = (resp * (wn * (lab == j))[:, None]).sum(axis=0)
    new_modes = np.empty(comp_modes.size, dtype=int)
    for c in range(comp_modes.size):
        if comp_modes[c] in alive:
            new_modes[c] = rank[alive.index(comp_modes[c])]
        else:
            new_modes[c] = rank[int(np.argmax(share[c]))]
    return new_modes, rank[lab], mass[order]


def _toward_ridges(model: Any, pts: np.ndarray, *, n_steps: int) -> np.ndarray:
    """Move points ``(n, D)`` uphill onto the ridges of a Gaussian-mixture density.

    Each step is ``sum_k r_k(x) (P_k / lambda_max(P_k)) (mu_k - x)``: a full Newton step
    across each component's narrowest direction but only a small one along its broad
    directions, so points slide onto a thin curved ridge without running along it to the
    peak. A step is taken only where it raises the density. Paths through the moved points
    then measure the density along the ridge top rather than at the scattered samples, whose
    density is lower by about ``D / 2`` nats.
    """
    prec = model.precisions_
    scaled = prec / np.linalg.eigvalsh(prec)[:, -1][:, None, None]
    smu = np.einsum("kij,kj->ki", scaled, model.means_)
    x = pts.copy()
    logf = model.score_samples(x)
    for _ in range(n_steps):
        r = model.predict_proba(x)
        step = r @ smu - np.einsum("sk,kij,sj->si", r, scaled, x)
        new = x + step
        new_logf = model.score_samples(new)
        up = new_logf > logf
        x[up], logf[up] = new[up], new_logf[up]
    return x


def _connecting_edges(points: np.ndarray, adj: list[set[int]]) -> list[tuple[int, int]]:
    """Shortest edges that join the connected components of the graph ``adj`` (Borůvka).

    Each round links every component to its nearest point outside it, until one is left.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import NearestNeighbors

    n = points.shape[0]
    rows = [i for i, nb in enumerate(adj) for _ in nb]
    cols = [j for nb in adj for j in nb]
    added: list[tuple[int, int]] = []
    while True:
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        n_comp, comp = connected_components(graph, directed=False)
        if n_comp == 1:
            return added
        for c in range(n_comp):
            inside, outside = np.flatnonzero(comp == c), np.flatnonzero(comp != c)
            dist, idx = (
                NearestNeighbors(n_neighbors=1).fit(points[outside]).kneighbors(points[inside])
            )
            best = int(np.argmin(dist[:, 0]))
            i, j = int(inside[best]), int(outside[idx[best, 0]])
            added.append((i, j))
            rows += [i, j]
            cols += [j, i]


def _merge_components(
    model: Any,
    z_graph: np.ndarray,
    *,
    merge_ratio: float,
    n_segment: int,
    n_neighbors: int,
    n_ridge_steps: int = 10,
) -> np.ndarray:
    """Component -> mode map (0-based, arbitrary order) of a fitted mixture (step 4).

    Persistence-based merging (as in ToMATo, Chazal et al. 2013) of the fitted log density
    ``f`` on a graph: the nodes are the local maxima reached from each component mean and
    the points ``z_graph`` moved onto the density ridges (:func:`_toward_ridges`); the edges
    join each node to its ``n_neighbors`` nearest neighbours, plus the shortest edges that
    make the graph connected. An edge's height is the minimum of ``f`` at ``n_segment``
    points of its straight segment, so every graph path is a real path whose lowest density
    is known. Edges are added by decreasing height (union-find): when an edge joins two
    clusters, they merge if its height is at least ``log(merge_ratio)`` plus the lower of
    the two cluster peaks; otherwise the lower cluster is a separate mode (its saddle to the
    higher one is a real valley, and later edges are only lower).
    """
    from sklearn.neighbors import NearestNeighbors

    k = model.means_.shape[0]
    if k == 1:
        return np.zeros(1, dtype=int)
    peaks = _climb(model, model.means_)
    nodes = np.concatenate([peaks, _toward_ridges(model, z_graph, n_steps=n_ridge_steps)])
    logf = model.score_samples(nodes)
    n_nb = min(int(n_neighbors) + 1, nodes.shape[0])
    neigh = NearestNeighbors(n_neighbors=n_nb).fit(nodes).kneighbors(nodes, return_distance=False)
    # symmetrised k-NN graph, made connected: k-NN graphs fall apart at sampling gaps (often
    # in 1-D), and clusters that never meet would never merge
    adj: list[set[int]] = [set() for _ in range(nodes.shape[0])]
    for i, row in enumerate(neigh):
        for j in row:
            if j != i:
                adj[i].add(int(j))
                adj[int(j)].add(i)
    for i, j in _connecting_edges(nodes, adj):
        adj[i].add(j)
        adj[j].add(i)
    edges = np.array([(i, j) for i, nb in enumerate(adj) for j in nb if i < j], dtype=int)
    t = np.linspace(0.0, 1.0, n_segment)
    height = np.empty(len(edges))
    chunk = max(1, 200_000 // n_segment)
    for lo in range(0, len(edges), chunk):
        e = edges[lo : lo + chunk]
        a, b = nodes[e[:, 0]], nodes[e[:, 1]]
        seg = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]
        vals = model.score_samples(seg.reshape(-1, nodes.shape[1])).reshape(len(e), n_segment)
        height[lo : lo + chunk] = vals.min(axis=1)

    parent = np.arange(nodes.shape[0])
    peak = logf.copy()  # highest log density in each cluster (valid at the roots)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    log_ratio = math.log(merge_ratio)
    for e in np.argsort(-height, kind="stable"):
        ru, rv = find(int(edges[e, 0])), find(int(edges[e, 1]))
        if ru != rv and height[e] >= log_ratio + min(peak[ru], peak[rv]):
            hi, lo = (ru, rv) if peak[ru] >= peak[rv] else (rv, ru)
            parent[lo] = hi
    roots = [find(c) for c in range(k)]
    ids = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return np.array([ids[r] for r in roots], dtype=int)


def mode_masses(result: ModeSummary, y: np.ndarray, *, w: np.ndarray | None = None) -> np.ndarray:
    """Mass per mode of other samples ``y`` under the modes found by :func:`count_modes`.

    Each sample goes to the mode with the largest summed responsibility of the fitted mixture
    (as in :func:`count_modes`), so e.g. flow samples can be compared with the chain's
    ``result.masses`` mode by mode.

    Parameters
    ----------
    result : ModeSummary
    y : ndarray (M, D)
    w : ndarray (M,), optional
        Importance weights; equal by default.

    Returns
    -------
    ndarray (result.n_modes,)
        Weighted fraction of ``y`` in each mode, in the order of ``result.masses``.
    """
    yy, wn = check_samples(f"{_SRC}.mode_masses", y, w, xname="y", dim=result.mean.size)
    labels = result.assign(yy)
    return np.bincount(labels, weights=wn, minlength=result.n_modes)
