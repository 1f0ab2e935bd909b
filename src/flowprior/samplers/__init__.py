"""Samplers as plug-ins: one module per sampler and a registry of them.

A sampler is registered as a :class:`SamplerSpec`: its name (the key of its settings in the
config and the ``{sampler}`` of the results paths), its settings dataclass (defaults live
there), its run function and its capabilities. The pipeline
(:func:`flowprior.pipeline.run_stage1`, :func:`~flowprior.pipeline.run_sequential`,
:func:`~flowprior.pipeline.run_joint`) and the workflow look samplers up here by name; nothing
else names a sampler. Built in, in this order:

- ``pocomc`` (:mod:`flowprior.samplers.pocomc`): preconditioned SMC, gives an evidence;
- ``emcee`` (:mod:`flowprior.samplers.emcee`): affine-invariant ensemble MCMC, no evidence;
- ``nautilus`` (:mod:`flowprior.samplers.nautilus`): importance nested sampling through the
  prior's ``prior_transform`` (needs one), gives an evidence with an error.

Adding one (``docs/extending.md``, backed by ``tests/test_extending_sampler.py``)::

    register_sampler(SamplerSpec(name="mine", settings=MySettings, run=run_mine,
                                 gives_evidence=True, needs_prior_transform=False,
                                 description="...", label="Mine"))

Every run function has the signature
``run(*, prior, loglike, settings, seed, threads=1, progress=False) -> SamplerRun``; see
:mod:`flowprior.samplers.base` for the shared helpers and the run record.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError
from .base import SamplerError, SamplerRun, SamplerSettings
from .emcee import EmceeSettings, run_emcee
from .nautilus import NautilusSettings, run_nautilus
from .pocomc import POCOMC_FLOWS, PocoMCSettings, run_pocomc

__all__ = [
    "POCOMC_FLOWS",
    "EmceeSettings",
    "NautilusSettings",
    "PocoMCSettings",
    "SamplerError",
    "SamplerRun",
    "SamplerSettings",
    "SamplerSpec",
    "get_sampler",
    "register_sampler",
    "run_emcee",
    "run_nautilus",
    "run_pocomc",
    "sampler_names",
    "unregister_sampler",
]

#: A sampler name: it is a config key and a path component (``.../{stage}/{sampler}/...``).
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler.

    Attributes
    ----------
    name : str
        Registry key, config key of its settings (``pocomc: {...}``) and path component of its
        results; lower-case letters, digits and ``_``, starting with a letter.
    settings : type
        Dataclass with ``from_dict(d, *, source)`` and ``to_dict()`` whose field defaults are
        the sampler's defaults (usually a subclass of :class:`SamplerSettings`).
    run : callable
        ``run(*, prior, loglike, settings, seed, threads=1, progress=False) -> SamplerRun``,
        with ``settings`` an instance of ``settings``.
    gives_evidence : bool
        The run reports ``log_evidence`` (and, if known, ``log_evidence_err``); such runs
        enter the evidence bookkeeping of :func:`flowprior.pipeline.summarise_analysis`.
    needs_prior_transform : bool
        The sampler needs ``prior.prior_transform`` (unit cube -> parameters, as nested samplers
        do); the pipeline refuses a prior without one.
    description : str
        One line for the documentation and the schema.
    label : str
        Display name in figures and tables, e.g. ``"pocoMC"``.
    """

    name: str
    settings: type
    run: Callable
    gives_evidence: bool
    needs_prior_transform: bool
    description: str
    label: str


_REGISTRY: dict[str, SamplerSpec] = {}


def _check_spec(spec: SamplerSpec) -> None:
    if not isinstance(spec, SamplerSpec):
        raise InputError(f"register_sampler: expected a SamplerSpec, got {type(spec).__name__}")
    where = f"register_sampler: {spec.name!r}"
    if not isinstance(spec.name, str) or not _NAME.fullmatch(spec.name):
        raise InputError(
            f"{where}: name: lower-case letters, digits and '_', starting with a letter"
        )
    for attr in ("from_dict", "to_dict"):
        if not callable(getattr(spec.settings, attr, None)):
            raise InputError(f"{where}: settings: {spec.settings!r} has no {attr}()")
    if not dataclasses.is_dataclass(spec.settings):
        raise InputError(f"{where}: settings: {spec.settings!r} is not a dataclass")
    if not callable(spec.run):
        raise InputError(f"{where}: run: {spec.run!r} is not callable")
    for attr in ("gives_evidence", "needs_prior_transform"):
        if not isinstance(getattr(spec, attr), bool):
            raise InputError(f"{where}: {attr}: expected true or false")
    for attr in ("description", "label"):
        value = getattr(spec, attr)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {attr}: expected a non-empty string")


def register_sampler(spec: SamplerSpec, *, replace: bool = False) -> None:
    """Add a sampler to the registry (after the ones already there).

    Parameters
    ----------
    spec : SamplerSpec
    replace : bool
        Replace a sampler of the same name (keeping its place in :func:`sampler_names`);
        without it a second registration of a name is an error.

    Raises
    ------
    InputError
        An invalid spec, or a name already registered and ``replace`` false.
    """
    _check_spec(spec)
    if spec.name in _REGISTRY and not replace:
        raise InputError(
            f"register_sampler: {spec.name}: a sampler of this name is already registered "
            "(pass replace=True to replace it)"
        )
    _REGISTRY[spec.name] = spec


def unregister_sampler(name: str) -> SamplerSpec:
    """Remove a sampler from the registry and return its spec (InputError if unknown)."""
    spec = get_sampler(name)
    del _REGISTRY[name]
    return spec


def get_sampler(name: str) -> SamplerSpec:
    """The registered sampler ``name``.

    Raises
    ------
    InputError
        ``"samplers: <name>: unknown sampler; known: pocomc, emcee, nautilus"``.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(
            f"samplers: {name}: unknown sampler; known: {', '.join(_REGISTRY)}"
        ) from None


def sampler_names() -> tuple[str, ...]:
    """Names of the registered samplers, in registration order (built-ins first)."""
    return tuple(_REGISTRY)


register_sampler(
    SamplerSpec(
        name="pocomc",
        settings=PocoMCSettings,
        run=run_pocomc,
        gives_evidence=True,
        needs_prior_transform=False,
        description="pocoMC: preconditioned sequential Monte Carlo with an evidence estimate",
        label="pocoMC",
    )
)
register_sampler(
    SamplerSpec(
        name="emcee",
        settings=EmceeSettings,
        run=run_emcee,
        gives_evidence=False,
        needs_prior_transform=False,
        description="emcee: affine-invariant ensemble MCMC (no evidence)",
        label="emcee",
    )
)
register_sampler(
    SamplerSpec(
        name="nautilus",
        settings=NautilusSettings,
        run=run_nautilus,
        gives_evidence=True,
        needs_prior_transform=True,
        description="nautilus: importance nested sampling (prior transform) with an evidence "
        "estimate",
        label="nautilus",
    )
)
