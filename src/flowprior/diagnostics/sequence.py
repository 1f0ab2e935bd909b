"""Diagnostics of a sequential analysis, one workflow rule each.

* :func:`flow_fidelity` — a trained flow prior against the chain it learned, on the samples
  held out from training (held-out NLL; exact KL where a closed form is known; moment scores;
  C2ST; sliced Wasserstein; modes of the chain and the flow's mass per mode).
* :func:`diagnose_sequence` — one sequence ``A -> B [-> C]``: every registered sequence
  quantity (:func:`register_quantity`; built in: agreement with the joint posterior and
  between the samplers, the exact posterior where known, tension, modes, the flows used),
  then the verdict of every registered rule (:mod:`flowprior.diagnostics.verdict`).

Where every dataset of a stage is a built-in analytic problem (``flowprior.problems.analytic``
plug-ins on the problem's own box), the exact posterior is used too
(:func:`analytic_reference`): exact KL of the flows, and the sequential and joint posteriors
against exact joint samples.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..chains import Chain, read_chain
from ..errors import InputError, _input_error
from ..params import ParameterSpace
from ..plan import stage_id
from ..stats import kish_ess, weighted_mean_sd
from .agreement import agreement
from .evidence import evidence_consistency
from .modes import count_modes, mode_masses
from .settings import TENSION_SETTINGS, split_settings, tension_settings
from .shift import ShiftSettings, flow_parameter_shift, flow_shift_skip_reason
from .tension import evidence_ratio, parameter_shift, suspiciousness
from .twosample import c2st, moment_scores, sliced_wasserstein
from .verdict import checks_from_record, notes_from_record, verdict

__all__ = [
    "Quantity",
    "SequenceRuns",
    "analytic_reference",
    "cross_comparisons",
    "cross_key",
    "diagnose_sequence",
    "exact_accuracy",
    "flow_fidelity",
    "quantities",
    "register_quantity",
    "unregister_quantity",
]

log = logging.getLogger(__name__)

_SRC = "flowprior.diagnostics"


# ------------------------------------------------------------------------------ helpers
def _arrays(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    keep = chain.weights > 0
    return chain.samples[keep], chain.weights[keep]


def _c2st(x, y, *, wx=None, wy=None, seed: int, max_n: int) -> float:
    return float(c2st(x, y, w_p=wx, w_q=wy, seed=seed, max_n=max_n))


def exact_accuracy(
    x: np.ndarray,
    w: np.ndarray,
    *,
    exact: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    seed: int,
    max_n: int,
) -> dict[str, float]:
    """A weighted sample set against the exact posterior.

    Parameters
    ----------
    x, w : ndarray (N, D), (N,)
        Samples and importance weights.
    exact : ndarray (M, D)
        iid samples of the exact posterior.
    mean, sd : ndarray (D,)
        Exact posterior means and standard deviations.
    seed, max_n : int
        C2ST seed and points per set.

    Returns
    -------
    dict
        ``max_abs_mean_shift`` (largest |mean - exact mean| in exact sd),
        ``max_abs_sd_ratio_deviation`` (largest |sd / exact sd - 1|) and ``c2st`` (against
        ``exact``).
    """
    m, s = weighted_mean_sd(x, w)
    return {
        "max_abs_mean_shift": float(np.max(np.abs(m - mean) / sd)),
        "max_abs_sd_ratio_deviation": float(np.max(np.abs(s / sd - 1.0))),
        "c2st": _c2st(x, exact, wx=w, seed=seed, max_n=max_n),
    }


def analytic_reference(
    datasets: Mapping[str, Mapping[str, Any]],
    stage: Sequence[str],
    params: ParameterSpace,
):
    """The built-in analytic problem behind ``stage``'s datasets, or None.

    Returns ``(problem, problem_datasets)`` when every dataset of ``stage`` is a plug-in of
    the same :mod:`flowprior.problems.analytic` function with the same keyword arguments (but
    for ``dataset``) and the analysis' parameter table matches the problem's names and box;
    otherwise None (no closed form is claimed).
    """
    from ..problems.analytic import SPEC_PREFIX, get_analysis

    specs, kwargs, names = set(), [], []
    for d in stage:
        entry = datasets.get(d, {})
        spec = entry.get("likelihood")
        if not spec or not spec.startswith(SPEC_PREFIX):
            return None
        kw = dict(entry.get("kwargs") or {})
        names.append(kw.pop("dataset", None))
        specs.add(spec[len(SPEC_PREFIX) :])
        kwargs.append(kw)
    if len(specs) != 1 or any(k != kwargs[0] for k in kwargs) or None in names:
        return None
    problem = get_analysis(specs.pop(), **kwargs[0])
    same_box = (
        list(problem.params.names) == list(params.names)
        and np.allclose(problem.params.lower, params.lower)
        and np.allclose(problem.params.upper, params.upper)
    )
    return (problem, names) if same_box else None


# ------------------------------------------------------------------------- flow fidelity
def flow_fidelity(
    *,
    model: str | Path,
    chain: Chain,
    validation: Mapping[str, Any],
    exact=None,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A trained flow against the held-out part of the chain it was trained on.

    Parameters
    ----------
    model : path
        The flow model (directory or zip).
    chain : Chain
        The training chain (whole: the held-out split is recomputed from the model's recorded
        seed, validation and test fractions, exactly as training drew it; its SHA-256 is
        checked). The held-out split is the test split, which steered nothing in training;
        without one (``test_fraction`` 0) the scores use the validation split (early
        stopping's) and ``held_out_nll`` is None.
    validation : mapping
        The training job's ``validation.json`` (held-out NLL, steps, ...).
    exact : (AnalysisProblem, list of str) or None
        From :func:`analytic_reference`: adds the exact KL divergence ``KL(p || q)``.
    settings : mapping, optional
        Config ``diagnostics``: the sample sizes are used here, thresholds only checked.
    seed : int

    Returns
    -------
    dict
        ``held_out_split`` ("test" or "validation"), ``held_out_nll`` (None without a test
        split), ``gaussian_held_out_nll`` (the Gaussian baseline of the training job on the
        same test split, or None), ``flow_minus_gaussian`` and ``flow_minus_gaussian_se``
        (their paired difference on the test split and its standard error, or None),
        ``exact_kl`` (or None), ``moment_scores`` (list of rows), ``max_moment_score``,
        ``c2st``, ``sliced_wasserstein``, ``modes`` (chain), ``flow_mode_masses``, ``mode_mass_difference``, ``n_held_out``, ``ess_held_out``.
    """
    from ..priors import FlowPrior
    from ..train import data_split

    sizes, _ = split_settings(settings)
    prior = FlowPrior.load(model, seed=seed)
    cfg = prior.manifest.get("training", {})
    recorded = prior.manifest.get("data", {}).get("sha256")
    if np.any(chain.weights == 0):
        chain = chain.subset(chain.weights > 0)  # as training did, before the split
    if recorded and recorded != chain.sha256():
        raise InputError(
            f"{model}: manifest: chain sha256 {recorded[:12]}... does not match "
            f"{chain.source} ({chain.sha256()[:12]}...): not the chain this flow was trained on"
        )
    parts = data_split(
        chain.n,
        validation_fraction=float(cfg.get("validation_fraction", 0.2)),
        test_fraction=float(cfg.get("test_fraction", 0.0)),
        seed=int(cfg.get("seed", 1)),
    )
    # the test split steered nothing in training; without one (test_fraction 0) the scores
    # fall back to the validation split and the held-out NLL is unknown (null)
    held_split = "test" if parts["test"].size else "validation"
    held = chain.subset(np.isin(np.arange(chain.n), parts[held_split]))
    x, w = _arrays(held)
    y = np.asarray(prior.rvs(sizes["n_flow_samples"], seed=seed), dtype=np.float64)
    names = list(chain.params.names)

    out: dict[str, Any] = {
        "model": str(model),
        "n_held_out": int(x.shape[0]),
        "ess_held_out": float(kish_ess(w)),
        "held_out_split": held_split,
        "held_out_nll": (
            float(-np.average(prior.logpdf(x), weights=w)) if held_split == "test" else None
        ),
        "gaussian_held_out_nll": validation.get("gaussian_test_nll"),
        # paired on the test split, from the training job (None without a test split)
        "flow_minus_gaussian": validation.get("flow_minus_gaussian"),
        "flow_minus_gaussian_se": validation.get("flow_minus_gaussian_se"),
        "best_val_nll": validation.get("best_val_nll"),
        "train_seconds": validation.get("train_seconds"),
        "steps": validation.get("steps"),
        "exact_kl": None,
    }
    if exact is not None:
        problem, stage = exact
        xs = problem.sample_posterior(stage, sizes["n_exact_samples"], seed=seed)
        out["exact_kl"] = float(np.mean(problem.log_posterior(stage, xs) - prior.logpdf(xs)))
    scores = moment_scores(x, y, wa=w, names=names, n_boot=sizes["n_boot"], seed=seed)
    out["moment_scores"] = scores.to_dict(orient="records")
    out["max_moment_score"] = float(scores["score"].max())
    out["c2st"] = _c2st(x, y, wx=w, seed=seed, max_n=sizes["c2st_max_n"])
    out["sliced_wasserstein"] = float(sliced_wasserstein(x, y, wa=w, seed=seed))
    modes = count_modes(chain.samples, w=chain.weights, seed=seed)
    flow_masses = mode_masses(modes, y)
    out["modes"] = modes.to_dict()
    out["flow_mode_masses"] = flow_masses.tolist()
    out["mode_mass_difference"] = float(np.max(np.abs(flow_masses - modes.masses)))
    return out


# ------------------------------------------------------------ what a quantity receives
@dataclass(eq=False)
class SequenceRuns:
    """Everything a sequence quantity may read: the posteriors of one sequence, loaded once.

    Attributes
    ----------
    sequence : list of str
        Dataset names in order.
    params : ParameterSpace
    names : list of str
        Parameter names (table order).
    datasets : mapping
        The analysis' dataset entries.
    stage1 : dict dataset -> Chain
        Stage-1 posterior of every dataset of the sequence.
    before, before_run : Chain, dict
        Posterior of ``sequence[:-1]`` (stage 1 of the first dataset for two datasets) and its
        run record.
    last, last_run : Chain, dict
        Stage-1 posterior of the last dataset and its run record.
    finals : dict sampler -> Chain
        Final sequential posterior of every sampler, in the configured sampler order.
    joint, joint_run : Chain or None, dict
        Joint posterior of all the sequence's datasets (None without a joint run).
    has_previous : bool
        Whether ``before`` is a posterior of more than one dataset.
    fidelity : mapping flow stage -> :func:`flow_fidelity` result
    exact : (AnalysisProblem, list of str) or None
        :func:`analytic_reference` of the whole sequence.
    sizes : dict
        Sample sizes (config ``diagnostics``).
    seed : int
    final_runs : dict sampler -> dict
        Run record (``run.json`` content) of every sampler's final sequential run, in the
        order of ``finals``.
    tension : dict
        Config ``diagnostics.tension``, checked (:func:`~flowprior.diagnostics.settings.
        tension_settings`): ``parameters`` (the subset of every tension statistic) and
        ``method``.
    """

    sequence: list[str]
    params: ParameterSpace
    names: list[str]
    datasets: Mapping[str, Mapping[str, Any]]
    stage1: dict[str, Chain]
    before: Chain
    before_run: Mapping[str, Any]
    last: Chain
    last_run: Mapping[str, Any]
    finals: dict[str, Chain]
    joint: Chain | None
    joint_run: Mapping[str, Any]
    has_previous: bool
    fidelity: Mapping[str, Mapping[str, Any]]
    exact: Any
    sizes: dict[str, int]
    seed: int
    final_runs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    tension: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def weighted(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``(N, D)`` and weights ``(N,)`` of ``chain``, zero weights dropped."""
        return _arrays(chain)

    def c2st(self, x, y, *, wx=None, wy=None) -> float:
        """:func:`~flowprior.diagnostics.c2st` with this sequence's seed and sample cap."""
        return _c2st(x, y, wx=wx, wy=wy, seed=self.seed, max_n=self.sizes["c2st_max_n"])


# ------------------------------------------------------------------ quantity registry
@dataclass(frozen=True)
class Quantity:
    """A sequence-level diagnostic quantity.

    Attributes
    ----------
    name : str
        Registry name.
    compute : callable
        ``compute(runs: SequenceRuns) -> dict``: JSON-safe entries merged into the sequence's
        diagnostics record (keys may not collide with entries already there).
    description : str
        One sentence for the docs.
    columns : callable, optional
        ``columns(record) -> dict``: columns added to the sequence's row of the ``verdicts``
        table (:func:`~flowprior.diagnostics.analysis_tables`), from the diagnostics record as
        read back from ``summary.json``.
    """

    name: str
    compute: Callable[[SequenceRuns], Mapping[str, Any]]
    description: str
    columns: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise _input_error(
                f"{_SRC}.Quantity", "name", f"expected an identifier, got {self.name!r}"
            )
        for key in ("compute", "columns"):
            value = getattr(self, key)
            if value is not None and not callable(value):
                raise _input_error(f"{_SRC}.Quantity", key, f"expected a callable, got {value!r}")


_QUANTITIES: dict[str, Quantity] = {}


def register_quantity(quantity: Quantity, *, replace: bool = False) -> None:
    """Add a sequence quantity (computed after those registered before it).

    Raises
    ------
    InputError
        A quantity of the same name is registered already (and not ``replace``).
    """
    if not isinstance(quantity, Quantity):
        raise _input_error(
            f"{_SRC}.register_quantity", "quantity", f"expected a Quantity, got {quantity!r}"
        )
    if quantity.name in _QUANTITIES and not replace:
        raise InputError(
            f"{_SRC}.register_quantity: {quantity.name}: a quantity of this name is registered "
            "already (pass replace=True to replace it)"
        )
    _QUANTITIES[quantity.name] = quantity


def unregister_quantity(name: str) -> None:
    """Remove a registered quantity (InputError when none of that name is registered)."""
    if name not in _QUANTITIES:
        raise InputError(
            f"{_SRC}: {name}: no such sequence quantity; registered: {sorted(_QUANTITIES)}"
        )
    del _QUANTITIES[name]


def quantities() -> tuple[Quantity, ...]:
    """The registered sequence quantities, in computation order."""
    return tuple(_QUANTITIES.values())


# --------------------------------------------------------------------------- a sequence
def diagnose_sequence(
    *,
    sequence: Sequence[str],
    params: ParameterSpace,
    datasets: Mapping[str, Mapping[str, Any]],
    stage1: Mapping[str, Mapping[str, str]],
    previous: Mapping[str, str] | None,
    sequential: Mapping[str, Mapping[str, str]],
    joint: Mapping[str, str] | None,
    fidelity: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    settings_source: str = "diagnostics",
) -> dict[str, Any]:
    """Every registered quantity of one sequence and its verdict.

    Parameters
    ----------
    sequence : list of str
        Dataset names in order, length >= 2.
    params : ParameterSpace
    datasets : mapping
        The analysis' dataset entries (for :func:`analytic_reference`).
    stage1 : mapping dataset -> {"samples", "run_info"}
        Stage-1 posteriors (run records as dicts under ``"run_info"``).
    previous : {"samples", "run_info"} or None
        Posterior of ``sequence[:-1]`` when it has more than one dataset (its joint run where
        there is one, else the flow sampler's sequential run); None for two datasets.
    sequential : mapping sampler -> {"samples", "run_info"}
        Final sequential posteriors, in the configured sampler order (the first is the
        reference of the cross comparisons).
    joint : {"samples", "run_info"} or None
        Joint posterior of all the sequence's datasets.
    fidelity : mapping flow stage -> :func:`flow_fidelity` result
        The flows this sequence went through.
    settings : mapping, optional
        Config ``diagnostics``: sample sizes, the thresholds of registered rules and
        ``tension`` (parameter subset and method).
    seed : int
    settings_source : str
        Where ``settings`` come from, for error messages (the workflow passes
        ``"config: analyses: NAME: diagnostics"``).

    Returns
    -------
    dict
        ``sequence``, ``stage``, the entries of every registered quantity, ``verdict``.
    """
    sizes, thresholds = split_settings(settings, source=settings_source)
    tension = tension_settings(settings, names=list(params.names), source=settings_source)
    seq = list(sequence)
    load = lambda path: read_chain(path, params)  # noqa: E731
    first = previous if previous is not None else stage1[seq[0]]
    stage1_chains = {d: load(stage1[d]["samples"]) for d in seq}  # each file read once
    runs = SequenceRuns(
        sequence=seq,
        params=params,
        names=list(params.names),
        datasets=datasets,
        stage1=stage1_chains,
        before=load(previous["samples"]) if previous is not None else stage1_chains[seq[0]],
        before_run=first.get("run_info", {}),
        last=stage1_chains[seq[-1]],
        last_run=stage1[seq[-1]].get("run_info", {}),
        finals={s: load(v["samples"]) for s, v in sequential.items()},
        joint=load(joint["samples"]) if joint is not None else None,
        joint_run=(joint or {}).get("run_info", {}),
        has_previous=previous is not None,
        fidelity=fidelity,
        exact=analytic_reference(datasets, seq, params),
        sizes=sizes,
        seed=seed,
        final_runs={s: v.get("run_info", {}) for s, v in sequential.items()},
        tension=tension,
    )
    out: dict[str, Any] = {"sequence": seq, "stage": stage_id(seq)}
    for q in _QUANTITIES.values():
        entries = dict(q.compute(runs))
        clash = sorted(set(entries) & (set(out) | {"verdict"}))
        if clash:
            raise InputError(
                f"{_SRC}: quantity {q.name}: entries {clash} are already in the diagnostics "
                "record"
            )
        out.update(entries)
    out["verdict"] = verdict(
        checks_from_record(out), thresholds, notes=notes_from_record(out)
    ).to_dict()
    return out


# ---------------------------------------------------------------- built-in quantities
def cross_key(other: str, first: str) -> str:
    """Record key of the comparison of sampler ``other`` with the first sampler ``first``."""
    return f"{other}_vs_{first}"


_CROSS = re.compile(r"(?P<other>.+?)_vs_(?P<first>.+)")


def cross_comparisons(record: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(other, first, agreement)`` of every sampler cross comparison in a record."""
    out = []
    for key, value in record.items():
        m = _CROSS.fullmatch(key)
        if m and isinstance(value, Mapping) and "max_abs_mean_shift" in value:
            out.append((m["other"], m["first"], value))
    return out


def _agreement(runs: SequenceRuns) -> dict[str, Any]:
    """Each sampler's final posterior vs the joint; every other sampler vs the first one."""
    seed, names = runs.seed, runs.names
    result: dict[str, Any] = {}
    if runs.joint is not None:
        xr, wr = _arrays(runs.joint)
        for sampler, chain in runs.finals.items():
            x, w = _arrays(chain)
            entry = agreement(x, xr, wx=w, wref=wr, names=names)
            entry["c2st"] = runs.c2st(x, xr, wx=w, wy=wr)
            entry["sliced_wasserstein"] = float(
                sliced_wasserstein(xr, x, wa=wr, wb=w, seed=seed)
            )
            result[sampler] = entry
    out: dict[str, Any] = {"agreement": result}
    if runs.joint is not None:
        out["agreement_reference"] = _reference_kind(runs.joint_run.get("sampler", "unknown"))
    samplers = list(runs.finals)
    if len(samplers) > 1:
        xf, wf = _arrays(runs.finals[samplers[0]])
        for other in samplers[1:]:
            xo, wo = _arrays(runs.finals[other])
            cross = agreement(xo, xf, wx=wo, wref=wf, names=names)
            cross["c2st"] = runs.c2st(xo, xf, wx=wo, wy=wf)
            out[cross_key(other, samplers[0])] = cross
    return out


def _derived(runs: SequenceRuns) -> dict[str, Any]:
    """The derived quantities every final posterior carries (the analysis' ``derived``, or a
    chain's own): weighted mean and sd of each final posterior, of the joint one, and the
    shift and sd ratio against the joint one where there is one."""
    chains = dict(runs.finals)
    if runs.joint is not None:
        chains[_JOINT_LABEL] = runs.joint
    if not chains:
        return {}
    names = [n for n in next(iter(chains.values())).derived
             if all(n in c.derived for c in chains.values())]  # fmt: skip
    if not names:
        return {}

    def moments(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
        keep = chain.weights > 0
        x = np.column_stack([chain.derived[n][keep] for n in names])
        return weighted_mean_sd(x, chain.weights[keep])

    ref = moments(runs.joint) if runs.joint is not None else None
    out: dict[str, Any] = {}
    for label, chain in chains.items():
        mean, sd = moments(chain)
        entry: dict[str, Any] = {}
        for i, n in enumerate(names):
            row = {"mean": float(mean[i]), "sd": float(sd[i]),
                   "mean_shift_in_ref_sd": None, "sd_ratio": None}  # fmt: skip
            if ref is not None and label != _JOINT_LABEL and ref[1][i] > 0:
                row["mean_shift_in_ref_sd"] = float((mean[i] - ref[0][i]) / ref[1][i])
                row["sd_ratio"] = float(sd[i] / ref[1][i])
            entry[n] = row
        out[label] = entry
    source = runs.joint_run.get("sampler") if runs.joint is not None else None
    return {"derived": {"quantities": names, "reference": _reference_kind(source),
                        "by_run": out}}  # fmt: skip


#: Label of the joint posterior among the runs of the derived-quantity record.
_JOINT_LABEL = "joint"


def _reference_kind(sampler: str | None) -> str | None:
    """What the sequence is compared with: ``"reference chain"`` (the analysis' published
    joint posterior), ``"joint run"``, or None without one."""
    if sampler is None:
        return None
    return "reference chain" if sampler == "reference" else "joint run"


def _vs_exact(runs: SequenceRuns) -> dict[str, Any]:
    """Final and joint posteriors against exact samples (built-in analytic problems)."""
    if runs.exact is None:
        return {}
    problem, pnames = runs.exact
    xs = problem.sample_posterior(pnames, runs.sizes["n_exact_samples"], seed=runs.seed)
    mean, cov = problem.posterior_moments(pnames)
    sd = np.sqrt(np.diag(cov))
    chains = dict(runs.finals)
    if runs.joint is not None:
        chains["joint"] = runs.joint
    vs_exact = {}
    for label, chain in chains.items():
        x, w = _arrays(chain)
        vs_exact[label] = exact_accuracy(
            x, w, exact=xs, mean=mean, sd=sd, seed=runs.seed, max_n=runs.sizes["c2st_max_n"]
        )
    return {"vs_exact": vs_exact, "exact_log_evidence": float(problem.log_evidence(pnames))}


#: Entries of the flow shift in the ``tension`` record (and table); None where not computed.
FLOW_SHIFT_KEYS = (
    "shift_probability", "shift_probability_err", "shift_sigma", "shift_sigma_err",
    "shift_sigma_is_lower_bound",
)  # fmt: skip


def flow_shift_entries(
    before: Chain, last: Chain, *, names: Sequence[str], gaussian_sigma: float, method: str,
    seed: int, calibrate: bool = True,
) -> dict[str, Any]:
    """The flow parameter shift of the workflow (:meth:`ShiftSettings.workflow`, with
    ``calibrate``: ``diagnostics.tension.calibrate``), or why not.

    Returns
    -------
    dict
        :data:`FLOW_SHIFT_KEYS` (None where the shift cannot be made: never 0),
        ``shift_skipped`` (the reason, or None), ``shift_disagreement`` (flow and Gaussian
        shifts differ by more than 1 sigma; None without a flow shift), ``shift_used``
        (``"flow"`` or ``"gaussian"``: the one the verdict uses), ``shift_n_pairs``,
        ``shift_seconds`` and ``shift_warnings``.
    """
    out: dict[str, Any] = dict.fromkeys(FLOW_SHIFT_KEYS)
    out.update(shift_skipped=None, shift_disagreement=None, shift_used="gaussian",
               shift_n_pairs=None, shift_seconds=None, shift_warnings=[])  # fmt: skip
    if method == "gaussian":
        out["shift_skipped"] = "not asked for (diagnostics.tension.method: gaussian)"
        return out
    cfg = dataclasses.replace(ShiftSettings.workflow(), calibrate=calibrate)
    reason = flow_shift_skip_reason(before, last, settings=cfg)
    if reason is None:
        r = flow_parameter_shift(before, last, parameters=list(names), seed=seed, threads=1,
                                 settings=cfg)  # fmt: skip
        out.update(shift_n_pairs=r["n_pairs"], shift_seconds=r["seconds"],
                   shift_warnings=list(r["warnings"]))  # fmt: skip
        excess = (
            r["flow_test_nll"] - r["gaussian_test_nll"]
            if r["flow_test_nll"] is not None else None
        )  # fmt: skip
        if excess is not None and excess > cfg.max_test_nll_excess:
            reason = (
                f"the flows describe the held-out differences worse than a Gaussian fit by "
                f"{excess:.3f} nats per pair > max_test_nll_excess {cfg.max_test_nll_excess:g} "
                "(undertrained)"
            )
        else:
            out.update({k: r[k] for k in FLOW_SHIFT_KEYS})
            out["shift_used"] = "flow"
            gap = out["shift_sigma"] - gaussian_sigma
            # a lower bound below the Gaussian value does not disagree with it
            out["shift_disagreement"] = bool(
                abs(gap) > 1.0 and not (out["shift_sigma_is_lower_bound"] and gap < 0)
            )
    if reason is not None:
        log.warning("tension: the flow parameter shift cannot be made: %s", reason)
        out["shift_skipped"] = reason
    return out


def _tension(runs: SequenceRuns) -> dict[str, Any]:
    """Tension between the posterior before the last update and the last dataset's own."""
    before, last, joint = runs.before, runs.last, runs.joint
    names = list(runs.tension.get("parameters") or runs.names)
    cols = [runs.names.index(p) for p in names]
    xa, wa = _arrays(before)
    xb, wb = _arrays(last)
    shift = parameter_shift(xa[:, cols], xb[:, cols], wa=wa, wb=wb)
    out: dict[str, Any] = {
        "parameters": names,
        "parameter_shift_sigma": float(shift["sigma"]),
        "parameter_shift_chi2": float(shift.get("chi2", math.nan)),
        **flow_shift_entries(
            before, last, names=names, gaussian_sigma=float(shift["sigma"]),
            method=runs.tension.get("method", TENSION_SETTINGS["method"]), seed=runs.seed,
            calibrate=runs.tension.get("calibrate", TENSION_SETTINGS["calibrate"]),
        ),
        "log_R": None,
        "log_R_err": None,
        "suspiciousness_sigma": None,
    }
    za, zb, zab = (r.get("log_evidence") for r in (runs.before_run, runs.last_run, runs.joint_run))
    if None not in (za, zb, zab):
        # an error a run does not report (pocoMC with precondition: false) stays unknown
        labelled = {
            f"joint {stage_id(runs.sequence)}": runs.joint_run,
            stage_id(runs.sequence[:-1]): runs.before_run,
            f"stage 1 {runs.sequence[-1]}": runs.last_run,
        }
        unknown = [k for k, r in labelled.items() if r.get("log_evidence_err") is None]
        errs = None if unknown else [float(r["log_evidence_err"]) for r in labelled.values()]
        log_r, log_r_err = evidence_ratio(zab, za, zb, errors=errs)
        out["log_R"], out["log_R_err"] = float(log_r), log_r_err
        if unknown:
            out["log_R_err_skipped"] = f"no log Z error reported by {', '.join(unknown)}"
        lls = [c.log_likelihood for c in (before, last, joint)] if joint is not None else [None]
        if all(v is not None for v in lls):
            keep = [c.weights > 0 for c in (before, last, joint)]
            sus = suspiciousness(
                log_z_a=za, log_z_b=zb, log_z_ab=zab,
                loglike_a=before.log_likelihood[keep[0]], w_a=before.weights[keep[0]],
                loglike_b=last.log_likelihood[keep[1]], w_b=last.weights[keep[1]],
                loglike_ab=joint.log_likelihood[keep[2]], w_ab=joint.weights[keep[2]],
            )  # fmt: skip
            out["suspiciousness"] = {k: float(v) for k, v in sus.items()}
            out["suspiciousness_sigma"] = float(sus["sigma"])
    if runs.exact is not None and len(runs.sequence) == 2:
        problem, pnames = runs.exact
        out["exact_parameter_shift_sigma"] = float(
            problem.parameter_shift_sigma([pnames[0]], [pnames[1]])
        )
    return {"tension": out}


def _modes(runs: SequenceRuns) -> dict[str, Any]:
    """Modes of every posterior of the sequence."""
    posteriors = {f"stage 1 {d}": c for d, c in runs.stage1.items()}
    if runs.has_previous:
        posteriors[f"before {runs.sequence[-1]}"] = runs.before
    posteriors.update({f"sequential {s}": c for s, c in runs.finals.items()})
    if runs.joint is not None:
        posteriors["joint"] = runs.joint
    modes = {}
    for k, (label, chain) in enumerate(posteriors.items()):
        x, w = _arrays(chain)
        modes[label] = count_modes(x, w=w, seed=runs.seed + k).to_dict()
    return {"modes": modes}


_FLOW_KEYS = (
    "held_out_nll", "exact_kl", "max_moment_score", "c2st", "sliced_wasserstein",
    "mode_mass_difference", "flow_minus_gaussian", "flow_minus_gaussian_se",
)  # fmt: skip


def _flows(runs: SequenceRuns) -> dict[str, Any]:
    """The fidelity of the flows this sequence went through."""
    return {
        "flows": {
            stage: {k: f.get(k) for k in _FLOW_KEYS} for stage, f in runs.fidelity.items()
        }
    }


def _evidence_consistency(runs: SequenceRuns) -> dict[str, Any]:
    """The samplers' log Z of the final stage, pair by pair, in combined standard errors."""
    stage = stage_id(runs.sequence)
    estimates = [
        {
            "stage": stage,
            "sampler": sampler,
            "log_evidence": run.get("log_evidence"),
            "log_evidence_err": run.get("log_evidence_err"),
        }
        for sampler, run in runs.final_runs.items()
    ]
    return {"evidence_consistency": evidence_consistency(estimates)}


for _q in (
    Quantity("agreement", _agreement, "Each sampler's final posterior against the joint one "
             "(agreement, C2ST, sliced Wasserstein); every other sampler against the first."),
    Quantity("derived", _derived, "The derived quantities of the final (and joint) "
             "posteriors: weighted mean and sd, and shift and sd ratio against the joint one."),
    Quantity("vs_exact", _vs_exact, "Final and joint posteriors against exact samples and the "
             "exact log evidence (built-in analytic problems only)."),
    Quantity("tension", _tension, "Parameter shift (Gaussian and flow-based, on the configured "
             "parameters), evidence ratio and suspiciousness between the posterior before the "
             "last update and the last dataset's own."),
    Quantity("modes", _modes, "Number of modes and mass per mode of every posterior."),
    Quantity("flows", _flows, "Fidelity of the flows this sequence went through."),
    Quantity("evidence_consistency", _evidence_consistency, "The final stage's log Z of every "
             "pair of samplers, their difference in combined standard errors (null where an "
             "error is unknown)."),
):  # fmt: skip
    register_quantity(_q)
del _q
