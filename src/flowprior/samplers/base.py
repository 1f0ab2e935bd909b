"""What every sampler shares: the settings base class, the run record and the run helpers.

A sampler plug-in (see :mod:`flowprior.samplers` and ``docs/extending.md``) is a settings
dataclass derived from :class:`SamplerSettings` and a run function

    ``run(*, prior, loglike, settings, seed, threads=1, progress=False) -> SamplerRun``

that samples ``loglike x prior``. The prior has pocoMC's protocol (``dim``, ``bounds``,
``logpdf``, ``rvs(size, *, seed)``; :class:`flowprior.priors.BoxPrior`,
:class:`flowprior.priors.FlowPrior`), the log-likelihood is vectorised ``(n, d) -> (n,)``.
The helpers here make a run behave like the built-in ones:

- :func:`check_seed` and :func:`check_threads` validate the run arguments;
- :class:`CountingLikelihood` counts likelihood points and stops on a wrong shape, NaN or +inf
  (:class:`SamplerError`);
- :func:`draw_prior` draws from the prior with an explicit seed taken from the run's own
  generator, so a run is a deterministic function of ``seed`` (never of the prior's stream);
- :func:`chain_params` names the chain columns; :func:`package_versions` records versions.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_write_text, plain_json
from ..chains import Chain, read_chain, write_chain
from ..errors import FlowpriorError, _input_error
from ..params import ParameterSpace

__all__ = [
    "MAX_SEED",
    "CountingLikelihood",
    "SamplerError",
    "SamplerRun",
    "SamplerSettings",
    "chain_params",
    "check_bool",
    "check_int",
    "check_seed",
    "check_setting",
    "check_threads",
    "draw_prior",
    "is_int",
    "is_number",
    "package_versions",
    "read_run_info",
    "rvs_takes_seed",
]

log = logging.getLogger(__name__)

#: Largest seed: ``np.random.seed`` (inside pocoMC) rejects larger ones.
MAX_SEED = 2**32 - 1


class SamplerError(FlowpriorError):
    """A sampler run failed (e.g. the likelihood returned a wrong shape, NaN or +inf)."""


# --------------------------------------------------------------------------- settings


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(value)


class SamplerSettings:
    """Base of the settings dataclasses: ``from_dict`` / ``to_dict`` and validation.

    A subclass is a ``@dataclass`` whose fields carry the sampler's defaults; it sets
    ``_SOURCE`` (named in errors of direct construction) and implements :meth:`validate`,
    which checks (and may normalise) the fields, raising
    :class:`~flowprior.errors.InputError` through :func:`check_setting`, :func:`check_int`
    or :func:`check_bool`.
    """

    _SOURCE = "<settings>"

    def __post_init__(self) -> None:
        self.validate(source=self._SOURCE)

    def validate(self, *, source: str) -> None:
        """Check the fields; ``source`` prefixes every error message.

        Raises
        ------
        InputError
            ``"<source>: <key>: <problem>"`` for an invalid value.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement validate()")

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
        obj.validate(source=source)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe ``{field: value}`` (``from_dict(to_dict())`` gives an equal object)."""
        return {f.name: plain_json(getattr(self, f.name)) for f in dataclasses.fields(self)}


def check_setting(source: str, key: str, ok: bool, problem: str, value: Any) -> None:
    """Raise ``InputError("<source>: <key>: <problem>, got <value>")`` unless ``ok``."""
    if not ok:
        raise _input_error(source, key, f"{problem}, got {value!r}")


def check_int(source: str, obj: Any, key: str, *, minimum: int, optional: bool = False) -> None:
    """Check that ``obj.<key>`` is an integer >= ``minimum`` (or None if ``optional``)."""
    value = getattr(obj, key)
    if optional and value is None:
        return
    check_setting(
        source,
        key,
        is_int(value) and value >= minimum,
        f"must be an integer >= {minimum}" + (" or null" if optional else ""),
        value,
    )
    setattr(obj, key, int(value))


def check_bool(source: str, obj: Any, key: str) -> None:
    """Check that ``obj.<key>`` is a boolean."""
    value = getattr(obj, key)
    check_setting(source, key, isinstance(value, (bool, np.bool_)), "must be true or false", value)
    setattr(obj, key, bool(value))


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
        JSON-safe record with the keys ``sampler`` (its registry name, e.g. "pocomc"),
        ``settings``, ``seed``, ``log_evidence`` (None for a sampler without an evidence, such
        as emcee), ``log_evidence_err`` (None when unknown), ``n_likelihood_calls`` (points at
        which the likelihood was evaluated), ``wall_seconds``, ``diagnostics`` (sampler
        specific, see :func:`flowprior.samplers.run_pocomc` and
        :func:`flowprior.samplers.run_emcee`) and ``versions`` (the sampler's package,
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
        info = read_run_info(run_json)
        return cls(chain=chain, info=info)


# --------------------------------------------------------------------------- helpers


def read_run_info(path: str | os.PathLike) -> dict[str, Any]:
    """The run record ``run.json`` written by :meth:`SamplerRun.write`, as a dict.

    Raises
    ------
    InputError
        A missing or unreadable file, invalid JSON, or a document that is not an object.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError:
        raise _input_error(path, None, "file not found") from None
    except json.JSONDecodeError as exc:
        raise _input_error(path, f"line {exc.lineno}", f"invalid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _input_error(path, None, f"cannot read file ({reason})") from exc
    if not isinstance(info, dict):
        raise _input_error(path, None, f"expected a JSON object, got {type(info).__name__}")
    return info


def check_seed(seed: Any) -> int:
    """``seed`` as an int in [0, 2**32 - 1]; InputError (key ``seed``) otherwise."""
    if not (is_int(seed) and 0 <= seed <= MAX_SEED):
        raise _input_error("sampler", "seed", f"must be an integer in [0, 2**32 - 1], got {seed!r}")
    return int(seed)


def check_threads(threads: Any, *, source: str) -> int:
    """``threads`` as an int >= 1; InputError (``"<source>: threads: ..."``) otherwise."""
    if not (is_int(threads) and threads >= 1):
        raise _input_error(source, "threads", f"must be an integer >= 1, got {threads!r}")
    return int(threads)


def chain_params(prior: Any) -> ParameterSpace:
    """The prior's parameter space, or ``theta1..thetaD`` on its ``bounds``."""
    params = getattr(prior, "params", None)
    if isinstance(params, ParameterSpace):
        return params
    bounds = np.asarray(prior.bounds, dtype=np.float64)
    names = tuple(f"theta{i + 1}" for i in range(int(prior.dim)))
    return ParameterSpace(names, bounds[:, 0], bounds[:, 1])


def package_versions(package: str) -> dict[str, str]:
    """``{package: version, "numpy": ..., "torch": ...}`` for a run record."""
    module = importlib.import_module(package)
    return {package: str(module.__version__), "numpy": np.__version__, "torch": torch.__version__}


class CountingLikelihood:
    """Wrap a vectorised log-likelihood: count points, check the output, never see n == 0.

    Parameters
    ----------
    fn : callable
        ``(n, dim) float64 -> (n,)``.
    dim : int

    Attributes
    ----------
    n_calls : int
        Points evaluated so far.
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], dim: int) -> None:
        self.fn = fn
        self.dim = dim
        self.n_calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Log-likelihood ``(n,)`` at ``x`` ``(n, dim)``; SamplerError on a bad result."""
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


def rvs_takes_seed(prior: Any) -> bool:
    """Whether ``prior.rvs`` accepts a ``seed`` keyword."""
    try:
        return "seed" in inspect.signature(prior.rvs).parameters
    except (TypeError, ValueError):
        return False


def draw_prior(
    prior: Any, size: int, rng: np.random.Generator, *, takes_seed: bool | None = None
) -> np.ndarray:
    """``size`` prior draws ``(size, d)`` float64, seeded from ``rng``.

    ``prior.rvs(size, seed=s)`` with ``s`` the next integer of ``rng``, so the draws depend on
    the run's seed only; a prior whose ``rvs`` takes no seed is called without one (logged
    warning: the run is then only as reproducible as the prior's stream).

    Parameters
    ----------
    prior : object
        With ``dim`` and ``rvs``.
    size : int
    rng : numpy.random.Generator
        The run's generator (e.g. ``default_rng(SeedSequence(seed).spawn(1)[0])``).
    takes_seed : bool, optional
        :func:`rvs_takes_seed` of the prior, if already known.
    """
    if takes_seed is None:
        takes_seed = rvs_takes_seed(prior)
    if takes_seed:
        x = prior.rvs(size, seed=int(rng.integers(0, 2**63 - 1)))
    else:
        log.warning(
            "prior.rvs takes no seed: the run is only as reproducible as the prior's stream"
        )
        x = prior.rvs(size)
    return np.asarray(x, dtype=np.float64).reshape(size, int(prior.dim))
