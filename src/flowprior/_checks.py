"""Input validation shared by :mod:`flowprior.stats` and :mod:`flowprior.diagnostics`.

Every check raises :class:`~flowprior.errors.InputError` (a ``ValueError``) whose message names
the function (``src``, e.g. ``"flowprior.diagnostics.agreement"``) and the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import _input_error

__all__ = ["check_int", "check_names", "check_samples", "check_weights", "finite_float"]


def check_samples(
    src: str,
    x: Any,
    w: Any,
    *,
    xname: str = "x",
    wname: str = "w",
    dim: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate samples and weights.

    Parameters
    ----------
    src : str
        The calling function, for the message.
    x : array_like (N, D) or (N,)
        Samples; a 1-D ``x`` is read as ``N`` draws of one parameter, ``(N, 1)``.
    w : array_like (N,) or None
        Weights; None for equal weights.
    xname, wname : str
        Argument names, for the message.
    dim : int, optional
        Required number of parameter columns.

    Returns
    -------
    (ndarray (N, D), ndarray (N,))
        float64 samples and weights normalised to sum to one.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise _input_error(src, xname, f"expected samples of shape (N, D), got {np.shape(x)}")
    if arr.shape[0] == 0:
        raise _input_error(src, xname, "no samples (N = 0)")
    if dim is not None and arr.shape[1] != dim:
        raise _input_error(src, xname, f"expected {dim} parameter column(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise _input_error(src, xname, "samples contain NaN or infinite values")
    if w is None:
        wn = np.full(arr.shape[0], 1.0 / arr.shape[0])
    else:
        wn = check_weights(src, w, arr.shape[0], wname=wname)
    return arr, wn


def check_weights(src: str, w: Any, n: int, *, wname: str) -> np.ndarray:
    """Validate weights ``(n,)``: finite, non-negative, positive sum; return them normalised."""
    wa = np.asarray(w, dtype=np.float64)
    if wa.shape != (n,):
        raise _input_error(
            src, wname, f"expected weights of shape ({n},) to match the samples, got {wa.shape}"
        )
    if np.isnan(wa).any():
        raise _input_error(src, wname, "weights contain NaN")
    if not np.all(np.isfinite(wa)):
        raise _input_error(src, wname, "weights contain infinite values")
    if (wa < 0).any():
        raise _input_error(src, wname, "weights must be non-negative")
    total = float(wa.sum())
    if not total > 0:
        raise _input_error(src, wname, "total weight is zero; at least one weight must be > 0")
    return wa / total


def check_names(src: str, names: Sequence[str] | str, dim: int) -> list[str]:
    """``dim`` distinct parameter names (a single string counts as one name)."""
    if isinstance(names, str):
        names = [names]
    names = [str(n) for n in names]
    if len(names) != dim:
        raise _input_error(src, "names", f"expected {dim} parameter name(s), got {len(names)}")
    if len(set(names)) != len(names):
        raise _input_error(src, "names", f"duplicate parameter names {names}")
    return names


def check_int(src: str, name: str, value: Any, lo: int) -> int:
    """An ``int`` (not a bool) ``>= lo``."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise _input_error(src, name, f"expected an int >= {lo}, got {value!r}")
    return int(value)


def finite_float(src: str, name: str, value: Any) -> float:
    """``float(value)``, which must be finite."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _input_error(src, name, f"expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise _input_error(src, name, f"expected a finite number, got {value!r}")
    return out
