"""Priors with the pocoMC protocol: ``dim``, ``bounds``, ``logpdf(x)``, ``rvs(size)``, plus
the nested samplers' ``prior_transform(u)`` (unit cube -> parameters).

:class:`FlowPrior` wraps a trained bounded flow; :class:`BoxPrior` is the uniform prior on the
same box (stage-1 and joint runs). Both take and return float64 numpy arrays, accept a single
point ``(D,)`` as well as batches ``(N, D)`` (including ``N = 0``), return ``-inf`` outside the
box, and draw samples strictly inside it. Either object is passed as-is as ``prior=`` to
``pocomc.Sampler``; :meth:`log_prob_fn` gives emcee a vectorisable log-prior.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .fastflow import FastFlow
from .flows import BoundedFlow
from .params import ParameterSpace

__all__ = ["BoxPrior", "FlowPrior"]

log = logging.getLogger(__name__)

#: Rows per torch call in :meth:`FlowPrior.logpdf` / :meth:`FlowPrior.rvs` (bounds memory).
CHUNK = 65536


def _as_unit(u: Any, dim: int) -> tuple[np.ndarray, bool]:
    """``(N, D)`` float64 points of the closed unit cube (faces moved just inside)."""
    arr, single = _as_points(u, dim)
    if arr.size and not (np.all(arr >= 0.0) and np.all(arr <= 1.0)):  # NaN fails too
        raise ValueError("prior_transform: points must lie in the unit cube [0, 1]^D")
    return np.clip(arr, np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0)), single


def _as_points(x: Any, dim: int) -> tuple[np.ndarray, bool]:
    """``(N, D)`` float64 view of ``x`` and whether a single point ``(D,)`` was given."""
    arr = np.asarray(x, dtype=np.float64)
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"expected points of shape (N, {dim}) or ({dim},), got {np.shape(x)}")
    return arr, single


class _BasePrior:
    """Shared interface of the priors (pocoMC's protocol plus names and labels)."""

    params: ParameterSpace

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return self.params.dim

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in column order."""
        return self.params.names

    @property
    def labels(self) -> tuple[str, ...]:
        """LaTeX labels, in column order."""
        return self.params.labels

    @property
    def bounds(self) -> np.ndarray:
        """``(D, 2)`` float64 array of the original prior box."""
        return self.params.bounds

    def logpdf(self, x: Any) -> np.ndarray | float:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob_fn(self) -> Callable[[np.ndarray], np.ndarray | float]:
        """A log-prior function for emcee (vectorised: ``(N, D) -> (N,)``; ``(D,) -> float``)."""
        return self.logpdf

    def __call__(self, x: Any) -> np.ndarray | float:
        return self.logpdf(x)


class BoxPrior(_BasePrior):
    """Uniform prior on the box, normalised by its volume.

    Parameters
    ----------
    params : ParameterSpace
    seed : int, optional
        Seeds the stream used by :meth:`rvs` when it is called without ``seed``.
    """

    def __init__(self, params: ParameterSpace, *, seed: int | None = None) -> None:
        self.params = params
        self._rng = np.random.default_rng(seed)

    def logpdf(self, x: Any) -> np.ndarray | float:
        """``-log(volume)`` inside the closed box, ``-inf`` outside."""
        arr, single = _as_points(x, self.dim)
        out = np.where(self.params.contains(arr), -self.params.log_volume, -np.inf)
        return float(out[0]) if single else out

    def rvs(self, size: int = 1, *, seed: int | None = None) -> np.ndarray:
        """``(size, D)`` uniform draws strictly inside the box."""
        rng = self._rng if seed is None else np.random.default_rng(seed)
        lo, hi = self.params.lower, self.params.upper
        u = rng.random((int(size), self.dim))
        x = lo + u * (hi - lo)
        return np.clip(x, np.nextafter(lo, hi), np.nextafter(hi, lo))

    def prior_transform(self, u: Any) -> np.ndarray:
        """The affine map of the unit cube onto the box (nested samplers' prior transform).

        Parameters
        ----------
        u : array_like (N, D) or (D,), in [0, 1]

        Returns
        -------
        ndarray, same shape, float64, strictly inside the box.
        """
        arr, single = _as_unit(u, self.dim)
        lo, hi = self.params.lower, self.params.upper
        x = np.clip(lo + arr * (hi - lo), np.nextafter(lo, hi), np.nextafter(hi, lo))
        return x[0] if single else x


class FlowPrior(_BasePrior):
    """A trained flow as a prior: an exactly normalised density on the original prior box.

    Parameters
    ----------
    flow : BoundedFlow
    params : ParameterSpace
        The box (names, bounds, labels) the flow was trained on.
    manifest : dict, optional
        The model manifest (provenance); ``{}`` when built in memory.
    seed : int, optional
        Seeds the stream used by :meth:`rvs` when it is called without ``seed``; by default
        the training seed recorded in the manifest, so a run is reproducible end to end.
    fast : bool
        Evaluate with :class:`flowprior.fastflow.FastFlow` (numpy, built from the weights on
        first use; issue #17) instead of calling the torch module. Both give the same values
        up to the core dtype's rounding; ``False`` keeps the torch path (the reference).

    Notes
    -----
    The fast evaluator is a snapshot of the flow's weights when it is first needed; a flow
    trained further afterwards needs a new :class:`FlowPrior`.
    """

    def __init__(
        self,
        flow: BoundedFlow,
        params: ParameterSpace,
        *,
        manifest: dict[str, Any] | None = None,
        seed: int | None = None,
        fast: bool = True,
    ) -> None:
        if flow.dim != params.dim:
            raise ValueError(f"flow has {flow.dim} dimensions, parameter table {params.dim}")
        self.flow = flow.eval()
        self.params = params
        self.manifest = dict(manifest or {})
        if seed is None:
            seed = self.manifest.get("seed")
        self._rng = np.random.default_rng(seed)
        self.fast = bool(fast)
        self._fast: FastFlow | None = None
        self._fast_built = False

    @classmethod
    def load(cls, path: str | Path, *, seed: int | None = None, fast: bool = True) -> FlowPrior:
        """Load a model written by :meth:`flowprior.train.TrainResult.save` (verified, no pickle)."""
        from .io import load_flow

        flow, params, manifest = load_flow(path)
        return cls(flow, params, manifest=manifest, seed=seed, fast=fast)

    @classmethod
    def from_result(cls, result, *, seed: int | None = None, fast: bool = True) -> FlowPrior:
        """Wrap a :class:`flowprior.train.TrainResult` without writing it to disk."""
        return cls(result.flow, result.chain.params, seed=seed, fast=fast)

    def _fastflow(self) -> FastFlow | None:
        """The numpy evaluator, built once on first use (``None``: torch path)."""
        if self.fast and not self._fast_built:
            self._fast = FastFlow.build(self.flow)
            self._fast_built = True
        return self._fast if self.fast else None

    def logpdf(self, x: Any) -> np.ndarray | float:
        """Normalised log-density.

        Parameters
        ----------
        x : array_like (N, D) or (D,)

        Returns
        -------
        ndarray (N,) float64, or float for a single point; ``-inf`` outside the box.
        """
        arr, single = _as_points(x, self.dim)
        out = np.empty(arr.shape[0], dtype=np.float64)
        fast = self._fastflow()
        if fast is not None:
            for i in range(0, arr.shape[0], CHUNK):
                out[i : i + CHUNK] = fast.log_prob(arr[i : i + CHUNK])
        elif arr.shape[0]:  # zuko fails on empty batches; pocoMC sends them
            with torch.inference_mode():
                for i in range(0, arr.shape[0], CHUNK):
                    out[i : i + CHUNK] = self.flow.log_prob(torch.from_numpy(arr[i : i + CHUNK]))
        return float(out[0]) if single else out

    def rvs(self, size: int = 1, *, seed: int | None = None) -> np.ndarray:
        """``(size, D)`` float64 samples strictly inside the box.

        With ``seed`` the draw is reproducible on its own; without, it continues the prior's
        own stream (seeded at construction).
        """
        rng = self._rng if seed is None else np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        size = int(size)
        out = np.empty((size, self.dim), dtype=np.float64)
        fast = self._fastflow()
        with torch.inference_mode():
            for i in range(0, size, CHUNK):
                m = min(CHUNK, size - i)
                if fast is None:
                    out[i : i + m] = self.flow.sample(m, generator=gen).numpy()
                else:  # the same base draws as BoundedFlow.sample
                    eps = torch.randn((m, self.dim), generator=gen, dtype=torch.float64)
                    out[i : i + m] = fast.latent_to_box(eps.numpy())
        return out

    def prior_transform(self, u: Any) -> np.ndarray:
        """Unit cube -> parameters: the exact push-forward of the uniform distribution is the flow.

        ``u -> z = Phi^-1(u)`` (standard normal, float64, finite up to the cube's faces) ``->``
        the flow's inverse ``->`` the fixed maps back to the box. Uniform ``u`` gives draws
        distributed as :meth:`logpdf` says; nested samplers (dynesty, nautilus, UltraNest) take
        it as their prior.

        Parameters
        ----------
        u : array_like (N, D) or (D,), in [0, 1]
            Points on the faces are moved just inside (``Phi^-1`` stays finite: about 8.3).

        Returns
        -------
        ndarray, same shape, float64, strictly inside the box.
        """
        from scipy.special import ndtri

        arr, single = _as_unit(u, self.dim)
        out = np.empty_like(arr)
        fast = self._fastflow()
        if fast is not None:
            for i in range(0, arr.shape[0], CHUNK):
                out[i : i + CHUNK] = fast.latent_to_box(ndtri(arr[i : i + CHUNK]))
        elif arr.shape[0]:
            with torch.inference_mode():
                for i in range(0, arr.shape[0], CHUNK):
                    z = torch.from_numpy(ndtri(arr[i : i + CHUNK]))
                    out[i : i + CHUNK] = self.flow.sample_latent_to_box(z).numpy()
        return out[0] if single else out

    def __repr__(self) -> str:
        kind = self.manifest.get("flow", {}).get("kind", "?")
        return f"FlowPrior(dim={self.dim}, names={list(self.names)}, kind={kind!r})"
