"""The config ``diagnostics`` mapping: sample sizes of the diagnostics and verdict thresholds.

Sample-size defaults live in :data:`DIAGNOSTIC_SETTINGS`, threshold defaults in the rules
registry (:func:`flowprior.diagnostics.default_thresholds`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from ..errors import InputError

__all__ = ["DIAGNOSTIC_SETTINGS", "split_settings"]

#: Sample sizes of the diagnostics (config key ``diagnostics``, besides the thresholds).
DIAGNOSTIC_SETTINGS: dict[str, int] = {
    "n_flow_samples": 10000,  # flow samples compared with the held-out chain
    "n_exact_samples": 10000,  # exact samples of analytic problems
    "n_boot": 100,  # bootstrap subsets of the moment scores
    "c2st_max_n": 4000,  # points per set in a C2ST (subsampled uniformly)
}


def split_settings(
    settings: Mapping[str, Any] | None, *, source: str = "diagnostics"
) -> tuple[dict[str, int], dict[str, Any]]:
    """Split a config ``diagnostics`` mapping into sample sizes and verdict thresholds.

    Parameters
    ----------
    settings : mapping or None
        Sample sizes (:data:`DIAGNOSTIC_SETTINGS`) and thresholds of registered rules
        (:func:`~flowprior.diagnostics.default_thresholds`); absent keys take the defaults.
    source : str
        Where the mapping comes from, for the message.

    Returns
    -------
    (dict, dict)
        Every sample size (defaults filled in); the thresholds given.

    Raises
    ------
    InputError
        A key that is neither a sample size nor the threshold of a registered rule, or a sample
        size that is not an integer.
    """
    from .verdict import default_thresholds  # not at the top: verdict.py imports this module

    settings = dict(settings or {})
    known = default_thresholds()
    for key in settings:
        if key not in DIAGNOSTIC_SETTINGS and key not in known:
            raise InputError(
                f"{source}: {key}: unknown key; expected a sample size "
                f"({', '.join(DIAGNOSTIC_SETTINGS)}) or the threshold of a registered "
                f"verdict rule ({', '.join(known)})"
            )
    sizes = {}
    for key, default in DIAGNOSTIC_SETTINGS.items():
        value = settings.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{source}: {key}: expected an integer, got {value!r}")
        sizes[key] = int(value)
    return sizes, settings
