"""Posterior chains: one in-memory form, many readers, one exact writer.

Every reader returns a :class:`Chain` whose samples are ordered like the
parameter table, in float64, with non-negative weights and natural-log
columns. Supported inputs (format from the suffix unless ``fmt`` is given):

=================  ===========  ==================================================
suffix             ``fmt``      layout
=================  ===========  ==================================================
.csv / .tsv        csv / tsv    header row; one column per parameter name, optional
                                ``weight``, ``log_likelihood``, ``log_prior``,
                                ``log_posterior``
.txt               txt          whitespace-delimited with a header row (as above)
.txt + .paramnames getdist      GetDist: ``weight, -log posterior, params...`` in
                                the order of ``root.paramnames`` (``root_N.txt``
                                chains find ``root.paramnames`` too); derived
                                (``*``) parameters go to :attr:`Chain.derived`
root (no file)     getdist      GetDist root ``root``: ``root_1.txt ... root_N.txt``
                                concatenated in chain-number order, names, labels
                                and derived flags from ``root.paramnames``, prior
                                box from ``root.ranges`` (read with ``getdist``)
.txt, ``#`` header cobaya       Cobaya: ``# weight minuslogpost <params> minuslogprior
                                ... chi2 ...``; minuslogpost -> log_posterior = -v,
                                minuslogprior -> log_prior = -v, chi2 ->
                                log_likelihood = -chi2/2
root (no file)     cobaya       Cobaya root ``root``: ``root.1.txt ...`` as above;
                                sampled/derived parameters, labels and the prior box
                                from ``root.updated.yaml`` (read with ``getdist``)
.h5 / .hdf5        emcee        emcee ``HDFBackend`` (h5py): group ``mcmc``,
                                ``chain`` (steps, walkers, d) in parameter-table
                                order, walker by walker; ``log_prob`` ->
                                log_posterior
.nc                arviz        ArviZ InferenceData (netCDF4, read with arviz_base):
                                group ``posterior``, chain by chain in draw order;
                                scalar ``a`` -> column ``a``, vector ``theta`` (k)
                                -> ``theta_0 ... theta_{k-1}`` (``theta_i_j`` for a
                                matrix); ``log_likelihood`` group summed over its
                                variables and their non-sample dimensions ->
                                log_likelihood; ``sample_stats/lp`` is not read
                                (an unconstrained-space density); equal weights
.parquet / .pq     parquet      as CSV
.npz               npz          one 1-D array per column name (no pickles inside)
.pkl / .pickle     pickle       pocoMC result dict: ``x`` or ``samples`` (n, d) in
                                parameter-table order, ``weights``, ``logl``,
                                ``logp``; only with ``allow_pickle=True``
=================  ===========  ==================================================

Row numbers in error messages are 0-based indices of the data rows (samples); for a
root they count the rows of the chain file named. ``burn_in`` and ``thin`` act per chain
file of a root, per walker of an emcee backend and per chain of an ArviZ InferenceData.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._atomic import atomic_output_path, atomic_write
from ._csv import read_csv
from .errors import InputError, _input_error
from .params import ParameterSpace
from .stats import kish_ess

__all__ = [
    "Chain", "chain_input_files", "read_chain", "write_chain", "kish_ess", "LOG_COLUMNS",
    "FORMATS",
]  # fmt: skip

logger = logging.getLogger(__name__)

#: Optional natural-log columns of a chain, in output order.
LOG_COLUMNS = ("log_likelihood", "log_prior", "log_posterior")
WEIGHT = "weight"
#: Values accepted by ``read_chain(fmt=...)``.
FORMATS = (
    "csv", "tsv", "txt", "getdist", "cobaya", "parquet", "npz", "pickle", "emcee", "arviz"
)
OUTSIDE_POLICIES = ("error", "clip", "drop", "keep")
#: Formats whose path may be a root naming several chain files.
_ROOT_FORMATS = ("getdist", "cobaya")
_READ_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".h5": "emcee",
    ".hdf5": "emcee",
    ".nc": "arviz",
}
_WRITE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
#: Parquet schema metadata key listing the derived columns of a chain (JSON list of names).
_DERIVED_KEY = b"flowprior.derived"
# Cobaya/GetDist column -> (chain column, factor): chain value = factor * file value.
_COBAYA_MAP = {
    "minuslogpost": ("log_posterior", -1.0),
    "minuslogprior": ("log_prior", -1.0),
    "chi2": ("log_likelihood", -0.5),
}
_PICKLE_HINT = (
    "refusing to load a pickle: unpickling can execute arbitrary code; if you trust "
    "this file, opt in with allow_pickle=True (config key `allow_pickle: true`, "
    "CLI `--allow-pickle`), or convert it to .npz/.parquet"
)


def _column(name: str) -> str:
    return f"column {name!r}"


# --------------------------------------------------------------------------- Chain


@dataclass(eq=False)
class Chain:
    """Weighted samples of a posterior over a :class:`ParameterSpace`.

    Parameters
    ----------
    params : ParameterSpace
        The parameters (and the original prior box).
    samples : array_like (n, d)
        Stored as C-contiguous float64, columns in ``params.names`` order.
    weights : array_like (n,), optional
        Non-negative, finite, not all zero; default all 1.0.
    log_likelihood, log_prior, log_posterior : array_like (n,), optional
        Natural logs; no NaN or +inf; -inf only where the weight is 0.
    source : str
        Where the chain came from (named in error messages).
    derived : mapping of str to array_like (n,), optional
        Derived quantities that came with the chain (GetDist ``*`` parameters, Cobaya
        derived parameters), by name, in file order. They are reported and carried
        along (:meth:`subset` keeps them aligned), but they are not parameters: they
        are never part of ``params`` and never modelled by a flow.

    Raises
    ------
    InputError
        If any of the above is violated.
    """

    params: ParameterSpace
    samples: np.ndarray
    weights: np.ndarray | None = None
    log_likelihood: np.ndarray | None = None
    log_prior: np.ndarray | None = None
    log_posterior: np.ndarray | None = None
    source: str = field(default="<memory>")
    derived: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.params, ParameterSpace):
            raise TypeError(f"params must be a ParameterSpace, got {type(self.params)}")
        self.source = (
            os.fspath(self.source)
            if isinstance(self.source, os.PathLike)
            else str(self.source)
        )
        self.samples = _as_samples(self.samples, self.params, source=self.source)
        n = self.samples.shape[0]
        self.weights = (
            np.ones(n)
            if self.weights is None
            else _as_vector(self.weights, n, name=WEIGHT, source=self.source)
        )
        for name in LOG_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _as_vector(value, n, name=name, source=self.source))
        _validate_arrays(self._arrays(), names=self.params.names, source=self.source)
        derived = {}
        for name, value in dict(self.derived).items():
            if name in (WEIGHT, *LOG_COLUMNS):
                raise _input_error(
                    self.source,
                    f"derived {name!r}",
                    f"is a reserved column name ({', '.join((WEIGHT, *LOG_COLUMNS))})",
                )
            if name in self.params.names:
                raise _input_error(
                    self.source,
                    f"derived {name!r}",
                    "is also a sampled parameter; a derived quantity must not be modelled",
                )
            derived[str(name)] = _as_vector(value, n, name=f"derived {name!r}", source=self.source)
        self.derived = derived

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.samples.shape[0])

    @property
    def normalized_weights(self) -> np.ndarray:
        """Weights divided by their sum, (n,) float64."""
        w = self.weights / self.weights.max()
        return w / w.sum()

    @property
    def ess(self) -> float:
        """Kish effective sample size of the weights (see :func:`kish_ess`)."""
        return kish_ess(self.weights)

    def logs(self) -> dict[str, np.ndarray]:
        """The log columns that are present, ``{name: (n,) array}`` in LOG_COLUMNS order."""
        return {
            k: getattr(self, k) for k in LOG_COLUMNS if getattr(self, k) is not None
        }

    def log_target(self) -> np.ndarray | None:
        """Unnormalised log posterior, (n,) float64, or None if not available.

        ``log_posterior`` if present, else ``log_likelihood + log_prior`` if
        both are present, else None.
        """
        if self.log_posterior is not None:
            return self.log_posterior
        if self.log_likelihood is not None and self.log_prior is not None:
            return self.log_likelihood + self.log_prior
        return None

    def subset(self, idx: Any) -> Chain:
        """A new chain with the rows selected by ``idx`` (indices, bool mask or slice)."""
        if not isinstance(idx, slice):
            idx = np.asarray(idx)
            idx = idx.reshape(1) if idx.ndim == 0 else idx
        pick = {k: np.array(v[idx]) for k, v in self.logs().items()}
        return Chain(
            self.params,
            np.array(self.samples[idx]),
            np.array(self.weights[idx]),
            source=self.source,
            derived={k: np.array(v[idx]) for k, v in self.derived.items()},
            **pick,
        )

    def to_frame(self) -> pd.DataFrame:
        """Columns: parameter names, ``weight``, the present log columns, then the derived
        quantities (:attr:`derived`, in their order)."""
        columns = {name: self.samples[:, i] for i, name in enumerate(self.params.names)}
        columns[WEIGHT] = self.weights
        columns.update(self.logs())
        columns.update({k: v for k, v in self.derived.items() if k not in columns})
        return pd.DataFrame(columns, copy=True)

    def sha256(self) -> str:
        """SHA-256 hex digest of the chain's numbers (stable across runs and I/O).

        Hashes the parameter names and, for samples, weights and each present
        log column, a tag with the shape followed by the little-endian float64
        bytes (row-major). ``source`` and the prior box are not included.
        """
        h = hashlib.sha256(b"flowprior.Chain/1\n")
        h.update(("names=" + ",".join(self.params.names) + "\n").encode())
        for tag, arr in self._arrays().items():
            a = np.ascontiguousarray(arr, dtype="<f8")
            h.update(f"{tag}{a.shape}\n".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"samples": self.samples, WEIGHT: self.weights, **self.logs()}


# --------------------------------------------------------------------------- reading


def read_chain(
    path: str | os.PathLike,
    params: ParameterSpace | None = None,
    *,
    allow_pickle: bool = False,
    outside: str = "error",
    min_samples: int = 1,
    fmt: str | None = None,
    burn_in: float | int | None = None,
    thin: int = 1,
    select: Sequence[str] | None = None,
) -> Chain:
    """Read a chain file or a GetDist/Cobaya root into a :class:`Chain`.

    Parameters
    ----------
    path : str or path-like
        The chain file, or the root of a GetDist (``root_1.txt ... root_N.txt``,
        ``root.paramnames``, ``root.ranges``) or Cobaya (``root.1.txt ...``,
        ``root.updated.yaml``) set of chain files, read in chain-number order and
        concatenated.
    params : ParameterSpace, optional
        Parameters to take, by name (pickles: by position, in table order), with
        their prior box. Other columns are ignored with a warning naming them.
        Default: the chain's own sampled parameters, with the box from
        ``root.ranges`` (GetDist) or ``root.updated.yaml`` (Cobaya); an open or
        missing range is then an error.
    allow_pickle : bool
        Load ``.pkl``/``.pickle`` files. Unpickling can execute arbitrary code:
        only for files you trust.
    outside : {"error", "clip", "drop", "keep"}
        Samples outside the prior box: raise, clip into the box, or drop them
        (both with a warning giving the count); ``"keep"`` leaves them as they
        are (for files of points at which a density is evaluated, not posteriors).
    min_samples : int
        Minimum number of samples left after burn-in and dropping.
    fmt : str, optional
        One of :data:`FORMATS`; overrides the suffix (``"txt"`` still detects
        GetDist and Cobaya files).
    burn_in : float or int, optional
        Samples discarded from the start: a fraction in [0, 1) or a count
        (int >= 0), applied to each chain file of a root separately and to the
        whole chain otherwise (emcee: to each walker, like emcee's ``discard``; ArviZ:
        to each chain).
        Default: none.
    thin : int
        Keep every ``thin``-th sample after the burn-in, per chain file (walker):
        rows ``k + thin - 1, k + 2 thin - 1, ...`` after discarding ``k``, as
        emcee's ``get_chain(discard=k, thin=thin)``. Default 1 (all).
    select : sequence of str, optional
        The parameters to keep (names, in this order); the others are
        marginalised out. Default: all of ``params`` (or of the chain).

    Returns
    -------
    Chain
        ``source`` is ``str(path)``; GetDist/Cobaya derived parameters are in
        :attr:`Chain.derived`.

    Raises
    ------
    InputError
        One line naming the file, the column/row/key and the problem.
    """
    source = os.fspath(path)
    _check_options(outside, min_samples, source=source)
    burn = _check_burn_in(burn_in, source=source)
    if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
        raise _input_error(source, "thin", f"must be an integer >= 1, not {thin!r}")
    kind = _format_of(path, fmt)
    if kind == "pickle" and not allow_pickle:
        raise _input_error(source, "allow_pickle", _PICKLE_HINT)
    if not (kind in _ROOT_FORMATS and _is_root(path)):
        _check_file(path)
    raw = _read_raw(kind, path, params)
    if params is None:
        space = _space_from_chain(raw, select, source=source)
    else:
        space = _select_from_table(params, select, raw, source=source)
    chain = _chain_from_raw(raw, space, source=source)
    chain = _apply_burn_in(chain, burn, raw.segments, thin=int(thin))
    n_read = chain.n
    chain = _apply_outside(chain, outside)
    if chain.n < min_samples:
        dropped = (
            f" (after dropping {n_read - chain.n} outside the prior box)"
            if chain.n < n_read
            else ""
        )
        raise _input_error(
            source,
            "rows",
            f"only {chain.n} sample(s){dropped}; at least {min_samples} required",
        )
    return chain


@dataclass
class _Raw:
    """Columns as read: name -> values, plus how to call each in messages.

    GetDist/Cobaya readers also fill in what the files say about the parameters:
    ``sampled`` (sampled parameter names in file order; None when the format does
    not tell), ``derived`` (derived column names), ``labels``, ``bounds`` (name ->
    (lower or None, upper or None)) with the file they came from, and ``segments``
    ((chain file, rows) per file, for per-file burn-in).
    """

    columns: dict[str, Any]
    where: dict[str, str] = field(default_factory=dict)
    sampled: list[str] | None = None
    derived: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    bounds_source: str | None = None
    segments: list[tuple[str, int]] = field(default_factory=list)

    def label(self, name: str) -> str:
        return self.where.get(name, _column(name))


def _check_options(outside: str, min_samples: int, *, source: str) -> None:
    if outside not in OUTSIDE_POLICIES:
        raise _input_error(
            source,
            "outside",
            f"must be one of {', '.join(OUTSIDE_POLICIES)}, not {outside!r}",
        )
    if (
        isinstance(min_samples, bool)
        or not isinstance(min_samples, (int, np.integer))
        or min_samples < 1
    ):
        raise _input_error(
            source, "min_samples", f"must be an integer >= 1, not {min_samples!r}"
        )


def _format_of(path: str | os.PathLike, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise _input_error(
                path,
                "fmt",
                f"unknown chain format {fmt!r}; expected one of {', '.join(FORMATS)}",
            )
        return fmt
    if _is_root(path):
        kind = _root_kind(os.fspath(path))
        if kind is not None:
            return kind
    suffix = Path(path).suffix.lower()
    if suffix not in _READ_SUFFIXES:
        raise _input_error(
            path,
            "suffix",
            f"unknown chain file type {suffix or '(no suffix)'!r}; expected one of "
            f"{', '.join(_READ_SUFFIXES)}, or a GetDist/Cobaya root with root.paramnames "
            "or root.updated.yaml and root_N.txt/root.N.txt chain files (or pass fmt=)",
        )
    return _READ_SUFFIXES[suffix]


def _check_file(path: str | os.PathLike) -> None:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise _input_error(path, None, "file not found") from None
    except OSError as exc:
        raise _input_error(path, None, f"cannot read file ({exc.strerror})") from exc
    if os.path.isdir(path):
        raise _input_error(path, None, "is a directory, expected a chain file")
    if size == 0:
        raise _input_error(path, None, "file is empty")


def _paramnames_candidates(path: str | os.PathLike) -> list[Path]:
    """``root.paramnames``, and for ``root_N.txt``/``root.N.txt`` also the base root's."""
    p = Path(path)
    stems = [p.stem]
    base = re.sub(r"[_.]\d+$", "", p.stem)
    if base != p.stem and base:
        stems.append(base)
    return [p.with_name(s + ".paramnames") for s in stems]


def _sniff_txt(path: str | os.PathLike) -> str:
    if any(c.is_file() for c in _paramnames_candidates(path)):
        return "getdist"
    return "cobaya" if _first_line(path).lstrip().startswith("#") else "txt"


def _first_line(path: str | os.PathLike) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.readline()


def _read_raw(kind: str, path: str | os.PathLike, params: ParameterSpace) -> _Raw:
    """Dispatch to a reader; turn library exceptions into one-line InputErrors."""
    readers: dict[str, Callable[..., _Raw]] = {
        "csv": _read_delimited,
        "tsv": _read_delimited,
        "txt": _read_delimited,
        "parquet": _read_parquet,
        "npz": _read_npz,
        "pickle": _read_pickle,
        "getdist": _read_getdist,
        "cobaya": _read_cobaya,
        "emcee": _read_emcee,
        "arviz": _read_arviz,
    }
    try:
        kind = _sniff_txt(path) if kind == "txt" else kind
        return readers[kind](path, params=params, kind=kind)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise _input_error(path, None, "file is empty (no header or data)") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input here
        reason = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        raise _input_error(
            path, None, f"cannot read {kind} file ({reason[:300]})"
        ) from exc


def _check_unique(names: list[str], *, source: Any, what: str = "column") -> None:
    """Refuse repeated names (after stripping blanks), naming each and its 0-based positions."""
    where: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if name != "":  # unnamed columns are ignored with a warning, like other extra columns
            where.setdefault(name, []).append(i)
    dupes = {n: pos for n, pos in where.items() if len(pos) > 1}
    if dupes:
        listed = "; ".join(
            f"{n!r} at positions {', '.join(map(str, pos))} (0-based)" for n, pos in dupes.items()
        )
        plural = "s" if len(dupes) > 1 else ""
        raise _input_error(
            source,
            f"{what}{plural} " + ", ".join(map(repr, dupes)),
            f"duplicate {what} name{plural}: {listed[:400]}; keep only one of each "
            "(a reader would otherwise silently use one and drop the other)",
        )


def _frame_columns(df: pd.DataFrame, *, source: Any) -> _Raw:
    names = [str(c).strip() for c in df.columns]
    _check_unique(names, source=source)
    return _Raw({name: df.iloc[:, i] for i, name in enumerate(names)})


def _read_delimited(
    path: str | os.PathLike, *, params: ParameterSpace, kind: str
) -> _Raw:
    sep = {"csv": ",", "tsv": "\t", "txt": r"\s+"}[kind]
    # The header as written: pandas would rename a repeated name (`weight` -> `weight.1`).
    head = pd.read_csv(
        path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False
    )
    header = [str(c).strip() for c in head.iloc[0]] if len(head) else []
    _check_unique(header, source=path)
    with warnings.catch_warnings():
        # index_col=False: a row with more fields than the header is an error, not an index
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            df = read_csv(path, sep=sep, index_col=False)
        except pd.errors.ParserWarning:
            raise _input_error(
                path,
                "rows",
                f"a data row has more fields than the header ({len(header)} names)",
            ) from None
    return _frame_columns(df, source=path)


def _read_parquet(
    path: str | os.PathLike, *, params: ParameterSpace, kind: str
) -> _Raw:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    _check_unique([str(n).strip() for n in schema.names], source=path)
    raw = _frame_columns(pd.read_parquet(path), source=path)
    # derived quantities written by write_chain (schema metadata), kept aside, not parameters
    marked = (schema.metadata or {}).get(_DERIVED_KEY)
    if marked is not None:
        try:
            names = json.loads(marked)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(n in raw.columns for n in names):
            raise _input_error(path, "metadata", f"{_DERIVED_KEY.decode()}: not a list of columns")
        raw.derived = [str(n) for n in names]
    return raw


def _read_npz(path: str | os.PathLike, *, params: ParameterSpace, kind: str) -> _Raw:
    wanted = set(params.names) | {WEIGHT, *LOG_COLUMNS}
    with open(path, "rb") as fh:  # our handle: np.load leaks its own on corrupt zips
        data = np.load(fh, allow_pickle=False)
        if not hasattr(data, "files"):
            raise _input_error(
                path,
                None,
                "not an NPZ archive; save one array per column with np.savez",
            )
        with data:
            _check_unique(list(data.files), source=path, what="key")
            columns = {
                k: (_npz_array(data, k, source=path) if k in wanted else None)
                for k in data.files
            }
    lengths = {k: len(v) for k, v in columns.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise _input_error(path, "keys", f"arrays have different lengths: {lengths}")
    return _Raw(columns, {k: f"key {k!r}" for k in columns})


def _npz_array(data: Any, key: str, *, source: Any) -> np.ndarray:
    try:
        arr = data[key]
    except ValueError as exc:  # object arrays need pickle
        raise _input_error(
            source, f"key {key!r}", f"cannot load array ({exc})"
        ) from None
    if arr.ndim != 1:
        raise _input_error(
            source,
            f"key {key!r}",
            f"expected a 1-D array (one per column), got shape {arr.shape}",
        )
    return arr


def _read_pickle(path: str | os.PathLike, *, params: ParameterSpace, kind: str) -> _Raw:
    with open(path, "rb") as fh:
        obj = pickle.load(fh)  # noqa: S301 - only reached with allow_pickle=True
    if not isinstance(obj, Mapping):
        raise _input_error(
            path, None, f"expected a pocoMC result dict, got {type(obj).__name__}"
        )
    key = "samples" if "samples" in obj else "x" if "x" in obj else None
    if key is None:
        raise _input_error(
            path,
            "key 'x' or 'samples'",
            f"missing; found keys {', '.join(map(str, obj))}",
        )
    samples = _pickle_samples(obj[key], params, key=key, source=path)
    raw = _Raw({}, {})
    for i, name in enumerate(params.names):
        raw.columns[name] = samples[:, i]
        raw.where[name] = f"key {key!r} column {i} ({name!r})"
    for src, dst in (
        ("weights", WEIGHT),
        ("logl", "log_likelihood"),
        ("logp", "log_prior"),
    ):
        if src in obj:
            raw.columns[dst] = _pickle_vector(obj[src], key=src, source=path)
            raw.where[dst] = f"key {src!r}"
    if "weights" not in obj:
        logger.warning(
            "%s: no 'weights' key; treating all samples as equally weighted", path
        )
    used = {key, "weights", "logl", "logp"}
    _warn_ignored(path, "key(s)", [str(k) for k in obj if k not in used])
    return raw


def _pickle_samples(
    values: Any, params: ParameterSpace, *, key: str, source: Any
) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1 and params.dim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != params.dim:
        raise _input_error(
            source,
            f"key {key!r}",
            f"expected shape (n, {params.dim}) with columns in parameter-table order "
            f"({', '.join(params.names)}), got {arr.shape}",
        )
    return arr


def _pickle_vector(values: Any, *, key: str, source: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise _input_error(
            source, f"key {key!r}", f"expected a 1-D array, got shape {arr.shape}"
        )
    return arr


# --------------------------------------------------------------------------- emcee


def _read_emcee(path: str | os.PathLike, *, params: Any, kind: str) -> _Raw:
    """emcee's HDF5 backend (h5py): group ``mcmc`` with ``chain`` and ``log_prob``.

    Only the ``iteration`` stored steps are read. Rows are walker by walker (walker 0's
    steps, then walker 1's, ...), so burn-in (emcee's ``discard``) and thinning act per
    walker; ``log_prob`` is the log posterior; columns are in parameter-table order.
    """
    import h5py

    with h5py.File(path, "r") as fh:
        groups = [k for k, v in fh.items() if isinstance(v, h5py.Group) and "chain" in v]
        name = "mcmc" if "mcmc" in groups else groups[0] if len(groups) == 1 else None
        if name is None:
            found = ", ".join(fh) or "none"
            raise _input_error(
                path,
                "group 'mcmc'",
                f"no emcee chain (a group with a 'chain' dataset); groups: {found[:300]}",
            )
        group = fh[name]
        steps = int(group.attrs.get("iteration", group["chain"].shape[0]))
        chain = np.asarray(group["chain"][:steps], dtype=np.float64)
        log_prob = (
            np.asarray(group["log_prob"][:steps], dtype=np.float64)
            if "log_prob" in group
            else None
        )
    if chain.ndim != 3 or steps == 0:
        raise _input_error(
            path,
            f"{name}/chain",
            f"expected (steps, walkers, dim) with steps > 0, got {chain.shape}",
        )
    if params is None:
        raise _input_error(
            path,
            "params",
            "an emcee backend stores no parameter names or ranges; give a parameter table "
            "(--params), in the column order of the chain",
        )
    if chain.shape[2] != params.dim:
        raise _input_error(
            path,
            f"{name}/chain",
            f"{chain.shape[2]} parameters per sample, but the parameter table has "
            f"{params.dim} ({', '.join(params.names)})",
        )
    steps, walkers, _ = chain.shape
    flat = chain.transpose(1, 0, 2).reshape(-1, params.dim)
    raw = _Raw({n: flat[:, i] for i, n in enumerate(params.names)})
    raw.where = {n: f"{name}/chain[..., {i}] ({n!r})" for i, n in enumerate(params.names)}
    if log_prob is not None:
        raw.columns["log_posterior"] = log_prob.T.reshape(-1)
        raw.where["log_posterior"] = f"{name}/log_prob"
    raw.segments = [(f"{os.fspath(path)} walker {k}", steps) for k in range(walkers)]
    return raw


# --------------------------------------------------------------------------- ArviZ


def _read_arviz(path: str | os.PathLike, *, params: Any, kind: str) -> _Raw:
    """ArviZ InferenceData (netCDF4/HDF5, read with arviz_base): the ``posterior`` group.

    Rows are chain by chain (chain 0's draws in order, then chain 1's, ...), so burn-in and
    thinning act per chain. A scalar variable ``a`` (chain, draw) is column ``a``; a variable
    ``theta`` (chain, draw, k) gives ``theta_0 ... theta_{k-1}``, and (chain, draw, k, m)
    ``theta_0_0, theta_0_1, ...`` (0-based positions in C order, whatever the coordinate
    labels: parameter names must be Python identifiers, so not ArviZ's ``theta[0]``).
    ``log_likelihood``: all its variables summed over their non-sample dimensions ->
    log_likelihood. ``sample_stats/lp`` is not read: in PyMC and Stan it is the density in
    the unconstrained space, with the transforms' Jacobians, not ``log p(theta | data)``.
    Equal weights.
    """
    import h5py

    if not h5py.is_hdf5(path):
        raise _input_error(
            path,
            None,
            "not a netCDF4/HDF5 file; an ArviZ InferenceData is written with "
            "DataTree.to_netcdf (arviz_base) or InferenceData.to_netcdf (arviz)",
        )
    from arviz_base import convert_to_datatree

    tree = convert_to_datatree(os.fspath(path), engine="h5netcdf")
    try:
        if "posterior" not in tree.children:
            found = ", ".join(tree.children) or "none"
            raise _input_error(
                path, "group 'posterior'", f"missing; the file has groups: {found[:300]}"
            )
        posterior = tree["posterior"].to_dataset()
        raw, shape = _arviz_posterior(posterior, params, source=path)
        found = list(raw.columns)
        if "log_likelihood" in tree.children:
            dataset = tree["log_likelihood"].to_dataset()
            if dataset.data_vars:
                raw.columns["log_likelihood"] = sum(
                    _arviz_draws(dataset[v], shape, where=f"log_likelihood/{v}", source=path)
                    for v in dataset.data_vars
                )
                raw.where["log_likelihood"] = "group 'log_likelihood' (sum of its variables)"
        # sample_stats/lp is not read: PyMC's and Stan's lp is the log density in the sampler's
        # unconstrained space (Jacobians of the bounded parameters' transforms included), not
        # log p(theta | data) in the parameters' own coordinates
    finally:
        tree.close()
    if params is None:
        raise _input_error(
            path,
            "params",
            "an ArviZ InferenceData stores no prior ranges; give a parameter table (--params) "
            f"naming posterior columns: {', '.join(found)[:300]}",
        )
    chains, draws = shape
    raw.segments = [(f"{os.fspath(path)} chain {k}", draws) for k in range(chains)]
    return raw


def _arviz_posterior(
    posterior: Any, params: Any, *, source: Any
) -> tuple[_Raw, tuple[int, int]]:
    """Columns of the posterior variables (file order) and the (chains, draws) shape."""
    if not posterior.data_vars:
        raise _input_error(source, "group 'posterior'", "has no variables")
    wanted = set(params.names) if params is not None else set()
    raw, shape = _Raw({}), None
    for var in posterior.data_vars:
        da = posterior[var]
        where = f"posterior/{var}"
        for dim in ("chain", "draw"):
            if dim not in da.dims:
                raise _input_error(
                    source, where, f"has no {dim!r} dimension (dims {da.dims})"
                )
        da = da.transpose("chain", "draw", ...)
        shape = shape or da.shape[:2]
        rest = da.shape[2:]
        names = (
            [str(var)]
            if not rest
            else [f"{var}_{'_'.join(map(str, i))}" for i in np.ndindex(*rest)]
        )
        reserved = [n for n in names if n in (WEIGHT, *LOG_COLUMNS)]
        if reserved:
            logger.warning(
                "%s: ignoring %s: %r is the name of a chain column of its own",
                source,
                where,
                reserved[0],
            )
            continue
        clash = [n for n in names if n in raw.columns]
        if clash:
            raise _input_error(
                source, where, f"column {clash[0]!r} is also made by another posterior variable"
            )
        if not wanted.intersection(names):
            raw.columns.update(dict.fromkeys(names))  # named in the "ignoring" warning only
            continue
        if da.dtype.kind not in "iuf":
            raise _input_error(source, where, f"expected real numbers, got dtype {da.dtype}")
        flat = np.asarray(da.values).reshape(shape[0] * shape[1], len(names))
        for i, name in enumerate(names):
            raw.columns[name] = flat[:, i]
            raw.where[name] = f"posterior/{name}"
    return raw, shape


def _arviz_draws(da: Any, shape: tuple[int, int], *, where: str, source: Any) -> np.ndarray:
    """(chains * draws,) chain by chain: ``da`` summed over all but its chain, draw dims."""
    if da.dtype.kind not in "iuf":
        raise _input_error(source, where, f"expected real numbers, got dtype {da.dtype}")
    sizes = tuple(da.sizes.get(d) for d in ("chain", "draw"))
    if sizes != tuple(shape):
        raise _input_error(
            source,
            where,
            f"(chain, draw) sizes {sizes} differ from the posterior's {tuple(shape)}",
        )
    values = np.asarray(da.transpose("chain", "draw", ...).values, dtype=np.float64)
    return values.reshape(shape[0] * shape[1], math.prod(values.shape[2:])).sum(axis=1)


# --------------------------------------------------------------------- GetDist / Cobaya
# File layout, names, labels, derived flags and ranges are read with getdist (the field's own
# library for these files); the numbers with numpy.loadtxt, which is what getdist uses too.


def chain_input_files(path: str | os.PathLike, *, fmt: str | None = None) -> list[str]:
    """The files :func:`read_chain` reads for ``path``: the file itself (with its GetDist
    ``.paramnames``/``.ranges`` beside it), or every chain file of a GetDist/Cobaya root with
    its ``.paramnames``, ``.ranges`` or ``.updated.yaml`` (the workflow's job inputs, so that
    Snakemake checks them and reruns on a change).

    A root whose files cannot be found is returned as itself, for Snakemake to report it
    missing; nothing is read beyond the directory listing."""
    p = os.fspath(path)
    if os.path.isfile(p) or os.path.isdir(p):
        side = [str(c) for c in _paramnames_candidates(p) if c.is_file()][:1]
        if side:
            side += [s for s in [side[0][: -len(".paramnames")] + ".ranges"] if os.path.isfile(s)]
        return [p, *side]
    if fmt is not None and fmt not in _ROOT_FORMATS:
        return [p]
    try:
        kind = fmt or _root_kind(p)
    except ImportError:  # getdist missing: read_chain will say so
        return [p]
    separator = {"getdist": "_", "cobaya": "."}.get(kind or "")
    if separator is None:
        return [p]
    found = _numbered_files(p, separator)
    files = [found[k] for k in sorted(found)]
    if kind == "getdist":
        side = [p + ".paramnames", p + ".ranges"]
    else:
        from getdist.cobaya_interface import cobaya_params_file

        side = [cobaya_params_file(p)] if cobaya_params_file(p) else []
    return (files + [s for s in side if s and os.path.isfile(s)]) or [p]


def _is_root(path: str | os.PathLike) -> bool:
    """True when ``path`` is not a file (so it may be a GetDist/Cobaya root)."""
    return not os.path.isfile(path) and not os.path.isdir(path)


def _numbered_files(root: str, separator: str) -> dict[int, str]:
    """``{N: path}`` of the chain files ``root<separator>N.txt`` (and ``root.txt`` as 0)."""
    from getdist.chains import chainFiles

    folder = os.path.dirname(root) or "."
    if not os.path.isdir(folder):
        return {}
    found = {}
    pattern = re.compile(re.escape(os.path.basename(root)) + re.escape(separator) + r"(\d+)\.txt")
    for f in chainFiles(os.path.join(folder, os.path.basename(root)), separator=separator):
        match = pattern.fullmatch(os.path.basename(f))
        found[int(match[1]) if match else 0] = f
    return found


def _root_kind(root: str) -> str | None:
    """"getdist" or "cobaya" when ``root`` names such a set of files, else None."""
    from getdist.cobaya_interface import cobaya_params_file

    if os.path.isfile(root + ".paramnames"):
        return "getdist"
    if cobaya_params_file(root):
        return "cobaya"
    if _numbered_files(root, "_"):
        return "getdist"
    if _numbered_files(root, "."):
        return "cobaya"
    return None


def _chain_files(root: str, separator: str, *, needs: str) -> list[str]:
    """The chain files of a root in chain-number order; a gap or none at all is an error."""
    found = _numbered_files(root, separator)
    numbered = sorted(k for k in found if k > 0)
    if numbered:
        gaps = sorted(set(range(1, numbered[-1] + 1)) - set(numbered))
        if gaps:
            missing = ", ".join(f"{root}{separator}{k}.txt" for k in gaps[:5])
            raise _input_error(
                root,
                "chain files",
                f"missing chain file(s) {missing} (found {len(numbered)} of 1..{numbered[-1]})",
            )
        return [found[k] for k in numbered]
    if 0 in found:
        return [found[0]]
    raise _input_error(
        root,
        "chain files",
        f"no chain files {root}.txt or {root}{separator}1.txt, ... found (root of {needs})",
    )


def _getdist_names(names_file: str, *, source: Any) -> tuple[list[str], dict[str, str], set]:
    """(names, labels, derived names) of a .paramnames or Cobaya .yaml file (getdist)."""
    from getdist.paramnames import ParamNames

    try:
        infos = ParamNames(names_file).names
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input here
        raise _input_error(
            names_file, None, f"cannot read ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    names = [p.name for p in infos]
    if not names:
        raise _input_error(names_file, None, "no parameter names")
    _check_unique_names(names, names_file, source=source)
    return (
        names,
        {p.name: p.label for p in infos},
        {p.name for p in infos if p.isDerived},
    )


def _check_unique_names(names: list[str], names_file: str, *, source: Any) -> None:
    """A repeated name in a .paramnames file is an error naming both lines."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            if names_file.endswith(".paramnames"):
                lines = _name_lines(names_file, name)
                first, again = (lines + [seen[name] + 1, i + 1])[:2]
                where = f"{names_file} line {again}"
                detail = f"(first at line {first})"
            else:
                where = names_file
                detail = f"(positions {seen[name]} and {i}, 0-based)"
            raise _input_error(
                source, where, f"duplicate parameter name {name!r} {detail}; keep only one"
            )
        seen[name] = i


def _name_lines(path: str, name: str) -> list[int]:
    """1-based numbers of the lines of a .paramnames file that define ``name``."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return [
            k
            for k, line in enumerate(fh, start=1)
            if line.split() and line.split()[0].rstrip("*") == name
        ]


def _getdist_bounds(
    ranges_file: str | None,
) -> dict[str, tuple[float | None, float | None]]:
    if ranges_file is None:
        return {}
    from getdist.parampriors import ParamBounds

    try:
        bounds = ParamBounds(ranges_file)
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad input here
        raise _input_error(
            ranges_file, None, f"cannot read ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    return {
        n: (bounds.getLower(n), bounds.getUpper(n))
        for n in {*bounds.lower, *bounds.upper}
    }


def _load_table(path: str, *, n_columns: int, expected: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
        try:
            data = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64)
        except ValueError as exc:
            raise _input_error(
                path, "rows", f"not a table of numbers ({str(exc)[:200]}); expected {expected}"
            ) from None
    if data.shape[0] == 0:
        raise _input_error(path, "rows", "no samples (0 data rows)")
    if data.shape[1] != n_columns:
        raise _input_error(
            path, "columns", f"{data.shape[1]} data columns, but {expected}"
        )
    return data


def _read_getdist(path: str | os.PathLike, *, params: Any, kind: str) -> _Raw:
    """GetDist: ``weight, -log posterior, params...`` in ``.paramnames`` order."""
    p = os.fspath(path)
    if os.path.isfile(p):
        found = [c for c in _paramnames_candidates(p) if c.is_file()]
        if not found:
            looked = ", ".join(str(c) for c in _paramnames_candidates(p))
            raise _input_error(p, "paramnames", f"GetDist chain needs {looked}")
        names_file, files = str(found[0]), [p]
        root = names_file[: -len(".paramnames")]
    else:
        root, names_file = p, p + ".paramnames"
        if not os.path.isfile(names_file):
            raise _input_error(p, "paramnames", f"GetDist root needs {names_file}")
        files = _chain_files(root, "_", needs="a GetDist chain")
    names, labels, derived = _getdist_names(names_file, source=p)
    ranges = root + ".ranges"
    raw = _Raw({}, sampled=[n for n in names if n not in derived], labels=labels)
    raw.derived = [n for n in names if n in derived]
    raw.bounds_source = ranges if os.path.isfile(ranges) else None
    raw.bounds = _getdist_bounds(raw.bounds_source)
    header = [WEIGHT, "minuslogpost", *names]
    _check_unique(header, source=p)
    expected = (
        f"{Path(names_file).name} lists {len(names)} parameters "
        f"(expected weight, -log posterior and {len(names)} parameters)"
    )
    blocks = []
    for f in files:
        data = _load_table(f, n_columns=len(header), expected=expected)
        _check_file_block(data, header, raw, source=f, labels=_GETDIST_WHERE)
        blocks.append(data)
        raw.segments.append((f, data.shape[0]))
    data = np.concatenate(blocks)
    raw.columns = {name: data[:, i] for i, name in enumerate(header)}
    raw.where = dict(_GETDIST_WHERE)
    return _map_cobaya(raw, source=p)


_GETDIST_WHERE = {
    WEIGHT: "first column (weight)",
    "minuslogpost": "second column (-log posterior)",
}
_COBAYA_LOGS = ("minuslogpost", "minuslogprior", "chi2")


def _check_file_block(
    data: np.ndarray, header: list[str], raw: _Raw, *, source: str, labels: dict[str, str]
) -> None:
    """Per chain file: weights, -log posterior and sampled values, rows named in that file."""
    cols = {name: data[:, i] for i, name in enumerate(header)}
    where = lambda name: labels.get(name, _column(name))  # noqa: E731
    weights = cols.get(WEIGHT, np.ones(data.shape[0]))
    if WEIGHT in cols:
        _check_weights(weights, where=where(WEIGHT), source=source)
    for name in _COBAYA_LOGS:
        if name in cols:
            _check_log(-cols[name], weights, where=where(name), source=source)
    sampled = [n for n in (raw.sampled or []) if n in cols]
    if sampled:
        values = np.column_stack([cols[n] for n in sampled])
        _check_samples_finite(values, names=tuple(sampled), source=source, label=where)


def _read_cobaya(path: str | os.PathLike, *, params: Any, kind: str) -> _Raw:
    """Cobaya: ``# weight minuslogpost <params> minuslogprior ... chi2 ...`` per file."""
    from getdist.cobaya_interface import cobaya_params_file

    p = os.fspath(path)
    if os.path.isfile(p):
        files = [p]
        root = re.sub(r"\.\d+$", "", str(Path(p).with_suffix("")))
    else:
        root = p
        files = _chain_files(root, ".", needs="a Cobaya chain")
    header = None
    for f in files:
        line = _first_line(f).strip()
        if not line.startswith("#"):
            raise _input_error(f, "line 1", "expected a '#' header line with column names")
        names = line.lstrip("#").split()
        _check_unique(names, source=f)
        if header is not None and names != header:
            raise _input_error(
                f, "header", f"column names differ from those of {files[0]}"
            )
        header = names
    raw = _Raw({})
    info = cobaya_params_file(root)
    if info is not None:
        names, raw.labels, derived = _getdist_names(info, source=p)
        logs = {*_COBAYA_LOGS, WEIGHT}
        in_file = [n for n in header if n not in logs]
        raw.sampled = [n for n in in_file if n in names and n not in derived]
        raw.derived = [n for n in in_file if n not in raw.sampled]
        missing = [n for n in names if n not in derived and n not in header]
        if missing:
            raise _input_error(
                files[0],
                "header",
                f"sampled parameter(s) {', '.join(missing)} of {info} have no column",
            )
        raw.bounds_source = info
        raw.bounds = _getdist_bounds(info)
    blocks = []
    for f in files:
        data = _load_table(
            f,
            n_columns=len(header),
            expected=f"the header has {len(header)} column names",
        )
        _check_file_block(data, header, raw, source=f, labels={})
        blocks.append(data)
        raw.segments.append((f, data.shape[0]))
    data = np.concatenate(blocks)
    raw.columns = {name: data[:, i] for i, name in enumerate(header)}
    return _map_cobaya(raw, source=p)


def _map_cobaya(raw: _Raw, *, source: Any) -> _Raw:
    """Convert Cobaya/GetDist columns (minuslogpost, minuslogprior, chi2) to natural logs."""
    for col, (dst, factor) in _COBAYA_MAP.items():
        if col not in raw.columns:
            continue
        if dst in raw.columns:
            raise _input_error(source, _column(col), f"conflicts with column {dst!r}")
        where = raw.where.pop(col, _column(col))
        raw.columns[dst] = factor * _to_float(
            raw.columns.pop(col), where=where, source=source
        )
        raw.where[dst] = f"{where} (as {dst})"
    return raw


def _warn_ignored(source: Any, what: str, names: list[str]) -> None:
    if names:
        shown = ", ".join(names[:20]) + (
            f", ... ({len(names)} in all)" if len(names) > 20 else ""
        )
        logger.warning(
            "%s: ignoring %d %s not in the parameter table: %s",
            source,
            len(names),
            what,
            shown,
        )


def _to_float(values: Any, *, where: str, source: Any) -> np.ndarray:
    """Column values -> 1-D float64; non-numeric entries raise naming the first bad row."""
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
            raise _input_error(
                source, where, f"expected real numbers, got dtype {dtype}"
            )
        if pd.api.types.is_numeric_dtype(dtype):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        values = values.to_numpy(dtype=object)
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        return np.ascontiguousarray(arr, dtype=np.float64)
    if arr.dtype.kind in "bcmMV":
        raise _input_error(
            source, where, f"expected real numbers, got dtype {arr.dtype}"
        )
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        for i, v in enumerate(arr):
            try:
                float(v)
            except (TypeError, ValueError):
                raise _input_error(
                    source, where, f"non-numeric value {v!r} at row {i} (0-based)"
                ) from None
        raise


def _chain_from_raw(raw: _Raw, params: ParameterSpace, *, source: str) -> Chain:
    derived = [n for n in raw.derived if n in params.names]
    if derived:
        raise _input_error(
            source,
            f"parameter {derived[0]!r}",
            "is a derived parameter of the chain; derived parameters are kept aside and "
            "never modelled: drop it from the parameter table (or --select)",
        )
    missing = [n for n in params.names if n not in raw.columns]
    if missing:
        found = ", ".join(raw.columns) or "none"
        plural = "s" if len(missing) > 1 else ""
        raise _input_error(
            source,
            f"column{plural} " + ", ".join(map(repr, missing)),
            f"missing parameter column{plural}; found: {found[:500]}",
        )
    known = {*params.names, WEIGHT, *LOG_COLUMNS}
    _warn_ignored(
        source,
        "column(s)",
        [c for c in raw.columns if c not in known and c not in raw.derived],
    )
    conv = {
        k: _to_float(v, where=raw.label(k), source=source)
        for k, v in raw.columns.items()
        if k in known
    }
    samples = np.column_stack([conv[n] for n in params.names])
    weights = conv.get(WEIGHT)
    logs = {k: conv[k] for k in LOG_COLUMNS if k in conv}
    arrays = {
        "samples": samples,
        WEIGHT: np.ones(len(samples)) if weights is None else weights,
        **logs,
    }
    _validate_arrays(arrays, names=params.names, source=source, label=raw.label)
    kept = {n: _to_float(raw.columns[n], where=raw.label(n), source=source) for n in raw.derived}
    if kept:
        logger.info(
            "%s: %d derived parameter(s) kept aside, not modelled: %s",
            source,
            len(kept),
            ", ".join(kept),
        )
    return Chain(params, samples, weights, source=source, derived=kept, **logs)


# --------------------------------------------------------------------- selection, burn-in


def _check_select(
    select: Sequence[str] | None, available: Sequence[str], *, derived: Sequence[str], source: str
) -> list[str] | None:
    """The selected names (validated), or None for all."""
    if select is None:
        return None
    if isinstance(select, str):
        raise _input_error(source, "select", f"expected a list of names, got the string {select!r}")
    names = [str(n) for n in select]
    if not names:
        raise _input_error(source, "select", "empty; select at least one parameter")
    _check_unique(names, source=source, what="selected")
    for name in names:
        if name in derived:
            raise _input_error(
                source,
                f"select {name!r}",
                "is a derived parameter of the chain; derived parameters are never modelled",
            )
        if name not in available:
            raise _input_error(
                source,
                f"select {name!r}",
                f"unknown parameter; the parameters are: {', '.join(available)[:400]}",
            )
    return names


def _select_from_table(
    params: ParameterSpace, select: Sequence[str] | None, raw: _Raw, *, source: str
) -> ParameterSpace:
    names = _check_select(select, params.names, derived=raw.derived, source=source)
    if names is None:
        return params
    idx = [params.names.index(n) for n in names]
    return ParameterSpace(
        tuple(names),
        params.lower[idx],
        params.upper[idx],
        tuple(params.labels[i] for i in idx),
    )


def _space_from_chain(raw: _Raw, select: Sequence[str] | None, *, source: str) -> ParameterSpace:
    """The parameter space a GetDist/Cobaya chain carries (names, labels, ranges)."""
    if raw.sampled is None:
        raise _input_error(
            source,
            "params",
            "this chain does not say which parameters are sampled or their prior ranges; "
            "give a parameter table (--params)",
        )
    names = _check_select(select, raw.sampled, derived=raw.derived, source=source)
    names = raw.sampled if names is None else names
    if not names:
        raise _input_error(source, "params", "the chain has no sampled parameters")
    lower, upper = [], []
    where = raw.bounds_source or source
    for name in names:
        lo, hi = raw.bounds.get(name, (None, None))
        if lo is None or hi is None:
            what = (
                f"no range in {raw.bounds_source}"
                if lo is None and hi is None
                else f"open range [{'N' if lo is None else lo}, {'N' if hi is None else hi}]"
            )
            if raw.bounds_source is None:
                what = "no ranges file (root.ranges or root.updated.yaml) gives its range"
            raise _input_error(
                where,
                f"parameter {name!r}",
                f"{what}; a prior box needs both bounds: give them in a parameter "
                "table (--params)",
            )
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise _input_error(
                where,
                f"parameter {name!r}",
                f"range [{lo}, {hi}] is not a finite box lower < upper",
            )
        lower.append(lo)
        upper.append(hi)
    labels = tuple(raw.labels.get(n) or n for n in names)
    return ParameterSpace(tuple(names), np.array(lower), np.array(upper), labels)


def _check_burn_in(burn_in: Any, *, source: str) -> float | int | None:
    if burn_in is None:
        return None
    if isinstance(burn_in, bool) or not isinstance(
        burn_in, (int, float, np.integer, np.floating)
    ):
        raise _input_error(
            source, "burn_in", f"expected a fraction in [0, 1) or a count, got {burn_in!r}"
        )
    if isinstance(burn_in, (int, np.integer)):
        if burn_in < 0:
            raise _input_error(source, "burn_in", f"a count must be >= 0, got {burn_in}")
        return int(burn_in)
    if not 0.0 <= float(burn_in) < 1.0:
        raise _input_error(
            source,
            "burn_in",
            f"a fraction must be in [0, 1), got {burn_in!r} (give an integer for a count)",
        )
    return float(burn_in)


def _apply_burn_in(
    chain: Chain, burn: float | int | None, segments: list[tuple[str, int]], *, thin: int
) -> Chain:
    """Drop the first samples of each segment (chain file, walker; else the whole chain),
    then keep every ``thin``-th."""
    if not burn and thin == 1:
        return chain
    segments = segments or [(chain.source, chain.n)]
    keep = np.zeros(chain.n, dtype=bool)
    start = 0
    for name, rows in segments:
        k = 0 if not burn else int(burn * rows) if isinstance(burn, float) else burn
        if k + thin - 1 >= rows:
            raise _input_error(
                name,
                "burn_in",
                f"{burn!r} (thin {thin}) discards {rows if k >= rows else k} of the {rows} "
                "samples of this chain, leaving none",
            )
        keep[start + k + thin - 1 : start + rows : thin] = True
        start += rows
    logger.info(
        "%s: burn-in %r, thin %d: kept %d of %d samples",
        chain.source,
        burn,
        thin,
        int(keep.sum()),
        chain.n,
    )
    return chain.subset(keep)


# --------------------------------------------------------------------------- validation


def _as_samples(values: Any, params: ParameterSpace, *, source: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise _input_error(
            source, "samples", f"expected real numbers, got dtype {arr.dtype}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim == 1 and params.dim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != params.dim:
        raise _input_error(
            source, "samples", f"expected shape (n, {params.dim}), got {arr.shape}"
        )
    return arr


def _as_vector(values: Any, n: int, *, name: str, source: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise _input_error(
            source, name, f"expected real numbers, got dtype {arr.dtype}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape != (n,):
        raise _input_error(source, name, f"expected shape ({n},), got {arr.shape}")
    return arr


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _validate_arrays(
    arrays: dict[str, np.ndarray],
    *,
    names: tuple[str, ...],
    source: str,
    label: Callable[[str], str] = _column,
) -> None:
    """Check samples, weights and log columns; raise a one-line InputError on a problem."""
    samples = arrays["samples"]
    if samples.shape[0] == 0:
        raise _input_error(source, "rows", "no samples (0 data rows)")
    _check_samples_finite(samples, names=names, source=source, label=label)
    weights = arrays[WEIGHT]
    _check_weights(weights, where=label(WEIGHT), source=source)
    for name in LOG_COLUMNS:
        if name in arrays:
            _check_log(arrays[name], weights, where=label(name), source=source)


def _check_samples_finite(
    samples: np.ndarray,
    *,
    names: tuple[str, ...],
    source: str,
    label: Callable[[str], str],
) -> None:
    bad = ~np.isfinite(samples)
    if bad.any():
        row = _first(bad.any(axis=1))
        col = _first(bad[row])
        raise _input_error(
            source,
            label(names[col]),
            f"non-finite value {float(samples[row, col])} at row {row} (0-based); "
            f"{int(bad.sum())} non-finite value(s) in parameter columns",
        )


def _check_weights(w: np.ndarray, *, where: str, source: str) -> None:
    bad = ~np.isfinite(w)
    if bad.any():
        i = _first(bad)
        raise _input_error(
            source,
            where,
            f"non-finite weight {float(w[i])} at row {i} (0-based); "
            f"{int(bad.sum())} in all",
        )
    neg = w < 0
    if neg.any():
        i = _first(neg)
        raise _input_error(
            source,
            where,
            f"negative weight {float(w[i])!r} at row {i} (0-based); "
            f"{int(neg.sum())} in all; weights must be >= 0",
        )
    if not np.any(w > 0):
        raise _input_error(source, where, "all weights are zero")


def _check_log(v: np.ndarray, w: np.ndarray, *, where: str, source: str) -> None:
    nan = np.isnan(v)
    if nan.any():
        i = _first(nan)
        raise _input_error(
            source, where, f"NaN at row {i} (0-based); {int(nan.sum())} in all"
        )
    pos = v == np.inf
    if pos.any():
        i = _first(pos)
        raise _input_error(
            source, where, f"+inf at row {i} (0-based); {int(pos.sum())} in all"
        )
    bad = (v == -np.inf) & (w > 0)
    if bad.any():
        i = _first(bad)
        raise _input_error(
            source,
            where,
            f"-inf at row {i} (0-based) whose weight {float(w[i])!r} is > 0 "
            f"({int(bad.sum())} such rows); -inf is allowed only for zero-weight samples",
        )


def _apply_outside(chain: Chain, policy: str) -> Chain:
    """Apply the outside-the-prior-box policy ("error", "clip", "drop" or "keep")."""
    if policy == "keep":
        return chain
    params = chain.params
    inside = params.contains(chain.samples)
    n_out = int((~inside).sum())
    if n_out == 0:
        return chain
    row = _first(~inside)
    x = chain.samples[row]
    col = _first((x < params.lower) | (x > params.upper))
    detail = (
        f"{n_out} of {chain.n} sample(s) outside the prior box; first at row {row} "
        f"(0-based): {float(x[col])!r} not in [{float(params.lower[col])!r}, "
        f"{float(params.upper[col])!r}]"
    )
    if policy == "error":
        raise _input_error(
            chain.source,
            _column(params.names[col]),
            detail + "; use outside='clip' or 'drop' to accept them",
        )
    logger.warning(
        "%s: %s; %s",
        chain.source,
        detail,
        "clipped into the box" if policy == "clip" else "dropped",
    )
    if policy == "clip":
        clipped = np.clip(chain.samples, params.lower, params.upper)
        return Chain(
            params,
            clipped,
            chain.weights,
            source=chain.source,
            derived=chain.derived,
            **chain.logs(),
        )
    if not np.any(chain.weights[inside] > 0):
        raise _input_error(
            chain.source,
            _column(WEIGHT),
            f"all weights are zero after dropping {n_out} sample(s) "
            "outside the prior box",
        )
    return chain.subset(inside)


# --------------------------------------------------------------------------- writing


def write_chain(
    chain: Chain, path: str | os.PathLike, *, fmt: str | None = None
) -> None:
    """Atomically write a chain as Parquet or CSV; ``read_chain`` gives it back exactly.

    Parameters
    ----------
    chain : Chain
    path : str or path-like
        Its directory must exist. The format follows the suffix (``.parquet``,
        ``.pq``, ``.csv``) unless ``fmt`` is given.
    fmt : {"parquet", "csv"}, optional
        Overrides the suffix.

    Notes
    -----
    Columns: parameter names, ``weight``, then the present log columns, then the
    derived quantities (:attr:`Chain.derived`), all float64; values round-trip bit for
    bit (and so does :meth:`Chain.sha256`). Parquet marks the derived columns in its
    schema metadata, so :func:`read_chain` gives them back as derived (a CSV reader sees
    them as unknown columns).
    """
    kind = fmt if fmt is not None else _WRITE_SUFFIXES.get(Path(path).suffix.lower())
    if kind not in ("parquet", "csv"):
        raise _input_error(
            path,
            "fmt" if fmt is not None else "suffix",
            f"cannot write chain format {fmt or Path(path).suffix or '(no suffix)'!r}; "
            "use .parquet (default) or .csv, or fmt='parquet'/'csv'",
        )
    df = chain.to_frame()
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        if chain.derived:
            meta = dict(table.schema.metadata or {})
            meta[_DERIVED_KEY] = json.dumps(list(chain.derived)).encode()
            table = table.replace_schema_metadata(meta)
        with atomic_output_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        with atomic_write(path, "w") as fh:
            df.to_csv(fh, index=False, lineterminator="\n")
