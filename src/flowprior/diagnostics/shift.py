"""Non-Gaussian parameter shift between two independent posteriors, with a trained flow.

For independent draws ``theta_A ~ P_A`` and ``theta_B ~ P_B`` the difference
``Delta = theta_A - theta_B`` has a density ``q``; the *shift probability* is the mass of the
region where ``Delta`` is more probable than no shift at all,

.. math::

    P = \\int_{q(\\Delta) > q(0)} q(\\Delta)\\, d\\Delta ,

and its two-sided Gaussian equivalent is ``n_sigma = norm.isf((1 - P) / 2)`` (Raveri & Doux
2021, Phys. Rev. D 104, 043504). For Gaussian posteriors it equals the Gaussian parameter
shift (:func:`flowprior.diagnostics.parameter_shift`); for non-Gaussian ones the two differ.

:func:`flow_parameter_shift` estimates ``q`` with the project's flow training
(:func:`flowprior.train.train_flow`):

1. ``n_pairs`` pairs are drawn by resampling each chain by its weights (seeded) and
   ``Delta = theta_A - theta_B`` is whitened with its own mean and covariance (a fixed linear
   map ``u = L^-1 (Delta - m)``; level sets of the density, and so ``P``, do not change under
   it); a fraction is held out as a test split.
2. The training machinery fits *bounded* flows, so the box is built around the whitened
   differences: ``box_padding`` times the largest ``|u|`` on each side, so wide that the logit
   map is almost linear over the data. ``u_0`` (no shift) must lie inside the box; otherwise
   the shift is beyond what the samples resolve and only a lower bound is reported.
3. ``1 - P`` is estimated from ``n_flow_samples`` flow draws. The draws come from the flow's
   base distribution widened around the radius of ``u_0`` in the base space (a defensive
   mixture ``(N(0, 1) + N(0, s^2)) / 2``, importance weights at most 2), so that a 6-sigma
   shift is measured from samples rather than extrapolated. With ``s = 1`` this is plain
   sampling and the error is the binomial one; in general it is the standard error of the
   weighted indicator mean. ``n_sigma`` is computed from ``1 - P`` directly (no cancellation
   in ``P`` close to 1); when no draw lies at ``q <= q(0)`` a lower bound from the number of
   draws is reported.
4. Steps 2-3 are repeated for ``n_flows`` flows trained with different seeds on the same
   pairs: one flow's density at ``Delta = 0`` scatters (0.1-0.3 sigma at 3-5 sigma), so the
   mean tail is reported and the spread between the flows enters its error.
5. Neither the Monte Carlo error nor that spread sees what all flows trained on the same
   chains share: the noise of the chains themselves and the flows' systematic error in the
   tails (measured: 2-D Gaussians offset by 4 sigma came out 0.2-0.3 sigma high with every
   flow). So each flow gets a *calibration twin* (``calibrate``): Gaussian chains of the same
   effective sizes and covariances as A and B, offset along the mean difference so that their
   exact shift is what the flow estimated, paired, whitened and trained on exactly like the
   real ones. The twin's miss of its known shift is a measured error of this estimator at
   this significance, dimension, sample size and flow setting; the root mean square of the
   twins' misses enters ``shift_sigma_err`` in quadrature (it is reported as
   ``calibration_sigma_rms``). For strongly non-Gaussian differences it is a floor, not the
   whole error.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from ..chains import Chain
from ..errors import InputError, _input_error
from ..params import ParameterSpace
from .tension import parameter_shift, suspiciousness

__all__ = [
    "WORKFLOW_SHIFT",
    "ShiftSettings",
    "flow_parameter_shift",
    "flow_shift_skip_reason",
    "select_parameters",
    "shift_sigma",
    "suspiciousness_from_chains",
]

log = logging.getLogger(__name__)


def _default_flow() -> Any:
    from ..train import TrainConfig

    return TrainConfig(
        kind="maf",
        transforms=4,
        hidden=(64, 64),
        batch_size=1024,
        lr=2e-3,
        max_steps=2500,
        max_time=90.0,
        patience=600,
        eval_every=100,
        validation_fraction=0.15,
        # the pairs are whitened by their own covariance already (_whiten): a second, full
        # whitening inside the flow is the identity up to noise, and `auto` would only add
        # its pilots; every measurement of the flow shift (docs/results.md) is diagonal
        whiten="diagonal",
        progress=False,
    )


@dataclass(frozen=True)
class ShiftSettings:
    """Settings of :func:`flow_parameter_shift` (the one place their defaults live).

    Attributes
    ----------
    n_pairs : int
        Pairs ``(theta_A, theta_B)`` drawn by weighted resampling of the two chains; the flow
        is trained on their differences.
    n_flows : int
        Flows trained (different seeds) on the same pairs; their mean tail is reported and
        their spread enters the error (one flow's tail estimate scatters by 0.1-0.3 sigma at
        3-5 sigma in 2-D tests).
    test_fraction : float
        Fraction of the pairs held out to score the trained flow (test NLL, beside that of a
        Gaussian fit).
    n_flow_samples : int
        Flow draws that estimate ``1 - P`` (shared among the flows).
    box_padding : float
        The box of the bounded flow extends ``box_padding * max |u|`` on each side of the
        whitened differences ``u`` (large: the logit map is then nearly linear on the data).
    flow : flowprior.train.TrainConfig
        Flow and training settings (``seed`` and ``threads`` are replaced by the call's).
    min_ess : float
        Kish effective sample size each chain needs for the workflow to compute the flow shift
        (:func:`flow_shift_skip_reason`; below it the pairs repeat a few samples and the
        flow learns them, not the difference distribution).
    max_test_nll_excess : float
        Nats per held-out pair by which the flows may describe the differences worse than a
        Gaussian fit before the workflow rejects the flow shift as untrained (a Gaussian
        difference gives an excess of about 0.01 with :meth:`workflow`'s short training).
    calibrate : bool
        Train a calibration twin beside each flow (module docstring, step 5) and add the
        twins' root-mean-square miss to ``shift_sigma_err``. Doubles the training time; without
        it the error is the Monte Carlo error and the flows' spread only, which misses the
        error the flows share.
    """

    n_pairs: int = 100_000
    n_flows: int = 2
    test_fraction: float = 0.1
    n_flow_samples: int = 200_000
    box_padding: float = 10.0
    flow: Any = field(default_factory=_default_flow)
    min_ess: float = 100.0
    max_test_nll_excess: float = 0.05
    calibrate: bool = True

    @classmethod
    def workflow(cls) -> ShiftSettings:
        """The settings of the workflow's tension diagnostics: the defaults with
        :data:`WORKFLOW_SHIFT` (``flowprior tension --n-pairs 20000 --n-flows 2 --max-steps
        500`` gives the same numbers for the same chains and seed)."""
        base = cls()
        changes = dict(WORKFLOW_SHIFT)
        flow = dataclasses.replace(base.flow, max_steps=changes.pop("max_steps"))
        return dataclasses.replace(base, flow=flow, **changes)

    def __post_init__(self) -> None:
        from ..train import TrainConfig

        checks = [
            (_is_int(self.n_pairs) and self.n_pairs >= 200, "n_pairs must be an integer >= 200"),
            (_is_int(self.n_flows) and 1 <= self.n_flows <= 20, "n_flows must be in [1, 20]"),
            (
                _is_int(self.n_flow_samples) and self.n_flow_samples >= 100,
                "n_flow_samples must be an integer >= 100",
            ),
            (
                _real(self.test_fraction) and 0 < self.test_fraction < 0.5,
                "test_fraction must be in (0, 0.5)",
            ),
            (
                _real(self.box_padding) and 1 <= self.box_padding <= 1e3,
                "box_padding must be in [1, 1000]",
            ),
            (isinstance(self.flow, TrainConfig), "flow must be a flowprior.train.TrainConfig"),
            (_real(self.min_ess) and self.min_ess >= 2, "min_ess must be a number >= 2"),
            (
                _real(self.max_test_nll_excess) and self.max_test_nll_excess > 0,
                "max_test_nll_excess must be a positive number",
            ),
            (isinstance(self.calibrate, bool), "calibrate must be true or false"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"shift settings: {message}")


#: The workflow's changes to the :class:`ShiftSettings` defaults (:meth:`ShiftSettings.workflow`),
#: each one a ``flowprior tension`` option. Measured on two 6-D chains of 4096 samples (the
#: default study's size), one thread, this 2-core machine: 12-20 s per sequence, against
#: 130 s for 3 flows of 1000 steps and minutes for the defaults (docs/results.md).
WORKFLOW_SHIFT: dict[str, int] = {"n_pairs": 20_000, "n_flows": 2, "max_steps": 500}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


# ------------------------------------------------------------------ conversions
def shift_sigma(tail: float) -> float:
    """Two-sided Gaussian equivalent of a tail mass ``1 - P``: ``norm.isf((1 - P) / 2)``.

    Computed from ``1 - P`` itself (``-ndtri(tail / 2)``), so ``1 - P = 1e-300`` gives about
    37 sigma and nothing overflows; ``tail >= 1`` gives 0.
    """
    if not tail < 1.0:
        return 0.0
    if tail <= 0.0:
        return math.inf
    return float(-special.ndtri(0.5 * tail))


def _sigma_err(tail: float, err: float) -> float:
    """Half the spread of ``shift_sigma`` over ``tail -+ err`` (clipped to (0, 1])."""
    lo = max(tail - err, tail * 1e-3, 1e-300)
    hi = min(tail + err, 1.0)
    return 0.5 * abs(shift_sigma(lo) - shift_sigma(hi))


def suspiciousness_from_chains(a: Chain, b: Chain, ab: Chain) -> dict[str, Any]:
    """Suspiciousness from the log-likelihood columns of the A, B and joint chains.

    ``log S = <log L_AB>_AB - <log L_A>_A - <log L_B>_B`` and the dimensionality of the shared
    constraint ``d = d_A + d_B - d_AB`` with ``d_X = 2 Var_X(log L_X)`` (Handley & Lemos 2019;
    :func:`flowprior.diagnostics.suspiciousness`, whose evidences cancel in ``log S``). The
    joint chain's ``log_likelihood`` must be ``log L_A + log L_B`` with the same
    normalisations as the single chains' (Cobaya ``chi2`` columns are).

    Returns
    -------
    dict
        ``log_S``, ``bayesian_dimensionality`` (``d``), ``suspiciousness_sigma``,
        ``suspiciousness_p_value``, ``bmd_a``, ``bmd_b``, ``bmd_ab``.

    Raises
    ------
    InputError
        A chain without a ``log_likelihood`` column (naming it).
    """
    for chain in (a, b, ab):
        if chain.log_likelihood is None:
            raise _input_error(
                chain.source,
                "log_likelihood",
                "suspiciousness needs a log-likelihood column (log_likelihood, or chi2 in "
                "Cobaya chains) in A, B and the joint chain",
            )
    r = suspiciousness(
        log_z_a=0.0, log_z_b=0.0, log_z_ab=0.0,
        loglike_a=a.log_likelihood, w_a=a.weights,
        loglike_b=b.log_likelihood, w_b=b.weights,
        loglike_ab=ab.log_likelihood, w_ab=ab.weights,
    )
    return {
        "log_S": r["log_s"],
        "bayesian_dimensionality": r["bmd"],
        "suspiciousness_sigma": r["sigma"],
        "suspiciousness_p_value": r["p_value"],
        "bmd_a": r["bmd_a"],
        "bmd_b": r["bmd_b"],
        "bmd_ab": r["bmd_ab"],
    }


# ------------------------------------------------------------------ parameter subsets
def select_parameters(a: Chain, b: Chain, parameters: Sequence[str] | None = None) -> list[str]:
    """The parameters compared: ``parameters`` (validated) or every name the chains share.

    Raises
    ------
    InputError
        No shared parameter names; a requested name missing from a chain (naming the chain
        file); a repeated name; a selected parameter with zero spread in a chain.
    """
    names_a, names_b = list(a.params.names), list(b.params.names)
    if parameters is None:
        chosen = [n for n in names_a if n in set(names_b)]
        if not chosen:
            raise _input_error(
                f"{a.source}, {b.source}",
                "parameters",
                f"the chains share no parameter name (A: {', '.join(names_a)[:200]}; "
                f"B: {', '.join(names_b)[:200]}); parameters with different names are "
                "different parameters: rename the columns if they mean the same",
            )
    else:
        chosen = [parameters] if isinstance(parameters, str) else [str(p) for p in parameters]
        if not chosen:
            raise InputError(f"{a.source}, {b.source}: parameters: the subset is empty")
        dupes = sorted({p for p in chosen if chosen.count(p) > 1})
        if dupes:
            raise InputError(f"{a.source}, {b.source}: parameters: repeated {', '.join(dupes)}")
        for chain, names in ((a, names_a), (b, names_b)):
            missing = [p for p in chosen if p not in names]
            if missing:
                raise _input_error(
                    chain.source,
                    "parameters",
                    f"{', '.join(map(repr, missing))} not in this chain (it has: "
                    f"{', '.join(names)[:300]})",
                )
    for chain in (a, b):
        cols = [chain.params.names.index(p) for p in chosen]
        x = chain.samples[:, cols][chain.weights > 0]
        flat = [p for j, p in enumerate(chosen) if np.ptp(x[:, j]) == 0]
        if flat:
            raise _input_error(
                chain.source,
                f"column {flat[0]!r}",
                "zero variance (the parameter is fixed in this chain, so it has no posterior "
                "to compare); leave it out of the parameter subset",
            )
    return chosen


def flow_shift_skip_reason(a: Chain, b: Chain, *, settings: ShiftSettings) -> str | None:
    """Why the flow shift cannot be made on these chains (None: it can).

    A chain whose Kish effective sample size is below ``settings.min_ess`` has too few
    independent samples to resolve the difference distribution. Any number of parameters,
    one included, is fine.
    """
    from ..stats import kish_ess

    for label, chain in (("A", a), ("B", b)):
        ess = float(kish_ess(chain.weights[chain.weights > 0]))
        if ess < settings.min_ess:
            return (
                f"too few samples: chain {label} ({chain.source}) has a Kish effective sample "
                f"size of {ess:.0f} < min_ess {settings.min_ess:g}"
            )
    return None


def _columns(chain: Chain, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    cols = [chain.params.names.index(p) for p in names]
    keep = chain.weights > 0
    w = chain.weights[keep]
    return np.ascontiguousarray(chain.samples[keep][:, cols], dtype=np.float64), w / w.sum()


# ------------------------------------------------------------------ the estimator
def flow_parameter_shift(
    a: Chain,
    b: Chain,
    *,
    parameters: Sequence[str] | None = None,
    seed: int = 0,
    threads: int = 1,
    settings: ShiftSettings | None = None,
) -> dict[str, Any]:
    """Flow-based parameter-shift probability between two independent posteriors.

    Parameters
    ----------
    a, b : Chain
        Weighted samples of the two posteriors (resampled by their weights).
    parameters : sequence of str, optional
        Parameter subset, by name; default every parameter the chains share (in A's order).
        The Gaussian shift over many parameters dilutes a discrepancy that lives in a few, and
        a parameter constrained only by its prior in both adds nothing but noise.
    seed : int
        Drives the pairing, the split, the flow's initialisation and batches, and the draws.
    threads : int
        torch threads for training and sampling (restored afterwards).
    settings : ShiftSettings, optional
        Sample sizes and the flow settings; default ``ShiftSettings()``.

    Returns
    -------
    dict
        ``parameters``, ``n_pairs``, ``shift_probability`` (``P``), ``shift_probability_err``,
        ``shift_sigma``, ``shift_sigma_err``, ``shift_sigma_is_lower_bound`` (bool; when true
        ``shift_sigma`` is a lower bound from the number of draws and ``P`` and the errors are
        None), ``n_tail`` (draws with ``q <= q(0)``), ``n_flow_samples``, ``n_flows``,
        ``members`` (per flow: ``tail``, ``tail_err``, ``n_tail``, ``proposal_scale``,
        ``test_nll``, ``steps``, ``best_val_nll``), ``gaussian_shift_sigma``,
        ``gaussian_shift_chi2``, ``flow_test_nll`` and ``gaussian_test_nll`` (mean NLL of the
        held-out pairs, nats, whitened coordinates; the flows should not be worse),
        ``warnings`` (list of str), ``seconds``.
    """
    start = time.perf_counter()
    cfg = settings if settings is not None else ShiftSettings()
    if not isinstance(cfg, ShiftSettings):
        raise InputError(f"shift settings: expected a ShiftSettings, got {type(cfg).__name__}")
    if not _is_int(seed) or not 0 <= seed <= 2**63 - 1:
        raise InputError(f"seed: expected an integer in [0, 2**63 - 1], got {seed!r}")
    if not _is_int(threads) or threads < 1:
        raise InputError(f"threads: expected an integer >= 1, got {threads!r}")
    names = select_parameters(a, b, parameters)
    xa, wa = _columns(a, names)
    xb, wb = _columns(b, names)
    gauss = parameter_shift(xa, xb, wa=wa, wb=wb)

    rng = np.random.default_rng([seed, 14])
    n = cfg.n_pairs
    delta = xa[rng.choice(xa.shape[0], n, p=wa)] - xb[rng.choice(xb.shape[0], n, p=wb)]
    u, u0 = _whiten(delta, source=f"{a.source}, {b.source}")
    test, train, half = _split(u, cfg)
    twin = _twin_spec(xa, wa, xb, wb) if cfg.calibrate else None
    out: dict[str, Any] = {
        "parameters": names,
        "n_pairs": n,
        "gaussian_shift_sigma": gauss["sigma"],
        "gaussian_shift_chi2": gauss["chi2"],
        "n_flow_samples": cfg.n_flow_samples,
        "warnings": [],
    }
    if np.any(np.abs(u0) >= half):
        out.update(_beyond_box(cfg.n_flow_samples))
        out["warnings"].append(
            "no shift (Delta = 0) lies outside the flow's box around the differences: the shift "
            "is beyond what the samples resolve; shift_sigma is a lower bound"
        )
        out.update(n_tail=0, n_flows=0, members=None, flow_test_nll=None, gaussian_test_nll=None,
                   statistical_sigma_err=None, calibration_sigma_rms=None)
    else:
        out.update(_ensemble(train, test, u0, half, cfg, seed=seed, threads=threads, twin=twin))
        if cfg.calibrate and out["calibration_sigma_rms"] is None and out["n_tail"]:
            out["warnings"].append(
                "no calibration twin could be made (its no-shift point fell outside its box or "
                "beyond its draws): shift_sigma_err is the statistical error only"
            )
        out["gaussian_test_nll"] = float(
            0.5 * len(names) * math.log(2 * math.pi) + 0.5 * np.mean(np.sum(test**2, axis=1))
        )
        if out["flow_test_nll"] > out["gaussian_test_nll"] + 0.01:
            out["warnings"].append(
                f"the flows' test NLL ({out['flow_test_nll']:.4f}) is worse than a Gaussian's "
                f"({out['gaussian_test_nll']:.4f}): the flows are undertrained; raise max_steps"
            )
    if abs(out["shift_sigma"] - gauss["sigma"]) > 1.0 and not (
        out["shift_sigma_is_lower_bound"] and gauss["sigma"] >= out["shift_sigma"]
    ):
        out["warnings"].append(
            f"flow ({out['shift_sigma']:.2f} sigma) and Gaussian ({gauss['sigma']:.2f} sigma) "
            "parameter shifts differ by more than 1 sigma: the difference distribution is "
            "non-Gaussian, so the Gaussian estimate is not to be trusted"
        )
    for text in out["warnings"]:
        log.warning("parameter shift: %s", text)
    out["seconds"] = time.perf_counter() - start
    return out


def _whiten(
    delta: np.ndarray, *, source: str, at: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``u = L^-1 (delta - m)`` and the images of the points ``at`` ``(K, D)``; by default the
    image ``u_0`` ``(D,)`` of ``delta = 0``."""
    mean = delta.mean(axis=0)
    cov = np.atleast_2d(np.cov(delta, rowvar=False))
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise _input_error(
            source,
            "parameters",
            "the parameter differences are degenerate (collinear parameters); drop one of them",
        ) from None
    from scipy.linalg import solve_triangular

    u = solve_triangular(chol, (delta - mean).T, lower=True).T
    if at is None:
        return np.ascontiguousarray(u), solve_triangular(chol, -mean, lower=True)
    return np.ascontiguousarray(u), solve_triangular(chol, (at - mean).T, lower=True).T


def _split(u: np.ndarray, cfg: ShiftSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test and training pairs of whitened differences ``u`` (already in random order)
    and the half-widths of the flows' box around the training pairs."""
    n_test = max(1, int(round(cfg.test_fraction * u.shape[0])))
    test, train = u[:n_test], u[n_test:]
    return test, train, cfg.box_padding * np.max(np.abs(train), axis=0)


def _train(train: np.ndarray, half: np.ndarray, cfg: ShiftSettings, *, seed: int, threads: int):
    from ..train import min_samples, train_flow

    d = train.shape[1]
    if train.shape[0] < min_samples(d):
        raise InputError(f"shift settings: n_pairs: too few pairs to train a {d}-D flow")
    space = ParameterSpace(tuple(f"u{i}" for i in range(d)), -half, half)
    chain = Chain(space, train, source="whitened parameter differences")
    tc = dataclasses.replace(cfg.flow, seed=seed, threads=threads, progress=False)
    if d == 1:
        tc = dataclasses.replace(tc, **_one_dimensional(tc))
    result = train_flow(chain, tc)
    return result.flow, dict(result.metrics)


def _one_dimensional(tc) -> dict[str, Any]:
    """The changes a 1-D difference needs: a spline flow, trained long enough.

    In 1-D an autoregressive conditioner has no input, so ``maf`` layers are fixed affine maps
    (at best the Gaussian shift) that only their biases move: with the shift's lr 0.002 and 500
    steps their held-out NLL on N(0, 1) pairs was 1.54 against the exact 1.42. Two spline
    layers (``nsf``) at lr >= 0.004 for 4x the steps (2000 for the workflow's 500) reach 1.429
    (N(0, 1)) and 1.248 against the exact 1.229 (a standardised Gamma(2) difference), about 8 s
    per flow: 1-D steps are cheap.
    """
    return {
        "kind": "nsf",
        "transforms": min(tc.transforms, 2),
        "lr": max(tc.lr, 4e-3),
        "max_steps": 4 * tc.max_steps,
        "patience": 4 * tc.patience,
    }


@dataclass(frozen=True)
class _Twin:
    """Gaussian stand-ins for the two chains: covariance factors, effective sizes, and the
    unit direction of the mean difference (the calibration twins' offsets lie along it)."""

    chol_a: np.ndarray
    chol_b: np.ndarray
    n_a: int
    n_b: int
    direction: np.ndarray
    cov: np.ndarray


def _twin_spec(xa, wa, xb, wb) -> _Twin | None:
    from ..stats import kish_ess, weighted_mean_cov

    ma, ca = weighted_mean_cov(xa, wa)
    mb, cb = weighted_mean_cov(xb, wb)
    try:
        la, lb = np.linalg.cholesky(np.atleast_2d(ca)), np.linalg.cholesky(np.atleast_2d(cb))
    except np.linalg.LinAlgError:
        return None
    dm = np.atleast_1d(ma - mb)
    norm = float(np.linalg.norm(dm))
    v = dm / norm if norm > 0 else np.eye(dm.size)[0]
    sizes = [max(2, min(x.shape[0], int(round(kish_ess(w))))) for x, w in ((xa, wa), (xb, wb))]
    return _Twin(la, lb, sizes[0], sizes[1], v, np.atleast_2d(ca + cb))


#: Offsets of equal exact shift, in random directions, at which each calibration twin is scored
#: (its flow does not depend on the offset, so they cost draws, not training).
TWIN_DIRECTIONS = 8


def _twin_miss(tail: float, twin: _Twin, cfg: ShiftSettings, *, n_each: int, seed: int,
               threads: int) -> float | None:
    """The calibration twin's root-mean-square miss (estimated minus exact sigma) at ``tail``.

    Gaussian chains of ``twin``'s sizes and covariances are drawn, paired by uniform
    resampling, whitened and split as the real pairs are, and a flow of the same settings is
    trained on them. The whitened pairs do not depend on where the chains sit, so the one flow
    scores the twin at :data:`TWIN_DIRECTIONS` offsets whose exact shift has the tail mass
    ``tail`` (the first along the real mean difference, the others in random directions): the
    no-shift point ``u_0`` of each is mapped, the tail estimated from ``n_each /
    TWIN_DIRECTIONS`` flow draws (at least 1000) and compared with the exact value. The
    squared misses, less their own Monte Carlo variance, are averaged (the flow's mean squared
    error at this shift; 0 where the Monte Carlo noise explains them). None when no offset can
    be scored (``u_0`` outside the twin's box, or no draw beyond it).
    """
    import torch
    from scipy import stats as sps

    from ..train import _torch_threads

    d = twin.direction.size
    chi2 = float(sps.chi2.isf(tail, d)) if tail < 1.0 else 0.0
    rng = np.random.default_rng([seed, 17])
    za = rng.standard_normal((twin.n_a, d)) @ twin.chol_a.T
    zb = rng.standard_normal((twin.n_b, d)) @ twin.chol_b.T
    n = cfg.n_pairs
    delta = za[rng.integers(twin.n_a, size=n)] - zb[rng.integers(twin.n_b, size=n)]
    # offsets m with m^T S^-1 m = chi2: along the real difference, then S^(1/2) xi, |xi| = 1
    chol_s = np.linalg.cholesky(twin.cov)
    first = twin.direction / math.sqrt(float(twin.direction @ np.linalg.solve(twin.cov,
                                                                              twin.direction)))
    xi = rng.standard_normal((TWIN_DIRECTIONS - 1, d))
    xi /= np.linalg.norm(xi, axis=1, keepdims=True)
    offsets = math.sqrt(chi2) * np.vstack([first, xi @ chol_s.T])
    # u_0 of the pairs offset by m (Delta = 0) is the image of Delta = -m of the unshifted pairs
    u, u0s = _whiten(delta, source="calibration twin", at=-offsets)
    _, train, half = _split(u, cfg)
    inside = [u0 for u0 in u0s if np.all(np.abs(u0) < half)]
    if not inside:
        return None
    flow, _ = _train(train, half, cfg, seed=seed, threads=threads)
    exact = shift_sigma(tail)
    sq = []
    n_draws = max(1000, n_each // TWIN_DIRECTIONS)  # all offsets together: one flow's draws
    with _torch_threads(threads), torch.no_grad():
        for j, u0 in enumerate(inside):
            est = _tail(flow, u0, n=n_draws, seed=seed + j)
            if est["n_tail"]:
                # the squared miss less its own Monte Carlo variance: the flow's share
                mc = _sigma_err(est["tail"], est["tail_err"])
                sq.append((shift_sigma(est["tail"]) - exact) ** 2 - mc**2)
    return math.sqrt(max(0.0, float(np.mean(sq)))) if sq else None


def _ensemble(train, test, u0, half, cfg: ShiftSettings, *, seed: int, threads: int,
              twin: _Twin | None = None) -> dict:
    """Train ``cfg.n_flows`` flows (seeds derived from ``seed``) and combine their tails.

    ``1 - P`` is the mean of the flows' estimates; its statistical error adds the Monte Carlo
    errors and the spread between the flows (the flow's own error, which dominates in the far
    tails): ``err^2 = (mean mc_i^2 + var_i) / M``. With a ``twin`` (``cfg.calibrate``), each
    flow's calibration twin is trained at that flow's estimate and the twins' root-mean-square
    miss (sigma) is added to the sigma error in quadrature.
    """
    import torch

    from ..train import _torch_threads

    m = cfg.n_flows
    n_each = max(100, cfg.n_flow_samples // m)
    members = []
    for i in range(m):
        sub = int(np.random.SeedSequence([seed, 16, i]).generate_state(1, np.uint64)[0] >> 1)
        flow, metrics = _train(train, half, cfg, seed=sub, threads=threads)
        with _torch_threads(threads), torch.no_grad():
            tail = _tail(flow, u0, n=n_each, seed=sub)
            tail["test_nll"] = float(-flow.log_prob(torch.as_tensor(test)).mean())
        tail["training"] = metrics
        tail["calibration_sigma_rms"] = None
        if twin is not None and tail["n_tail"]:
            cal = int(np.random.SeedSequence([seed, 17, i]).generate_state(1, np.uint64)[0] >> 1)
            tail["calibration_sigma_rms"] = _twin_miss(
                tail["tail"], twin, cfg, n_each=n_each, seed=cal, threads=threads
            )
        members.append(tail)
    out: dict[str, Any] = {
        "n_flows": m,
        "flow_test_nll": float(np.mean([t["test_nll"] for t in members])),
        "members": [
            {k: t[k] for k in ("tail", "tail_err", "n_tail", "proposal_scale", "test_nll",
                               "calibration_sigma_rms")}
            | {"steps": t["training"]["steps"], "best_val_nll": t["training"]["best_val_nll"]}
            for t in members
        ],
        "n_tail": int(sum(t["n_tail"] for t in members)),
    }
    if out["n_tail"] == 0:
        out.update(_beyond_box(n_each * m))
        out.update(statistical_sigma_err=None, calibration_sigma_rms=None)
        return out
    tails = np.array([t["tail"] for t in members])
    mc = np.array([t["tail_err"] for t in members])
    tail = float(tails.mean())
    spread = float(tails.var(ddof=1)) if m > 1 else 0.0
    err = math.sqrt((float(np.mean(mc**2)) + spread) / m)
    sigma, stat = shift_sigma(tail), _sigma_err(tail, err)
    misses = [t["calibration_sigma_rms"] for t in members
              if t["calibration_sigma_rms"] is not None]
    rms = math.sqrt(float(np.mean(np.square(misses)))) if misses else None
    sigma_err = stat if rms is None else math.hypot(stat, rms)
    # P's error: the larger of its statistical error and the image of sigma +- sigma_err
    lo = 2.0 * special.ndtr(-(sigma + sigma_err))
    hi = min(1.0, 2.0 * special.ndtr(-(sigma - sigma_err)))
    out.update(
        {
            "shift_probability": 1.0 - tail,
            "shift_probability_err": max(err, 0.5 * float(hi - lo)),
            "shift_sigma": sigma,
            "shift_sigma_err": sigma_err,
            "shift_sigma_is_lower_bound": False,
            "statistical_sigma_err": stat,
            "calibration_sigma_rms": rms,
        }
    )
    return out


def _beyond_box(n: int) -> dict[str, Any]:
    tail = 1.0 / n
    return {
        "shift_probability": None,
        "shift_probability_err": None,
        "shift_sigma": shift_sigma(tail),
        "shift_sigma_err": None,
        "shift_sigma_is_lower_bound": True,
    }


def _tail(flow, u0: np.ndarray, *, n: int, seed: int) -> dict[str, Any]:
    """``1 - P`` by defensive importance sampling in the flow's base space."""
    import torch

    d = u0.size
    x0 = torch.as_tensor(u0[None, :], dtype=torch.float64)
    log_q0 = float(flow.log_prob(x0)[0])
    z0, _ = flow.to_latent(x0)
    eps0 = flow.core().transform(z0.to(flow.core_dtype)).to(torch.float64)
    r0 = float(torch.linalg.norm(eps0))
    s = max(1.0, r0 / math.sqrt(d))
    gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, 15]).integers(2**62)))
    eps = torch.randn((n, d), generator=gen, dtype=torch.float64)
    eps[n // 2 :] *= s
    sq = (eps**2).sum(dim=1).numpy()
    # w = N(eps; 0, 1) / [(N(eps; 0, 1) + N(eps; 0, s^2)) / 2]
    log_ratio = -0.5 * sq / s**2 - d * math.log(s) + 0.5 * sq  # log N_s - log N_1
    w = 2.0 / (1.0 + np.exp(np.minimum(log_ratio, 700.0)))
    x = flow.sample_latent_to_box(eps)
    log_q = flow.log_prob(x).numpy()
    below = log_q <= log_q0
    count = int(below.sum())
    terms = np.where(below, w, 0.0)
    # no draw beyond q(0): the tail is below about 1/n; the error says so
    err = float(terms.std(ddof=1) / math.sqrt(n)) if count else 1.0 / n
    return {"tail": float(min(terms.mean(), 1.0)), "tail_err": err, "n_tail": count,
            "proposal_scale": s}
