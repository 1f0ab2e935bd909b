"""Figures: corner plots and diagnostics of (sequential) posterior analyses.

* :func:`plot_flow_vs_target` -- flow samples over the chain the flow was trained on;
* :func:`plot_sequential_vs_joint` -- the joint, stage-1 and final sequential posteriors of one
  sequence (solid, dotted and dashed contours);
* :func:`plot_training_curves` -- training loss and validation NLL of a flow against step;
* :func:`plot_score_vs_time` -- held-out score against training time of a training-strategy
  study;
* :func:`plot_agreement` -- a dot chart of per-parameter agreement metrics (mean shift, s.d.
  ratio) of sequential against joint posteriors;
* :func:`plot_sampler_comparison` -- every sampler run of an analysis side by side: likelihood
  calls, wall time, C2ST against the exact posterior and log Z.

Every figure uses matplotlib's object interface only (no ``pyplot``): importing this module or
calling :func:`plot_training_curves` / :func:`plot_agreement` never imports ``pyplot``, and no
function changes the caller's matplotlib backend, rcParams or open figures (``corner`` imports
``pyplot`` itself but draws into the figure it is given). Colours come from the colour-blind-safe
Okabe--Ito palette (:data:`OKABE_ITO`); text is at least 8 pt at the figure's final size; every
file is written atomically (the format follows the suffix of ``path``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flowprior._atomic import atomic_output_path
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.stats import weighted_quantile

__all__ = [
    "CONTOUR_LEVELS",
    "FIGURE_FORMATS",
    "OKABE_ITO",
    "PALETTE",
    "contour_levels",
    "plot_agreement",
    "plot_flow_vs_target",
    "plot_ranges",
    "plot_sampler_comparison",
    "plot_score_vs_time",
    "plot_sequential_vs_joint",
    "plot_training_curves",
    "tex_label",
]

log = logging.getLogger(__name__)

#: Probability mass inside the 2-D contours, per ``levels`` name.
#: ``sigma``: the 1/2/3-sigma regions of a 2-D Gaussian, 1 - exp(-k^2/2) = 39.3/86.5/98.9 %.
#: ``mass``: the 1-D 1/2/3-sigma masses 68.3/95.4/99.7 %.
CONTOUR_LEVELS: dict[str, tuple[float, ...]] = {
    "sigma": tuple(1.0 - math.exp(-0.5 * k**2) for k in (1, 2, 3)),
    "mass": (0.683, 0.954, 0.997),
}

#: The Okabe & Ito (2008) colour-blind-safe palette, by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: Order in which series take colours (yellow last: it is faint on white).
PALETTE: tuple[str, ...] = tuple(
    OKABE_ITO[name]
    for name in (
        "blue",
        "vermillion",
        "bluish_green",
        "reddish_purple",
        "orange",
        "sky_blue",
        "black",
        "yellow",
    )
)

TARGET_COLOR = OKABE_ITO["black"]
FLOW_COLOR = OKABE_ITO["blue"]

#: Suffixes (formats) the figure functions write.
FIGURE_FORMATS = (".png", ".pdf", ".svg", ".eps")

# Text sizes in points at the figure's final size (journals ask for >= 7-8 pt).
_TICK_PT = 8.0
_LABEL_PT = 10.0
_LEGEND_PT = 8.5
_TITLE_PT = 10.5
_PAD_IN = 0.05  # blank border around the drawing, inches


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


def _plot_ranges(
    sets: Sequence[tuple[np.ndarray, np.ndarray]],
    params: ParameterSpace,
    *,
    quantiles: tuple[float, float] = (0.0005, 0.9995),
    pad: float = 0.1,
) -> list[tuple[float, float]]:
    """Per-parameter axis range: the ``quantiles`` extent of all sets, padded by ``pad`` of its
    width on each side, clipped to the prior box (validated inputs)."""
    ranges = []
    for j in range(params.dim):
        box_lo, box_hi = float(params.lower[j]), float(params.upper[j])
        lo, hi = np.inf, -np.inf
        for x, w in sets:
            qlo, qhi = weighted_quantile(x[:, j], quantiles, w)
            lo, hi = min(lo, float(qlo)), max(hi, float(qhi))
        width = pad * (hi - lo) if hi > lo else 0.05 * (box_hi - box_lo)
        lo, hi = max(box_lo, lo - width), min(box_hi, hi + width)
        if not hi > lo:  # everything on one face of the box
            half = 0.05 * (box_hi - box_lo)
            lo, hi = max(box_lo, lo - half), min(box_hi, hi + half)
        ranges.append((lo, hi))
    return ranges


def plot_ranges(
    samples: Sequence[Any],
    params: ParameterSpace,
    *,
    weights: Sequence[Any | None] | None = None,
    quantiles: tuple[float, float] = (0.001, 0.999),
    pad: float = 0.1,
) -> list[tuple[float, float]]:
    """Common axis ranges of several weighted sample sets, as in the comparison figures.

    Per parameter: from the smallest lower to the largest upper weighted quantile over the
    sets, widened by ``pad`` times that width on both sides, intersected with the prior box.

    Parameters
    ----------
    samples : sequence of Chain or array_like (n_k, d)
        The sample sets (a Chain's weights are used).
    params : ParameterSpace
        Column order and prior box.
    weights : sequence of (array_like (n_k,) or None), optional
        Weights of the array sets (None: equal weights); one entry per set.
    quantiles : (float, float)
        Lower and upper probability of the extent, ``0 <= q_lo < q_hi <= 1``.
    pad : float
        Fraction of the extent added on both sides (>= 0).

    Returns
    -------
    list of (float, float), length d

    Raises
    ------
    InputError
        Bad shapes, weights, quantiles or pad (the message names the argument).
    """
    samples = list(samples)
    if not samples:
        raise InputError("samples: give at least one sample set")
    if weights is None:
        weights = [None] * len(samples)
    weights = list(weights)
    if len(weights) != len(samples):
        raise InputError(
            f"weights: {len(weights)} entries for {len(samples)} sample sets; give one each"
        )
    q_lo, q_hi = (float(q) for q in quantiles)
    if not 0.0 <= q_lo < q_hi <= 1.0:
        raise InputError(f"quantiles: {quantiles!r}: need 0 <= low < high <= 1")
    if not (math.isfinite(pad) and pad >= 0):
        raise InputError(f"pad: {pad!r}: need a finite number >= 0")
    sets = [
        _weighted_set(x, w, params, what=f"samples[{k}]", weights_name=f"weights[{k}]")
        for k, (x, w) in enumerate(zip(samples, weights))
    ]
    return _plot_ranges(sets, params, quantiles=(q_lo, q_hi), pad=float(pad))


def _weighted_set(
    data: Any, weights: Any, params: ParameterSpace, *, what: str, weights_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(n, d)`` finite samples and ``(n,)`` weights summing to 1.

    ``data`` is a Chain (its weights; then ``weights`` must be None) or an array with optional
    separate ``weights``. Errors name ``what`` / ``weights_name``.
    """
    if hasattr(data, "samples"):
        if weights is not None:
            raise InputError(
                f"{weights_name}: {what} is a Chain with its own weights; "
                f"pass {weights_name}=None or the bare sample array"
            )
        samples, w = _samples_and_weights(data, params, what=what)
    else:
        samples, w = _samples_and_weights(data, params, what=what)
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (samples.shape[0],):
                raise InputError(
                    f"{weights_name}: expected shape ({samples.shape[0]},) to match {what}, "
                    f"got {w.shape}"
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
                raise InputError(f"{weights_name}: weights must be finite, >= 0 and not all zero")
            w = w / w.sum()
    bad = ~np.all(np.isfinite(samples), axis=1)
    if np.any(bad):
        raise InputError(f"{what}: samples: {int(bad.sum())} rows hold NaN or inf")
    return samples, w


def _figure_path(path: str | os.PathLike) -> tuple[Path, str]:
    """``(path, format)``; checks the suffix and the directory before any drawing."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise InputError(
            f"path: {os.fspath(path)}: unsupported figure suffix {path.suffix!r}; "
            f"use one of {', '.join(FIGURE_FORMATS)}"
        )
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(
            f"path: {os.fspath(path)}: directory {os.fspath(directory)} does not exist"
        )
    return path, suffix[1:]


def _save(fig: Any, path: Path, fmt: str, *, dpi: float) -> None:
    """Write ``fig`` atomically; PDF without a creation date (reproducible bytes)."""
    metadata = {"CreationDate": None} if fmt == "pdf" else None
    with atomic_output_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    log.info("wrote %s", path)


def _check_dpi(dpi: Any) -> float:
    if not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and dpi > 0):
        raise InputError(f"dpi: {dpi!r}: need a positive number")
    return float(dpi)


def _check_figsize(figsize: Any, default: tuple[float, float]) -> tuple[float, float]:
    if figsize is None:
        return default
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise InputError(f"figsize: {figsize!r}: need (width, height) in inches") from None
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise InputError(f"figsize: {figsize!r}: need positive finite (width, height) in inches")
    return w, h


def plot_flow_vs_target(
    *,
    target: Any,
    flow: Any,
    params: ParameterSpace,
    levels: str | Sequence[float] = "sigma",
    path: str | os.PathLike,
    bins: int = 30,
    smooth: float | None = 1.0,
    title: str | None = None,
    dpi: float = 200,
) -> None:
    """Corner plot of flow samples (blue, dashed) over a target chain (black), written to ``path``.

    The layout of :func:`plot_sequential_vs_joint` (readable at print size, no overlapping tick
    labels, legend in the empty upper triangle): off-diagonal panels show 2-D contours
    enclosing the masses of ``levels``; diagonal panels the weighted, lightly smoothed 1-D
    marginal densities. Axes are labelled with the parameters' LaTeX labels and limited to
    where the samples are, inside the prior box.

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
        Output image; the format follows the suffix (:data:`FIGURE_FORMATS`). Written
        atomically.
    bins : int
        Histogram bins across each set's own extent.
    smooth : float or None
        Gaussian smoothing (in bins) of the histograms behind the contours and 1-D curves.
    title : str, optional
    dpi : float
        Resolution of raster output.

    Raises
    ------
    InputError
        Samples whose shape or parameters do not match ``params``, or bad ``levels``.
    """
    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    masses = contour_levels(levels)
    x_target, w_target = _samples_and_weights(target, params, what="target")
    x_flow, w_flow = _samples_and_weights(flow, params, what="flow")
    if not (isinstance(bins, (int, np.integer)) and bins >= 5):
        raise InputError(f"bins: {bins!r}: need an integer >= 5")
    ess_target = 1.0 / float(np.sum(w_target**2))
    fig = _corner_sets_figure(
        params=params,
        sets=[(x_target, w_target), (x_flow, w_flow)],
        styles=(SEQUENTIAL_STYLES[0], SEQUENTIAL_STYLES[2]),
        labels=[f"target (ESS {ess_target:.0f})", f"flow ({x_flow.shape[0]} samples)"],
        masses=masses,
        legend_title=None,
        title=title,
        truths=None,
        figsize=_default_corner_size(params.dim, title),
        bins=int(bins),
        smooth=smooth,
    )
    _save(fig, path, fmt, dpi=dpi)


# ------------------------------------------------------------------------- layout helpers
def _agg_canvas(fig: Any) -> Any:
    """Attach an Agg canvas (for text measurements); returns its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _style_ticks(ax: Any) -> None:
    ax.tick_params(axis="both", which="both", labelsize=_TICK_PT)
    ax.xaxis.get_offset_text().set_fontsize(_TICK_PT)
    ax.yaxis.get_offset_text().set_fontsize(_TICK_PT)


def _ticklabel_extent(axis: Any, renderer: Any) -> Any:
    """Window bbox of an axis' tick labels (and offset text), without its label."""
    visible = axis.label.get_visible()
    axis.label.set_visible(False)
    try:
        return axis.get_tightbbox(renderer)
    finally:
        axis.label.set_visible(visible)


def _title_space(suptitle: Any, renderer: Any) -> float:
    """Inches a suptitle at the top takes, with a small gap below it (0 without one)."""
    if suptitle is None:
        return 0.0
    return suptitle.get_window_extent(renderer).height / suptitle.figure.dpi + 0.08


def _fit_margins(
    fig: Any, renderer: Any, artists: Sequence[Any], *, top_in: float = 0.0, passes: int = 3
) -> None:
    """Move the subplot edges so that ``artists`` fill the figure up to a :data:`_PAD_IN` border
    (and ``top_in`` inches kept free at the top). Panel contents keep fixed offsets in inches
    from their axes, so a few passes converge."""
    from matplotlib.transforms import Bbox

    width, height = fig.get_size_inches()
    dpi = fig.dpi
    for _ in range(passes):
        boxes = [a.get_tightbbox(renderer) for a in artists]
        bb = Bbox.union([b for b in boxes if b is not None and b.width > 0])
        x0, y0, x1, y1 = bb.x0 / dpi, bb.y0 / dpi, bb.x1 / dpi, bb.y1 / dpi
        sp = fig.subplotpars
        left = sp.left + (_PAD_IN - x0) / width
        right = sp.right + (width - _PAD_IN - x1) / width
        bottom = sp.bottom + (_PAD_IN - y0) / height
        top = sp.top + (height - _PAD_IN - top_in - y1) / height
        if not (0 < left < right < 1 and 0 < bottom < top < 1):
            raise InputError(
                f"figsize: {tuple(fig.get_size_inches())} inches is too small for the labels"
            )
        change = max(abs(left - sp.left), abs(right - sp.right))
        change = max(change, abs(bottom - sp.bottom), abs(top - sp.top))
        fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
        if change < 0.25 / (dpi * max(width, height)):  # converged to a quarter pixel
            break


# ------------------------------------------------------------------ sequential vs joint
#: Line styles and colours of :func:`plot_sequential_vs_joint` (joint, stage 1, sequential).
SEQUENTIAL_STYLES: tuple[dict[str, Any], ...] = (
    {"color": OKABE_ITO["black"], "linestyle": "solid", "linewidth": 1.3},
    {"color": OKABE_ITO["vermillion"], "linestyle": (0, (1.0, 1.3)), "linewidth": 1.5},
    {"color": OKABE_ITO["blue"], "linestyle": (0, (4.0, 1.8)), "linewidth": 1.4},
)
TRUTH_COLOR = OKABE_ITO["bluish_green"]


def _set_bins(
    x: np.ndarray, w: np.ndarray, ranges: Sequence[tuple[float, float]], bins: int
) -> list[int]:
    """Bins per parameter so that each set spans about ``bins`` bins of its own extent, not of the
    common range (a narrow joint posterior inside a wide stage-1 range keeps smooth contours)."""
    out = []
    for j, (lo, hi) in enumerate(ranges):
        qlo, qhi = weighted_quantile(x[:, j], (0.001, 0.999), w)
        own = max(float(qhi - qlo), 1e-12 * (hi - lo))
        out.append(int(np.clip(round(bins * (hi - lo) / (1.2 * own)), bins, 4 * bins)))
    return out


def _marginal_1d(
    x: np.ndarray, w: np.ndarray, lo: float, hi: float, bins: int, smooth: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted 1-D density on bin centres, Gaussian-smoothed by ``smooth`` bins (reflecting at
    the range ends, which is right where the range is a prior bound)."""
    from scipy.ndimage import gaussian_filter1d

    density, edges = np.histogram(x, bins=bins, range=(lo, hi), weights=w, density=False)
    density = density / (edges[1] - edges[0])
    if smooth:
        density = gaussian_filter1d(density, smooth, mode="reflect")
    centres = 0.5 * (edges[1:] + edges[:-1])
    # Close the curve at the range ends (steps at the edges would read as truncation).
    return np.concatenate([[lo], centres, [hi]]), np.concatenate(
        [density[:1], density, density[-1:]]
    )


def _inner_ticks(lo: float, hi: float, max_ticks: int = 3) -> np.ndarray:
    """At most ``max_ticks`` round tick values at least 8 % of the width inside ``(lo, hi)``, so
    that labels of neighbouring panels never meet at a shared edge."""
    from matplotlib.ticker import MaxNLocator

    margin = 0.08 * (hi - lo)
    for nbins in (max_ticks, max_ticks + 1, 2 * max_ticks):
        values = MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        values = values[(values >= lo + margin) & (values <= hi - margin)]
        if 2 <= len(values) <= max_ticks:
            return values
        if len(values) > max_ticks:
            return values[:: math.ceil(len(values) / max_ticks)]
    return values


def _overlapping(texts: Sequence[Any], renderer: Any, gap_px: float) -> bool:
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
    boxes.sort(key=lambda b: b.x0)
    return any(b.x0 - a.x1 < gap_px for a, b in zip(boxes, boxes[1:]))


def _visible_ticklabels(ax: Any, which: str) -> list[Any]:
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    return [
        t.label1
        for t in axis.get_major_ticks()
        if lo <= t.get_loc() <= hi and t.label1.get_visible() and t.label1.get_text()
    ]


def _corner_sets_figure(
    *,
    params: ParameterSpace,
    sets: Sequence[tuple[np.ndarray, np.ndarray]],
    styles: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    masses: tuple[float, ...],
    legend_title: str | None,
    title: str | None,
    truths: np.ndarray | None,
    figsize: tuple[float, float],
    bins: int,
    smooth: float | None,
) -> Any:
    """A corner figure of several weighted sets, one line style each (no file written).

    corner draws the 2-D contours; the 1-D marginals are smoothed densities drawn here (a
    dotted or dashed step histogram is hard to read); ticks, labels, legend and margins are
    laid out here from measured text extents.
    """
    import corner
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator
    from matplotlib.transforms import ScaledTranslation

    dim = params.dim
    ranges = _plot_ranges(sets, params, quantiles=(0.001, 0.999), pad=0.1)
    axis_labels = [tex_label(label) for label in params.labels]
    fig = Figure(figsize=figsize)
    renderer = _agg_canvas(fig)
    for (x, w), style in zip(sets, styles):
        set_bins = _set_bins(x, w, ranges, bins)
        color, ls, lw = style["color"], style["linestyle"], style["linewidth"]
        corner.corner(
            x,
            weights=w,
            fig=fig,
            range=ranges,
            bins=set_bins,
            smooth=smooth,
            levels=masses,
            color=color,
            max_n_ticks=3,
            plot_datapoints=False,
            plot_density=False,
            fill_contours=False,
            no_fill_contours=True,
            contour_kwargs={"colors": [color], "linestyles": [ls], "linewidths": [lw]},
            hist_kwargs={"visible": False, "histtype": "step"},
        )
        axes = np.asarray(fig.axes).reshape(dim, dim)
        for j in range(dim):
            xs, ys = _marginal_1d(x[:, j], w, *ranges[j], set_bins[j], smooth)
            axes[j, j].plot(xs, ys, color=color, linestyle=ls, linewidth=lw)
    axes = np.asarray(fig.axes).reshape(dim, dim)
    ticks = [_inner_ticks(lo, hi) for lo, hi in ranges]
    for i in range(dim):
        for j in range(i + 1):
            ax = axes[i, j]
            ax.set_xlim(ranges[j])
            ax.xaxis.set_major_locator(FixedLocator(ticks[j]))
            if i == j:  # 1-D density: from zero, fitting the tallest set
                for patch in list(ax.patches):
                    patch.remove()
                top = max(line.get_ydata().max() for line in ax.get_lines())
                ax.set_ylim(0.0, 1.08 * top)
                ax.yaxis.set_major_locator(NullLocator())
            else:
                ax.set_ylim(ranges[i])
                ax.yaxis.set_major_locator(FixedLocator(ticks[i]))
            _style_ticks(ax)
            ax.tick_params(axis="both", labelrotation=0)
    if truths is not None:  # thin lines under the contours (NaN: none for that parameter)
        for i in range(dim):
            for j in range(i + 1):
                line = dict(color=TRUTH_COLOR, linewidth=1.0, zorder=0)
                if np.isfinite(truths[j]):
                    axes[i, j].axvline(truths[j], **line)
                if i != j and np.isfinite(truths[i]):
                    axes[i, j].axhline(truths[i], **line)
    fig.subplots_adjust(left=0.15, bottom=0.15, right=0.97, top=0.97, wspace=0.06, hspace=0.06)
    # Bottom-row tick labels: horizontal unless neighbours would touch, then 45 degrees.
    fig.draw_without_rendering()
    bottom = [axes[dim - 1, j] for j in range(dim)]
    texts = [t for ax in bottom for t in _visible_ticklabels(ax, "x")]
    if _overlapping(texts, renderer, gap_px=3.0 * fig.dpi / 72.0):
        for ax in bottom:
            ax.tick_params(axis="x", labelrotation=45)
            for lbl in ax.get_xticklabels():
                lbl.set_horizontalalignment("right")
                lbl.set_rotation_mode("anchor")
        fig.draw_without_rendering()
    # Axis labels a fixed 4 pt beyond the lowest / leftmost tick label of their row / column
    # (in inches from the axes, so they stay put when the margins are refitted below).
    gap = 4.0 / 72.0
    inv = fig.dpi_scale_trans.inverted()

    def _inches(px: float) -> float:
        return float(inv.transform((px, 0.0))[0])

    low = min(
        _inches(e.y0) - _inches(ax.get_window_extent(renderer).y0)
        for ax in bottom
        if (e := _ticklabel_extent(ax.xaxis, renderer)) is not None
    )
    for ax, text in zip(bottom, axis_labels):
        ax.set_xlabel(text, fontsize=_LABEL_PT)
        ax.xaxis.set_label_coords(
            0.5,
            0.0,
            transform=ax.transAxes + ScaledTranslation(0.0, low - gap, fig.dpi_scale_trans),
        )
        ax.xaxis.label.set_verticalalignment("top")
    if dim > 1:
        left = [axes[i, 0] for i in range(1, dim)]
        far = min(
            _inches(e.x0) - _inches(ax.get_window_extent(renderer).x0)
            for ax in left
            if (e := _ticklabel_extent(ax.yaxis, renderer)) is not None
        )
        for ax, text in zip(left, axis_labels[1:]):
            ax.set_ylabel(text, fontsize=_LABEL_PT)
            ax.yaxis.set_label_coords(
                0.0,
                0.5,
                transform=ax.transAxes + ScaledTranslation(far - gap, 0.0, fig.dpi_scale_trans),
            )
            ax.yaxis.label.set_verticalalignment("bottom")
    # Legend in the empty upper-right triangle (inside the only panel for d = 1).
    handles = [Line2D([], [], label=lab, **style) for lab, style in zip(labels, styles)]
    if truths is not None:
        handles.append(Line2D([], [], color=TRUTH_COLOR, linewidth=1.0, label="truth"))
    percent = ", ".join(f"{100 * m:.1f}" for m in masses)
    head = f"{legend_title}, " if legend_title else ""
    legend_kw = dict(
        handles=handles,
        fontsize=_LEGEND_PT,
        title=f"{head}2-D contours\n{percent} %" if dim > 1 else legend_title,
        title_fontsize=_LEGEND_PT,
        handlelength=3.2,
        frameon=False,
        alignment="left",
    )
    suptitle = None
    if title:
        suptitle = fig.suptitle(title, fontsize=_TITLE_PT, y=1.0 - _PAD_IN / figsize[1], va="top")
    occupied = [axes[i, j] for i in range(dim) for j in range(i + 1)]
    if dim == 1:
        axes[0, 0].legend(loc="best", **legend_kw)
        _fit_margins(fig, renderer, occupied, top_in=_title_space(suptitle, renderer))
        return fig
    legend = fig.legend(
        loc="upper right",
        bbox_to_anchor=(1.0, 1.0),
        bbox_transform=axes[0, dim - 1].transAxes,
        borderaxespad=0.0,
        **legend_kw,
    )
    _fit_margins(fig, renderer, [*occupied, legend], top_in=_title_space(suptitle, renderer))
    box = legend.get_window_extent(renderer).padded(4.0 * fig.dpi / 72.0)
    if any(box.overlaps(ax.get_window_extent(renderer)) for ax in occupied):
        # Too little room in the empty triangle (d = 2, long labels): above the panels, in as
        # many columns as fit the width.
        legend.remove()
        head = f"{legend_title}: " if legend_title else ""
        legend_kw.update(title=f"{head}2-D contours {percent} %", alignment="center")
        top = 1.0 - (_PAD_IN + _title_space(suptitle, renderer)) / figsize[1]
        for ncols in range(len(handles), 0, -1):
            legend = fig.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, top),
                ncols=ncols,
                columnspacing=1.2,
                borderaxespad=0.0,
                borderpad=0.0,
                **legend_kw,
            )
            if legend.get_window_extent(renderer).width <= (figsize[0] - 2 * _PAD_IN) * fig.dpi:
                break
            legend.remove()
        top_in = (
            _title_space(suptitle, renderer) + legend.get_window_extent(renderer).height / fig.dpi
        )
        _fit_margins(fig, renderer, occupied, top_in=top_in + 0.08)
    return fig


def _default_corner_size(dim: int, title: str | None) -> tuple[float, float]:
    width = {1: 3.4, 2: 4.0}.get(dim, min(1.2 + 1.0 * dim, 7.0))
    return width, width + (0.3 if title else 0.0)


def _sequential_figure(
    *,
    params: ParameterSpace,
    joint: Any,
    stage1: Any,
    sequential: Any,
    joint_weights: Any = None,
    stage1_weights: Any = None,
    sequential_weights: Any = None,
    labels: Sequence[str] = ("joint A+B", "stage 1: A", "sequential A→B"),
    sampler_name: str | None = "pocoMC",
    levels: str | Sequence[float] = "sigma",
    title: str | None = None,
    truths: Sequence[float | None] | None = None,
    figsize: tuple[float, float] | None = None,
    bins: int = 30,
    smooth: float | None = 1.0,
) -> Any:
    """The figure of :func:`plot_sequential_vs_joint` (not written; same checks)."""
    masses = contour_levels(levels)
    labels = [str(v) for v in labels] if not isinstance(labels, str) else [labels]
    if len(labels) != 3:
        raise InputError(
            f"labels: {labels!r}: need 3 entries (joint, stage 1, sequential), got {len(labels)}"
        )
    if not (isinstance(bins, (int, np.integer)) and bins >= 5):
        raise InputError(f"bins: {bins!r}: need an integer >= 5")
    sets = [
        _weighted_set(joint, joint_weights, params, what="joint", weights_name="joint_weights"),
        _weighted_set(stage1, stage1_weights, params, what="stage1", weights_name="stage1_weights"),
        _weighted_set(
            sequential,
            sequential_weights,
            params,
            what="sequential",
            weights_name="sequential_weights",
        ),
    ]
    truth_values = None
    if truths is not None:
        truths = list(truths)
        if len(truths) != params.dim:
            raise InputError(
                f"truths: {len(truths)} values for {params.dim} parameters {list(params.names)}"
            )
        truth_values = np.array([np.nan if t is None else float(t) for t in truths])
    figsize = _check_figsize(figsize, _default_corner_size(params.dim, title))
    fig = _corner_sets_figure(
        params=params,
        sets=sets,
        styles=SEQUENTIAL_STYLES,
        labels=labels,
        masses=masses,
        legend_title=sampler_name,
        title=title,
        truths=truth_values,
        figsize=figsize,
        bins=int(bins),
        smooth=smooth,
    )
    return fig


def plot_sequential_vs_joint(
    *,
    params: ParameterSpace,
    joint: Any,
    stage1: Any,
    sequential: Any,
    path: str | os.PathLike,
    joint_weights: Any = None,
    stage1_weights: Any = None,
    sequential_weights: Any = None,
    labels: Sequence[str] = ("joint A+B", "stage 1: A", "sequential A→B"),
    sampler_name: str | None = "pocoMC",
    levels: str | Sequence[float] = "sigma",
    title: str | None = None,
    truths: Sequence[float | None] | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 200,
    bins: int = 30,
    smooth: float | None = 1.0,
) -> None:
    """Corner plot of a sequential analysis against the joint analysis of the same data.

    The joint posterior is drawn solid (black), the stage-1 posterior dotted (vermillion) and
    the final sequential posterior dashed (blue): 2-D contours enclosing the masses of
    ``levels`` off the diagonal, weighted 1-D marginal densities (lightly smoothed histograms)
    on it, a legend in the empty upper-right triangle (above the panels where it does not fit). The axes cover all three sets (weighted 0.1-99.9 % extent + 10 %,
    inside the prior box; see :func:`plot_ranges`). Used for every sampler (``sampler_name``:
    pocoMC, emcee, ...).

    Parameters
    ----------
    params : ParameterSpace
        Parameters (column order, LaTeX labels, prior box).
    joint, stage1, sequential : Chain or array_like (n, d)
        The three posteriors (a Chain's weights are used).
    path : path-like
        Output figure, format by suffix (:data:`FIGURE_FORMATS`); written atomically.
    joint_weights, stage1_weights, sequential_weights : array_like (n,), optional
        Weights of array inputs (not with a Chain); default equal.
    labels : (str, str, str)
        Legend entries of joint, stage 1 and sequential.
    sampler_name : str or None
        Shown as the legend's heading (None: no heading).
    levels : {"sigma", "mass"} or sequence of float
        Contour masses, see :func:`contour_levels` (default: 39.3/86.5/98.9 %).
    title : str, optional
        Figure title.
    truths : sequence of (float or None), length d, optional
        True values, drawn as thin lines (None skips a parameter).
    figsize : (float, float), optional
        Inches; default 3.4 (d = 1), 4 (d = 2), else 1.2 + d up to 7 inches wide (a
        journal's column to page width), square plus room for a title.
    dpi : float
        Resolution of raster output (the PNG is ``figsize * dpi`` pixels).
    bins : int
        Histogram bins across each set's own extent (more where a set is narrow).
    smooth : float or None
        Gaussian smoothing, in bins, of the histograms behind the contours and 1-D curves.

    Raises
    ------
    InputError
        Bad path suffix, shapes, weights, labels, truths, levels, figsize or dpi (the message
        names the argument). Nothing is written then.
    """
    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    fig = _sequential_figure(
        params=params,
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        joint_weights=joint_weights,
        stage1_weights=stage1_weights,
        sequential_weights=sequential_weights,
        labels=labels,
        sampler_name=sampler_name,
        levels=levels,
        title=title,
        truths=truths,
        figsize=figsize,
        bins=bins,
        smooth=smooth,
    )
    _save(fig, path, fmt, dpi=dpi)


# ----------------------------------------------------------------------- training curves
_HISTORY_REQUIRED = ("step", "train_loss", "val_nll")


def _history_frame(history: Any) -> Any:
    """Validated copy of a training history, sorted by step."""
    import pandas as pd

    if not isinstance(history, pd.DataFrame):
        try:
            history = pd.DataFrame(history)
        except (TypeError, ValueError) as exc:
            raise InputError(f"history: not a table ({exc})") from None
    missing = [c for c in _HISTORY_REQUIRED if c not in history.columns]
    if missing:
        raise InputError(
            f"history: columns {missing} missing; need {list(_HISTORY_REQUIRED)} "
            f"(the history.csv written with a trained flow), got {list(history.columns)}"
        )
    if len(history) == 0:
        raise InputError("history: no rows (the flow was never evaluated)")
    frame = history.copy()
    for column in ("step", "train_loss", "val_nll", "best_val_nll", "val_kl", "lr"):
        if column in frame.columns:
            try:
                frame[column] = pd.to_numeric(frame[column]).astype(np.float64)
            except (TypeError, ValueError):
                raise InputError(f"history: column {column!r}: not numeric") from None
    if not np.all(np.isfinite(frame["step"])):
        raise InputError("history: column 'step': NaN or inf")
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def _robust_upper(values: np.ndarray, lower: float) -> float:
    """Upper y limit that keeps the converged part readable: the early transient (first
    evaluations, often far above) is allowed to leave the panel when it would squash the rest."""
    finite = values[np.isfinite(values)]
    top = float(finite.max())
    tail = finite[len(finite) // 5 :] if len(finite) >= 5 else finite
    span_tail = float(tail.max()) - lower
    if span_tail > 0 and top - lower > 4.0 * span_tail:
        return lower + 2.0 * span_tail
    return top


def _training_figure(
    history: Any,
    *,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """The figure of :func:`plot_training_curves` (not written; same checks)."""
    frame = _history_frame(history)
    step = frame["step"].to_numpy()
    train = frame["train_loss"].to_numpy()
    val = frame["val_nll"].to_numpy()
    kl = frame["val_kl"].to_numpy() if "val_kl" in frame.columns else np.array([np.nan])
    lr = frame["lr"].to_numpy() if "lr" in frame.columns else np.array([np.nan])
    show_kl = bool(np.any(np.isfinite(kl)))
    lr_finite = lr[np.isfinite(lr) & (lr > 0)]
    show_lr = bool(lr_finite.size > 1 and lr_finite.max() > lr_finite.min() * (1 + 1e-9))
    heights = [2.2] + [1.1] * show_kl + [0.8] * show_lr
    default = (3.4, sum(heights) + 1.05 + (0.25 if title else 0.0))
    figsize = _check_figsize(figsize, default)

    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    fig = Figure(figsize=figsize, layout="constrained")
    fig.get_layout_engine().set(w_pad=_PAD_IN, h_pad=_PAD_IN, hspace=0.02)
    axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    marker = "o" if len(step) <= 30 else None
    ax = axes[0]
    c_train, c_val, c_best = OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["black"]
    ax.plot(step, train, color=c_train, lw=1.3, marker=marker, ms=2.5, label="training loss")
    ax.plot(step, val, color=c_val, lw=1.3, marker=marker, ms=2.5, label="validation NLL")
    finite_val = np.isfinite(val)
    if np.any(finite_val):
        best = int(np.flatnonzero(finite_val)[np.argmin(val[finite_val])])
        for a in axes:
            a.axvline(step[best], color=c_best, lw=0.8, ls=(0, (4, 2)), zorder=1.5)
        ax.plot(
            step[best],
            val[best],
            ls="none",
            marker="*",
            ms=9,
            color=c_best,
            markeredgewidth=0,
            label=f"best: step {step[best]:.0f}",
        )
    both = np.concatenate([train, val])
    if np.any(np.isfinite(both)):
        low = float(np.nanmin(both))
        high = max(_robust_upper(train, low), _robust_upper(val, low))
        span = high - low if high > low else max(abs(low), 1.0) * 0.1
        ax.set_ylim(low - 0.08 * span, high + 0.08 * span)
    ax.set_ylabel("loss (nats)", fontsize=_LABEL_PT)
    # Above the panels, never over the curves.
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 1.02),
        borderaxespad=0.0,
        ncols=2,
        fontsize=_LEGEND_PT,
        frameon=False,
        handlelength=2.0,
        columnspacing=1.2,
    )
    row = 1
    if show_kl:
        a = axes[row]
        good = np.isfinite(kl)
        a.plot(step[good], kl[good], color=OKABE_ITO["bluish_green"], lw=1.3, marker=marker, ms=2.5)
        a.set_ylabel(r"$\langle\log p-\log q\rangle$", fontsize=_LABEL_PT)
        a.text(
            0.98,
            0.92,
            "validation KL (up to a constant)",
            transform=a.transAxes,
            ha="right",
            va="top",
            fontsize=_LEGEND_PT,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
        low = float(kl[good].min())
        high = _robust_upper(kl[good], low)
        span = high - low if high > low else max(abs(low), 1.0) * 0.05
        a.set_ylim(low - 0.1 * span, high + 0.35 * span)
        row += 1
    if show_lr:
        a = axes[row]
        good = np.isfinite(lr) & (lr > 0)
        a.step(step[good], lr[good], where="post", color=OKABE_ITO["reddish_purple"], lw=1.3)
        a.set_yscale("log")
        # Whole decades, labelled only there (minor labels like 6x10^-4 clutter the panel).
        lo, hi = lr[good].min() / 1.6, lr[good].max() * 1.6
        a.set_ylim(lo, hi)
        decades = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1
        subs = (1.0,) if decades >= 2 else (1.0, 2.0, 5.0)
        a.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=5))
        a.yaxis.set_minor_formatter(NullFormatter())
        a.set_ylabel("learning rate", fontsize=_LABEL_PT)
    for a in axes:
        _style_ticks(a)
        if a.get_yscale() == "linear":
            a.yaxis.set_major_locator(MaxNLocator(4))
        a.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        a.grid(True, color="0.9", lw=0.6)
        a.set_axisbelow(True)
    axes[-1].set_xlabel("training step", fontsize=_LABEL_PT)
    fig.align_ylabels(axes)
    if title:
        fig.suptitle(title, fontsize=_TITLE_PT)
    _agg_canvas(fig)
    return fig


def plot_training_curves(
    history: Any,
    *,
    path: str | os.PathLike,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 200,
) -> None:
    """Training loss and validation NLL of a flow against the optimisation step.

    Top panel: the mean training loss over each evaluation interval and the validation NLL
    (two colours), the best validation step marked (the weights the flow keeps). Below it, when
    the history has them: the validation KL estimate (``val_kl``, finite values only) and the
    learning rate on a log axis (only if it changed).

    Parameters
    ----------
    history : pandas.DataFrame
        One row per evaluation with columns ``step``, ``train_loss``, ``val_nll`` and optionally
        ``best_val_nll``, ``val_kl``, ``lr`` (``TrainResult.history`` / ``model/history.csv``).
    path : path-like
        Output figure, format by suffix (:data:`FIGURE_FORMATS`); written atomically.
    title : str, optional
        Figure title.
    figsize : (float, float), optional
        Inches; default 3.4 wide (one journal column), taller with each extra panel.
    dpi : float
        Resolution of raster output.

    Raises
    ------
    InputError
        Missing or non-numeric columns, no rows, bad path suffix, figsize or dpi.
    """
    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    fig = _training_figure(history, title=title, figsize=figsize)
    _save(fig, path, fmt, dpi=dpi)


# --------------------------------------------------------------------------- agreement
_AGREEMENT_COLUMNS = ("sequence", "sampler", "parameter", "value")
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
_METRIC_LABELS = {
    "mean_shift_in_ref_sd": "mean shift / reference s.d.",
    "mean_shift_in_joint_sd": r"$(\bar\theta_{\rm seq}-\bar\theta_{\rm joint})\,/\,\sigma_{\rm joint}$",
    "sd_ratio": r"$\sigma_{\rm seq}\,/\,\sigma_{\rm joint}$",
}


def _metric_reference(metric: str) -> float:
    """Where perfect agreement lies: 1 for ratios, 0 for differences and shifts."""
    return 1.0 if "ratio" in metric else 0.0


def _agreement_figure(
    table: Any,
    *,
    metric: str = "mean_shift_in_ref_sd",
    threshold: float | None = None,
    title: str | None = None,
    params: ParameterSpace | None = None,
    reference: float | None = None,
    xlabel: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """The figure of :func:`plot_agreement` (not written; same checks)."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        try:
            table = pd.DataFrame(table)
        except (TypeError, ValueError) as exc:
            raise InputError(f"table: not a table ({exc})") from None
    missing = [c for c in _AGREEMENT_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"table: columns {missing} missing; need {list(_AGREEMENT_COLUMNS)}, "
            f"got {list(table.columns)}"
        )
    if "metric" in table.columns:
        available = sorted(set(map(str, table["metric"])))
        table = table[table["metric"].astype(str) == metric]
        if table.empty:
            raise InputError(f"metric: {metric!r} not in the table's metrics {available}")
    if table.empty:
        raise InputError(f"table: no rows for metric {metric!r} (nothing to compare)")
    if threshold is not None:
        threshold = float(threshold)
        if not (math.isfinite(threshold) and threshold > 0):
            raise InputError(f"threshold: {threshold!r}: need a positive number")
    ref = _metric_reference(metric) if reference is None else float(reference)
    frame = table.loc[:, list(_AGREEMENT_COLUMNS)].copy()
    for column in ("sequence", "sampler", "parameter"):
        frame[column] = frame[column].astype(str)
    try:
        frame["value"] = pd.to_numeric(frame["value"]).astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("table: column 'value': not numeric") from None
    dupes = frame.duplicated(["sequence", "sampler", "parameter"])
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise InputError(
            f"table: {int(dupes.sum())} duplicate rows, e.g. sequence {first['sequence']!r}, "
            f"sampler {first['sampler']!r}, parameter {first['parameter']!r}"
        )
    bad = ~np.isfinite(frame["value"].to_numpy())
    if bad.all():
        raise InputError(f"table: column 'value': no finite value for metric {metric!r}")
    if bad.any():
        log.warning("plot_agreement: %d non-finite values of %s not drawn", int(bad.sum()), metric)
    if params is not None:
        unknown = sorted(set(frame["parameter"]) - set(params.names))
        if unknown:
            raise InputError(
                f"table: column 'parameter': {unknown} not among the parameters "
                f"{list(params.names)}"
            )
        names = [n for n in params.names if n in set(frame["parameter"])]
        label_of = dict(zip(params.names, (tex_label(v) for v in params.labels)))
    else:
        names = list(dict.fromkeys(frame["parameter"]))
        label_of = {n: n for n in names}
    sequences = list(dict.fromkeys(frame["sequence"]))
    samplers = list(dict.fromkeys(frame["sampler"]))
    combos = list(dict.fromkeys(zip(frame["sequence"], frame["sampler"])))
    n_rows = len(names)
    row_height = max(0.3, 0.12 * len(combos) + 0.12)
    default = (3.4, 0.95 + (0.35 if title else 0.0) + n_rows * row_height)
    figsize = _check_figsize(figsize, default)

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=figsize, layout="constrained")
    fig.get_layout_engine().set(w_pad=_PAD_IN, h_pad=_PAD_IN)
    ax = fig.add_subplot()
    row_of = {n: i for i, n in enumerate(names)}
    spread = min(0.6, 0.18 * (len(combos) - 1))
    offsets = np.linspace(-spread / 2, spread / 2, len(combos)) if len(combos) > 1 else [0.0]
    for k, (seq, sampler) in enumerate(combos):
        part = frame[(frame["sequence"] == seq) & (frame["sampler"] == sampler)]
        part = part[np.isfinite(part["value"].to_numpy())]
        y = np.array([row_of[p] for p in part["parameter"]], dtype=float) + offsets[k]
        color = PALETTE[sequences.index(seq) % len(PALETTE)]
        marker = _MARKERS[samplers.index(sampler) % len(_MARKERS)]
        label = f"{seq}, {sampler}"
        ax.plot(
            part["value"].to_numpy(),
            y,
            ls="none",
            marker=marker,
            ms=5.5,
            color=color,
            markeredgecolor="white",
            markeredgewidth=0.5,
            label=label,
            zorder=3,
        )
    ax.axvline(ref, color=OKABE_ITO["black"], lw=0.9, zorder=1)
    if threshold is not None:
        for x in (ref - threshold, ref + threshold):
            ax.axvline(x, color="0.35", lw=0.9, ls=(0, (4, 2)), zorder=1)
    values = frame["value"].to_numpy()
    values = values[np.isfinite(values)]
    half = float(np.max(np.abs(values - ref)))
    if threshold is not None:
        half = max(half, threshold)
    half = 1.15 * half if half > 0 else 1.0
    ax.set_xlim(ref - half, ref + half)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_yticks(range(n_rows), [label_of[n] for n in names])
    for y in np.arange(n_rows - 1) + 0.5:  # light separators between parameter rows
        ax.axhline(y, color="0.88", lw=0.6, zorder=0)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(5, symmetric=False))
    ax.grid(True, axis="x", color="0.92", lw=0.6)
    ax.set_axisbelow(True)
    _style_ticks(ax)
    ax.tick_params(axis="y", labelsize=_LABEL_PT)
    ax.set_xlabel(
        xlabel or _METRIC_LABELS.get(metric, metric.replace("_", " ")), fontsize=_LABEL_PT
    )
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if len(sequences) > 1 and len(samplers) > 1:
        # Factorised: colours name the sequences, (grey) markers the samplers.
        handles = [
            Patch(color=PALETTE[i % len(PALETTE)], label=seq) for i, seq in enumerate(sequences)
        ]
        handles += [
            Line2D(
                [],
                [],
                ls="none",
                marker=_MARKERS[i % len(_MARKERS)],
                ms=5.5,
                color="0.3",
                label=sampler,
            )
            for i, sampler in enumerate(samplers)
        ]
    else:
        handles = ax.get_legend_handles_labels()[0]
    if threshold is not None:
        handles.append(
            Line2D([], [], color="0.35", lw=0.9, ls=(0, (4, 2)), label=f"±{threshold:g}")
        )
    renderer = _agg_canvas(fig)
    for ncols in range(len(handles), 0, -1):  # as many columns as fit the width
        legend = ax.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.02),
            borderaxespad=0.0,
            ncols=ncols,
            fontsize=_LEGEND_PT,
            frameon=False,
            handletextpad=0.4,
            columnspacing=1.0,
            handlelength=1.2,
        )
        if legend.get_window_extent(renderer).width <= (figsize[0] - 2 * _PAD_IN) * fig.dpi:
            break
    if title:
        fig.suptitle(title, fontsize=_TITLE_PT)
    _agg_canvas(fig)
    return fig


def plot_agreement(
    table: Any,
    *,
    path: str | os.PathLike,
    metric: str = "mean_shift_in_ref_sd",
    threshold: float | None = None,
    title: str | None = None,
    params: ParameterSpace | None = None,
    reference: float | None = None,
    xlabel: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 200,
) -> None:
    """Dot chart of one agreement metric per parameter, for every (sequence, sampler).

    One row per parameter (top to bottom in ``params`` order, else in order of appearance);
    within a row each (sequence, sampler) has its own colour (per sequence) and marker (per
    sampler), slightly offset so that none hides another. A solid line marks perfect
    agreement (``reference``: 0 for shifts, 1 for ratios such as ``sd_ratio``), dashed lines
    ``reference +- threshold``.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table with columns ``sequence`` (e.g. "A→B"), ``sampler``, ``parameter`` and
        ``value``; with a ``metric`` column, only its rows equal to ``metric`` are used.
    path : path-like
        Output figure, format by suffix (:data:`FIGURE_FORMATS`); written atomically.
    metric : str
        Metric name: selects rows (if the table has a ``metric`` column) and sets the default
        x label and reference.
    threshold : float, optional
        Tolerance drawn as dashed lines at ``reference - threshold`` and ``+ threshold``.
    title : str, optional
        Figure title.
    params : ParameterSpace, optional
        Row order and LaTeX labels of the parameters (else the names in the table).
    reference : float, optional
        Value of perfect agreement; default 1 if "ratio" is in ``metric``, else 0.
    xlabel : str, optional
        Default: a readable form of ``metric``.
    figsize : (float, float), optional
        Inches; default 3.4 wide (one column), 0.3 inch per parameter row and entry.
    dpi : float
        Resolution of raster output.

    Raises
    ------
    InputError
        Missing columns, unknown parameters, duplicate rows, no finite value, bad threshold,
        path suffix, figsize or dpi.
    """
    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    fig = _agreement_figure(
        table,
        metric=metric,
        threshold=threshold,
        title=title,
        params=params,
        reference=reference,
        xlabel=xlabel,
        figsize=figsize,
    )
    _save(fig, path, fmt, dpi=dpi)


# ------------------------------------------------------------------ training-strategy study
#: Marker per flow architecture in :func:`plot_score_vs_time`.
_KIND_MARKERS = {"nsf": "o", "maf": "s", "realnvp": "^"}
#: Colour per training loss in :func:`plot_score_vs_time`.
_LOSS_COLORS = {
    "nll": OKABE_ITO["blue"],
    "kl": OKABE_ITO["vermillion"],
    "jeffreys": OKABE_ITO["bluish_green"],
}


_SCORE_LABELS = {
    "exact_kl": "exact KL (nats)",
    "held_out_nll": "held-out NLL (nats)",
    "c2st": "C2ST accuracy",
    "sliced_wasserstein": "sliced Wasserstein (sd)",
    "max_moment_score": "largest moment score",
}


def plot_score_vs_time(
    scores: Any,
    *,
    path: str | os.PathLike,
    metric: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 200,
) -> None:
    """Held-out score against training wall time, one panel per target of a study.

    Colour: the training loss; marker: the flow architecture; one point per job (seed and
    hyperparameter setting).

    Parameters
    ----------
    scores : pandas.DataFrame
        ``scores.csv`` of the training-strategy study (columns ``target``, ``loss``, ``kind``,
        ``train_seconds`` and ``metric``).
    path : path-like
        Output figure (:data:`FIGURE_FORMATS`), written atomically.
    metric : str, optional
        Score on the y axis; default ``exact_kl`` where a target has it, else ``held_out_nll``
        (chosen per panel; KL on a log axis).
    figsize : (float, float), optional
        Inches; default 3.2 wide per panel (at most three per row), 2.8 high per row.
    dpi : float
        Resolution of raster output.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    need = {"target", "loss", "kind", "train_seconds"}
    missing = sorted(need - set(getattr(scores, "columns", ())))
    if missing:
        raise InputError(f"scores: missing column(s) {', '.join(missing)}")
    targets = list(dict.fromkeys(scores["target"]))
    if not targets:
        raise InputError("scores: no rows")
    ncol = min(3, len(targets))
    nrow = math.ceil(len(targets) / ncol)
    figsize = _check_figsize(figsize, (3.2 * ncol, 2.8 * nrow + 0.5))
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, target in zip(axes, targets):
        df = scores[scores["target"] == target]
        m = metric
        if m is None:
            m = "exact_kl" if "exact_kl" in df and df["exact_kl"].notna().any() else "held_out_nll"
        for (loss, kind), part in df.groupby(["loss", "kind"], sort=True):
            ax.scatter(
                part["train_seconds"],
                part[m],
                color=_LOSS_COLORS.get(loss, OKABE_ITO["black"]),
                marker=_KIND_MARKERS.get(kind, "D"),
                s=22,
                alpha=0.85,
                linewidths=0,
            )
        if m == "exact_kl" and (df[m] > 0).all():
            ax.set_yscale("log")
        ax.set_title(target, fontsize=_TITLE_PT)
        ax.set_xlabel("training wall time (s)", fontsize=_LABEL_PT)
        ax.set_ylabel(_SCORE_LABELS.get(m, m.replace("_", " ")), fontsize=_LABEL_PT)
        ax.tick_params(labelsize=_TICK_PT)
    for ax in axes[len(targets) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], color=c, marker="o", linestyle="", label=f"loss {loss}")
        for loss, c in _LOSS_COLORS.items()
        if loss in set(scores["loss"])
    ] + [
        Line2D([], [], color=OKABE_ITO["black"], marker=mk, linestyle="", label=kind)
        for kind, mk in _KIND_MARKERS.items()
        if kind in set(scores["kind"])
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=6, fontsize=_LEGEND_PT)
    _save(fig, path, fmt, dpi=dpi)


# ----------------------------------------------------------------------- sampler comparison
#: Columns :func:`plot_sampler_comparison` needs (the ``samplers`` table of
#: :func:`flowprior.diagnostics.sampler_comparison`).
_COMPARISON_COLUMNS = (
    "kind", "stage", "sampler", "n_likelihood_calls", "wall_seconds", "c2st", "log_Z",
    "log_Z_err", "exact_log_Z",
)  # fmt: skip
_KIND_PREFIX = {"stage1": "stage 1: ", "sequential": "", "joint": "joint "}


def _numeric(frame: Any, column: str) -> np.ndarray:
    """A column as float64 with NaN for unknown (None/empty) values."""
    import pandas as pd

    try:
        return pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"table: column {column!r}: not numeric") from None


def _sampler_comparison_figure(
    table: Any,
    *,
    c2st_threshold: float | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """The figure of :func:`plot_sampler_comparison` (not written; same checks)."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        try:
            table = pd.DataFrame(table)
        except (TypeError, ValueError) as exc:
            raise InputError(f"table: not a table ({exc})") from None
    missing = [c for c in _COMPARISON_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"table: columns {missing} missing; need {list(_COMPARISON_COLUMNS)}")
    if table.empty:
        raise InputError("table: no rows (no sampler run to compare)")
    if c2st_threshold is not None:
        c2st_threshold = float(c2st_threshold)
        if not (math.isfinite(c2st_threshold) and 0.5 < c2st_threshold <= 1.0):
            raise InputError(f"c2st_threshold: {c2st_threshold!r}: need a number in (0.5, 1]")
    frame = table.reset_index(drop=True)
    dupes = frame.duplicated(["kind", "stage", "sampler"])
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise InputError(
            f"table: {int(dupes.sum())} duplicate rows, e.g. {first['kind']} {first['stage']!r} "
            f"sampler {first['sampler']!r}"
        )
    values = {c: _numeric(frame, c) for c in _COMPARISON_COLUMNS[3:]}
    labels = (
        frame["sampler_label"].astype(str) if "sampler_label" in frame else frame["sampler"]
    ).tolist()
    samplers = list(dict.fromkeys(frame["sampler"].astype(str)))
    label_of = dict(zip(frame["sampler"].astype(str), labels))
    rows = list(dict.fromkeys(zip(frame["kind"].astype(str), frame["stage"].astype(str))))
    row_of = {r: i for i, r in enumerate(rows)}
    keys = list(zip(frame["kind"].astype(str), frame["stage"].astype(str)))
    row_index = np.array([row_of[r] for r in keys])
    y = row_index.astype(np.float64)
    spread = min(0.6, 0.2 * (len(samplers) - 1))
    offsets = np.linspace(-spread / 2, spread / 2, len(samplers)) if len(samplers) > 1 else [0.0]
    offset_of = dict(zip(samplers, offsets))
    y = y + np.array([offset_of[s] for s in frame["sampler"].astype(str)])

    # log Z relative to the exact value, else to the mean of the samplers at that stage
    log_z, exact = values["log_Z"], values["exact_log_Z"]
    ref = exact.copy()
    for i in range(len(rows)):
        at = (row_index == i) & np.isfinite(log_z)
        if at.any() and not np.isfinite(ref[row_index == i]).any():
            ref[row_index == i] = float(np.mean(log_z[at]))
    has_exact = np.isfinite(exact) & np.isfinite(log_z)
    has_mean = ~np.isfinite(exact) & np.isfinite(log_z)
    if has_exact.any() and has_mean.any():
        dz_label = r"$\log Z-\log Z_{\rm ref}$"  # exact where known, else the samplers' mean
    elif has_exact.any():
        dz_label = r"$\log Z-\log Z_{\rm exact}$"
    else:
        dz_label = r"$\log Z-\overline{\log Z}$"  # the mean over the samplers at the stage

    n_rows = len(rows)
    default = (7.0, 1.1 + (0.3 if title else 0.0) + max(0.32 * n_rows, 0.9))
    figsize = _check_figsize(figsize, default)

    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    fig = Figure(figsize=figsize, layout="constrained")
    fig.get_layout_engine().set(w_pad=_PAD_IN, h_pad=_PAD_IN, wspace=0.04)
    axes = fig.subplots(1, 4, sharey=True)
    panels = (
        ("n_likelihood_calls", "likelihood calls", True),
        ("wall_seconds", "sampler wall time (s)", True),
        ("c2st", "C2ST vs exact", False),
        ("log_Z", dz_label, False),
    )
    for ax, (column, xlabel, logx) in zip(axes, panels):
        ax.set_xlabel(xlabel, fontsize=_LABEL_PT)
        drawn = False
        for k, sampler in enumerate(samplers):
            at = (frame["sampler"].astype(str) == sampler).to_numpy()
            style = {
                "ls": "none", "marker": _MARKERS[k % len(_MARKERS)], "ms": 5.0,
                "color": PALETTE[k % len(PALETTE)], "markeredgecolor": "white",
                "markeredgewidth": 0.5, "zorder": 3,
            }  # fmt: skip
            if column == "log_Z":
                x = log_z - ref
                err = values["log_Z_err"]
                ok = at & np.isfinite(x) & np.isfinite(err)
                if ok.any():
                    ax.errorbar(x[ok], y[ok], xerr=err[ok], elinewidth=0.9, capsize=2.0, **style)
                    drawn = True
                ok = at & np.isfinite(x) & ~np.isfinite(err)  # error unknown: hollow, no bar
                if ok.any():
                    hollow = {**style, "markerfacecolor": "white",
                              "markeredgecolor": style["color"], "markeredgewidth": 1.0}
                    ax.plot(x[ok], y[ok], **hollow)  # fmt: skip
                    drawn = True
                continue
            x = values[column]
            ok = at & np.isfinite(x) & ((x > 0) if logx else True)
            if ok.any():
                ax.plot(x[ok], y[ok], **style)
                drawn = True
        if logx and drawn:
            ax.set_xscale("log")
            shown = values[column][np.isfinite(values[column]) & (values[column] > 0)]
            lo = 10.0 ** math.floor(math.log10(float(shown.min()) / 1.5))
            hi = 10.0 ** math.ceil(math.log10(float(shown.max()) * 1.5))
            ax.set_xlim(lo, hi)  # whole decades: at least two labelled ticks
            ax.xaxis.set_major_locator(LogLocator(numticks=4))
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif not logx:
            ax.xaxis.set_major_locator(MaxNLocator(4))
        if column == "c2st":
            ax.axvline(0.5, color=OKABE_ITO["black"], lw=0.9, zorder=1)
            if c2st_threshold is not None:
                ax.axvline(c2st_threshold, color="0.35", lw=0.9, ls=(0, (4, 2)), zorder=1)
            finite = values["c2st"][np.isfinite(values["c2st"])]
            hi = max([0.56, c2st_threshold or 0.0, *(finite.tolist())])
            lo = min([0.48, *(finite.tolist())])
            ax.set_xlim(lo - 0.015, hi + 0.03)
        if column == "log_Z":
            ax.axvline(0.0, color=OKABE_ITO["black"], lw=0.9, zorder=1)
        if not drawn:
            why = "no exact answer" if column == "c2st" else "not recorded"
            if column == "log_Z":
                why = "no evidence"
            ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center",
                    fontsize=_LEGEND_PT, color="0.35")  # fmt: skip
            ax.set_xticks([])
        ax.grid(True, axis="x", color="0.92", lw=0.6)
        ax.set_axisbelow(True)
        for sep in np.arange(n_rows - 1) + 0.5:
            ax.axhline(sep, color="0.88", lw=0.6, zorder=0)
        _style_ticks(ax)
        ax.tick_params(axis="y", length=0)
    axes[0].set_ylim(n_rows - 0.5, -0.5)
    axes[0].set_yticks(range(n_rows), [f"{_KIND_PREFIX.get(k, '')}{s}" for k, s in rows])
    axes[0].tick_params(axis="y", labelsize=_TICK_PT + 0.5)
    handles = [
        Line2D([], [], ls="none", marker=_MARKERS[k % len(_MARKERS)], ms=5.0,
               color=PALETTE[k % len(PALETTE)], label=label_of[s])
        for k, s in enumerate(samplers)
    ]  # fmt: skip
    if c2st_threshold is not None:
        handles.append(
            Line2D([], [], color="0.35", lw=0.9, ls=(0, (4, 2)), label=f"C2ST {c2st_threshold:g}")
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=_LEGEND_PT,
        frameon=False, handletextpad=0.4, columnspacing=1.2, handlelength=1.3,
    )  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=_TITLE_PT)
    _agg_canvas(fig)
    return fig


def plot_sampler_comparison(
    table: Any,
    *,
    path: str | os.PathLike,
    c2st_threshold: float | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 200,
) -> None:
    """Every sampler run of an analysis side by side: cost, accuracy and evidence.

    One row per stage (stage-1 posteriors, sequential stages, joint references, in table
    order), one colour and marker per sampler (slightly offset within a row); four panels
    sharing the rows: likelihood calls and the sampler's wall time (log axes), C2ST accuracy
    against exact samples (0.5: indistinguishable; dashed: ``c2st_threshold``; empty without an
    exact answer) and ``log Z`` with its reported error, relative to the exact value (else to
    the mean of the samplers' ``log Z`` at that stage; the axis label says which; a hollow
    marker without a bar: the error is unknown). Unknown values (None/NaN: a sampler without
    an evidence, no exact answer) are not drawn.

    Parameters
    ----------
    table : pandas.DataFrame
        The ``samplers`` table of :func:`flowprior.diagnostics.sampler_comparison` (columns
        ``kind``, ``stage``, ``sampler``, ``n_likelihood_calls``, ``wall_seconds``, ``c2st``,
        ``log_Z``, ``log_Z_err``, ``exact_log_Z``; ``sampler_label`` names the legend entries
        when present).
    path : path-like
        Output figure (:data:`FIGURE_FORMATS`), written atomically.
    c2st_threshold : float, optional
        The verdict's C2ST threshold, drawn dashed.
    title : str, optional
    figsize : (float, float), optional
        Inches; default 7.0 wide (two columns), 0.32 inch per stage row.
    dpi : float
        Resolution of raster output.

    Raises
    ------
    InputError
        Missing or non-numeric columns, no rows, duplicate (kind, stage, sampler) rows, a bad
        threshold, path suffix, figsize or dpi.
    """
    path, fmt = _figure_path(path)
    dpi = _check_dpi(dpi)
    fig = _sampler_comparison_figure(
        table, c2st_threshold=c2st_threshold, title=title, figsize=figsize
    )
    _save(fig, path, fmt, dpi=dpi)
