"""Likelihood plug-ins: loading user functions and calling them safely.

A likelihood plug-in is a function ``f(theta, **kwargs)`` that takes an ``(n, d)`` float64
array of parameters (columns in parameter-table order) and returns the ``(n,)`` natural-log
likelihoods. It is named in a config by a spec string:

``"package.module:function"``
    imported with :func:`importlib.import_module` (the module must be importable, e.g.
    ``"flowprior.problems.analytic:gaussian_linear"``);
``"path/to/file.py:function"``
    loaded from the file (any location; a relative path is resolved against ``base_dir``,
    by default the current directory). A spec whose module part ends in ``.py`` or contains
    a path separator is a file path.

:class:`Likelihood` wraps one plug-in for one dataset and checks every result: a plug-in that
raises, returns the wrong shape, NaN or ``+inf`` stops with a :class:`LikelihoodError` that
names the dataset and the offending point. ``-inf`` (zero likelihood) is allowed. A plug-in
that calls ``sys.exit`` (or raises any other ``BaseException`` but ``KeyboardInterrupt``) gives
the same error instead of ending the process.

Timeouts
--------
``Likelihood(..., timeout=seconds)`` (config key ``timeout`` of a likelihood dataset) stops a
call that runs longer and raises :class:`LikelihoodError` naming the dataset. In the main
thread of a POSIX process the call is interrupted with ``SIGALRM`` (``signal.setitimer``; any
timer and handler the caller had set are restored afterwards): the plug-in stops at the next
Python bytecode, so a single long-running C call (one huge numpy operation, a blocking
extension) is stopped only when it returns to Python. Elsewhere (another thread, or a platform
without ``setitimer``) the call runs in a daemon helper thread and the caller stops waiting
after ``timeout`` seconds; Python cannot kill that thread, so the abandoned call runs on in the
background until it returns, and its result is discarded.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import check_config_size
from .errors import FlowpriorError, InputError, _input_error

__all__ = ["Likelihood", "LikelihoodError", "load_likelihood"]

logger = logging.getLogger(__name__)

_ENTRY_KEYS = ("likelihood", "kwargs", "inputs", "timeout")  # inputs: workflow files only


class LikelihoodError(FlowpriorError):
    """A likelihood plug-in failed or returned an invalid value (names dataset and point)."""


class _CallTimeout(BaseException):
    """Raised inside a plug-in by the SIGALRM handler (not an Exception: plug-ins' ``except
    Exception`` blocks do not swallow it)."""


def _check_timeout(timeout: Any, *, dataset: str) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise _input_error(
            f"dataset {dataset}",
            "timeout",
            f"expected a finite number of seconds > 0 (or null), got {timeout!r}",
        )
    return float(timeout)


# ----------------------------------------------------------------------------- loading
def _is_file_spec(module: str) -> bool:
    return (
        module.endswith(".py")
        or "/" in module
        or os.sep in module
        or (os.altsep is not None and os.altsep in module)
    )


def _split_spec(spec: Any) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise _input_error("likelihood", None, f"expected a string 'module:function', got {spec!r}")
    module, sep, attr = spec.rpartition(":")
    if not sep or not module.strip() or not attr.strip():
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            "expected 'package.module:function' or 'path/to/file.py:function'",
        )
    return module.strip(), attr.strip()


def _module_name_for(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"_flowprior_plugin_{stem}_{digest}"


def _load_file_module(module: str, *, spec: str, base_dir: str | os.PathLike | None):
    path = Path(module).expanduser()
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else os.getcwd()) / path
    path = path.resolve()
    if not path.is_file():
        raise _input_error(f"likelihood {spec!r}", None, f"file not found: {path}")
    name = _module_name_for(path)
    mod_spec = importlib.util.spec_from_file_location(name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise _input_error(f"likelihood {spec!r}", None, f"cannot load {path} as a Python module")
    mod = importlib.util.module_from_spec(mod_spec)
    # registered so that pickling, dataclasses and typing inside the plug-in work
    sys.modules[name] = mod
    try:
        mod_spec.loader.exec_module(mod)
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as exc:  # SystemExit too: a plug-in must not end the process
        sys.modules.pop(name, None)
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            f"executing {path} failed: {type(exc).__name__}: {exc}",
        ) from exc
    return mod, str(path)


def _import_module(module: str, *, spec: str):
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            f"{module!r} is neither a dotted module name nor a path to a .py file",
        )
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module == missing or module.startswith(missing + "."):
            raise _input_error(
                f"likelihood {spec!r}",
                None,
                f"module {module!r} not found (is it installed or on PYTHONPATH? "
                "for a file, write path/to/file.py:function)",
            ) from exc
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            f"importing module {module!r} failed: {type(exc).__name__}: {exc}",
        ) from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a plug-in must not end the process
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            f"importing module {module!r} failed: {type(exc).__name__}: {exc}",
        ) from exc


def _resolve(spec: str, *, base_dir: str | os.PathLike | None) -> tuple[Callable, str]:
    """The plug-in and a base-independent spec (absolute path for files)."""
    module, attr = _split_spec(spec)
    if _is_file_spec(module):
        mod, where = _load_file_module(module, spec=spec, base_dir=base_dir)
        canonical = f"{where}:{attr}"
    else:
        mod, where = _import_module(module, spec=spec), module
        canonical = f"{module}:{attr}"
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise _input_error(f"likelihood {spec!r}", None, f"{where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise _input_error(
            f"likelihood {spec!r}",
            None,
            f"{where}:{attr} is not callable (it is a {type(obj).__name__})",
        )
    logger.debug("loaded likelihood %s from %s", attr, where)
    return obj, canonical


def load_likelihood(spec: str, *, base_dir: str | os.PathLike | None = None) -> Callable:
    """Load a likelihood plug-in function from its spec.

    Parameters
    ----------
    spec : str
        ``"package.module:function"`` (imported) or ``"path/to/file.py:function"`` (loaded
        from the file under a module name unique to its absolute path, registered in
        ``sys.modules``; loading it again re-executes the file).
    base_dir : str or path-like, optional
        Directory that a relative file path is resolved against; default: the current
        directory.

    Returns
    -------
    callable
        The function (not called; its signature is not checked here).

    Raises
    ------
    InputError
        No ``:``; module or file not found; the file or module fails to import; the attribute
        is missing; the attribute is not callable. One line, naming the spec.
    """
    return _resolve(spec, base_dir=base_dir)[0]


# ----------------------------------------------------------------------------- the wrapper
def _fmt_point(row: np.ndarray) -> str:
    return "[" + ", ".join(repr(float(v)) for v in row) + "]"


def _spec_of(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}:{name}"


class Likelihood:
    """One dataset's likelihood plug-in, with checked, counted, vectorised calls.

    Parameters
    ----------
    fn : callable
        ``fn(theta, **kwargs)``: ``(n, dim)`` float64 -> ``(n,)`` log-likelihoods.
    dataset : str
        Name of the dataset (appears in every error message).
    kwargs : dict, optional
        Keyword arguments passed to ``fn`` at every call (deep-copied). Checked against the
        signature of ``fn`` when it has one without ``**kwargs``.
    dim : int
        Number of parameters d.
    spec : str, optional
        Provenance string stored as :attr:`spec`; default ``"<fn.__module__>:<fn.__qualname__>"``
        (:meth:`from_config` passes the config's spec).
    timeout : float, optional
        Seconds one call of ``fn`` may take; a longer call is stopped with a
        :class:`LikelihoodError` (see "Timeouts" in the module docstring for how, and for the
        limits of stopping C code). Default: no limit.

    Attributes
    ----------
    dataset : str
    kwargs : dict
    dim : int
    spec : str
        Where the plug-in came from (the config spec, or ``module:qualname``), for provenance.
    timeout : float or None
    n_calls : int
        Number of points evaluated by ``fn`` so far (rows of all batches passed to it).

    Notes
    -----
    Picklable (e.g. for process pools) when built by :func:`load_likelihood` /
    :meth:`from_config`: the plug-in is reloaded from its spec on unpickling.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        dataset: str,
        kwargs: Mapping[str, Any] | None = None,
        dim: int,
        spec: str | None = None,
        timeout: float | None = None,
        _canonical: str | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"dataset {dataset}: likelihood {fn!r} is not callable")
        if isinstance(dim, bool) or int(dim) != dim or int(dim) < 1:
            raise ValueError(f"dataset {dataset}: dim must be a positive integer, got {dim!r}")
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise _input_error(
                f"dataset {dataset}", "kwargs", f"expected a mapping name -> value, got {kwargs!r}"
            )
        self.fn = fn
        self.dataset = str(dataset)
        check_config_size(kwargs, source=f"dataset {dataset}: kwargs")
        self.timeout = _check_timeout(timeout, dataset=str(dataset))
        self.kwargs = copy.deepcopy(dict(kwargs))
        self.dim = int(dim)
        self.spec = spec if spec is not None else _spec_of(fn)
        self._canonical = _canonical
        self.n_calls = 0
        self._check_signature()

    def _check_signature(self) -> None:
        try:
            sig = inspect.signature(self.fn)
        except (TypeError, ValueError):  # builtins, some C callables
            return
        try:
            sig.bind(np.empty((0, self.dim)), **self.kwargs)
        except TypeError as exc:
            params = list(sig.parameters.values())
            names = [p.name for p in params]
            problems = []
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                unknown = [k for k in self.kwargs if k not in names[1:]]
                if unknown:
                    problems.append(f"unknown keyword(s) {', '.join(unknown)}")
            missing = [
                p.name
                for p in params[1:]
                if p.default is p.empty
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.name not in self.kwargs
            ]
            if missing:
                problems.append(f"missing required keyword(s) {', '.join(missing)}")
            accepted = sig.replace(
                parameters=[p.replace(annotation=p.empty) for p in params],
                return_annotation=sig.empty,
            )
            raise _input_error(
                f"dataset {self.dataset}",
                "kwargs",
                f"{'; '.join(problems) or exc} for the likelihood {self.spec}{accepted}",
            ) from None

    @classmethod
    def from_config(
        cls,
        entry: Mapping[str, Any],
        *,
        dataset: str,
        dim: int,
        base_dir: str | os.PathLike | None = None,
    ) -> Likelihood:
        """Build from a config entry ``{"likelihood": spec, "kwargs": {...}}``.

        Parameters
        ----------
        entry : mapping
            ``likelihood`` (required; see :func:`load_likelihood`), ``kwargs`` and ``timeout``
            (seconds per call; optional). ``inputs`` is for the workflow; other keys are errors.
        dataset : str
        dim : int
        base_dir : str or path-like, optional
            Directory relative file paths are resolved against (default: current directory).

        Raises
        ------
        InputError
            Bad entry or spec; the message starts with ``dataset <name>:``.
        """
        src = f"dataset {dataset}"
        if not isinstance(entry, Mapping):
            raise _input_error(
                src, None, f"expected a mapping with keys likelihood[, kwargs], got {entry!r}"
            )
        unknown = [str(k) for k in entry if k not in _ENTRY_KEYS]
        if unknown:
            raise _input_error(
                src,
                ", ".join(unknown),
                "unknown key(s); expected likelihood[, kwargs, inputs, timeout]",
            )
        if "likelihood" not in entry:
            raise _input_error(src, "likelihood", "missing key")
        spec = entry["likelihood"]
        kwargs = entry.get("kwargs") or {}
        timeout = _check_timeout(entry.get("timeout"), dataset=str(dataset))
        try:
            fn, canonical = _resolve(spec, base_dir=base_dir)
        except InputError as exc:
            raise InputError(f"{src}: {exc}") from exc
        return cls(
            fn,
            dataset=dataset,
            kwargs=kwargs,
            dim=dim,
            spec=spec,
            timeout=timeout,
            _canonical=canonical,
        )

    def __repr__(self) -> str:
        return (
            f"Likelihood(dataset={self.dataset!r}, spec={self.spec!r}, dim={self.dim}, "
            f"kwargs={self.kwargs!r}, timeout={self.timeout!r})"
        )

    def __reduce__(self):
        if self._canonical is None:
            return super().__reduce__()
        return (
            _rebuild,
            (
                self._canonical,
                self.dataset,
                self.kwargs,
                self.dim,
                self.spec,
                self.n_calls,
                self.timeout,
            ),
        )

    def __call__(self, theta: Any) -> np.ndarray | float:
        """Evaluate the log-likelihood.

        Parameters
        ----------
        theta : array_like (n, d) or (d,)

        Returns
        -------
        ndarray (n,) float64, or float for a single point ``(d,)``.

        Raises
        ------
        ValueError
            ``theta`` does not have ``d`` columns.
        LikelihoodError
            The plug-in raised (any exception, ``SystemExit`` included; ``KeyboardInterrupt``
            passes through), ran longer than :attr:`timeout`, or returned a wrong shape,
            something not numeric, NaN or ``+inf``.
        """
        pts = np.asarray(theta, dtype=np.float64)  # the caller's points, for messages
        single = pts.ndim == 1
        if single:
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] != self.dim:
            raise ValueError(
                f"dataset {self.dataset}: expected theta of shape (n, {self.dim}) or "
                f"({self.dim},), got {np.shape(theta)}"
            )
        n = pts.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.float64)
        x = np.array(pts, dtype=np.float64, order="C", copy=True)  # the plug-in's own copy
        self.n_calls += n
        outcome, value = self._invoke(x)
        if outcome == "timeout":
            raise LikelihoodError(
                f"dataset {self.dataset}: likelihood call exceeded the timeout of "
                f"{self.timeout:g} s at the batch of {n} point(s) starting with "
                f"theta={_fmt_point(pts[0])}{value}"
            )
        if outcome == "raised":
            raise LikelihoodError(
                f"dataset {self.dataset}: likelihood raised {type(value).__name__}: "
                f"{' '.join(str(value).split())} "
                f"at the batch starting with theta={_fmt_point(pts[0])}"
            ) from value
        out = self._check(value, pts, n)
        return float(out[0]) if single else out

    def _invoke(self, x: np.ndarray) -> tuple[str, Any]:
        """Call the plug-in: ``("ok", result)``, ``("raised", exception)`` or
        ``("timeout", note)``. ``KeyboardInterrupt`` propagates."""
        if self.timeout is None:
            return _call(self.fn, x, self.kwargs)
        if threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        ):
            return _call_with_alarm(self.fn, x, self.kwargs, self.timeout)
        return _call_in_thread(self.fn, x, self.kwargs, self.timeout, self.dataset)

    def _check(self, raw: Any, x: np.ndarray, n: int) -> np.ndarray:
        name = self.dataset
        try:
            out = np.asarray(raw)
            if out.dtype.kind not in "iuf":
                raise TypeError(f"dtype {out.dtype}")
            out = np.array(out, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as exc:
            raise LikelihoodError(
                f"dataset {name}: likelihood returned {type(raw).__name__} that is not a real "
                f"numeric array ({exc}); expected float64 of shape ({n},)"
            ) from None
        if out.shape != (n,):
            raise LikelihoodError(
                f"dataset {name}: likelihood returned shape {out.shape}, expected ({n},) for "
                f"theta of shape {x.shape}"
            )
        bad = np.isnan(out) | (out == np.inf)
        if bad.any():
            i = int(np.argmax(bad))
            what = "NaN" if np.isnan(out[i]) else "+inf"
            raise LikelihoodError(
                f"dataset {name}: likelihood returned {what} at row {i} of the batch, "
                f"theta={_fmt_point(x[i])} ({int(bad.sum())} bad of {n}; -inf is allowed, "
                "NaN and +inf are not)"
            )
        return out


def _call(fn: Callable, x: np.ndarray, kwargs: dict) -> tuple[str, Any]:
    try:
        return "ok", fn(x, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a plug-in must not end the process
        return "raised", exc


def _call_with_alarm(fn: Callable, x: np.ndarray, kwargs: dict, timeout: float) -> tuple[str, Any]:
    """Main thread: SIGALRM interrupts the call after ``timeout`` s (repeating every ``timeout``
    s, so a plug-in that swallows one interruption meets the next); the caller's handler and
    timer are restored."""
    state = {"active": True, "fired": False}

    def on_alarm(signum: int, frame: Any) -> None:
        state["fired"] = True
        if state["active"]:
            raise _CallTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout, timeout)
    try:
        try:
            try:
                result = _call(fn, x, kwargs)
            finally:
                state["active"] = False
        except _CallTimeout:  # raised outside the plug-in's own frames, e.g. in _call
            state["fired"] = True
            result = ("timeout", "")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:
            remaining = max(old_delay - (time.monotonic() - start), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, remaining, old_interval)
    if result[0] == "raised" and isinstance(result[1], _CallTimeout):
        return "timeout", ""
    if state["fired"]:
        note = (
            " (the plug-in caught the interruption and returned late; its result is discarded)"
            if result[0] == "ok"
            else ""
        )
        return "timeout", note
    return result


def _call_in_thread(
    fn: Callable, x: np.ndarray, kwargs: dict, timeout: float, dataset: str
) -> tuple[str, Any]:
    """Off the main thread: run the call in a daemon thread and wait at most ``timeout`` s."""
    box: list[tuple[str, Any]] = []

    def run() -> None:
        try:
            box.append(_call(fn, x, kwargs))
        except BaseException as exc:  # KeyboardInterrupt cannot reach a helper thread
            box.append(("raised", exc))

    helper = threading.Thread(target=run, name=f"flowprior-likelihood-{dataset}", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive() or not box:
        return "timeout", (
            " (not in the main thread: the abandoned call runs on in a background thread "
            "until it returns)"
        )
    return box[0]


def _rebuild(
    canonical: str,
    dataset: str,
    kwargs: dict,
    dim: int,
    spec: str,
    n_calls: int,
    timeout: float | None = None,
) -> Likelihood:
    fn, canonical = _resolve(canonical, base_dir=None)
    lk = Likelihood(
        fn,
        dataset=dataset,
        kwargs=kwargs,
        dim=dim,
        spec=spec,
        timeout=timeout,
        _canonical=canonical,
    )
    lk.n_calls = n_calls
    return lk
