"""emcee (affine-invariant ensemble MCMC): settings and runner.

emcee gets its own ``RandomState`` seeded with the run's seed; the global numpy RNG is never
touched. The walkers start from prior draws seeded from the run's seed (see
:func:`flowprior.samplers.base.draw_prior`). emcee gives no evidence.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._atomic import plain_json
from ..chains import Chain
from ..errors import _input_error
from .base import (
    CountingLikelihood,
    SamplerRun,
    SamplerSettings,
    chain_params,
    check_int,
    check_seed,
    check_setting,
    check_threads,
    draw_prior,
    is_int,
    is_number,
    package_versions,
)

__all__ = ["EmceeSettings", "run_emcee"]

log = logging.getLogger(__name__)


@dataclass
class EmceeSettings(SamplerSettings):
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

    def validate(self, *, source: str) -> None:
        check_int(source, self, "walkers", minimum=2)
        check_setting(source, "walkers", self.walkers % 2 == 0, "must be even", self.walkers)
        check_int(source, self, "steps", minimum=2)
        for key, minimum in (("burn_in", 0), ("thin", 1)):
            value = getattr(self, key)
            if value != "auto":
                check_setting(
                    source,
                    key,
                    is_int(value) and value >= minimum,
                    f"must be 'auto' or an integer >= {minimum}",
                    value,
                )
                setattr(self, key, int(value))
        if self.burn_in != "auto":
            check_setting(
                source,
                "burn_in",
                self.burn_in < self.steps,
                f"must be < steps ({self.steps})",
                self.burn_in,
            )
        value = self.min_tau_multiple
        check_setting(
            source,
            "min_tau_multiple",
            is_number(value) and value > 0,
            "must be a number > 0",
            value,
        )
        self.min_tau_multiple = float(value)


# --------------------------------------------------------------------------- run


def run_emcee(
    *,
    prior: Any,
    loglike: Callable[[np.ndarray], np.ndarray],
    settings: EmceeSettings,
    seed: int,
    threads: int = 1,
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
    threads : int
        Accepted for the common runner signature; emcee runs in the calling thread (the
        likelihood is vectorised over the walkers), so it is checked and otherwise unused.
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
        Invalid seed or threads, or fewer walkers than ``2 * dim``.
    SamplerError
        The likelihood returned a wrong shape, NaN or +inf.
    """
    import emcee

    seed = check_seed(seed)
    check_threads(threads, source="run_emcee")
    params = chain_params(prior)
    dim = params.dim
    if settings.walkers < 2 * dim:
        raise _input_error(
            "emcee settings",
            "walkers",
            f"must be at least 2 * dim = {2 * dim} for emcee's stretch move, "
            f"got {settings.walkers}",
        )
    counted = CountingLikelihood(loglike, dim)

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
    p0 = draw_prior(prior, settings.walkers, rng)
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
        "versions": package_versions("emcee"),
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
