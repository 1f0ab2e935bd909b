"""The config ``diagnostics`` mapping: sample sizes, verdict thresholds, tension settings.

Sample-size defaults live in :data:`DIAGNOSTIC_SETTINGS`, threshold defaults in the rules
registry (:func:`flowprior.diagnostics.default_thresholds`), the defaults of the nested
``tension`` mapping in :data:`TENSION_SETTINGS` (the flow shift's own sizes in
:class:`flowprior.diagnostics.shift.ShiftSettings`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError

__all__ = ["DIAGNOSTIC_SETTINGS", "TENSION_METHODS", "TENSION_SETTINGS", "split_settings",
           "tension_settings"]

#: Sample sizes of the diagnostics (config key ``diagnostics``, besides the thresholds).
DIAGNOSTIC_SETTINGS: dict[str, int] = {
    "n_flow_samples": 10000,  # flow samples compared with the held-out chain
    "n_exact_samples": 10000,  # exact samples of analytic problems
    "n_boot": 100,  # bootstrap subsets of the moment scores
    "c2st_max_n": 4000,  # points per set in a C2ST (subsampled uniformly)
}

#: Settings of the tension diagnostics (config key ``diagnostics.tension``, per analysis).
TENSION_SETTINGS: dict[str, Any] = {
    # parameter subset of every tension statistic, by name; None: every parameter
    "parameters": None,
    # parameter shift the verdict uses: "flow" (non-Gaussian, with the Gaussian one beside it)
    # or "gaussian" (the flow shift is not computed)
    "method": "flow",
    # calibration twins of the flow shift (ShiftSettings.calibrate): their miss enters its error
    "calibrate": True,
}
#: Allowed values of ``diagnostics.tension.method``.
TENSION_METHODS = ("flow", "gaussian")
#: Keys of the config ``diagnostics`` mapping that hold a nested mapping, not a number.
NESTED_KEYS = ("tension",)


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
    for key in NESTED_KEYS:
        settings.pop(key, None)  # read by its own function (tension_settings)
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


def tension_settings(
    settings: Mapping[str, Any] | None,
    *,
    names: Sequence[str],
    source: str = "diagnostics",
) -> dict[str, Any]:
    """The ``tension`` entry of a config ``diagnostics`` mapping, checked, defaults filled in.

    Parameters
    ----------
    settings : mapping or None
        The whole ``diagnostics`` mapping (only its ``tension`` key is read).
    names : sequence of str
        The analysis' parameter names (the subset must be drawn from them).
    source : str
        Where the mapping comes from, for the message
        (``"config: analyses: NAME: diagnostics"`` in the workflow).

    Returns
    -------
    dict
        ``parameters`` (list of str, in the order given; every name of ``names`` when the
        config gives none), ``method`` (:data:`TENSION_METHODS`) and ``calibrate`` (bool).

    Raises
    ------
    InputError
        One line naming ``<source>: tension: <key>``: an unknown key, a parameter that is not
        in ``names``, a repeated or empty subset, an unknown method.
    """
    entry = (settings or {}).get("tension") or {}
    where = f"{source}: tension"
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: expected a mapping, got {entry!r}")
    unknown = sorted(set(entry) - set(TENSION_SETTINGS))
    if unknown:
        raise InputError(
            f"{where}: {unknown[0]}: unknown key; expected some of {', '.join(TENSION_SETTINGS)}"
        )
    out = {**TENSION_SETTINGS, **entry}
    chosen = out["parameters"]
    if chosen is None:
        out["parameters"] = list(names)
    else:
        if isinstance(chosen, str) or not isinstance(chosen, Sequence) or not chosen:
            raise InputError(
                f"{where}: parameters: expected a non-empty list of parameter names, got "
                f"{chosen!r}"
            )
        chosen = [str(p) for p in chosen]
        missing = [p for p in chosen if p not in names]
        if missing:
            raise InputError(
                f"{where}: parameters: {', '.join(map(repr, missing))} not a parameter of the "
                f"analysis (it has: {', '.join(names)})"
            )
        dupes = sorted({p for p in chosen if chosen.count(p) > 1})
        if dupes:
            raise InputError(f"{where}: parameters: {', '.join(dupes)} repeated")
        out["parameters"] = chosen
    if not isinstance(out["calibrate"], bool):
        raise InputError(f"{where}: calibrate: expected true or false, got {out['calibrate']!r}")
    if out["method"] not in TENSION_METHODS:
        raise InputError(
            f"{where}: method: expected one of {', '.join(TENSION_METHODS)}, got "
            f"{out['method']!r}"
        )
    return out
