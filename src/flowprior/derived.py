"""Derived quantities of an analysis: a plug-in ``theta -> {name: values}`` on every sample.

An analysis may declare ``derived: "package.module:function"`` (or ``"path/to/file.py:function"``,
or ``{function: ..., kwargs: {...}}``). The function takes an ``(n, d)`` float64 array of
parameters in parameter-table order and returns a mapping (a dict or a pandas DataFrame) from
names to ``(n,)`` arrays, e.g. ``S8 = sigma8 * sqrt(omegam / 0.3)``. The workflow evaluates it on
every stage-1, sequential, joint and reference sample; the values travel as derived columns of
the samples (never modelled by a flow) into the agreement tables and the corner figures.

Every call is checked: a mapping of at least one name, each name new (not a parameter, not
``weight`` or a log column), each value ``n`` finite numbers. A violation is a one-line
:class:`~flowprior.errors.InputError` naming the analysis' ``derived`` key, the quantity and, for
a non-finite value, the first bad sample.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["DerivedQuantities", "derived_spec", "with_derived_columns"]

log = logging.getLogger(__name__)

#: Column names a derived quantity may not take (the columns of every chain file).
_RESERVED = ("weight", "log_likelihood", "log_prior", "log_posterior")


def derived_spec(entry: Any) -> tuple[str, dict[str, Any]] | None:
    """``(function spec, kwargs)`` of an analysis' ``derived`` setting (None when unset)."""
    if entry is None:
        return None
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, Mapping) and isinstance(entry.get("function"), str):
        return entry["function"], dict(entry.get("kwargs") or {})
    raise InputError(
        f"derived: expected 'module:function' or {{function, kwargs}}, got {entry!r}"
    )


class DerivedQuantities:
    """A checked derived-quantity plug-in.

    Parameters
    ----------
    fn : callable
        ``fn(theta, **kwargs) -> {name: (n,) values}``.
    names : sequence of str
        The analysis' parameter names (a derived quantity may not reuse one).
    spec : str
        Where the function came from (named in errors).
    kwargs : mapping, optional
        Keyword arguments of every call.
    source : str
        The config key, for errors (e.g. ``"config: analyses: cosmo: derived"``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        names: tuple[str, ...] | list[str],
        spec: str,
        kwargs: Mapping[str, Any] | None = None,
        source: str = "derived",
    ) -> None:
        self.fn = fn
        self.names = tuple(names)
        self.spec = spec
        self.kwargs = copy.deepcopy(dict(kwargs or {}))
        self.source = source

    @classmethod
    def from_config(
        cls,
        entry: Any,
        *,
        names: tuple[str, ...] | list[str],
        source: str,
        base_dir: str | os.PathLike | None = None,
    ) -> DerivedQuantities | None:
        """The plug-in of a ``derived`` setting (None when it is unset).

        Raises
        ------
        InputError
            A malformed setting, or a spec that does not load (see
            :func:`flowprior.likelihoods.load_likelihood`).
        """
        parsed = derived_spec(entry)
        if parsed is None:
            return None
        spec, kwargs = parsed
        from .likelihoods import load_likelihood

        try:
            fn = load_likelihood(spec, base_dir=base_dir)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from exc
        return cls(fn, names=names, spec=spec, kwargs=kwargs, source=source)

    def _fail(self, key: str | None, what: str) -> InputError:
        where = f"{self.source} ({self.spec})" + (f": {key}" if key else "")
        return InputError(f"{where}: {what}")

    def __call__(self, theta: np.ndarray, *, finite: bool = True) -> dict[str, np.ndarray]:
        """The derived quantities at ``theta`` ``(n, d)``, checked, as float64 ``(n,)`` arrays
        (``finite=False``: NaN/inf allowed, for :meth:`probe`)."""
        x = np.ascontiguousarray(theta, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise self._fail(None, f"expected (n, {len(self.names)}) parameters, got {x.shape}")
        n = x.shape[0]
        try:
            raw = self.fn(x.copy(), **self.kwargs)
        except InputError:
            raise
        except Exception as exc:  # the plug-in's own failure, named
            msg = str(exc).splitlines()[0] if str(exc) else ""
            raise self._fail(None, f"raised {type(exc).__name__}: {msg}") from exc
        if hasattr(raw, "to_dict") and hasattr(raw, "columns"):  # a pandas DataFrame
            raw = {str(c): raw[c].to_numpy() for c in raw.columns}
        if not isinstance(raw, Mapping) or not raw:
            raise self._fail(
                None,
                f"must return a non-empty mapping name -> (n,) values, got {type(raw).__name__}",
            )
        out: dict[str, np.ndarray] = {}
        for name, values in raw.items():
            key = f"{name!r}"
            if not isinstance(name, str) or not name.isidentifier():
                raise self._fail(key, "a derived quantity's name must be a Python identifier")
            if name in self.names:
                raise self._fail(key, "is a parameter of the analysis; derived names must be new")
            if name in _RESERVED:
                raise self._fail(key, f"is reserved ({', '.join(_RESERVED)})")
            try:
                v = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                raise self._fail(key, "values are not numbers") from None
            if v.shape != (n,):
                raise self._fail(key, f"returned shape {v.shape} for {n} samples; expected ({n},)")
            bad = np.flatnonzero(~np.isfinite(v)) if finite else np.empty(0, dtype=int)
            if bad.size:
                i = int(bad[0])
                point = ", ".join(f"{p}={t:.6g}" for p, t in zip(self.names, x[i]))
                raise self._fail(
                    key, f"{v[i]} at sample {i} ({point}); {bad.size} non-finite value(s) of {n}"
                )
            out[name] = v
        return out

    def probe(self, lower: np.ndarray, upper: np.ndarray) -> list[str]:
        """Evaluate at three points of the prior box (before any expensive work) and return
        the quantities' names: the checks of a full call but the finiteness one (a derived
        quantity may be undefined where the posterior never goes; on the samples it is
        checked)."""
        lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        frac = np.array([[0.5], [0.25], [0.75]])
        return list(self(lo + frac * (hi - lo), finite=False))

    def apply(self, chain: Any, *, values: Mapping[str, np.ndarray] | None = None) -> Any:
        """``chain`` with the derived quantities of its samples among its ``derived`` columns
        (a quantity of the chain's own of the same name is replaced, with a log line);
        ``values``: this function's result on ``chain.samples``, when already computed."""
        from .chains import Chain

        values = self(chain.samples) if values is None else values
        replaced = sorted(set(values) & set(chain.derived))
        if replaced:
            log.info(
                "%s: derived %s recomputed by %s", chain.source, ", ".join(replaced), self.spec
            )
        return Chain(
            chain.params,
            chain.samples,
            chain.weights,
            source=chain.source,
            derived={**chain.derived, **values},
            **chain.logs(),
        )


def with_derived_columns(chains: list[Any], *, margin: float = 0.05) -> list[Any]:
    """The chains with the derived quantities they all carry appended as parameters (for
    corner figures and tables: a derived quantity is a column like any other there).

    The derived columns' box is the samples' joint extent widened by ``margin`` of its width
    (a derived quantity has no prior box of its own). Chains without a common derived
    quantity are returned unchanged.
    """
    from .chains import Chain
    from .params import ParameterSpace

    if not chains:
        return []
    common = [n for n in chains[0].derived if all(n in c.derived for c in chains[1:])]
    common = [n for n in common if n.isidentifier() and n not in chains[0].params.names]
    if not common:
        return list(chains)
    lo = np.array([min(float(c.derived[n].min()) for c in chains) for n in common])
    hi = np.array([max(float(c.derived[n].max()) for c in chains) for n in common])
    pad = margin * np.where(hi > lo, hi - lo, np.maximum(np.abs(lo), 1.0))
    base = chains[0].params
    space = ParameterSpace(
        (*base.names, *common),
        np.concatenate([base.lower, lo - pad]),
        np.concatenate([base.upper, hi + pad]),
        (*base.labels, *common),
    )
    out = []
    for c in chains:
        x = np.column_stack([c.samples, *[c.derived[n] for n in common]])
        rest = {k: v for k, v in c.derived.items() if k not in common}
        out.append(Chain(space, x, c.weights, source=c.source, derived=rest, **c.logs()))
    return out
