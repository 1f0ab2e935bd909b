"""nautilus (neural-network boosted importance nested sampling): settings and runner.

Why nautilus is the registry's nested sampler (measured in ``benchmarks/bench_nested.py``
against dynesty 3.1.0): it evaluates the prior transform and the likelihood in vectorised
batches (dynesty calls both once per point, which makes a flow prior cost one torch call per
likelihood call), it needs fewer likelihood calls per effective sample, and its evidence is an
importance-sampling estimate with small scatter. Its cost is a fixed overhead for training its
small neural networks (scikit-learn), which matters only for likelihoods cheaper than about a
millisecond.

Evidence error. nautilus 1.0.6 reports ``log Z`` but no error. :func:`nautilus_log_z_err`
derives one to first order from the run's own records: ``Z = sum_i V_i f_i <L>_i`` over the
shells ``i``, with ``V_i`` the volume of bound ``i`` (its rejection-sampling fractions are
binomial estimates), ``f_i`` the fraction of the bound's draws that fell in the shell
(binomial) and ``<L>_i`` the shell's mean likelihood (variance from its effective sample
size); the independent relative variances add, weighted by ``(Z_i / Z)^2``.

Library hygiene and reproducibility. nautilus draws from its own generator, seeded with
``seed``; scikit-learn's networks get seeds from it. ``threads`` limits the BLAS pools (the
networks) and torch's intra-op threads (a flow prior's transform) during the run; both are
restored afterwards. nautilus needs at least two parameters: a one-parameter prior gets a
second, ignored unit coordinate (the evidence is unchanged, its integral over that coordinate
is 1).
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
from ..stats import kish_ess
from ..train import _torch_threads
from .base import (
    CountingLikelihood,
    SamplerRun,
    SamplerSettings,
    chain_params,
    check_bool,
    check_int,
    check_seed,
    check_setting,
    check_threads,
    is_number,
    package_versions,
)

__all__ = ["NautilusSettings", "nautilus_log_z_err", "run_nautilus"]

log = logging.getLogger(__name__)


@dataclass
class NautilusSettings(SamplerSettings):
    """Settings of :func:`run_nautilus` (the knobs of ``nautilus.Sampler`` and its ``run``).

    Attributes
    ----------
    n_live : int
        Live points of the exploration phase: more find small or separated modes more surely
        and cost proportionally more likelihood calls (nautilus' default is 2000).
    n_eff : int
        Stop once the importance-weighted sample has this effective size.
    f_live : float
        The exploration ends once the live set holds at most this fraction of the evidence.
    discard_exploration : bool
        Drop the exploration-phase points from the posterior and the evidence, which makes
        both unbiased (nautilus' default is false; the extra calls are about 20 %).
    n_networks : int
        Neural networks in each bound's likelihood emulator.
    n_batch : int or None
        Points per vectorised call of the prior transform and the likelihood; None: nautilus'
        default (100).
    n_like_max : int or None
        Hard cap on likelihood calls; a run stopped by it is reported as not converged
        (logged warning, ``diagnostics["converged"] = False``). None: no cap.
    """

    _SOURCE = "nautilus settings"

    n_live: int = 1000
    n_eff: int = 10000
    f_live: float = 0.01
    discard_exploration: bool = True
    n_networks: int = 4
    n_batch: int | None = None
    n_like_max: int | None = None

    def validate(self, *, source: str) -> None:
        check_int(source, self, "n_live", minimum=10)
        check_int(source, self, "n_eff", minimum=1)
        check_int(source, self, "n_networks", minimum=1)
        check_int(source, self, "n_batch", minimum=1, optional=True)
        check_int(source, self, "n_like_max", minimum=1, optional=True)
        value = self.f_live
        check_setting(
            source,
            "f_live",
            is_number(value) and not isinstance(value, bool) and 0 < value < 1,
            "must be a number in (0, 1)",
            value,
        )
        self.f_live = float(value)
        check_bool(source, self, "discard_exploration")


# --------------------------------------------------------------------------- evidence error


def _rel_var_bound(bound: Any) -> float:
    """Relative variance of a bound's volume from its rejection-sampling fractions.

    A bound whose volume is ``V_outer * (1 - n_reject / n_sample)`` (nautilus' neural bound and
    the union of ellipsoids) carries the binomial variance of that fraction; the outer bound
    adds its own. Exact volumes (the unit cube, one ellipsoid) contribute 0.
    """
    var = 0.0
    n_sample = getattr(bound, "n_sample", None)
    n_reject = getattr(bound, "n_reject", None)
    if n_sample and n_reject is not None and n_sample > n_reject:
        var += n_reject / (n_sample * (n_sample - n_reject))
    outer = getattr(bound, "outer_bound", None)
    if outer is not None:
        var += _rel_var_bound(outer)
    return var


def nautilus_log_z_err(sampler: Any) -> float | None:
    """First-order standard error of ``sampler.log_z`` from the run's records.

    ``Z = sum_i Z_i`` over the shells, ``Z_i = V_i f_i <L>_i``; to first order
    ``var(log Z) = sum_i (Z_i / Z)^2 [rel.var V_i + rel.var f_i + rel.var <L>_i]`` with

    - ``rel.var V_i``: the binomial variance of bound ``i``'s rejection fractions
      (:func:`_rel_var_bound`; 0 for the unit cube);
    - ``rel.var f_i = 1 / n_i - 1 / n_sample_i``: the shell's share of the bound's draws;
    - ``rel.var <L>_i = 1 / n_eff_i - 1 / n_i``: the shell's mean likelihood over ``n_i``
      points with Kish effective size ``n_eff_i``.

    Parameters
    ----------
    sampler : nautilus.Sampler
        After ``run``.

    Returns
    -------
    float or None
        None when the run holds no evidence (no shell with points).
    """
    n = np.asarray(sampler.shell_n, dtype=np.float64)
    n_sample = np.asarray(sampler.shell_n_sample, dtype=np.float64)
    if sampler.discard_exploration and sampler.explored:
        n_sample = n_sample - np.asarray(sampler.shell_n_sample_exp, dtype=np.float64)
    n_eff = np.asarray(sampler.shell_n_eff, dtype=np.float64)
    log_zi = np.asarray(sampler.shell_log_l, dtype=np.float64) + np.asarray(
        sampler.shell_log_v, dtype=np.float64
    )
    ok = (n > 0) & np.isfinite(log_zi)
    if not ok.any():
        return None
    share = np.zeros_like(log_zi)
    share[ok] = np.exp(log_zi[ok] - np.max(log_zi[ok]))
    share /= share.sum()
    rel = np.zeros_like(share)
    for i in np.flatnonzero(ok):
        v_bound = _rel_var_bound(sampler.bounds[i])
        v_frac = max(1.0 / n[i] - 1.0 / n_sample[i], 0.0) if n_sample[i] > 0 else 0.0
        v_mean = max(1.0 / n_eff[i] - 1.0 / n[i], 0.0) if n_eff[i] > 0 else 0.0
        rel[i] = v_bound + v_frac + v_mean
    return float(math.sqrt(np.sum(share**2 * rel)))


# --------------------------------------------------------------------------- run


def _threads_limited(threads: int):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(threads))


def run_nautilus(
    *,
    prior: Any,
    loglike: Callable[[np.ndarray], np.ndarray],
    settings: NautilusSettings,
    seed: int,
    threads: int = 1,
    progress: bool = False,
) -> SamplerRun:
    """Sample ``loglike x prior`` with nautilus and estimate the evidence.

    The prior enters through its ``prior_transform`` (unit cube -> parameters; its
    push-forward of the uniform distribution is the prior); the likelihood and the transform
    are called on batches of ``n_batch`` points.

    Parameters
    ----------
    prior : object
        ``dim``, ``bounds`` (d, 2), ``logpdf((n, d)) -> (n,)`` and
        ``prior_transform((n, d)) -> (n, d)`` (:class:`~flowprior.priors.BoxPrior`,
        :class:`~flowprior.priors.FlowPrior`). Its ``params`` (if any) name the chain columns.
    loglike : callable
        Vectorised log-likelihood ``(n, d) float64 -> (n,)``; finite or -inf.
    settings : NautilusSettings
    seed : int
        In [0, 2**32 - 1]; seeds nautilus' own generator (no global RNG is touched).
    threads : int
        BLAS threads (nautilus' networks) and torch threads (a flow prior's transform) during
        the run, restored afterwards. Likelihood calls run in the calling thread.
    progress : bool
        Print nautilus' status table.

    Returns
    -------
    SamplerRun
        Every importance-weighted point of ``Sampler.posterior()`` (neither resampled nor
        trimmed; weights scaled to a maximum of 1), ``log_prior`` = ``prior.logpdf`` at the
        points, ``log_evidence`` = ``Sampler.log_z`` and ``log_evidence_err`` from
        :func:`nautilus_log_z_err`. ``diagnostics``: ``ess`` (Kish), ``n_samples``,
        ``n_eff_nautilus`` (nautilus' own estimate), ``n_bounds``, ``efficiency`` (the
        asymptotic sampling efficiency ``eta``), ``converged`` (false when ``n_like_max``
        stopped the run), ``nautilus_calls`` (its own count), ``threads``, ``evidence_method``.

    Raises
    ------
    InputError
        Invalid seed or threads, or a prior without ``prior_transform``.
    SamplerError
        The likelihood returned a wrong shape, NaN or +inf.
    """
    import nautilus

    seed = check_seed(seed)
    threads = check_threads(threads, source="run_nautilus")
    transform = getattr(prior, "prior_transform", None)
    if not callable(transform):
        raise _input_error(
            "run_nautilus",
            "prior",
            f"{type(prior).__name__} has no prior_transform (unit cube -> parameters)",
        )
    params = chain_params(prior)
    dim = params.dim
    counted = CountingLikelihood(loglike, dim)
    n_dim = max(dim, 2)  # nautilus needs two; a padded coordinate is ignored

    def cube_to_theta(u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64).reshape(-1, n_dim)[:, :dim]
        return np.asarray(transform(u), dtype=np.float64).reshape(-1, dim)

    kwargs: dict[str, Any] = dict(
        n_dim=n_dim,
        n_live=settings.n_live,
        n_networks=settings.n_networks,
        vectorized=True,
        pass_dict=False,
        seed=seed,
    )
    if settings.n_batch is not None:
        kwargs["n_batch"] = settings.n_batch
    log.info(
        "nautilus: dim=%d n_live=%d n_eff=%d f_live=%g seed=%d threads=%d",
        dim,
        settings.n_live,
        settings.n_eff,
        settings.f_live,
        seed,
        threads,
    )
    t0 = time.perf_counter()
    with _torch_threads(threads), _threads_limited(threads):
        sampler = nautilus.Sampler(cube_to_theta, counted, **kwargs)
        converged = bool(
            sampler.run(
                f_live=settings.f_live,
                n_eff=settings.n_eff,
                n_like_max=np.inf if settings.n_like_max is None else settings.n_like_max,
                discard_exploration=settings.discard_exploration,
                verbose=progress,
            )
        )
        x, log_w, log_l = sampler.posterior()
        x = np.asarray(x, dtype=np.float64)
        log_prior = np.asarray(prior.logpdf(x), dtype=np.float64).reshape(-1)
        log_z = sampler.log_z
        log_z_err = nautilus_log_z_err(sampler)
    wall = time.perf_counter() - t0
    if not converged:
        log.warning(
            "nautilus: stopped by n_like_max=%s before reaching n_eff=%d (reached %.0f); the "
            "posterior and evidence are those of an unfinished run",
            settings.n_like_max,
            settings.n_eff,
            sampler.n_eff,
        )

    log_w = np.asarray(log_w, dtype=np.float64)
    chain = Chain(
        params,
        x,
        weights=np.exp(log_w - np.max(log_w)),
        log_likelihood=np.asarray(log_l, dtype=np.float64),
        log_prior=log_prior,
        source=f"nautilus(seed={seed})",
    )
    diagnostics = {
        "ess": kish_ess(chain.weights),
        "n_samples": chain.n,
        "n_eff_nautilus": float(sampler.n_eff),
        "n_bounds": len(sampler.bounds),
        "efficiency": float(sampler.eta),
        "converged": converged,
        "nautilus_calls": int(sampler.n_like),
        "threads": int(threads),
        "evidence_method": (
            "importance sampling over nautilus' shells; error: first-order binomial and "
            "effective-sample-size variance of the shells (flowprior)"
        ),
    }
    info = {
        "sampler": "nautilus",
        "settings": settings.to_dict(),
        "seed": seed,
        "log_evidence": None if log_z is None else float(log_z),
        "log_evidence_err": log_z_err,
        "n_likelihood_calls": int(counted.n_calls),
        "wall_seconds": wall,
        "diagnostics": diagnostics,
        "versions": package_versions("nautilus"),
    }
    log.info(
        "nautilus done in %.1f s: log Z = %s +- %s, %d samples, Kish ESS %.0f, %d likelihood "
        "calls",
        wall,
        info["log_evidence"],
        info["log_evidence_err"],
        chain.n,
        diagnostics["ess"],
        counted.n_calls,
    )
    return SamplerRun(chain=chain, info=plain_json(info))
