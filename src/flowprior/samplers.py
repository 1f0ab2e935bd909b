"""Running the samplers: pocoMC (preconditioned SMC) and emcee (affine-invariant ensemble).

Both runners take a prior with pocoMC's protocol (``dim``, ``bounds``, ``logpdf``, ``rvs``; e.g.
:class:`flowprior.priors.BoxPrior` or :class:`flowprior.priors.FlowPrior`) and a vectorised
log-likelihood ``(n, d) -> (n,)``, and return a :class:`SamplerRun`: a weighted
:class:`flowprior.chains.Chain` plus a JSON-safe ``info`` record (settings, seed, evidence,
likelihood calls, wall time, diagnostics, versions) that :meth:`SamplerRun.write` stores as
``samples.parquet`` + ``run.json``.

Library hygiene. pocoMC 1.2.6 changes process-wide state: creating a ``Sampler`` sets torch's
thread count, ``random_state`` seeds numpy's and torch's *global* RNGs, and the run draws from
numpy's global RNG. :func:`run_pocomc` saves torch's thread count and both global RNG states
and restores them afterwards (also on error), so the caller sees no change. emcee gets its own
``RandomState``; the global numpy RNG is never touched.

Reproducibility. A run is a deterministic function of ``seed`` (and ``threads``): the prior's
``rvs`` is always called with an explicit seed derived from ``seed``, never from the prior's own
stream, so running twice with the same prior object gives the same chain.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._atomic import atomic_write_text, plain_json
from .chains import Chain, kish_ess, read_chain, write_chain
from .errors import FlowpriorError, InputError, _input_error
from .params import ParameterSpace

__all__ = [
    "POCOMC_FLOWS",
    "EmceeSettings",
    "PocoMCSettings",
    "SamplerError",
    "SamplerRun",
    "run_emcee",
    "run_pocomc",
]

log = logging.getLogger(__name__)

#: Flow names pocoMC 1.2.6 accepts for its internal preconditioning flow.
POCOMC_FLOWS = ("maf3", "maf6", "maf12", "nsf3", "nsf6", "nsf12")
POCOMC_SAMPLERS = ("tpcn", "rwm")
_MAX_SEED = 2**32 - 1  # np.random.seed (inside pocoMC) rejects larger seeds


class SamplerError(FlowpriorError):
    """A sampler run failed (e.g. the likelihood returned a wrong shape, NaN or +inf)."""


# --------------------------------------------------------------------------- settings


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(value)


class _Settings:
    """Shared ``from_dict`` / ``to_dict`` / validation of the settings dataclasses."""

    _SOURCE = "<settings>"

    def __post_init__(self) -> None:
        self._validate(source=self._SOURCE)

    def _validate(self, *, source: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, source: str):
        """Build from a mapping (e.g. a config section); missing keys take the defaults.

        Parameters
        ----------
        d : mapping or None
            ``{field: value}``; None or empty gives the defaults.
        source : str
            Named in error messages (e.g. ``"config.yaml: sampling.pocomc"``).

        Raises
        ------
        InputError
            ``"<source>: <key>: <problem>"`` for an unknown key or an invalid value.
        """
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise _input_error(source, None, f"expected a mapping, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [str(k) for k in d if k not in known]
        if unknown:
            raise _input_error(
                source,
                ", ".join(unknown),
                f"unknown key{'s' if len(unknown) > 1 else ''}; known: {', '.join(known)}",
            )
        obj = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            setattr(obj, f.name, d.get(f.name, default))
        obj._validate(source=source)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``{field: value}`` (``from_dict(to_dict())`` gives an equal object)."""
        return {f.name: plain_json(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _check(source: str, key: str, ok: bool, problem: str, value: Any) -> None:
    if not ok:
        raise _input_error(source, key, f"{problem}, got {value!r}")


def _check_int(source: str, obj: Any, key: str, *, minimum: int, optional: bool = False) -> None:
    value = getattr(obj, key)
    if optional and value is None:
        return
    _check(
        source,
        key,
        _is_int(value) and value >= minimum,
        f"must be an integer >= {minimum}" + (" or null" if optional else ""),
        value,
    )
    setattr(obj, key, int(value))


def _check_bool(source: str, obj: Any, key: str) -> None:
    value = getattr(obj, key)
    _check(source, key, isinstance(value, (bool, np.bool_)), "must be true or false", value)
    setattr(obj, key, bool(value))


@dataclass
class PocoMCSettings(_Settings):
    """Settings of :func:`run_pocomc` (the knobs of ``pocomc.Sampler`` and ``Sampler.run``).

    Attributes
    ----------
    n_effective : int
        Effective particles per temperature; larger is more accurate and slower.
    n_active : int
        Particles moved by MCMC per iteration; at most ``n_effective`` (best about half).
    n_prior : int or None
        Prior draws for the warm-up; None: pocoMC's default ``2 * n_effective``
        (rounded to a multiple of ``n_active``).
    n_total : int
        Stop once the weighted particles at temperature 1 reach this effective sample size.
    n_evidence : int
        Importance samples from the final flow for the evidence (0: pocoMC's SMC estimate,
        then ``log_evidence_err`` is None).
    flow : {"maf3", "maf6", "maf12", "nsf3", "nsf6", "nsf12"}
        pocoMC's internal preconditioning flow. ``maf3`` (not pocoMC's ``nsf6`` default): the
        env notes measured it 2-4x faster at the same accuracy.
    sample : {"tpcn", "rwm"}
        MCMC kernel (t-preconditioned Crank-Nicolson or random-walk Metropolis).
    precondition : bool
        Use the flow to precondition the MCMC (and the importance-sampling evidence).
    dynamic : bool
        Adapt ``n_effective`` to the number of unique particles.
    n_steps, n_max_steps : int or None
        MCMC steps after the log-posterior plateau / at most per iteration; None: pocoMC's
        defaults (``dim // 2`` and ``10 * n_steps``).
    train_epochs : int or None
        Maximum epochs of each internal flow fit (``train_config={"epochs": ...}``; pocoMC
        default 5000 with early stopping).
    """

    _SOURCE = "pocomc settings"

    n_effective: int = 512
    n_active: int = 256
    n_prior: int | None = None
    n_total: int = 4096
    n_evidence: int = 4096
    flow: str = "maf3"
    sample: str = "tpcn"
    precondition: bool = True
    dynamic: bool = True
    n_steps: int | None = None
    n_max_steps: int | None = None
    train_epochs: int | None = None

    def _validate(self, *, source: str) -> None:
        for key in ("n_effective", "n_active", "n_total"):
            _check_int(source, self, key, minimum=1)
        _check_int(source, self, "n_evidence", minimum=0)
        for key in ("n_prior", "n_steps", "n_max_steps", "train_epochs"):
            _check_int(source, self, key, minimum=1, optional=True)
        _check(
            source,
            "n_active",
            self.n_active <= self.n_effective,
            f"must be <= n_effective ({self.n_effective})",
            self.n_active,
        )
        if self.n_prior is not None:
            _check(
                source,
                "n_prior",
                self.n_prior >= self.n_active,
                f"must be >= n_active ({self.n_active})",
                self.n_prior,
            )
        _check(
            source, "flow", self.flow in POCOMC_FLOWS, f"must be one of {POCOMC_FLOWS}", self.flow
        )
        _check(
            source,
            "sample",
            self.sample in POCOMC_SAMPLERS,
            f"must be one of {POCOMC_SAMPLERS}",
            self.sample,
        )
        _check_bool(source, self, "precondition")
        _check_bool(source, self, "dynamic")


@dataclass
class EmceeSettings(_Settings):
    """Settings of :func:`run_emcee`.

    Attributes
    ----------
    walkers : int
        Ensemble size; even and at least ``2 * dim`` (checked at run time).
    steps : int
        Steps per walker (the chain has ``walkers * steps`` points before burn-in/thinning).
    burn_in : "auto" or int
        Steps discarded per walker; ``"auto"``: ``ceil(2 * max tau)``.
    thin : "auto" or int
        Keep every ``thin``-th step; ``"auto"``: ``max(1, floor(0.5 * min tau))``.
    min_tau_multiple : float
        A chain shorter than ``min_tau_multiple * max tau`` steps is reported as not
        converged (logged warning, ``diagnostics["converged"] = False``).
    """

    _SOURCE = "emcee settings"

    walkers: int = 32
    steps: int = 5000
    burn_in: int | str = "auto"
    thin: int | str = "auto"
    min_tau_multiple: float = 50.0

    def _validate(self, *, source: str) -> None:
        _check_int(source, self, "walkers", minimum=2)
        _check(source, "walkers", self.walkers % 2 == 0, "must be even", self.walkers)
        _check_int(source, self, "steps", minimum=2)
        for key, minimum in (("burn_in", 0), ("thin", 1)):
            value = getattr(self, key)
            if value != "auto":
                _check(
                    source,
                    key,
                    _is_int(value) and value >= minimum,
                    f"must be 'auto' or an integer >= {minimum}",
                    value,
                )
                setattr(self, key, int(value))
        if self.burn_in != "auto":
            _check(
                source,
                "burn_in",
                self.burn_in < self.steps,
                f"must be < steps ({self.steps})",
                self.burn_in,
            )
        value = self.min_tau_multiple
        _check(
            source,
            "min_tau_multiple",
            _is_number(value) and value > 0,
            "must be a number > 0",
            value,
        )
        self.min_tau_multiple = float(value)


# --------------------------------------------------------------------------- result


@dataclass(eq=False)
class SamplerRun:
    """Outcome of a sampler run.

    Attributes
    ----------
    chain : Chain
        Weighted samples (n, d) with ``weights``, ``log_likelihood`` and ``log_prior`` (natural
        logs; ``log_prior`` is the prior's normalised ``logpdf``).
    info : dict
        JSON-safe record with the keys ``sampler`` ("pocomc" or "emcee"), ``settings``,
        ``seed``, ``log_evidence`` (None for emcee), ``log_evidence_err`` (None for emcee or
        without importance-sampling evidence), ``n_likelihood_calls`` (points at which the
        likelihood was evaluated), ``wall_seconds``, ``diagnostics`` (sampler specific, see
        :func:`run_pocomc` and :func:`run_emcee`) and ``versions`` (``pocomc`` or ``emcee``,
        ``numpy``, ``torch``).
    """

    chain: Chain
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def log_evidence(self) -> float | None:
        """``info["log_evidence"]``."""
        return self.info.get("log_evidence")

    @property
    def log_evidence_err(self) -> float | None:
        """``info["log_evidence_err"]``."""
        return self.info.get("log_evidence_err")

    def write(self, *, samples: str | os.PathLike, run_json: str | os.PathLike) -> None:
        """Atomically write the chain and the run record.

        Parameters
        ----------
        samples : path
            Chain file (``.parquet`` recommended; see :func:`flowprior.chains.write_chain`):
            parameter columns, ``weight``, ``log_likelihood``, ``log_prior``.
        run_json : path
            ``info`` as indented JSON (strict JSON: non-finite numbers are written as null).
        """
        write_chain(self.chain, samples)
        text = json.dumps(plain_json(self.info), indent=2, allow_nan=False) + "\n"
        atomic_write_text(run_json, text)

    @classmethod
    def read(
        cls,
        *,
        samples: str | os.PathLike,
        run_json: str | os.PathLike,
        params: ParameterSpace,
    ) -> SamplerRun:
        """Read what :meth:`write` wrote.

        Raises
        ------
        InputError
            Missing/unreadable files, invalid JSON, a JSON document that is not an object,
            or any chain problem (see :func:`flowprior.chains.read_chain`).
        """
        chain = read_chain(samples, params)
        try:
            with open(run_json, encoding="utf-8") as fh:
                info = json.load(fh)
        except FileNotFoundError:
            raise _input_error(run_json, None, "file not found") from None
        except json.JSONDecodeError as exc:
            raise _input_error(
                run_json, f"line {exc.lineno}", f"invalid JSON ({exc.msg})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise _input_error(run_json, None, f"cannot read file ({reason})") from exc
        if not isinstance(info, dict):
            raise _input_error(run_json, None, f"expected a JSON object, got {type(info).__name__}")
        return cls(chain=chain, info=info)


# --------------------------------------------------------------------------- helpers


def _check_seed(seed: Any) -> int:
    if not (_is_int(seed) and 0 <= seed <= _MAX_SEED):
        raise _input_error("sampler", "seed", f"must be an integer in [0, 2**32 - 1], got {seed!r}")
    return int(seed)


def _params_of(prior: Any) -> ParameterSpace:
    """The prior's parameter space, or ``theta1..thetaD`` on its ``bounds``."""
    params = getattr(prior, "params", None)
    if isinstance(params, ParameterSpace):
        return params
    bounds = np.asarray(prior.bounds, dtype=np.float64)
    names = tuple(f"theta{i + 1}" for i in range(int(prior.dim)))
    return ParameterSpace(names, bounds[:, 0], bounds[:, 1])


def _versions(sampler: str) -> dict[str, str]:
    import importlib

    module = importlib.import_module(sampler)
    return {sampler: str(module.__version__), "numpy": np.__version__, "torch": torch.__version__}


class _CountingLikelihood:
    """Wrap a vectorised log-likelihood: count points, check the output, never see n == 0."""

    def __init__(self, fn: Callable[[np.ndarray], Any], dim: int) -> None:
        self.fn = fn
        self.dim = dim
        self.n_calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64, order="C", copy=True).reshape(-1, self.dim)
        n = x.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        out = np.asarray(self.fn(x), dtype=np.float64)
        self.n_calls += n
        if out.shape != (n,):
            raise SamplerError(
                f"log-likelihood returned shape {out.shape} for {n} points; expected ({n},)"
            )
        bad = np.isnan(out) | (out == np.inf)
        if bad.any():
            i = int(np.argmax(bad))
            raise SamplerError(
                f"log-likelihood returned {out[i]} at theta={x[i].tolist()} "
                "(only finite values or -inf are allowed)"
            )
        return out


class _SeededPrior:
    """The prior as pocoMC sees it: ``rvs`` draws from a stream derived from the run's seed."""

    def __init__(self, prior: Any, rng: np.random.Generator) -> None:
        self.prior = prior
        self.dim = int(prior.dim)
        self.bounds = np.asarray(prior.bounds, dtype=np.float64)
        self._rng = rng
        self._takes_seed = _rvs_takes_seed(prior)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.dim)
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.prior.logpdf(x), dtype=np.float64).reshape(-1)

    def rvs(self, size: int = 1) -> np.ndarray:
        return _draw(self.prior, int(size), self._rng, takes_seed=self._takes_seed)


def _rvs_takes_seed(prior: Any) -> bool:
    try:
        return "seed" in inspect.signature(prior.rvs).parameters
    except (TypeError, ValueError):
        return False


def _draw(prior: Any, size: int, rng: np.random.Generator, *, takes_seed: bool) -> np.ndarray:
    if takes_seed:
        x = prior.rvs(size, seed=int(rng.integers(0, 2**63 - 1)))
    else:
        log.warning(
            "prior.rvs takes no seed: the run is only as reproducible as the prior's stream"
        )
        x = prior.rvs(size)
    return np.asarray(x, dtype=np.float64).reshape(size, int(prior.dim))


# --------------------------------------------------------------------------- pocoMC


def run_pocomc(
    *,
    prior: Any,
    loglike: Callable[[np.ndarray], np.ndarray],
    settings: PocoMCSettings,
    seed: int,
    threads: int = 1,
    progress: bool = False,
) -> SamplerRun:
    """Sample ``loglike x prior`` with pocoMC and estimate the evidence.

    Parameters
    ----------
    prior : object
        ``dim``, ``bounds`` (d, 2), ``logpdf((n, d)) -> (n,)``, ``rvs(size, *, seed)`` returning
        (size, d) points inside the bounds (:class:`~flowprior.priors.BoxPrior`,
        :class:`~flowprior.priors.FlowPrior`). Its ``params`` (if any) name the chain columns.
    loglike : callable
        Vectorised log-likelihood ``(n, d) float64 -> (n,)``; finite or -inf.
    settings : PocoMCSettings
    seed : int
        In [0, 2**32 - 1]; seeds pocoMC (inside a saved/restored global RNG state) and the
        prior draws.
    threads : int
        torch threads for pocoMC's flow training (restored afterwards).
    progress : bool
        Show pocoMC's progress bar.

    Returns
    -------
    SamplerRun
        All importance-weighted particles of ``Sampler.posterior()``, neither resampled nor
        trimmed (weights scaled to a maximum of 1), ``log_evidence`` and
        ``log_evidence_err`` from ``Sampler.evidence()``. ``diagnostics``: ``ess`` (Kish),
        ``n_samples``, ``n_iterations`` (pocoMC iterations incl. warm-up),
        ``n_warmup_iterations``, ``n_temperatures`` (distinct beta levels > 0), ``beta_final``,
        ``n_effective_final`` (after dynamic adaptation), ``pocomc_calls`` (pocoMC's own
        count), ``threads``, ``evidence_method``.

    Raises
    ------
    InputError
        Invalid seed or threads.
    SamplerError
        The likelihood returned a wrong shape, NaN or +inf.
    """
    import pocomc

    seed = _check_seed(seed)
    if not (_is_int(threads) and threads >= 1):
        raise _input_error("run_pocomc", "threads", f"must be an integer >= 1, got {threads!r}")
    params = _params_of(prior)
    dim = params.dim
    counted = _CountingLikelihood(loglike, dim)
    seeded_prior = _SeededPrior(
        prior, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    )
    kwargs: dict[str, Any] = dict(
        n_dim=dim,
        n_effective=settings.n_effective,
        n_active=settings.n_active,
        n_prior=settings.n_prior,
        vectorize=True,
        pytorch_threads=int(threads),
        flow=settings.flow,
        precondition=settings.precondition,
        dynamic=settings.dynamic,
        sample=settings.sample,
        n_steps=settings.n_steps,
        n_max_steps=settings.n_max_steps,
        output_dir=None,
        random_state=seed,
    )
    if settings.train_epochs is not None:
        kwargs["train_config"] = {"epochs": settings.train_epochs}
    log.info(
        "pocoMC: dim=%d n_effective=%d n_active=%d n_total=%d flow=%s seed=%d threads=%d",
        dim,
        settings.n_effective,
        settings.n_active,
        settings.n_total,
        settings.flow,
        seed,
        threads,
    )

    old_threads = torch.get_num_threads()
    old_np_state = np.random.get_state()
    t0 = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):  # restores torch's global CPU RNG
            sampler = pocomc.Sampler(prior=seeded_prior, likelihood=counted, **kwargs)
            sampler.run(n_total=settings.n_total, n_evidence=settings.n_evidence, progress=progress)
            # all particles with their importance weights: pocoMC's default trimming drops the
            # lowest weights (the tails) and measurably narrows the posterior (~1 % in sd)
            x, logw, logl, logp = sampler.posterior(
                resample=False, trim_importance_weights=False, return_logw=True
            )
            logz, logz_err = sampler.evidence()
    finally:
        torch.set_num_threads(old_threads)
        np.random.set_state(old_np_state)
    wall = time.perf_counter() - t0

    chain = Chain(
        params,
        np.asarray(x, dtype=np.float64),
        weights=np.exp(logw - np.max(logw)),
        log_likelihood=np.asarray(logl, dtype=np.float64),
        log_prior=np.asarray(logp, dtype=np.float64),
        source=f"pocomc(seed={seed})",
    )
    betas = np.asarray(sampler.particles.get("beta"), dtype=np.float64).reshape(-1)
    n_warmup = sampler.n_prior // sampler.n_active
    importance = settings.n_evidence > 0 and settings.precondition
    diagnostics = {
        "ess": kish_ess(chain.weights),
        "n_samples": chain.n,
        "n_iterations": int(sampler.t),
        "n_warmup_iterations": int(n_warmup),
        "n_temperatures": int(np.unique(betas[betas > 0]).size),
        "beta_final": float(betas[-1]) if betas.size else None,
        "n_effective_final": int(sampler.n_effective),
        "pocomc_calls": int(sampler.calls),
        "threads": int(threads),
        "evidence_method": "importance sampling (final flow)" if importance else "SMC",
    }
    info = {
        "sampler": "pocomc",
        "settings": settings.to_dict(),
        "seed": seed,
        "log_evidence": None if logz is None else float(logz),
        "log_evidence_err": None if logz_err is None else float(logz_err),
        "n_likelihood_calls": int(counted.n_calls),
        "wall_seconds": wall,
        "diagnostics": diagnostics,
        "versions": _versions("pocomc"),
    }
    log.info(
        "pocoMC done in %.1f s: log Z = %s +- %s, %d samples, Kish ESS %.0f, %d likelihood calls",
        wall,
        info["log_evidence"],
        info["log_evidence_err"],
        chain.n,
        diagnostics["ess"],
        counted.n_calls,
    )
    return SamplerRun(chain=chain, info=plain_json(info))


# --------------------------------------------------------------------------- emcee


def run_emcee(
    *,
    prior: Any,
    loglike: Callable[[np.ndarray], np.ndarray],
    settings: EmceeSettings,
    seed: int,
    progress: bool = False,
) -> SamplerRun:
    """Sample ``loglike x prior`` with emcee's ensemble sampler (vectorised).

    The log-probability is ``prior.logpdf(x) + loglike(x)``, with the likelihood evaluated
    only where the prior is finite (``-inf`` elsewhere, without a likelihood call). Walkers
    start from ``prior.rvs(walkers, seed=...)``; emcee's own ``RandomState`` is seeded with
    ``seed``. The log-likelihood and log-prior of every stored point come from emcee's blobs
    (no re-evaluation).

    Parameters
    ----------
    prior : object
        As for :func:`run_pocomc`.
    loglike : callable
        Vectorised log-likelihood ``(n, d) float64 -> (n,)``; finite or -inf.
    settings : EmceeSettings
    seed : int
        In [0, 2**32 - 1].
    progress : bool
        Show emcee's progress bar.

    Returns
    -------
    SamplerRun
        Flattened post-burn-in, thinned samples with weight 1; ``log_evidence`` None.
        ``diagnostics``: ``tau`` (integrated autocorrelation time per parameter, from
        ``get_autocorr_time(tol=0)`` over the whole chain; null where undefined),
        ``acceptance_fraction`` (mean over walkers), ``burn_in``, ``thin``, ``n_tau``
        (``steps / max tau``), ``converged`` (``steps >= min_tau_multiple * max tau``),
        ``n_samples``. A chain that is not converged is logged as a warning.

    Raises
    ------
    InputError
        Invalid seed, or fewer walkers than ``2 * dim``.
    SamplerError
        The likelihood returned a wrong shape, NaN or +inf.
    """
    import emcee

    seed = _check_seed(seed)
    params = _params_of(prior)
    dim = params.dim
    if settings.walkers < 2 * dim:
        raise _input_error(
            "emcee settings",
            "walkers",
            f"must be at least 2 * dim = {2 * dim} for emcee's stretch move, "
            f"got {settings.walkers}",
        )
    counted = _CountingLikelihood(loglike, dim)

    def log_prob(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        lp = np.asarray(prior.logpdf(x), dtype=np.float64).reshape(-1)
        ll = np.full(x.shape[0], -np.inf)
        inside = np.isfinite(lp)
        if inside.any():
            ll[inside] = counted(x[inside])
        # columns: log-probability, then the blobs (log-likelihood, log-prior)
        return np.column_stack([lp + ll, ll, lp])

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    p0 = _draw(prior, settings.walkers, rng, takes_seed=_rvs_takes_seed(prior))
    sampler = emcee.EnsembleSampler(settings.walkers, dim, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()
    log.info(
        "emcee: dim=%d walkers=%d steps=%d seed=%d", dim, settings.walkers, settings.steps, seed
    )
    t0 = time.perf_counter()
    sampler.run_mcmc(p0, settings.steps, progress=progress)
    wall = time.perf_counter() - t0

    steps = settings.steps
    tau = np.asarray(sampler.get_autocorr_time(tol=0), dtype=np.float64).reshape(-1)
    tau_ok = bool(np.all(np.isfinite(tau)) and np.all(tau > 0))
    max_tau = float(np.max(tau)) if tau_ok else math.nan
    n_tau = steps / max_tau if tau_ok else math.nan
    converged = tau_ok and steps >= settings.min_tau_multiple * max_tau
    if settings.burn_in == "auto":
        burn_in = math.ceil(2 * max_tau) if tau_ok else steps // 2
    else:
        burn_in = settings.burn_in
    if settings.thin == "auto":
        thin = max(1, math.floor(0.5 * float(np.min(tau)))) if tau_ok else 1
    else:
        thin = settings.thin
    if burn_in >= steps:
        log.warning("emcee: burn-in %d >= steps %d; keeping only the last step", burn_in, steps)
        burn_in = steps - 1
    thin = min(thin, steps - burn_in)  # at least one sample per walker
    if not converged:
        what = (
            f"{n_tau:.1f} autocorrelation times" if tau_ok else "an undefined autocorrelation time"
        )
        log.warning(
            "emcee: chain too short: %d steps are %s (max tau %s); at least %g tau needed - "
            "run more steps",
            steps,
            what,
            f"{max_tau:.1f}" if tau_ok else "undefined",
            settings.min_tau_multiple,
        )

    x = sampler.get_chain(discard=burn_in, thin=thin, flat=True)
    blobs = np.asarray(sampler.get_blobs(discard=burn_in, thin=thin, flat=True), dtype=np.float64)
    chain = Chain(
        params,
        np.asarray(x, dtype=np.float64),
        log_likelihood=blobs[:, 0],
        log_prior=blobs[:, 1],
        source=f"emcee(seed={seed})",
    )
    diagnostics = {
        "tau": tau.tolist(),
        "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
        "burn_in": int(burn_in),
        "thin": int(thin),
        "n_tau": n_tau,
        "converged": bool(converged),
        "n_samples": chain.n,
    }
    info = {
        "sampler": "emcee",
        "settings": settings.to_dict(),
        "seed": seed,
        "log_evidence": None,
        "log_evidence_err": None,
        "n_likelihood_calls": int(counted.n_calls),
        "wall_seconds": wall,
        "diagnostics": diagnostics,
        "versions": _versions("emcee"),
    }
    log.info(
        "emcee done in %.1f s: %d samples (burn-in %d, thin %d), acceptance %.2f, "
        "%d likelihood calls",
        wall,
        chain.n,
        burn_in,
        thin,
        diagnostics["acceptance_fraction"],
        counted.n_calls,
    )
    return SamplerRun(chain=chain, info=plain_json(info))
