"""Verdict rules: a registry of rules, each turning one measured check into ok / warn / fail.

A rule (:class:`Rule`) names its check, its threshold key (the config key
``diagnostics.<threshold>``) with the default, the comparison that triggers it, its severity
and how to read its check from a sequence's diagnostics record. :func:`default_thresholds` is
derived from the registry and is the one source of the threshold defaults; the config schema,
``config/config.yaml`` and ``config/README.md`` are tested against it. A new rule is one
:func:`register_rule` call (``docs/extending.md``, "Add a diagnostic").
"""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._checks import finite_float
from ..errors import InputError, _input_error
from ..plan import SEP
from .settings import DIAGNOSTIC_SETTINGS, NESTED_KEYS

__all__ = [
    "Rule",
    "Verdict",
    "checks_from_record",
    "default_thresholds",
    "notes_from_record",
    "get_rule",
    "register_rule",
    "rules",
    "unregister_rule",
    "verdict",
]

logger = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics"

Severity = Literal["warn", "fail"]
#: Threshold keys the config schema accepts for plug-in rules (its ``patternProperties``).
_THRESHOLD_KEY = re.compile(r"[a-z][a-z0-9_]*")
_TRANSFORMS: dict[str, Callable[[float], float]] = {
    "identity": lambda v: v,
    "abs": abs,
    "abs_minus_one": lambda v: abs(v - 1.0),
}


@dataclass(frozen=True)
class Rule:
    """One verdict rule.

    Attributes
    ----------
    check : str
        Name of the check: its key in the ``checks`` of :func:`verdict` and in
        ``not_measured``.
    threshold : str
        Threshold key (config ``diagnostics.<threshold>``; usually equal to ``check``).
    default : float, int or None
        Default threshold; None switches the rule off unless the config sets one.
    severity : {"warn", "fail"}
        Outcome when the rule triggers.
    what : str
        Start of the reason sentence, naming the quantity (``"C2ST accuracy"``).
    why : str
        End of the reason sentence: what a triggered rule means.
    description : str
        One sentence for the configuration docs.
    bad : {">", ">=", "<"}
        Comparison of the worst value with the threshold that triggers the rule. ``"<"``
        (smaller is worse) takes the minimum over the measured entries, otherwise the maximum.
    transform : {"identity", "abs", "abs_minus_one"}
        Applied to each measured value before the comparison.
    read : callable, optional
        ``read(record) -> value``: the check's value from a sequence's diagnostics record
        (:func:`flowprior.diagnostics.diagnose_sequence`): a number, None (not measured) or a
        (nested) mapping / list of numbers labelled by where they were measured. Without it the
        check is only evaluated when passed to :func:`verdict` directly.
    note : callable, optional
        ``note(record) -> str or None``: a sentence the verdict carries whatever the outcome
        (``notes``), e.g. which of two estimates the check used and why.
    """

    check: str
    threshold: str
    default: float | int | None
    severity: Severity
    what: str
    why: str
    description: str
    bad: Literal[">", ">=", "<"] = ">"
    transform: Literal["identity", "abs", "abs_minus_one"] = "identity"
    read: Callable[[Mapping[str, Any]], Any] | None = None
    note: Callable[[Mapping[str, Any]], str | None] | None = None

    def __post_init__(self) -> None:
        src = f"{_SRC}.Rule"
        if not isinstance(self.check, str) or not self.check.isidentifier():
            raise _input_error(src, "check", f"expected an identifier, got {self.check!r}")
        if not isinstance(self.threshold, str) or not _THRESHOLD_KEY.fullmatch(self.threshold):
            raise _input_error(
                src,
                "threshold",
                f"expected a lower-case config key ([a-z][a-z0-9_]*), got {self.threshold!r}",
            )
        if self.severity not in ("warn", "fail"):
            raise _input_error(src, "severity", f"expected 'warn' or 'fail', got {self.severity!r}")
        if self.bad not in (">", ">=", "<"):
            raise _input_error(src, "bad", f"expected '>', '>=' or '<', got {self.bad!r}")
        if self.transform not in _TRANSFORMS:
            raise _input_error(
                src, "transform", f"expected one of {sorted(_TRANSFORMS)}, got {self.transform!r}"
            )
        if self.default is not None:
            finite_float(src, "default", self.default)
        for key in ("read", "note"):
            value = getattr(self, key)
            if value is not None and not callable(value):
                raise _input_error(src, key, f"expected a callable, got {value!r}")


_RULES: dict[str, Rule] = {}


def register_rule(rule: Rule, *, replace: bool = False) -> None:
    """Add a verdict rule (evaluated after those registered before it).

    Parameters
    ----------
    rule : Rule
    replace : bool
        Replace a registered rule of the same ``check`` instead of raising.

    Raises
    ------
    InputError
        The check is registered already (and not ``replace``), or its threshold key is taken
        by another rule or by a sample-size setting.
    """
    if not isinstance(rule, Rule):
        raise _input_error(f"{_SRC}.register_rule", "rule", f"expected a Rule, got {rule!r}")
    if rule.check in _RULES and not replace:
        raise InputError(
            f"{_SRC}.register_rule: {rule.check}: a rule of this name is registered already "
            "(pass replace=True to replace it)"
        )
    taken = {r.threshold: r.check for r in _RULES.values() if r.check != rule.check}
    if rule.threshold in taken or rule.threshold in (*DIAGNOSTIC_SETTINGS, *NESTED_KEYS):
        owner = (
            f"rule {taken[rule.threshold]!r}" if rule.threshold in taken
            else "a nested setting" if rule.threshold in NESTED_KEYS else "a sample size"
        )
        raise InputError(
            f"{_SRC}.register_rule: {rule.threshold}: threshold key already used by {owner}"
        )
    _RULES[rule.check] = rule


def unregister_rule(check: str) -> None:
    """Remove the rule of ``check`` (InputError when none is registered)."""
    get_rule(check)
    del _RULES[check]


def get_rule(check: str) -> Rule:
    """The registered rule of ``check``; InputError naming the known ones otherwise."""
    try:
        return _RULES[check]
    except KeyError:
        raise InputError(
            f"{_SRC}: {check}: no such verdict rule; registered: {sorted(_RULES)}"
        ) from None


def rules() -> tuple[Rule, ...]:
    """The registered rules, in evaluation order."""
    return tuple(_RULES.values())


def default_thresholds() -> dict[str, float | int | None]:
    """``{threshold key: default}`` of every registered rule: the one source of the defaults."""
    return {r.threshold: r.default for r in _RULES.values()}


def checks_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The check values of every rule with a ``read`` function, from a diagnostics record."""
    return {r.check: r.read(record) for r in _RULES.values() if r.read is not None}


def notes_from_record(record: Mapping[str, Any]) -> list[str]:
    """The notes of every rule with a ``note`` function (those that return one), in order."""
    notes = (r.note(record) for r in _RULES.values() if r.note is not None)
    return [n for n in notes if n]


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`verdict`.

    Attributes
    ----------
    status : {"ok", "warn", "fail"}
        The worst severity of the triggered rules; ``"ok"`` when none triggered.
    reasons : list of str
        One sentence per triggered rule (fails first), naming the metric, where it was
        measured, the value and the threshold.
    not_measured : list of str
        Checks given as None (or absent) whose rule is enabled.
    notes : list of str
        Sentences that hold whatever the outcome (:func:`notes_from_record`), e.g. which
        parameter shift the tension check used.
    """

    status: Literal["ok", "warn", "fail"]
    reasons: list[str]
    not_measured: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "reasons", "not_measured", "notes"}``."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "not_measured": list(self.not_measured),
            "notes": list(self.notes),
        }


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) > 0:
        out = []
        for k, v in enumerate(np.asarray(value, dtype=object).ravel().tolist()):
            out.extend(_flatten(v, f"{prefix}[{k}]" if prefix else f"[{k}]"))
        return out
    return [(prefix, value)]


def _fmt(v: float) -> str:
    if isinstance(v, (int, np.integer)) or float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def verdict(
    checks: Mapping[str, Any],
    thresholds: Mapping[str, float | int | None] | None = None,
    *,
    notes: list[str] | None = None,
) -> Verdict:
    """Turn measured diagnostics into ``ok`` / ``warn`` / ``fail`` with reasons.

    Every registered rule (:func:`rules`) compares the worst entry of its check with its
    threshold. The built-in rules (check: comparison -> severity):

    ================================  ======================  ==========================
    check                             triggers when           severity
    ================================  ======================  ==========================
    ``tension_sigma``                 value >= threshold      fail (inconsistent data)
    ``n_modes``                       value > ``max_modes``   warn (multimodal)
    ``mode_mass_difference``          |value| > threshold     fail (flow misses modes)
    ``c2st``                          value > threshold       fail
    ``mean_shift``                    |value| > threshold     fail
    ``sd_ratio``                      |value - 1| > thr.      fail
    ``correlation_difference``        |value| > threshold     warn
    ``interval_overlap``              value < threshold       warn
    ``moment_score``                  |value| > threshold     warn (flow fidelity)
    ``sliced_wasserstein``            value > threshold       warn (flow fidelity)
    ``evidence_consistency``          |value| > threshold     warn (samplers' log Z
                                                              disagree at one stage)
    ================================  ======================  ==========================

    Each check value is a number, None (not measured: listed in ``not_measured``, no effect),
    or a (nested) mapping / sequence of numbers labelled by where they were measured, e.g.
    ``{"n_modes": {"chain A": 2, "joint": 1}}`` or ``agreement(...)["sd_ratio"]``; the worst
    entry decides and is named in the reason. A NaN value warns ("could not be computed").
    ``mean_shift`` and ``sd_ratio`` take the per-parameter values of
    :func:`~flowprior.diagnostics.agreement` (``agreement(...)["mean_shift_in_ref_sd"]``,
    ``agreement(...)["sd_ratio"]``); the rule takes the absolute value (of ``sd_ratio - 1``)
    itself.

    Parameters
    ----------
    checks : mapping of str to value
        Keys: the checks of registered rules; an unknown key raises ``InputError``.
    thresholds : mapping, optional
        Overrides of :func:`default_thresholds` (same keys; None disables a rule).
    notes : list of str, optional
        Carried into the verdict unchanged (:func:`notes_from_record`).

    Returns
    -------
    Verdict
    """
    src = f"{_SRC}.verdict"
    defaults = default_thresholds()
    thr = dict(defaults)
    if thresholds is not None:
        unknown = sorted(set(thresholds) - set(defaults))
        if unknown:
            raise _input_error(
                src,
                "thresholds",
                f"unknown key(s) {unknown}; expected some of {sorted(defaults)}",
            )
        thr.update(thresholds)
    unknown = sorted(set(checks) - set(_RULES))
    if unknown:
        raise _input_error(
            src, "checks", f"unknown key(s) {unknown}; expected some of {sorted(_RULES)}"
        )
    fails: list[str] = []
    warns: list[str] = []
    not_measured: list[str] = []
    for key, rule in _RULES.items():
        limit = thr.get(rule.threshold)
        if limit is None:
            continue
        limit = finite_float(src, f"thresholds.{rule.threshold}", limit)
        value = checks.get(key)
        entries = (
            [(lab, v) for lab, v in _flatten(value) if v is not None] if value is not None else []
        )
        if not entries:
            not_measured.append(key)
            continue
        nums = []
        for lab, v in entries:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise _input_error(
                    src, f"checks.{key}", f"expected numbers, got {v!r} at {lab or key!r}"
                )
            v = float(v)
            if math.isnan(v):
                where = f" ({lab})" if lab else ""
                warns.append(f"{rule.what}{where} could not be computed (NaN)")
                continue
            nums.append((lab, _TRANSFORMS[rule.transform](v)))
        if not nums:
            continue
        pick = min if rule.bad == "<" else max
        lab, worst = pick(nums, key=lambda e: e[1])
        hit = {">=": worst >= limit, ">": worst > limit, "<": worst < limit}[rule.bad]
        if not hit:
            continue
        where = f" ({lab})" if lab else ""
        reason = (
            f"{rule.what}{where} = {_fmt(worst)} {rule.bad} threshold {rule.threshold} = "
            f"{_fmt(limit)}: {rule.why}"
        )
        (fails if rule.severity == "fail" else warns).append(reason)
    status = "fail" if fails else "warn" if warns else "ok"
    for r in fails + warns:
        logger.info("verdict %s: %s", status, r)
    return Verdict(
        status=status, reasons=fails + warns, not_measured=not_measured, notes=list(notes or [])
    )


# ------------------------------------------------------------------------- built-in rules
def _per_sampler(key: str) -> Callable[[Mapping[str, Any]], Any]:
    """Reader of ``record["agreement"][sampler][key]`` for every sampler (None without any)."""
    return lambda rec: {s: a[key] for s, a in rec.get("agreement", {}).items()} or None


def _per_flow(key: str) -> Callable[[Mapping[str, Any]], Any]:
    """Reader of ``record["flows"][stage][key]`` for every flow, labelled ``"flow <stage>"``."""
    return lambda rec: {f"flow {s}": f.get(key) for s, f in rec.get("flows", {}).items()}


def _gaussian_note(rec: Mapping[str, Any]) -> str | None:
    """The flows of the sequence that a Gaussian fitted to the same training split beats on
    the test split by more than two standard errors of the paired difference (None: none,
    or not measured)."""
    worse = []
    for stage, f in rec.get("flows", {}).items():
        d, se = f.get("flow_minus_gaussian"), f.get("flow_minus_gaussian_se")
        if d is not None and se is not None and d > 2 * se:
            worse.append(f"{stage.replace(SEP, '→')} by {d:.3f} +- {se:.3f} nats")
    if not worse:
        return None
    return (
        "flows: a Gaussian fitted to the training split beats the flow on the test split ("
        + "; ".join(worse)
        + "): the flow prior adds error a Gaussian prior would not (more samples, more steps, "
        "or whiten: auto/full)"
    )


def _tension_checks(t: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter shift the verdict uses (flow where computed, else Gaussian) and the
    suspiciousness, labelled."""
    if t.get("shift_sigma") is not None:
        shift = {"flow parameter shift": t["shift_sigma"]}
    else:
        shift = {"Gaussian parameter shift": t.get("parameter_shift_sigma")}
    return {**shift, "suspiciousness": t.get("suspiciousness_sigma")}


def _tension_note(t: Mapping[str, Any] | None) -> str | None:
    """Which parameter shift the tension check used, on which parameters, and why."""
    if not t or t.get("parameter_shift_sigma") is None:
        return None
    names = ", ".join(t.get("parameters") or []) or "every parameter"
    gauss = f"Gaussian {t['parameter_shift_sigma']:.2f} sigma"
    if t.get("shift_sigma") is None:
        return (
            f"tension: the flow parameter shift cannot be made ({t.get('shift_skipped')}); "
            f"the verdict used the Gaussian one ({gauss}) on {names}"
        )
    if t.get("shift_sigma_is_lower_bound"):
        flow = f"> {t['shift_sigma']:.2f} sigma, a lower bound"
    else:
        flow = f"{t['shift_sigma']:.2f} +- {t['shift_sigma_err']:.2f} sigma"
    note = f"tension: the verdict used the flow parameter shift ({flow}; {gauss}) on {names}"
    if t.get("shift_disagreement"):
        note += "; they differ by more than 1 sigma: the Gaussian shift is not to be trusted"
    return note


_BUILTIN = (
    Rule(
        "tension_sigma", "tension_sigma", 3.0, "fail",
        "tension between the stage posteriors",
        "the sequential update combines inconsistent data",
        "Tension between the posterior before the last update and the last dataset's own "
        "posterior on the configured parameters (the flow parameter shift where it could be "
        "computed, else the Gaussian one; suspiciousness; equivalent Gaussian sigma).",
        bad=">=",
        read=lambda rec: _tension_checks(rec.get("tension", {})),
        note=lambda rec: _tension_note(rec.get("tension")),
    ),
    Rule(
        "n_modes", "max_modes", 1, "warn",
        "number of modes",
        "a single flow smears mass between separated modes",
        "Most modes any posterior of the sequence may have.",
        read=lambda rec: {label: m["n_modes"] for label, m in rec.get("modes", {}).items()},
    ),
    Rule(
        "mode_mass_difference", "mode_mass_difference", 0.1, "fail",
        "difference of mass per mode (flow vs chain)",
        "the flow does not reproduce the modes of the chain",
        "Largest |mass per mode of a flow - of its chain|.",
        transform="abs",
        read=_per_flow("mode_mass_difference"),
    ),
    Rule(
        "c2st", "c2st", 0.55, "fail",
        "C2ST accuracy",
        "a classifier tells the two sample sets apart",
        "C2ST accuracy (0.5: indistinguishable) of each sampler's final posterior against the "
        "joint one and of each flow against its held-out chain.",
        read=lambda rec: {
            **{f"{s} vs joint": a["c2st"] for s, a in rec.get("agreement", {}).items()},
            **{f"flow {s} vs its chain": f.get("c2st") for s, f in rec.get("flows", {}).items()},
        },
    ),
    Rule(
        "mean_shift", "mean_shift", 0.2, "fail",
        "|mean shift| in reference sd",
        "the sequential posterior is displaced from the joint one",
        "|Shift of a marginal mean| from the joint posterior, in joint sd.",
        transform="abs",
        read=_per_sampler("mean_shift_in_ref_sd"),
    ),
    Rule(
        "sd_ratio", "sd_ratio", 0.2, "fail",
        "|sd ratio - 1|",
        "the sequential posterior is wider or narrower than the joint one",
        "|sd ratio - 1| (sequential / joint).",
        transform="abs_minus_one",
        read=_per_sampler("sd_ratio"),
    ),
    Rule(
        "correlation_difference", "correlation_difference", 0.1, "warn",
        "|correlation difference|",
        "the sequential posterior has different correlations from the joint one",
        "|Difference of a correlation coefficient| (sequential vs joint).",
        transform="abs",
        read=_per_sampler("max_abs_correlation_difference"),
    ),
    Rule(
        "interval_overlap", "interval_overlap", 0.8, "warn",
        "credible-interval overlap",
        "the sequential and joint credible intervals differ",
        "Overlap (intersection over union) of the central credible intervals (sequential vs "
        "joint); smaller is worse.",
        bad="<",
        read=lambda rec: {
            s: {str(k): v for k, v in a["min_interval_overlap"].items()}
            for s, a in rec.get("agreement", {}).items()
        } or None,
    ),
    Rule(
        "moment_score", "moment_score", 4.0, "warn",
        "moment score",
        "the flow does not reproduce the moments of its training chain",
        "Largest moment score |delta / sigma| of a flow against its held-out chain (and a "
        "note naming each flow that a Gaussian fit beats on the test split by more than two "
        "standard errors).",
        transform="abs",
        read=_per_flow("max_moment_score"),
        note=_gaussian_note,
    ),
    Rule(
        "sliced_wasserstein", "sliced_wasserstein", 0.1, "warn",
        "sliced Wasserstein distance",
        "the flow differs from its training chain",
        "Sliced Wasserstein-1 distance of a flow from its held-out chain, in the chain's sd.",
        read=_per_flow("sliced_wasserstein"),
    ),
    Rule(
        "evidence_consistency", "evidence_consistency", 3.0, "warn",
        "|log Z difference| between samplers in combined standard errors",
        "two samplers disagree on the evidence of the same stage by more than their errors",
        "Largest |log Z_a - log Z_b| / sqrt(err_a^2 + err_b^2) between two samplers' runs of "
        "the same stage (not measured where an error is unknown).",
        transform="abs",
        read=lambda rec: {
            f"{p['sampler_a']} vs {p['sampler_b']} at {p['stage'].replace(SEP, '→')}": p["n_sigma"]
            for p in rec.get("evidence_consistency", [])
        } or None,
    ),
)
for _rule in _BUILTIN:
    register_rule(_rule)
del _rule
