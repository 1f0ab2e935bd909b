"""Agreement of two posteriors parameter by parameter (e.g. sequential against joint).

:func:`agreement`: mean shift in reference sd, sd ratio, credible-interval overlap and the
difference of the correlation matrices, all weight-aware.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import check_names, check_samples
from ..errors import _input_error
from ..stats import weighted_mean_cov, weighted_quantile

__all__ = ["agreement"]

_SRC = "flowprior.diagnostics"


def _corr(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cov / np.outer(sd, sd)
    return out


def _interval_overlap(lo1: float, hi1: float, lo2: float, hi2: float) -> float:
    """``|I1 ∩ I2| / |I1 ∪ I2|`` of two closed intervals (1 for two equal points)."""
    inter = max(0.0, min(hi1, hi2) - max(lo1, lo2))
    union = (hi1 - lo1) + (hi2 - lo2) - inter
    if union <= 0:
        return 1.0 if (lo1 == lo2 and hi1 == hi2) else 0.0
    return float(inter / union)


def agreement(
    x: np.ndarray,
    ref: np.ndarray,
    *,
    wx: np.ndarray | None = None,
    wref: np.ndarray | None = None,
    names: Sequence[str],
    levels: Sequence[float] = (0.68, 0.95),
) -> dict[str, Any]:
    """Per-parameter agreement of samples ``x`` (e.g. sequential) with ``ref`` (e.g. joint).

    Parameters
    ----------
    x : ndarray (N, D)
        Samples under test.
    ref : ndarray (M, D)
        Reference samples.
    wx, wref : ndarray (N,), (M,), optional
        Importance weights; equal by default.
    names : sequence of str, length D
    levels : sequence of float in (0, 1)
        Credible levels of the central intervals compared by ``interval_overlap``.

    Returns
    -------
    dict
        ``parameters``
            ``names``.
        ``mean_shift_in_ref_sd``
            ``{name: (mean_x - mean_ref) / sd_ref}`` (signed; weighted moments).
        ``sd_ratio``
            ``{name: sd_x / sd_ref}``.
        ``interval_overlap``
            ``{level: {name: |I_x ∩ I_ref| / |I_x ∪ I_ref|}}`` where ``I`` is the central
            weighted credible interval ``[Q((1 - level) / 2), Q((1 + level) / 2)]``
            (:func:`weighted_quantile`, ``"hazen"``) and ``|.|`` the length (of a union of
            disjoint intervals: the sum of the lengths). 1 for identical intervals, 0 for
            disjoint ones (the Jaccard index of the intervals).
        ``correlation_difference``
            ``(D, D)`` nested list ``corr_x - corr_ref`` of the weighted correlation matrices.
        ``max_abs_mean_shift``, ``max_abs_sd_ratio_deviation`` (``max |sd_ratio - 1|``),
        ``max_abs_correlation_difference`` (over the off-diagonal; 0 for ``D = 1``)
            floats, the worst parameter (pair).
        ``min_interval_overlap``
            ``{level: min over parameters}``.
        ``worst_parameter``
            ``{"mean_shift": name, "sd_ratio": name}``: where the maxima occur.
    """
    xx, nx = check_samples(f"{_SRC}.agreement", x, wx, xname="x", wname="wx")
    d = xx.shape[1]
    xr, nr = check_samples(f"{_SRC}.agreement", ref, wref, xname="ref", wname="wref", dim=d)
    names = check_names(f"{_SRC}.agreement", names, d)
    lev = [float(v) for v in np.atleast_1d(np.asarray(levels, dtype=np.float64))]
    if not lev or any(not (0.0 < v < 1.0) for v in lev):
        raise _input_error(
            f"{_SRC}.agreement", "levels", f"expected levels in (0, 1), got {levels!r}"
        )
    mx, cx = weighted_mean_cov(xx, nx)
    mr, cr = weighted_mean_cov(xr, nr)
    sdx, sdr = np.sqrt(np.diag(cx)), np.sqrt(np.diag(cr))
    if np.any(sdr == 0):
        raise _input_error(
            f"{_SRC}.agreement",
            "ref",
            "reference parameter(s) "
            f"{[n for n, s in zip(names, sdr, strict=True) if s == 0]} have zero spread",
        )
    shift = (mx - mr) / sdr
    ratio = sdx / sdr
    overlap: dict[float, dict[str, float]] = {}
    for v in lev:
        qs = [(1.0 - v) / 2.0, (1.0 + v) / 2.0]
        ix = weighted_quantile(xx, qs, nx)
        ir = weighted_quantile(xr, qs, nr)
        overlap[v] = {
            n: _interval_overlap(ix[0, j], ix[1, j], ir[0, j], ir[1, j])
            for j, n in enumerate(names)
        }
    cdiff = np.nan_to_num(_corr(cx) - _corr(cr), nan=0.0)
    off = ~np.eye(d, dtype=bool)
    return {
        "parameters": list(names),
        "mean_shift_in_ref_sd": dict(zip(names, shift.tolist(), strict=True)),
        "sd_ratio": dict(zip(names, ratio.tolist(), strict=True)),
        "interval_overlap": overlap,
        "correlation_difference": cdiff.tolist(),
        "max_abs_mean_shift": float(np.max(np.abs(shift))),
        "max_abs_sd_ratio_deviation": float(np.max(np.abs(ratio - 1.0))),
        "max_abs_correlation_difference": float(np.max(np.abs(cdiff[off]))) if d > 1 else 0.0,
        "min_interval_overlap": {v: min(o.values()) for v, o in overlap.items()},
        "worst_parameter": {
            "mean_shift": names[int(np.argmax(np.abs(shift)))],
            "sd_ratio": names[int(np.argmax(np.abs(ratio - 1.0)))],
        },
    }
