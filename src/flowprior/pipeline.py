"""Orchestration of a sequential analysis: stages, likelihoods, seeds and the summary.

Vocabulary
----------
dataset
    A named source of information about the parameters: a likelihood plug-in, or a posterior
    chain of an earlier analysis (under the same uniform box prior).
stage id
    The datasets absorbed so far, joined with ``"__"`` (:func:`flowprior.plan.stage_id`):
    ``"A"`` is the stage-1 posterior of A, ``"A__B"`` the sequential posterior after A then B.
sequence
    An ordered list of datasets; its last stage id names the run directory.
sampler
    A name of the sampler registry (:mod:`flowprior.samplers`). Stage 1, the joint reference
    and every sequential stage take any registered sampler with its settings section
    (:func:`run_sampler`); each job's seed is derived from the analysis seed and the job's
    identity (:func:`derive_seed`), independently of the sampler for stage 1 and the joint.

A chain dataset that is *not* first in a sequence enters through its flow: with the uniform box
prior ``pi``, ``L_C(theta) = p(theta | C) / pi(theta) * Z_C``, so ``log q_C(theta) + log V`` is
its log-likelihood up to the constant ``log Z_C``; the evidence of that stage is then the ratio
``Z_{..C} / (Z_.. Z_C)``.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .plan import joint_id, parse_stage, stage_id
from .stats import kish_ess, weighted_mean_sd

__all__ = [
    "FlowLikelihood",
    "ProductLikelihood",
    "dataset_likelihood",
    "derive_seed",
    "flow_correction",
    "run_joint",
    "run_sampler",
    "run_sequential",
    "run_stage1",
    "summarise_analysis",
]

log = logging.getLogger(__name__)


def derive_seed(seed: int, *keys: str) -> int:
    """A reproducible 32-bit seed for one job, from the analysis seed and the job's identity."""
    material = [int(seed)] + [zlib.crc32(k.encode()) for k in keys]
    return int(np.random.SeedSequence(material).generate_state(1)[0])


class ProductLikelihood:
    """Sum of the log-likelihoods of several datasets (the joint reference).

    Evaluates every factor only where the previous ones are finite.
    """

    def __init__(self, factors: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        if not factors:
            raise ValueError("a product needs at least one factor")
        self.factors = list(factors)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        total = np.zeros(theta.shape[0])
        alive = np.ones(theta.shape[0], dtype=bool)
        for f in self.factors:
            if not alive.any():
                break
            part = np.asarray(f(theta[alive]), dtype=np.float64)
            total[alive] += part
            alive &= np.isfinite(total)
        return total


class FlowLikelihood:
    """A chain dataset as a likelihood: ``log q_C(theta) + log V`` (see the module docstring).

    Parameters
    ----------
    model : str or Path
        Flow trained on the dataset's posterior chain (same prior box as the analysis).
    dataset : str
    """

    def __init__(self, model: str | Path, *, dataset: str) -> None:
        from .priors import FlowPrior

        self.prior = FlowPrior.load(model)
        self.dataset = dataset
        self.n_calls = 0
        self._log_volume = self.prior.params.log_volume

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        self.n_calls += theta.shape[0]
        return self.prior.logpdf(theta) + self._log_volume


# ------------------------------------------------------------------------------ summary
def _read_json(path: Path) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def _record(
    files: Mapping[str, str], *, path_key: str = "run", info_key: str = "run_info"
) -> dict[str, Any]:
    """The files of one job as strings, plus the JSON record at ``files[path_key]``."""
    record: dict[str, Any] = {key: str(p) for key, p in files.items()}
    record[info_key] = _read_json(Path(files[path_key]))
    return record


def _weighted_moments(path: Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    frame = pd.read_parquet(path)
    x = frame[list(names)].to_numpy(dtype=np.float64)
    w = frame["weight"].to_numpy(dtype=np.float64) if "weight" in frame else None
    return weighted_mean_sd(x, w)


def summarise_analysis(
    *,
    analysis: str,
    names: Sequence[str],
    stage1: Mapping[str, Mapping[str, str]],
    flows: Mapping[str, Mapping[str, str]],
    sequential: Mapping[str, Mapping[str, Mapping[str, str]]],
    joint: Mapping[str, Mapping[str, str]],
    sequences: Sequence[Sequence[str]],
    dataset_order: Sequence[str],
    fidelity: Mapping[str, str] | None = None,
    diagnostics: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Collect every artifact and run record of an analysis into one JSON-safe dictionary.

    For every sequence it also does the evidence bookkeeping
    ``log Z_first + sum_k log Z_{k | previous}`` against the joint run's ``log Z``, and
    compares the final sequential posteriors with the joint one (shift of each marginal mean
    in joint standard deviations, ratio of standard deviations).

    Evidence bookkeeping. Every run that reports an evidence takes part: ``log Z_first`` comes
    from the stage-1 run and the reference from the joint run, whatever sampler ran them; the
    sequential terms come from every sequential sampler whose runs report an evidence at
    every stage of the sequence (e.g. pocoMC, not emcee), each giving its own chain. A
    sequence entry holds ``sequential_evidence`` (the chain of the first such sampler in the
    order of ``sequential``, i.e. of the config's ``samplers``) and ``evidence_check`` (it
    against the joint ``log Z``); only when more than one sampler gives a chain it also holds
    ``sequential_evidence_by_sampler`` and ``evidence_check_by_sampler`` (sampler -> chain,
    sampler -> check, in that order). A chain dataset first in the sequence (no evidence)
    gives no chain. An error a run does not report (pocoMC with ``precondition: false``)
    stays unknown: the chain's ``log_evidence_err`` is None (JSON null, "–" in the tables),
    and a check that needs it has ``n_sigma`` None and a ``skipped`` reason naming the runs.

    Parameters
    ----------
    stage1, flows, joint : mapping id -> {"samples"|"model": path, "run"|"validation": path}
    sequential : mapping stage id -> sampler -> {"samples": path, "run": path}
    fidelity : mapping flow stage -> path of its ``fidelity.json``, optional
    diagnostics : mapping sequence stage id -> path of its diagnostics JSON, optional
        Included under ``fidelity`` and in each sequence's ``diagnostics`` (with its
        ``verdict``); ``verdicts`` maps each sequence to its verdict status.
    """
    out: dict[str, Any] = {"analysis": analysis, "parameters": list(names)}
    out["stage1"] = {k: _record(v) for k, v in stage1.items()}
    out["flows"] = {
        k: _record(v, path_key="validation", info_key="validation_info") for k, v in flows.items()
    }
    out["sequential"] = {
        stage: {sampler: _record(v) for sampler, v in by_sampler.items()}
        for stage, by_sampler in sequential.items()
    }
    out["joint"] = {k: _record(v) for k, v in joint.items()}
    out["fidelity"] = {k: _read_json(Path(p)) for k, p in (fidelity or {}).items()}
    out["sequences"] = [
        _sequence_summary(
            seq, names=names, out=out, sequential=sequential, joint=joint, order=dataset_order
        )
        for seq in sequences
    ]
    diagnostics = diagnostics or {}
    for entry in out["sequences"]:
        path = diagnostics.get(entry["stage"])
        if path is not None:
            entry["diagnostics"] = _read_json(Path(path))
            entry["verdict"] = entry["diagnostics"]["verdict"]
    out["verdicts"] = {
        e["stage"]: e["verdict"]["status"] for e in out["sequences"] if "verdict" in e
    }
    return out


def _evidence_samplers(seq: Sequence[str], out: Mapping[str, Any]) -> list[str]:
    """Samplers (in config order) with a run at the sequence's last stage."""
    return list(out["sequential"].get(stage_id(seq), {}))


def _err(run: Mapping[str, Any]) -> float | None:
    """A run's ``log_evidence_err``: a float, or None when the sampler reports none.

    pocoMC without preconditioning (``precondition: false``) gives a ``log Z`` but no error;
    unknown stays unknown (None, JSON null), never 0.
    """
    err = run.get("log_evidence_err")
    return None if err is None else float(err)


def _evidence_chain(
    seq: Sequence[str], out: Mapping[str, Any], sampler: str
) -> dict[str, Any] | None:
    """``log Z_first + sum log Z_{k|...}`` from the runs of ``sampler``, with its error.

    ``log Z_first`` is the stage-1 run's evidence, whatever sampler ran it; each sequential
    term is the evidence of ``sampler``'s run of that stage. None when any of them reports
    no evidence (a chain dataset first, or a sampler without an evidence such as emcee).
    ``log_evidence_err`` is the quadrature sum of the terms' errors, or None when any term
    reports no error; ``err_unknown`` then lists those terms' stages.

    When the last stage carries a ``flow_correction`` (its earlier likelihoods were evaluable),
    also the flow-corrected total ``log Z_(last|q) + log E[r]`` (see :func:`flow_correction`)
    and the flow's bias on the chain, ``flow_bias = log Z_(previous stages) - log E[r]``: the
    raw chain minus the flow-corrected total, positive when the flow's error raises the raw
    chain's ``log Z``.
    """
    first = out["stage1"].get(seq[0], {}).get("run_info", {})
    if first.get("log_evidence") is None:
        return None
    total = float(first["log_evidence"])
    errors: list[tuple[str, float | None]] = [(seq[0], _err(first))]
    terms = [{"stage": seq[0], "log_evidence": total}]
    run: Mapping[str, Any] = {}
    for k in range(2, len(seq) + 1):
        previous = total
        run = out["sequential"].get(stage_id(seq[:k]), {}).get(sampler, {}).get("run_info")
        if not run or run.get("log_evidence") is None:
            return None
        total += float(run["log_evidence"])
        errors.append((stage_id(seq[:k]), _err(run)))
        terms.append({"stage": stage_id(seq[:k]), "log_evidence": float(run["log_evidence"])})
    unknown = [stage for stage, e in errors if e is None]
    chain: dict[str, Any] = {
        "terms": terms,
        "log_evidence": total,
        "log_evidence_err": None if unknown else math.sqrt(sum(e * e for _, e in errors)),
    }
    if unknown:
        chain["err_unknown"] = unknown
    corr = run.get("flow_correction")
    if corr:
        last_err = _err(run)
        chain["flow_corrected"] = {
            "log_evidence": float(run["log_evidence"]) + corr["log_mean_ratio"],
            "log_evidence_err": (
                None if last_err is None else math.hypot(last_err, corr["log_mean_ratio_err"])
            ),
            "flow_bias": previous - corr["log_mean_ratio"],
            "ess_fraction": corr["ess_fraction"],
        }
        if last_err is None:
            chain["flow_corrected"]["err_unknown"] = [stage_id(seq)]
    return chain


def _check(
    value: float, err: float | None, reference: float, reference_err: float | None, *,
    unknown: Sequence[str] = (),
) -> dict[str, Any]:
    """``value`` against ``reference`` in units of their combined error.

    ``skipped`` is None when ``n_sigma`` was computed; otherwise ``n_sigma`` (and, with an
    unknown error, ``combined_error``) is None and ``skipped`` says why: an error that is
    unknown (``unknown`` names the runs; pocoMC with ``precondition: false`` reports none) or
    a combined error of 0.
    """
    diff = value - reference
    if err is None or reference_err is None:
        who = ", ".join(unknown) or "a run"
        return {
            "log_evidence": value,
            "difference": diff,
            "combined_error": None,
            "n_sigma": None,
            "skipped": f"no log Z error reported by {who} (e.g. pocoMC with precondition: false)",
        }
    combined = math.hypot(err, reference_err)
    return {
        "log_evidence": value,
        "difference": diff,
        "combined_error": combined,
        "n_sigma": diff / combined if combined > 0 else None,
        "skipped": None if combined > 0 else "combined log Z error is 0",
    }


def _evidence_check(
    chain: Mapping[str, Any], j_z: float, j_err: float | None, *, joint: str
) -> dict[str, Any]:
    """One sequential evidence chain against the joint run's ``log Z``."""
    joint_unknown = [f"joint {joint}"] if j_err is None else []
    check = _check(
        chain["log_evidence"], chain["log_evidence_err"], j_z, j_err,
        unknown=list(chain.get("err_unknown", [])) + joint_unknown,
    )  # fmt: skip
    out = {"sequential_log_evidence": check.pop("log_evidence"), "joint_log_evidence": j_z, **check}
    fc = chain.get("flow_corrected")
    if fc:
        out["flow_corrected"] = _check(
            fc["log_evidence"], fc["log_evidence_err"], j_z, j_err,
            unknown=list(fc.get("err_unknown", [])) + joint_unknown,
        )  # fmt: skip
    return out


def _sequence_summary(seq, *, names, out, sequential, joint, order) -> dict[str, Any]:
    sid = stage_id(seq)
    jid = joint_id(seq, order)
    entry: dict[str, Any] = {
        "sequence": list(seq),
        "stage": sid,
        "joint": jid if jid in joint else None,
    }
    chains = {}
    for sampler in _evidence_samplers(seq, out):
        chain = _evidence_chain(seq, out, sampler)
        if chain is not None:
            chains[sampler] = chain
    if chains:
        entry["sequential_evidence"] = next(iter(chains.values()))
        if len(chains) > 1:
            entry["sequential_evidence_by_sampler"] = chains
    if jid in joint:
        jrun = out["joint"][jid]["run_info"]
        if chains and jrun.get("log_evidence") is not None:
            j_z, j_err = float(jrun["log_evidence"]), _err(jrun)
            checks = {s: _evidence_check(c, j_z, j_err, joint=jid) for s, c in chains.items()}
            entry["evidence_check"] = next(iter(checks.values()))
            if len(checks) > 1:
                entry["evidence_check_by_sampler"] = checks
        j_mean, j_sd = _weighted_moments(Path(joint[jid]["samples"]), names)
        entry["vs_joint"] = {}
        for sampler, files in sequential.get(sid, {}).items():
            mean, sd = _weighted_moments(Path(files["samples"]), names)
            entry["vs_joint"][sampler] = {
                "mean_shift_in_joint_sd": dict(zip(names, ((mean - j_mean) / j_sd).tolist())),
                "sd_ratio": dict(zip(names, (sd / j_sd).tolist())),
                "max_abs_mean_shift": float(np.max(np.abs((mean - j_mean) / j_sd))),
                "max_abs_sd_ratio_minus_1": float(np.max(np.abs(sd / j_sd - 1.0))),
            }
    return entry


# ------------------------------------------------------------------------------ jobs
def dataset_likelihood(
    name: str,
    entry: Mapping[str, Any],
    *,
    dim: int,
    flow_model: str | Path | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The log-likelihood of one dataset of an analysis.

    A likelihood plug-in (``{"likelihood": spec, "kwargs": {...}}``) is loaded and wrapped with
    the shape/NaN checks of :class:`flowprior.likelihoods.Likelihood`; a chain dataset needs
    ``flow_model`` (its flow) and becomes a :class:`FlowLikelihood`.
    """
    if "likelihood" in entry:
        from .likelihoods import Likelihood

        return Likelihood.from_config(dict(entry), dataset=name, dim=dim)
    if flow_model is None:
        raise InputError(f"datasets: {name}: a chain dataset after stage 1 needs its flow model")
    return FlowLikelihood(flow_model, dataset=name)


def derived_quantities(derived: Any, params, *, where: str = "derived"):
    """The analysis' ``derived`` plug-in (None when unset), probed at three points of the
    prior box so that a broken function stops a job before its sampler runs."""
    from .derived import DerivedQuantities

    fn = DerivedQuantities.from_config(derived, names=params.names, source=where)
    if fn is not None:
        fn.probe(params.lower, params.upper)
    return fn


def with_derived(run, derived) -> Any:
    """``run`` with the derived quantities of ``derived`` (a :class:`DerivedQuantities` or
    None) among its chain's derived columns, recorded in ``info["derived"]``."""
    if derived is None:
        return run
    values = derived(run.chain.samples)
    run.chain = derived.apply(run.chain, values=values)
    run.info["derived"] = {"function": derived.spec, "names": list(values)}
    return run


def run_sampler(
    sampler: str,
    *,
    prior: Any,
    loglike: Callable[[np.ndarray], np.ndarray],
    settings: Mapping[str, Any] | None,
    seed: int,
    threads: int = 1,
    where: str,
):
    """Run the registered sampler ``sampler`` on ``loglike x prior``.

    Parameters
    ----------
    sampler : str
        A name of :func:`flowprior.samplers.sampler_names`.
    prior : object
        pocoMC's prior protocol (:class:`~flowprior.priors.BoxPrior`,
        :class:`~flowprior.priors.FlowPrior`).
    loglike : callable
        Vectorised log-likelihood ``(n, d) -> (n,)``.
    settings : mapping or None
        The sampler's settings section of the config (its keys; missing ones take the
        defaults of the sampler's settings dataclass). Errors name it as ``<sampler>``.
    seed : int
        The job's seed (see :func:`derive_seed`).
    threads : int
    where : str
        The job, named in errors (e.g. ``"stage1: A"``).

    Returns
    -------
    SamplerRun

    Raises
    ------
    InputError
        Unknown sampler, invalid settings, or a sampler that needs a prior transform the
        prior does not have.
    """
    from .samplers import get_sampler

    spec = get_sampler(sampler)
    if spec.needs_prior_transform and not callable(getattr(prior, "prior_transform", None)):
        raise InputError(
            f"{where}: {sampler}: this sampler needs a prior transform (unit cube -> "
            f"parameters), which {type(prior).__name__} does not provide"
        )
    run = spec.run(
        prior=prior,
        loglike=loglike,
        settings=spec.settings.from_dict(dict(settings or {}), source=sampler),
        seed=seed,
        threads=threads,
    )
    if not spec.gives_evidence:
        log.info("%s: %s gives no evidence; the run enters no evidence bookkeeping", where, sampler)
    return run


def run_stage1(
    *,
    dataset: str,
    entry: Mapping[str, Any],
    params,
    sampler: str,
    settings: Mapping[str, Any] | None,
    seed: int,
    threads: int = 1,
    derived: Any = None,
):
    """Stage-1 posterior of one dataset: a sampler under the box prior, or the dataset's chain.

    Parameters
    ----------
    dataset : str
    entry : mapping
        The dataset's config entry: a likelihood plug-in or a chain.
    params : ParameterSpace
        The analysis' parameters and prior box.
    sampler : str
        Registered sampler (the analysis' ``stage1_sampler``); unused for a chain dataset.
    settings : mapping or None
        That sampler's settings section.
    seed : int
        The analysis seed; the job runs with ``derive_seed(seed, "stage1", dataset)``.
    threads : int
    derived : str or mapping, optional
        The analysis' ``derived`` setting (:mod:`flowprior.derived`): evaluated on every
        sample; its quantities join the chain's derived columns.

    Returns
    -------
    SamplerRun
        For a chain dataset, the chain with ``info["sampler"] == "chain"`` and no evidence.
    """
    from .priors import BoxPrior

    fn = derived_quantities(derived, params)
    if "likelihood" in entry:
        loglike = dataset_likelihood(dataset, entry, dim=params.dim)
        job_seed = derive_seed(seed, "stage1", dataset)
        run = run_sampler(
            sampler,
            prior=BoxPrior(params, seed=job_seed),
            loglike=loglike,
            settings=settings,
            seed=job_seed,
            threads=threads,
            where=f"stage1: {dataset}",
        )
        return with_derived(run, fn)
    return with_derived(read_chain_run(entry, params, kind="chain"), fn)


def read_chain_run(entry: Mapping[str, Any], params, *, kind: str):
    """A chain entry (``chain``, ``format``, ``burn_in``, ``outside``, ``allow_pickle``) read
    over the analysis' parameters, as a run without an evidence (``info["sampler"]`` is
    ``kind``: ``"chain"`` for a chain dataset, ``"reference"`` for a reference chain)."""
    from .chains import read_chain
    from .samplers import SamplerRun

    chain = read_chain(
        entry["chain"],
        params,
        allow_pickle=bool(entry.get("allow_pickle", False)),
        outside=entry.get("outside", "error"),
        fmt=entry.get("format"),
        burn_in=entry.get("burn_in"),
    )
    info = {
        "sampler": kind,
        "source": str(entry["chain"]),
        "sha256": chain.sha256(),
        "n_samples": chain.n,
        "ess": float(chain.ess),
        "log_evidence": None,
        "log_evidence_err": None,
    }
    return SamplerRun(chain=chain, info=info)


def run_reference(
    *, entry: Mapping[str, Any], params, stage: str, derived: Any = None
):
    """The published joint posterior of an analysis (``reference``), read like a chain
    dataset over the analysis' parameters; a parameter missing from the chain is a one-line
    error naming the file and the column. It stands in for the joint run of ``stage`` (all
    the analysis' datasets) in the agreement diagnostics, figures and verdicts."""
    fn = derived_quantities(derived, params)
    run = read_chain_run(entry, params, kind="reference")
    run.info["stage"] = stage
    return with_derived(run, fn)


def run_sequential(
    *,
    stage: str,
    sampler: str,
    datasets: Mapping[str, Mapping[str, Any]],
    prior_model: str | Path,
    likelihood_flow: str | Path | None,
    settings: Mapping[str, Any],
    seed: int,
    threads: int = 1,
    derived: Any = None,
):
    """One sequential stage: flow prior of the previous stage times the last dataset.

    Parameters
    ----------
    stage : str
        Stage id (:func:`flowprior.plan.stage_id`) of at least two datasets.
    sampler : str
        Registered sampler; the job runs with ``derive_seed(seed, "sequential", stage,
        sampler)``.
    datasets : mapping
        The analysis' dataset entries by name.
    prior_model : path
        Flow of the previous stage's posterior (the prior).
    likelihood_flow : path or None
        Flow of the last dataset when it is a chain dataset.
    settings : mapping
        The sampler's settings section.
    seed : int
        The analysis seed.
    threads : int

    Returns
    -------
    SamplerRun
        ``info`` also records ``stage``, ``prior_model``, ``prior_sha256``, the
        ``flow_correction`` (when every earlier dataset has a likelihood, see
        :func:`flow_correction`) and an ``evidence_note`` for a chain dataset.
    """
    from .priors import FlowPrior

    names = parse_stage(stage)
    last = names[-1]
    job_seed = derive_seed(seed, "sequential", stage, sampler)
    prior = FlowPrior.load(prior_model, seed=job_seed)
    fn = derived_quantities(derived, prior.params)
    loglike = dataset_likelihood(
        last, datasets[last], dim=prior.dim, flow_model=likelihood_flow
    )
    run = run_sampler(
        sampler,
        prior=prior,
        loglike=loglike,
        settings=settings,
        seed=job_seed,
        threads=threads,
        where=f"sequential: {stage}",
    )
    run.info["stage"] = stage
    run.info["prior_model"] = str(prior_model)
    run.info["prior_sha256"] = prior.manifest.get("files", {}).get("weights.safetensors")
    earlier = names[:-1]
    if all("likelihood" in datasets[n] for n in earlier):
        factors = [dataset_likelihood(n, datasets[n], dim=prior.dim) for n in earlier]
        run.info["flow_correction"] = flow_correction(run.chain, previous=factors)
    if likelihood_flow is not None:
        run.info["evidence_note"] = (
            f"{last} is a chain dataset: log_evidence is "
            f"log Z_({stage}) - log Z_(prev) - log Z_{last}"
        )
    return with_derived(run, fn)


def flow_correction(
    chain, *, previous: Sequence[Callable[[np.ndarray], np.ndarray]]
) -> dict[str, Any]:
    """Importance check of a flow prior against the exact previous posterior.

    A sequential stage samples ``L_new(theta) q(theta)`` where the flow ``q`` stands in for the
    previous posterior ``p_prev = L_prev pi / Z_prev``. When the previous likelihoods can still
    be evaluated, the ratio ``r = L_prev pi / q`` at the stage's weighted samples measures what
    the flow's error does where it matters, and gives the joint evidence without the flow error:

        Z_(prev+new) = Z_(new|q) * E_(new|q)[ r ],

    so ``log Z_(new|prev) = log Z_(new|q) + log_mean_ratio - log Z_prev``. The returned
    ``log_mean_ratio`` is the weighted ``log E[r]``, ``log_mean_ratio_err`` its delta-method
    standard error (ratio estimator, weights treated as fixed), and ``ess_fraction`` the Kish
    effective sample size of ``weights * r`` over that of ``weights``: near 1 when the flow
    matches the previous posterior where the new data put the mass; far below 1 when it does
    not. It is not bounded by 1: where ``r`` happens to even out unequal sampler weights the
    reweighted ESS is the larger one (1.048 has been measured), so read values near or above
    1 alike as "no loss". ``weights * r`` are the importance weights that turn the stage's
    samples into samples of the exact posterior.

    Parameters
    ----------
    chain : Chain
        The stage's samples with ``log_prior`` = the flow's normalised ``log q``.
    previous : sequence of callables
        Log-likelihoods of the earlier datasets, ``(n, d) -> (n,)``.
    """
    keep = chain.weights > 0
    x = chain.samples[keep]
    w = chain.weights[keep] / chain.weights[keep].sum()
    log_r = sum(f(x) for f in previous) - chain.params.log_volume - chain.log_prior[keep]
    log_r = np.asarray(log_r, dtype=np.float64)
    if not np.all(np.isfinite(log_r)):
        bad = int(np.flatnonzero(~np.isfinite(log_r))[0])
        raise InputError(
            f"flow correction: non-finite log ratio at sample {bad} (theta = {x[bad].tolist()})"
        )
    shift = float(log_r.max())
    r = np.exp(log_r - shift)
    mean = float(w @ r)
    se = float(math.sqrt(np.sum(w**2 * (r - mean) ** 2))) / mean
    return {
        "log_mean_ratio": math.log(mean) + shift,
        "log_mean_ratio_err": se,
        "ess_fraction": float(kish_ess(w * r) / kish_ess(w)),
        "n_points": int(x.shape[0]),
        "n_likelihood_calls": int(x.shape[0]) * len(previous),
    }


def run_joint(
    *,
    stage: str,
    datasets: Mapping[str, Mapping[str, Any]],
    params,
    sampler: str,
    settings: Mapping[str, Any] | None,
    seed: int,
    threads: int = 1,
    derived: Any = None,
):
    """Joint reference: a sampler on the product of the stage's likelihoods under the box prior.

    Parameters
    ----------
    stage : str
        Joint id (:func:`flowprior.plan.joint_id`); the job runs with
        ``derive_seed(seed, "joint", stage)``.
    datasets : mapping
        The analysis' dataset entries by name (each of the stage's datasets has a likelihood).
    params : ParameterSpace
    sampler : str
        Registered sampler (the analysis' ``joint_sampler``).
    settings : mapping or None
        That sampler's settings section.
    seed : int
        The analysis seed.
    threads : int

    Returns
    -------
    SamplerRun
        With ``info["stage"]``.
    """
    from .priors import BoxPrior

    names = parse_stage(stage)
    fn = derived_quantities(derived, params)
    factors = [dataset_likelihood(n, datasets[n], dim=params.dim) for n in names]
    job_seed = derive_seed(seed, "joint", stage)
    run = run_sampler(
        sampler,
        prior=BoxPrior(params, seed=job_seed),
        loglike=ProductLikelihood(factors),
        settings=settings,
        seed=job_seed,
        threads=threads,
        where=f"joint: {stage}",
    )
    run.info["stage"] = stage
    return with_derived(run, fn)
