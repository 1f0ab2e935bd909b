"""Figures: corner plots of flow samples against a target chain.

Uses matplotlib's object interface only (no ``pyplot``), so importing or calling this module
never changes the caller's matplotlib backend or global state.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from flowprior._atomic import atomic_output_path
from flowprior.errors import InputError
from flowprior.params import ParameterSpace

__all__ = ["CONTOUR_LEVELS", "contour_levels", "plot_flow_vs_target", "tex_label"]

log = logging.getLogger(__name__)

#: Probability mass inside the 2-D contours, per ``levels`` name.
#: ``sigma``: the 1/2/3-sigma regions of a 2-D Gaussian, 1 - exp(-k^2/2) = 39.3/86.5/98.9 %.
#: ``mass``: the 1-D 1/2/3-sigma masses 68.3/95.4/99.7 %.
CONTOUR_LEVELS: dict[str, tuple[float, ...]] = {
    "sigma": tuple(1.0 - math.exp(-0.5 * k**2) for k in (1, 2, 3)),
    "mass": (0.683, 0.954, 0.997),
}

TARGET_COLOR = "black"
FLOW_COLOR = "tab:blue"


def contour_levels(levels: str | Sequence[float]) -> tuple[float, ...]:
    """Probability masses of the 2-D contours.

    Parameters
    ----------
    levels : {"sigma", "mass"} or sequence of float
        A name of :data:`CONTOUR_LEVELS`, or the masses themselves (each in (0, 1)).

    Returns
    -------
    tuple of float
        Increasing masses in (0, 1).

    Raises
    ------
    InputError
        Unknown name or a mass outside (0, 1).
    """
    if isinstance(levels, str):
        if levels not in CONTOUR_LEVELS:
            raise InputError(
                f"levels: {levels!r}: expected one of {', '.join(CONTOUR_LEVELS)} "
                "or a list of probability masses"
            )
        return CONTOUR_LEVELS[levels]
    masses = tuple(sorted(float(v) for v in levels))
    if not masses or not all(0.0 < v < 1.0 for v in masses):
        raise InputError(f"levels: {list(levels)!r}: masses must lie strictly between 0 and 1")
    return masses


def tex_label(label: str) -> str:
    """A parameter label as matplotlib mathtext: ``$...$`` added unless already present.

    Labels that mathtext cannot parse once wrapped (e.g. unbalanced braces) are returned
    unchanged, as plain text.

    Parameters
    ----------
    label : str
        LaTeX label (``\\Omega_m``) or plain name (``x1``).

    Returns
    -------
    str
    """
    if "$" in label:
        return label
    wrapped = f"${label}$"
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(wrapped)
    except ValueError:
        return label
    return wrapped


def _samples_and_weights(
    data: Any, params: ParameterSpace, *, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` samples and ``(n,)`` normalised weights of a Chain or an array."""
    if hasattr(data, "samples"):
        if tuple(data.params.names) != tuple(params.names):
            raise InputError(
                f"{what}: parameters: {list(data.params.names)} do not match "
                f"{list(params.names)}"
            )
        samples = np.asarray(data.samples, dtype=np.float64)
        weights = np.asarray(data.weights, dtype=np.float64)
    else:
        samples = np.asarray(data, dtype=np.float64)
        if samples.ndim == 1 and params.dim == 1:
            samples = samples[:, None]
        weights = np.ones(samples.shape[0])
    if samples.ndim != 2 or samples.shape[1] != params.dim:
        raise InputError(f"{what}: samples: expected shape (n, {params.dim}), got {samples.shape}")
    if samples.shape[0] < 2:
        raise InputError(f"{what}: samples: need at least 2 samples, got {samples.shape[0]}")
    return samples, weights / weights.sum()


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: Sequence[float]) -> np.ndarray:
    order = np.argsort(x)
    cdf = np.cumsum(w[order])
    return np.interp(np.asarray(q) * cdf[-1], cdf, x[order])


def _plot_ranges(
    sets: Sequence[tuple[np.ndarray, np.ndarray]], params: ParameterSpace
) -> list[tuple[float, float]]:
    """Per-parameter axis range: the 0.05-99.95 % extent of all samples, padded 10 %,
    clipped to the prior box."""
    ranges = []
    for j in range(params.dim):
        lo, hi = np.inf, -np.inf
        for x, w in sets:
            qlo, qhi = _weighted_quantile(x[:, j], w, (0.0005, 0.9995))
            lo, hi = min(lo, qlo), max(hi, qhi)
        pad = 0.1 * (hi - lo) if hi > lo else 0.05 * (params.upper[j] - params.lower[j])
        ranges.append(
            (max(float(params.lower[j]), lo - pad), min(float(params.upper[j]), hi + pad))
        )
    return ranges


def plot_flow_vs_target(
    *,
    target: Any,
    flow: Any,
    params: ParameterSpace,
    levels: str | Sequence[float] = "sigma",
    path: str | os.PathLike,
    bins: int = 40,
    smooth: float | None = 1.0,
) -> None:
    """Corner plot of flow samples (colour) over a target chain (black), written to ``path``.

    Off-diagonal panels show 2-D contours enclosing the masses of ``levels``; diagonal panels
    the weighted 1-D marginal histograms (densities). Axes are labelled with the parameters'
    LaTeX labels and limited to where the samples are, inside the prior box.

    Parameters
    ----------
    target : Chain or array_like (n, d)
        Reference samples (a Chain's weights are used).
    flow : Chain or array_like (m, d)
        Samples of the flow.
    params : ParameterSpace
        Parameters (names in column order, labels, prior box).
    levels : {"sigma", "mass"} or sequence of float
        Contour masses, see :func:`contour_levels`.
    path : path-like
        Output image; the format follows the suffix (``.png``, ``.pdf``, ...). Written
        atomically.
    bins : int
        Histogram bins per axis.
    smooth : float or None
        Gaussian smoothing (in bins) of the 2-D histograms behind the contours.

    Raises
    ------
    InputError
        Samples whose shape or parameters do not match ``params``, or bad ``levels``.
    """
    import corner
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    masses = contour_levels(levels)
    x_target, w_target = _samples_and_weights(target, params, what="target")
    x_flow, w_flow = _samples_and_weights(flow, params, what="flow")
    ranges = _plot_ranges([(x_target, w_target), (x_flow, w_flow)], params)
    labels = [tex_label(label) for label in params.labels]

    size = max(2.0 * params.dim, 5.0)
    fig = Figure(figsize=(size, size))
    common = dict(
        range=ranges,
        labels=labels,
        bins=bins,
        smooth=smooth,
        levels=masses,
        plot_datapoints=False,
        plot_density=False,
        fill_contours=False,
        hist_kwargs={"density": True},
        label_kwargs={"fontsize": 12},
        max_n_ticks=4,
    )
    for x, w, color in ((x_target, w_target, TARGET_COLOR), (x_flow, w_flow, FLOW_COLOR)):
        corner.corner(
            x,
            weights=w,
            fig=fig,
            color=color,
            contour_kwargs={"colors": [color]},
            **{**common, "hist_kwargs": {**common["hist_kwargs"], "color": color}},
        )
    # corner fixes each 1-D panel's y range to the histogram drawn last: fit both.
    for j in range(params.dim):
        ax = fig.axes[j * (params.dim + 1)]
        top = max((patch.get_xy()[:, 1].max() for patch in ax.patches), default=0.0)
        if top > 0:
            ax.set_ylim(0.0, 1.1 * top)
    ess_target = 1.0 / float(np.sum(w_target**2))
    handles = [
        Line2D([], [], color=TARGET_COLOR, label=f"target (ESS {ess_target:.0f})"),
        Line2D([], [], color=FLOW_COLOR, label=f"flow ({x_flow.shape[0]} samples)"),
    ]
    if params.dim == 1:
        fig.axes[0].legend(handles=handles, loc="best", frameon=False, fontsize=9)
    else:
        percent = ", ".join(f"{100 * m:.1f}" for m in masses)
        # In the empty upper-right panel (corner's axes are row-major, K x K).
        corner_box = fig.axes[params.dim - 1].get_position()
        fig.legend(
            handles=handles,
            loc="upper right",
            bbox_to_anchor=(corner_box.x1, corner_box.y1),
            title=f"2-D contours\n{percent} %",
            frameon=False,
            fontsize=9,
            title_fontsize=9,
        )
    with atomic_output_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    log.info("wrote %s", path)
