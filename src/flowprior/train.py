"""Training a bounded flow on a (weighted) posterior chain.

Three losses (per batch of target samples ``x`` with normalised chain weights ``w``):

``nll``
    ``-sum w log q(x)`` (unsupervised, samples only).
``kl``
    ``sum w (log p(x) - log q(x))``: forward KL up to the unknown normalisation of ``p``. Its
    gradient equals the NLL gradient; the reported value differs by a constant.
``jeffreys``
    ``kl`` plus the self-normalised reverse-KL estimate ``sum v (log q - log p)`` with
    ``v = softmax(log w + log q - log p)``. Computed with a log-sum-exp, so a constant offset
    in ``log p`` cancels exactly (the reference implementation clipped the exponent at +-30,
    which stops training once ``log p`` carries an offset of ~40 nats).

The chain is split by sample into test, validation and training parts (:func:`data_split`).
Early stopping (and the ``plateau`` schedule) always uses the weighted validation NLL of the
weights' moving average, and the best-validation weights are restored at the end. The test
split is scored once, after training (:func:`score_test_split`, with a Gaussian baseline), and
steers nothing. ``whiten: auto`` (the default) trains the diagonal and the fully whitened flow
side by side for their first :data:`AUTO_PILOT_STEPS` steps and continues the one with the
lower validation NLL (:func:`_train_auto`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import numbers
import textwrap
import time
import typing
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .chains import Chain
from .degeneracy import check_degeneracy
from .errors import InputError
from .flows import FLOW_KINDS, MAX_DIM, BoundedFlow, build_flow, check_architecture
from .stats import kish_ess, weighted_mean_sd

__all__ = [
    "DEVICES",
    "DTYPES",
    "LOSSES",
    "LR_SCHEDULES",
    "WHITENINGS",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "data_split",
    "fit_logit_gaussian",
    "gaussian_logpdf",
    "loss_value",
    "score_test_split",
    "train_flow",
    "weighted_mean_se",
]

log = logging.getLogger(__name__)

LOSSES = ("nll", "kl", "jeffreys")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: Chunk size for full-set evaluations (validation NLL).
_EVAL_CHUNK = 65536
#: Largest accepted seed (numpy and torch both take it).
MAX_SEED = 2**63 - 1
#: Allowed values of the other string fields of :class:`TrainConfig`.
DEVICES = ("cpu", "cuda")
DTYPES = tuple(_DTYPES)
WHITENINGS = ("diagonal", "full", "auto")
#: Steps of each pilot training of ``whiten: auto``: at most this, and at most a fifth of
#: ``max_steps`` (then the first validation at or after it), so that a short training is not
#: run twice over.
AUTO_PILOT_STEPS = 300
AUTO_PILOT_FRACTION = 0.2
LR_SCHEDULES = ("plateau", "cosine")
#: Final learning rate of the cosine schedule, relative to ``lr``.
_COSINE_FLOOR = 1e-2


def _knob(
    default: Any, help: str, *, choices: tuple[str, ...] | None = None, cli: str | None = None
) -> Any:
    """A :class:`TrainConfig` field whose metadata documents it once, for every reader.

    Parameters
    ----------
    default : Any
        The library default (the one source: schema, config and docs are tested against it).
    help : str
        One-paragraph description: the ``Attributes`` entry of the class docstring and the
        ``--help`` text of ``flowprior train``.
    choices : tuple of str, optional
        Allowed values (checked by ``__post_init__``, offered as CLI choices).
    cli : str, optional
        Command-line option when it is not ``--<name-with-dashes>``.
    """
    meta = {"help": help, "choices": choices, "cli": cli}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every knob of :func:`train_flow`; serialised into the model manifest.

    Each field's default and description live in its definition (``field.metadata["help"]``,
    ``["choices"]``); the ``Attributes`` section below, the options of ``flowprior train``
    and the checks of the config schema and docs are derived from or tested against them.
    """

    kind: str = _knob(
        "nsf",
        "Flow architecture: nsf (neural spline flow), maf (masked autoregressive flow) or "
        "realnvp (affine coupling flow); see flowprior.flows.build_flow.",
        choices=FLOW_KINDS,
        cli="--flow",
    )
    transforms: int = _knob(3, "Number of flow transformations.")
    hidden: tuple[int, ...] = _knob(
        (64, 64), "Hidden-layer widths of each conditioner network (CLI: N or N,N,...; N means N,N)."
    )
    bins: int = _knob(8, "Spline bins (nsf only).")
    loss: str = _knob(
        "nll",
        "Training loss: nll (samples only), kl or jeffreys (both need the chain's "
        "log-posterior).",
        choices=LOSSES,
    )
    batch_size: int = _knob(
        1024, "Samples per optimisation step (drawn uniformly; the loss is weight-averaged)."
    )
    lr: float = _knob(
        4e-3,
        "Peak Adam learning rate (reached after the warm-up; lr_schedule then lowers it).",
    )
    lr_schedule: str = _knob(
        "cosine",
        "Learning-rate schedule after the warm-up: plateau halves the rate whenever the "
        "validation NLL has not improved by 1e-4 nats for patience/4 steps (down to lr * 1e-3); "
        "cosine decays it from lr to lr * 1e-2 along a half cosine over max_steps (early "
        "stopping still applies).",
        choices=LR_SCHEDULES,
    )
    warmup_steps: int = _knob(
        100, "Steps of linear learning-rate warm-up from lr / warmup_steps to lr (0: none)."
    )
    max_steps: int = _knob(
        2000, "Hard cap on optimisation steps (and the length of the cosine schedule)."
    )
    max_time: float = _knob(600.0, "Hard cap on training wall time, seconds.")
    patience: int = _knob(1000, "Stop after this many steps without a better validation NLL.")
    ema_decay: float = _knob(
        0.99,
        "Decay of an exponential moving average of the weights (ramped up as "
        "min(decay, (1 + step) / (10 + step))); the average is what is validated, kept as the "
        "best and returned. 0: no average (the raw iterate).",
    )
    eval_every: int = _knob(100, "Steps between validation evaluations (and history rows).")
    eval_subset: int = _knob(
        8192,
        "Validation samples used by each evaluation: a fixed random subset of this size (drawn "
        "with the seed), or the whole validation split when it is smaller or this is 0.",
    )
    validation_fraction: float = _knob(
        0.2,
        "Fraction of samples held out for validation: early stopping and the learning-rate "
        "schedule (split by sample, with the seed, after the test split).",
    )
    test_fraction: float = _knob(
        0.1,
        "Fraction of samples split off first (by sample, with the seed) as the test set: used "
        "for nothing but the reported test NLL, its Gaussian baseline and the fidelity record; "
        "0 means no test split (the test NLL is then null). validation_fraction + "
        "test_fraction must be < 1.",
    )
    seed: int = _knob(1, "Drives the split, the initialisation and the batches.")
    threads: int = _knob(1, "torch intra-op threads during training (restored afterwards).")
    device: str = _knob("cpu", "Where to train; the CPU path is the tested one.", choices=DEVICES)
    dtype: str = _knob(
        "float32",
        "Dtype of the trainable core (the fixed maps and the interface are always float64).",
        choices=DTYPES,
    )
    whiten: str = _knob(
        "auto",
        "Fixed affine map of the logit coordinates before the flow: diagonal standardises each "
        "coordinate; full whitens with the Cholesky factor of the weighted training covariance "
        "(the flow then learns only what is not a linear correlation: on the 6-D SEMF "
        "posteriors, correlations up to 0.993); auto trains both side by side for their first "
        "300 steps (at most a fifth of max_steps) and continues the one with the lower "
        "validation NLL (the model file records the choice and both NLLs).",
        choices=WHITENINGS,
    )
    degeneracy_tolerance: float = _knob(
        1e-6,
        "Refuse to train when a parameter is a near-exact function of the others: 1 - R^2 of "
        "its weighted least-squares fit by a polynomial in the others (cubic up to 12 "
        "parameters, quadratic up to 30, linear above) below this, typically a derived "
        "parameter carried into the flow (flowprior.degeneracy). Measured: the DES Y1 chain "
        "with its derived H0, omegam, sigma8 1e-12 (Planck 2018: 6e-11); sampled parameters "
        "only 4e-3 (DES), 1e-2 (Planck); built-in problems >= 5e-5 (SEMF, heavy nuclides), "
        "others >= 1e-2. 0: no check.",
    )
    progress: bool = _knob(True, "Show a tqdm progress bar.", cli="--quiet")

    def __post_init__(self) -> None:
        self._check_types()
        self.hidden = tuple(int(h) for h in self.hidden)
        checks = [
            (
                getattr(self, f.name) in f.metadata["choices"],
                f"{f.name} must be one of {f.metadata['choices']}, not {getattr(self, f.name)!r}",
            )
            for f in dataclasses.fields(self)
            if f.metadata["choices"]
        ] + [
            (self.transforms >= 1, "transforms must be >= 1"),
            (len(self.hidden) > 0 and min(self.hidden) >= 1, "hidden widths must be >= 1"),
            (self.bins >= 2, "bins must be >= 2"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (math.isfinite(self.lr) and self.lr > 0, f"lr must be finite and > 0, not {self.lr!r}"),
            (self.max_steps >= 1, "max_steps must be >= 1"),
            (
                math.isfinite(self.max_time) and self.max_time > 0,
                f"max_time must be finite and > 0, not {self.max_time!r}",
            ),
            (0 <= self.seed <= MAX_SEED, f"seed must be in [0, 2**63 - 1], not {self.seed!r}"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.eval_subset >= 0, "eval_subset must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
            (0 <= self.test_fraction < 1, "test_fraction must be in [0, 1)"),
            (
                self.validation_fraction + self.test_fraction < 1,
                "validation_fraction + test_fraction must be < 1",
            ),
            (self.threads >= 1, "threads must be >= 1"),
            (
                0 <= self.degeneracy_tolerance < 1,
                f"degeneracy_tolerance must be in [0, 1), not {self.degeneracy_tolerance!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"flow settings: {message}")
        try:  # upper bounds of the architecture (dim 1 here: checked with the data later)
            check_architecture(**self.architecture(), dim=1)
        except ValueError as exc:
            raise InputError(f"flow settings: {exc}") from None

    def _check_types(self) -> None:
        """Each field has its annotated type: bool is not an int, int is a float, no NaN."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            elif kind is float:
                ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
                ok = ok and not math.isnan(value)
            elif kind is str:
                ok = isinstance(value, str)
            else:  # hidden: a sequence of integers
                ok = isinstance(value, (list, tuple)) and all(
                    isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
                )
            if not ok:
                raise InputError(
                    f"flow settings: {f.name}: expected {getattr(kind, '__name__', 'a list of integers')}, "
                    f"got {value!r}"
                )

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "flow settings") -> TrainConfig:
        """Build from a mapping; unknown keys are an :class:`InputError` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"{source}: {', '.join(unknown)}: unknown key(s); known: {', '.join(sorted(known))}"
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    def architecture(self) -> dict[str, Any]:
        """The keyword arguments of :func:`build_flow` (without ``dim``)."""
        return {
            "kind": self.kind,
            "transforms": self.transforms,
            "hidden": list(self.hidden),
            "bins": self.bins,
        }


def _attributes_section(cls: type) -> str:
    """The NumPy ``Attributes`` docstring section rendered from the fields' metadata."""
    lines = ["", "    Attributes", "    ----------"]
    for f in dataclasses.fields(cls):
        choices = f.metadata["choices"]
        kind = "{" + ", ".join(f'"{c}"' for c in choices) + "}" if choices else str(f.type)
        lines.append(f"    {f.name} : {kind}, default {f.default!r}")
        lines += textwrap.wrap(f.metadata["help"], 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return "\n".join(lines) + "\n"


TrainConfig.__doc__ = (TrainConfig.__doc__ or "") + _attributes_section(TrainConfig)


@dataclass
class TrainResult:
    """Outcome of :func:`train_flow`.

    Attributes
    ----------
    flow : BoundedFlow
        The trained flow, best-validation weights restored, in eval mode, on the CPU.
    chain : Chain
        The training chain (both splits); only its hash and sizes go into the model file.
    config : TrainConfig
        The settings used: ``whiten: auto`` is replaced by the whitening it chose.
    history : pandas.DataFrame
        One row per evaluation: step, train_loss, val_nll, best_val_nll, val_kl, lr, seconds
        (``val_kl`` = weighted validation mean of ``log p - log q``: the KL divergence when the
        chain's log-posterior is normalised, up to that constant otherwise; NaN without it).
    metrics : dict
        Summary (steps, best_step, best_val_nll, val_kl, stop_reason, train_seconds, ...);
        with ``whiten: auto``, ``whiten_auto``: the best validation NLL of each whitening
        after the pilot steps (``{"diagonal": ..., "full": ...}``).
    split : dict
        ``{"train": indices, "validation": indices, "test": indices}`` into the chain
        (after dropping zero-weight rows); the test split steers nothing.
    test : dict
        :func:`score_test_split` on the test split: ``n_test``, ``ess_test``, ``test_nll`` and
        ``test_nll_se``, ``gaussian_test_nll`` and ``gaussian_test_nll_se``,
        ``flow_minus_gaussian`` and ``flow_minus_gaussian_se`` (all None when
        ``test_fraction`` is 0). Not part of the model file's manifest.
    """

    flow: BoundedFlow
    chain: Chain
    config: TrainConfig
    history: pd.DataFrame
    metrics: dict[str, Any]
    split: dict[str, np.ndarray] = field(repr=False)
    test: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path, *, timing: bool = True) -> Path:
        """Write the model (directory, or single file when ``path`` ends in ``.zip``).

        ``timing=False`` leaves the wall times out (``timing.json``), so that the file is
        byte-identical for the same chain, settings and seed (:func:`flowprior.io.save_model`).
        """
        from .io import save_model

        return save_model(self, path, timing=timing)


class TrainingDivergedError(InputError, FloatingPointError):
    """The training loss or the validation NLL became NaN or infinite (a one-line error).

    Almost always a setting (a learning rate too large for the data) rather than a bug, so it
    is an :class:`~flowprior.errors.InputError` (exit status 2 from the CLI).
    """


# ------------------------------------------------------------------------------ losses
def loss_value(
    loss: str, *, log_q: torch.Tensor, weights: torch.Tensor, log_p: torch.Tensor | None
) -> torch.Tensor:
    """Batch loss.

    Parameters
    ----------
    loss : {"nll", "kl", "jeffreys"}
    log_q : Tensor (N,)
        Flow log-density at the samples (any offset-free parametrisation, float64).
    weights : Tensor (N,)
        Non-negative sample weights (normalised here).
    log_p : Tensor (N,) or None
        Target log-density up to a constant; needed by ``kl`` and ``jeffreys``.
    """
    w = weights / weights.sum()
    if loss == "nll":
        return -(w * log_q).sum()
    if log_p is None:
        raise InputError(f"loss {loss!r}: needs the chain's log-posterior")
    diff = log_p - log_q
    forward = (w * diff).sum()
    if loss == "kl":
        return forward
    if loss == "jeffreys":
        # Self-normalised importance weights v ∝ w q / p, via log-sum-exp (offset-proof).
        logits = torch.log(w) - diff
        v = torch.softmax(logits, dim=0)
        reverse = -(v * diff).sum()
        return forward + reverse
    raise ValueError(f"unknown loss {loss!r}")


# ------------------------------------------------------------------------------ helpers
@contextmanager
def _torch_threads(n: int):
    """Temporarily set torch's intra-op thread count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def split_indices(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation split by sample (sorted index arrays); no test split.

    The same as ``data_split(n, validation_fraction=fraction, test_fraction=0, seed=seed)``.
    """
    parts = data_split(n, validation_fraction=fraction, test_fraction=0.0, seed=seed)
    return parts["train"], parts["validation"]


def data_split(
    n: int, *, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Random train/validation/test split by sample (sorted, disjoint index arrays).

    One seeded permutation: its first ``round(test_fraction * n)`` entries are the test split,
    the next ``round(validation_fraction * n)`` the validation split, the rest the training
    split. With ``test_fraction = 0`` the train/validation split is the one of the earlier
    two-way split (models trained before the test split existed are re-split exactly).
    """
    rng = np.random.default_rng([seed, 0])
    perm = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    n_val = int(round(validation_fraction * n))
    return {
        "train": np.sort(perm[n_test + n_val :]),
        "validation": np.sort(perm[n_test : n_test + n_val]),
        "test": np.sort(perm[:n_test]),
    }


def min_samples(dim: int) -> int:
    """Fewest samples :func:`train_flow` accepts for a ``dim``-dimensional chain."""
    return max(50, 10 * dim)


def _log_target(chain: Chain, loss: str) -> np.ndarray | None:
    """The chain's log-posterior (reported as validation KL; required by kl and jeffreys)."""
    target = chain.log_target()
    if target is None and loss == "nll":
        return None
    if target is None:
        raise InputError(
            f"{chain.source}: log_posterior: loss {loss!r} needs a log_posterior column "
            "(or log_likelihood + log_prior); use loss 'nll' for samples only"
        )
    return np.asarray(target, dtype=np.float64)


# ------------------------------------------------------------------------------ test split
def weighted_mean_se(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted mean ``sum w v`` (``w`` normalised) and its standard error.

    The error is the ratio estimator's ``sqrt(sum w^2 (v - mean)^2)``: ``sd / sqrt(n)`` for
    equal weights. It assumes independent samples; an autocorrelated chain makes it optimistic.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    v = np.asarray(values, dtype=np.float64)
    mean = float(w @ v)
    return mean, float(np.sqrt(np.sum((w * (v - mean)) ** 2)))


def fit_logit_gaussian(
    flow: BoundedFlow, x: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean ``(D,)`` and covariance ``(D, D)`` of ``x`` in the flow's logit coordinates.

    The covariance is ``sum w (y - mean)(y - mean)^T`` with normalised weights (the weighted
    maximum-likelihood fit, no bias correction).
    """
    with torch.no_grad():
        y, _ = flow.to_logit(torch.as_tensor(x, dtype=torch.float64))
    y = y.numpy()
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    mean = w @ y
    r = y - mean
    cov = (r * w[:, None]).T @ r
    return mean, 0.5 * (cov + cov.T)


def gaussian_logpdf(
    flow: BoundedFlow, x: np.ndarray, *, mean: np.ndarray, cov: np.ndarray
) -> np.ndarray:
    """Log-density on the prior box of a Gaussian in the flow's logit coordinates.

    ``log N(y; mean, cov) + log |dy/dx|`` with ``y = logit((x - l) / (u - l))``, the flow's own
    fixed outer map: a density normalised on the box (exactly, like the flow's), so its values
    compare with the flow's ``log q`` in parameter space. ``x`` is ``(N, D)`` inside the box.

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``cov`` is not positive definite.
    """
    with torch.no_grad():
        y, ladj = flow.to_logit(torch.as_tensor(x, dtype=torch.float64))
    chol = np.linalg.cholesky(cov)
    r = np.linalg.solve(chol, (y.numpy() - mean).T)  # (D, N)
    d = mean.shape[0]
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    log_n = -0.5 * (np.sum(r**2, axis=0) + d * math.log(2 * math.pi) + log_det)
    return log_n + ladj.numpy()


def score_test_split(
    flow: BoundedFlow,
    chain: Chain,
    *,
    weights: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
) -> dict[str, Any]:
    """The trained flow's test NLL, with a Gaussian baseline on the same test samples.

    Parameters
    ----------
    flow : BoundedFlow
        The trained flow (eval mode, CPU).
    chain : Chain
        The training chain (zero-weight rows already dropped).
    weights : ndarray (N,)
        The chain's weights (any positive scale).
    train_idx, test_idx : ndarray of int
        The training split (the Gaussian is fitted on it) and the test split.

    Returns
    -------
    dict
        ``n_test``; ``ess_test``, ``test_nll``, ``test_nll_se`` (weighted mean of ``-log q``
        and its standard error), ``gaussian_test_nll``, ``gaussian_test_nll_se`` (the same for
        the weighted Gaussian of :func:`fit_logit_gaussian` on the training split, evaluated by
        :func:`gaussian_logpdf`), ``flow_minus_gaussian`` and ``flow_minus_gaussian_se`` (the
        paired difference of the two NLLs: positive when the Gaussian is better). All but
        ``n_test`` are None without a test split (``test_fraction`` 0); the Gaussian entries
        are None when the training covariance is singular.
    """
    keys = (
        "ess_test",
        "test_nll",
        "test_nll_se",
        "gaussian_test_nll",
        "gaussian_test_nll_se",
        "flow_minus_gaussian",
        "flow_minus_gaussian_se",
    )
    out: dict[str, Any] = {"n_test": int(test_idx.size), **dict.fromkeys(keys)}
    if test_idx.size == 0:
        return out
    x, w = chain.samples[test_idx], weights[test_idx]
    with torch.no_grad():
        chunks = [
            flow.log_prob(torch.as_tensor(x[i : i + _EVAL_CHUNK]))
            for i in range(0, len(x), _EVAL_CHUNK)
        ]
    log_q = torch.cat(chunks).numpy()
    out["ess_test"] = float(kish_ess(w))
    out["test_nll"], out["test_nll_se"] = weighted_mean_se(-log_q, w)
    mean, cov = fit_logit_gaussian(flow, chain.samples[train_idx], weights[train_idx])
    try:
        log_g = gaussian_logpdf(flow, x, mean=mean, cov=cov)
    except np.linalg.LinAlgError:
        log.warning("%s: the training covariance is singular: no Gaussian baseline", chain.source)
        return out
    out["gaussian_test_nll"], out["gaussian_test_nll_se"] = weighted_mean_se(-log_g, w)
    out["flow_minus_gaussian"], out["flow_minus_gaussian_se"] = weighted_mean_se(log_g - log_q, w)
    return out


# ------------------------------------------------------------------------------ training
def train_flow(chain: Chain, config: TrainConfig) -> TrainResult:
    """Train a bounded flow on a weighted chain.

    Parameters
    ----------
    chain : Chain
        Samples inside the prior box ``chain.params``; weights may be unequal (pocoMC).
    config : TrainConfig

    Returns
    -------
    TrainResult
    """
    cfg = config
    if chain.params.dim > MAX_DIM:
        raise InputError(
            f"{chain.source}: parameters: {chain.params.dim} parameters, flows are limited to "
            f"{MAX_DIM}"
        )
    raw_w = np.asarray(chain.weights, dtype=np.float64)
    if raw_w.size == 0 or not np.all(np.isfinite(raw_w)) or not np.any(raw_w > 0):
        raise InputError(
            f"{chain.source}: weight: no usable weights ({raw_w.size} rows; weights must be "
            "finite, >= 0 and not all zero)"
        )
    if np.any(raw_w == 0):  # zero-weight rows carry no information (and may hold -inf)
        chain = chain.subset(raw_w > 0)
    log_p_all = _log_target(chain, cfg.loss)
    need = min_samples(chain.params.dim)
    if chain.n < need:
        raise InputError(
            f"{chain.source}: samples: {chain.n} samples, training needs at least {need}"
        )
    # A parameter that the others determine (a derived one) puts the chain on a surface.
    check_degeneracy(chain, tolerance=cfg.degeneracy_tolerance, seed=cfg.seed)
    # Rescale so that the largest weight lies in [0.5, 1): weights of 1e308 (whose sum
    # overflows) and of 5e-324 (whose squares underflow) both become well-scaled numbers. The
    # factor is a power of two, so the rescaling is exact and every normalised weight (and so
    # the trained flow) is bit-for-bit what it was for well-scaled weights.
    w_all = np.asarray(chain.weights, dtype=np.float64)
    w_all = np.ldexp(w_all, -int(np.frexp(w_all.max())[1]))
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("flow settings: device: 'cuda' requested but torch sees no CUDA device")

    # 1. Split first, by sample: test (touched only after training), validation, training.
    parts = data_split(
        chain.n,
        validation_fraction=cfg.validation_fraction,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
    )
    train_idx, val_idx, test_idx = parts["train"], parts["validation"], parts["test"]
    ess = {}
    for name, idx in (("training", train_idx), ("validation", val_idx)):
        if idx.size == 0 or w_all[idx].sum() <= 0:
            raise InputError(f"{chain.source}: weight: the {name} split has no weight")
        ess[name] = kish_ess(w_all[idx])
        if not math.isfinite(ess[name]):  # pragma: no cover - impossible after the rescaling
            raise InputError(f"{chain.source}: weight: Kish ESS of the {name} split is {ess[name]}")

    fit = dict(chain=chain, weights=w_all, log_p=log_p_all, idx=(train_idx, val_idx))
    # inside fork_rng: the caller's global RNG is untouched (each flow is seeded from cfg.seed)
    with _torch_threads(cfg.threads), torch.random.fork_rng(devices=[]):
        if cfg.whiten == "auto":
            cfg, (flow, history, metrics), pilots = _train_auto(cfg, **fit)
        else:
            (flow, history, metrics), pilots = _train(cfg, **fit), None
        # 2. Only now, and only for the report: the test split.
        test = score_test_split(flow, chain, weights=w_all, train_idx=train_idx, test_idx=test_idx)

    if log_p_all is None:
        metrics.pop("val_kl")
    if pilots is not None:
        metrics["whiten_auto"] = pilots
    metrics.update(
        {
            "n_train": int(train_idx.size),
            "n_validation": int(val_idx.size),
            "ess_train": ess["training"],
            "ess_validation": ess["validation"],
        }
    )
    log.info(
        "trained %s flow: %d steps, best val NLL %.4f at step %d (%s, %.1f s)",
        cfg.kind,
        metrics["steps"],
        metrics["best_val_nll"],
        metrics["best_step"],
        metrics["stop_reason"],
        metrics["train_seconds"],
    )
    if test["test_nll"] is not None:
        log.info(
            "test NLL %.4f +- %.4f (%d samples); Gaussian baseline %.4f (flow - Gaussian %+.4f "
            "+- %.4f)",
            test["test_nll"],
            test["test_nll_se"],
            test["n_test"],
            test["gaussian_test_nll"],
            test["flow_minus_gaussian"],
            test["flow_minus_gaussian_se"],
        )
        if test["flow_minus_gaussian"] > 0:
            log.warning(
                "%s: a Gaussian fitted to the training split beats the %s flow on the test "
                "split by %.4f +- %.4f nats: consider %s",
                chain.source,
                cfg.kind,
                test["flow_minus_gaussian"],
                test["flow_minus_gaussian_se"],
                "more steps or a Gaussian"
                if cfg.whiten == "full" or pilots is not None  # auto compared both already
                else "whiten 'auto', more steps or a Gaussian",
            )
    split = {"train": train_idx, "validation": val_idx, "test": test_idx}
    return TrainResult(flow, chain, cfg, history, metrics, split, test)


def _setup(
    cfg: TrainConfig,
    *,
    chain: Chain,
    weights: np.ndarray,
    log_p: np.ndarray | None,
    idx: tuple[np.ndarray, np.ndarray],
) -> tuple[BoundedFlow, dict]:
    """The initialised flow (seeded from ``cfg.seed``) and its training and validation tensors."""
    train_idx, val_idx = idx
    device, core_dtype = torch.device(cfg.device), _DTYPES[cfg.dtype]
    torch.manual_seed(cfg.seed)
    flow, z_fixed = _init_flow(
        chain, cfg, weights=weights, train_idx=train_idx, core_dtype=core_dtype
    )
    flow.to(device)
    data = {
        part: _tensors(z_fixed, weights, log_p, idx=rows, device=device, dtype=core_dtype)
        for part, rows in (("train", train_idx), ("val", val_idx))
    }
    return flow, data


def _train(cfg: TrainConfig, **fit: Any) -> tuple[BoundedFlow, pd.DataFrame, dict[str, Any]]:
    """Build and train one flow (``cfg.whiten`` diagonal or full); the flow ends on the CPU."""
    flow, data = _setup(cfg, **fit)
    history, metrics = _optimise(flow, data, cfg)
    flow.to("cpu").eval()
    return flow, history, metrics


def _train_auto(
    cfg: TrainConfig, **fit: Any
) -> tuple[TrainConfig, tuple[BoundedFlow, pd.DataFrame, dict[str, Any]], dict[str, float] | None]:
    """``whiten: auto``: train both whitenings side by side, continue the better one.

    Each candidate is the very training that its whitening would run on its own (same split,
    seed, schedule). Both run to their first evaluation at or after
    ``min(AUTO_PILOT_STEPS, AUTO_PILOT_FRACTION * max_steps)`` (300 steps of the default
    2000); the one with the lower best validation NLL so far (a tie keeps ``diagonal``) is
    continued to its end, so the result is bit-for-bit the flow that ``whiten`` set to the
    winner gives (unless ``max_time`` binds), at the cost of the loser's pilot steps. Only
    the validation split decides: the test split steers nothing. In 1-D both are the same map:
    ``diagonal``, no pilots. A pilot that fails (a diverged loss, a singular covariance)
    leaves the other; both failing raise the diagonal one's error. ``max_time`` applies to
    each training on its own clock: the winner's own training time is capped, not the sum.

    Returns
    -------
    (TrainConfig, (flow, history, metrics), dict or None)
        The settings with the chosen whitening, the trained flow, and the pilots' best
        validation NLLs by whitening (None in 1-D; a failed or unscored pilot is None).
    """
    if fit["chain"].params.dim == 1:
        chosen = dataclasses.replace(cfg, whiten="diagonal")
        return chosen, _train(chosen, **fit), None
    pilot_steps = max(1, min(AUTO_PILOT_STEPS, int(AUTO_PILOT_FRACTION * cfg.max_steps)))
    runs, failed = {}, {}
    for whiten in ("diagonal", "full"):
        c = dataclasses.replace(cfg, whiten=whiten)
        try:
            flow, data = _setup(c, **fit)
            runs[whiten] = {"cfg": c, "flow": flow, "steps": _optimise_steps(flow, data, c)}
            _advance(runs[whiten], until=pilot_steps)
        except (TrainingDivergedError, np.linalg.LinAlgError) as exc:
            # one whitening failing (a diverged loss, a singular covariance) leaves the other
            failed[whiten] = exc
            runs.pop(whiten, None)
            log.warning("%s: whiten auto: the %s pilot failed (%s)", fit["chain"].source,
                        whiten, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if not runs:
        raise failed["diagonal"]
    # a pilot whose every validation was non-finite has no score: unknown (None), never inf
    pilots = {
        w: (float(runs[w]["best"]) if w in runs and math.isfinite(runs[w]["best"]) else None)
        for w in ("diagonal", "full")
    }
    scored = {w: v for w, v in pilots.items() if v is not None}
    if not scored:
        chosen = "diagonal" if "diagonal" in runs else "full"
    else:
        chosen = min(scored, key=lambda w: (scored[w], w != "diagonal"))  # a tie keeps diagonal
    for w, other in runs.items():
        if w != chosen:
            other["steps"].close()
    log.info(
        "%s: whiten auto: %s (best validation NLL after %d steps: diagonal %s, full %s)",
        fit["chain"].source,
        chosen,
        pilot_steps,
        *(("failed" if w in failed else f"{v:.4f}" if v is not None else "none")
          for w, v in pilots.items()),
    )  # fmt: skip
    run = runs[chosen]
    _advance(run, until=None)
    run["flow"].to("cpu").eval()
    return run["cfg"], (run["flow"], *run["result"]), pilots


def _advance(run: dict, *, until: int | None) -> None:
    """Run ``run["steps"]`` (an :func:`_optimise_steps`) to its first evaluation at or after
    step ``until`` (None: to the end). Sets ``run["best"]``, and ``run["result"]`` when done."""
    if "result" in run:  # finished already (max_steps or patience within the pilot)
        return
    try:
        while True:
            step, run["best"] = next(run["steps"])
            if until is not None and step >= until:
                return
    except StopIteration as done:
        run["result"] = done.value
        run["best"] = done.value[1]["best_val_nll"]


def _init_flow(
    chain: Chain,
    cfg: TrainConfig,
    *,
    weights: np.ndarray,
    train_idx: np.ndarray,
    core_dtype: torch.dtype,
) -> tuple[BoundedFlow, tuple[torch.Tensor, torch.Tensor]]:
    """Build the flow with the (weighted) standardisation of the training split.

    ``weights`` are the chain's weights divided by their maximum (overflow-safe).
    """
    params = chain.params
    core = build_flow(dim=params.dim, **cfg.architecture())
    lower = torch.tensor(params.lower, dtype=torch.float64)
    upper = torch.tensor(params.upper, dtype=torch.float64)
    unit = BoundedFlow(
        core,
        lower=lower,
        upper=upper,
        shift=torch.zeros(params.dim, dtype=torch.float64),
        scale=torch.ones(params.dim, dtype=torch.float64),
        core_dtype=core_dtype,
    )
    x = torch.as_tensor(chain.samples, dtype=torch.float64)
    y, _ = unit.to_logit(x)
    mean, std = weighted_mean_sd(y[train_idx].numpy(), weights[train_idx])
    std = np.where(std > 0, std, 1.0)
    scale = torch.as_tensor(std)
    if cfg.whiten == "full" and params.dim > 1:
        scale = torch.as_tensor(_weighted_cholesky(y[train_idx].numpy(), weights[train_idx], std))
    flow = BoundedFlow(
        unit.core,
        lower=lower,
        upper=upper,
        shift=torch.as_tensor(mean),
        scale=scale,
        core_dtype=core_dtype,
    )
    z, ladj = flow.to_latent(x)  # fixed maps: computed once, float64
    return flow, (z, ladj)


def _weighted_cholesky(y: np.ndarray, w: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of the weighted covariance of ``y`` ``(N, D)``.

    Computed on the correlation matrix (scaled by ``std``) with a tiny diagonal jitter, so a
    (near-)degenerate direction falls back towards plain standardisation instead of failing.
    """
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    r = (y - w @ y) / std
    corr = (r * w[:, None]).T @ r
    corr = 0.5 * (corr + corr.T) + 1e-9 * np.eye(corr.shape[0])
    return np.linalg.cholesky(corr) * std[:, None]


def _tensors(z_fixed, w_all, log_p_all, *, idx, device, dtype) -> dict[str, torch.Tensor | None]:
    z, ladj = z_fixed
    sel = torch.as_tensor(idx)
    return {
        "z": z[sel].to(device=device, dtype=dtype),
        "ladj": ladj[sel].to(device),
        "w": torch.as_tensor(w_all[idx] / w_all[idx].sum(), device=device),
        "log_p": None if log_p_all is None else torch.as_tensor(log_p_all[idx], device=device),
    }


def _full_log_q(flow: BoundedFlow, part: dict) -> torch.Tensor:
    """``log q(x)`` (float64) of a whole split, chunked, no gradient."""
    with torch.no_grad():
        chunks = [
            flow.core_log_prob(part["z"][i : i + _EVAL_CHUNK])
            for i in range(0, part["z"].shape[0], _EVAL_CHUNK)
        ]
    return torch.cat(chunks) + part["ladj"]


def _validate(flow: BoundedFlow, part: dict) -> tuple[float, float]:
    """Weighted validation NLL and, when ``log p`` is known, ``sum w (log p - log q)``."""
    log_q = _full_log_q(flow, part)
    nll = float(-(part["w"] * log_q).sum())
    if part["log_p"] is None:
        return nll, math.nan
    return nll, float((part["w"] * (part["log_p"] - log_q)).sum())


def _eval_subset(part: dict, *, size: int, seed: int) -> dict:
    """A fixed random subset of ``size`` rows of a split (all of it when smaller or 0)."""
    n = part["z"].shape[0]
    if size == 0 or n <= size:
        return part
    rows = np.sort(np.random.default_rng([seed, 1]).choice(n, size=size, replace=False))
    sel = torch.as_tensor(rows, device=part["z"].device)
    out = {k: None if v is None else v[sel] for k, v in part.items()}
    out["w"] = out["w"] / out["w"].sum()
    return out


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning rate of ``step`` (1-based) relative to ``lr``: warm-up times the cosine decay."""
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.lr_schedule != "cosine":
        return warm
    t = min(step, cfg.max_steps) / cfg.max_steps
    return warm * (_COSINE_FLOOR + (1 - _COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * t)))


@contextmanager
def _averaged(params: list[torch.Tensor], ema: list[torch.Tensor] | None):
    """Temporarily load the exponential moving average ``ema`` into ``params`` (no-op: None)."""
    if ema is None:
        yield
        return
    live = [p.detach().clone() for p in params]
    with torch.no_grad():
        torch._foreach_copy_(params, ema)
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_(params, live)


def _optimise(flow: BoundedFlow, data: dict, cfg: TrainConfig) -> tuple[pd.DataFrame, dict]:
    """Train ``flow`` in place; returns the history and the metrics."""
    steps = _optimise_steps(flow, data, cfg)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _optimise_steps(flow: BoundedFlow, data: dict, cfg: TrainConfig):
    """Generator of the training of :func:`_optimise`: yields ``(step, best validation NLL so
    far)`` after every evaluation and returns ``(history, metrics)``."""
    train = data["train"]
    val = _eval_subset(data["val"], size=cfg.eval_subset, seed=cfg.seed)
    n_train = train["z"].shape[0]
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    opt = torch.optim.Adam(flow.core.parameters(), lr=cfg.lr * _lr_factor(1, cfg))
    # Halve the learning rate when the validation NLL stalls (SGD noise at a fixed rate is what
    # usually stalls it); early stopping waits `patience` steps, i.e. several halvings.
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="min",
        factor=0.5,
        patience=max(1, cfg.patience // (4 * cfg.eval_every)),
        threshold=1e-4,
        threshold_mode="abs",
        min_lr=cfg.lr * 1e-3,
    )
    best = best_kl = math.inf
    best_step = 0
    best_state = copy.deepcopy(flow.state_dict())
    params = list(flow.core.parameters())
    ema = [p.detach().clone() for p in params] if cfg.ema_decay > 0 else None
    rows: list[dict[str, float]] = []
    running: list[float] = []
    stop_reason = "max_steps"
    start = time.perf_counter()
    bar = tqdm(total=cfg.max_steps, disable=not cfg.progress, desc="training", unit="step")
    flow.train()
    step = 0
    for step in range(1, cfg.max_steps + 1):
        idx = torch.randint(n_train, (min(cfg.batch_size, n_train),), generator=gen)
        idx = idx.to(train["z"].device)
        log_q = flow.core_log_prob(train["z"][idx]) + train["ladj"][idx]
        log_p = None if train["log_p"] is None else train["log_p"][idx]
        loss = loss_value(cfg.loss, log_q=log_q, weights=train["w"][idx], log_p=log_p)
        if cfg.lr_schedule == "cosine" or step <= cfg.warmup_steps:
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, cfg)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"flow settings: lr: the training loss is {float(loss)} at step {step} "
                f"(lr {cfg.lr:g}); lower the learning rate or check the chain"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:  # ema += (1 - d) (params - ema), d ramped up over the first steps
            with torch.no_grad():
                torch._foreach_lerp_(ema, params, 1 - min(cfg.ema_decay, (1 + step) / (10 + step)))
        running.append(float(loss.detach()))
        bar.update(1)
        elapsed = time.perf_counter() - start
        last = step == cfg.max_steps or elapsed >= cfg.max_time
        if step % cfg.eval_every == 0 or last:
            flow.eval()
            with _averaged(params, ema):  # validate (and keep) the averaged weights
                v, kl = _validate(flow, val)
                if v < best:
                    best, best_step, best_kl = v, step, kl
                    best_state = copy.deepcopy(flow.state_dict())
            if cfg.lr_schedule == "plateau" and step > cfg.warmup_steps:
                sched.step(v)
            flow.train()
            rows.append(
                {
                    "step": step,
                    "train_loss": float(np.mean(running)),
                    "val_nll": v,
                    "best_val_nll": best,
                    "val_kl": kl,
                    "lr": float(opt.param_groups[0]["lr"]),
                    "seconds": elapsed,
                }
            )
            running = []
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.4f}", val=f"{v:.4f}", best=f"{best:.4f}")
            if step - best_step >= cfg.patience:
                stop_reason = "patience"
                break
            if not last and elapsed < cfg.max_time:
                try:
                    yield step, best
                except GeneratorExit:  # a discarded pilot of `whiten: auto`
                    bar.close()
                    raise
        if elapsed >= cfg.max_time:
            stop_reason = "max_time"
            break
    bar.close()
    if not math.isfinite(best):
        raise TrainingDivergedError(
            f"flow settings: lr: the validation NLL was never finite in {step} steps "
            f"(lr {cfg.lr:g}); lower the learning rate or check the chain"
        )
    flow.load_state_dict(best_state)
    flow.eval()
    metrics = {
        "steps": int(step),
        "best_step": int(best_step),
        "best_val_nll": float(best),
        "val_kl": float(best_kl),
        "final_train_loss": rows[-1]["train_loss"] if rows else math.nan,
        "stop_reason": stop_reason,
        "train_seconds": float(time.perf_counter() - start),
    }
    return pd.DataFrame(rows), metrics
