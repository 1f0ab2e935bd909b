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
                                chains find ``root.paramnames`` too)
.txt, ``#`` header cobaya       Cobaya: ``# weight minuslogpost <params> minuslogprior
                                ... chi2 ...``; minuslogpost -> log_posterior = -v,
                                minuslogprior -> log_prior = -v, chi2 ->
                                log_likelihood = -chi2/2
.parquet / .pq     parquet      as CSV
.npz               npz          one 1-D array per column name (no pickles inside)
.pkl / .pickle     pickle       pocoMC result dict: ``x`` or ``samples`` (n, d) in
                                parameter-table order, ``weights``, ``logl``,
                                ``logp``; only with ``allow_pickle=True``
=================  ===========  ==================================================

Row numbers in error messages are 0-based indices of the data rows (samples).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._atomic import atomic_output_path, atomic_write
from .errors import InputError, _input_error
from .params import ParameterSpace
from .stats import kish_ess

__all__ = ["Chain", "read_chain", "write_chain", "kish_ess", "LOG_COLUMNS", "FORMATS"]

logger = logging.getLogger(__name__)

#: Optional natural-log columns of a chain, in output order.
LOG_COLUMNS = ("log_likelihood", "log_prior", "log_posterior")
WEIGHT = "weight"
#: Values accepted by ``read_chain(fmt=...)``.
FORMATS = ("csv", "tsv", "txt", "getdist", "cobaya", "parquet", "npz", "pickle")
OUTSIDE_POLICIES = ("error", "clip", "drop", "keep")
_READ_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npz": "npz",
    ".pkl": "pickle",
    ".pickle": "pickle",
}
_WRITE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
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
            **pick,
        )

    def to_frame(self) -> pd.DataFrame:
        """Columns: parameter names, ``weight``, then the present log columns."""
        columns = {name: self.samples[:, i] for i, name in enumerate(self.params.names)}
        columns[WEIGHT] = self.weights
        columns.update(self.logs())
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
    params: ParameterSpace,
    *,
    allow_pickle: bool = False,
    outside: str = "error",
    min_samples: int = 1,
    fmt: str | None = None,
) -> Chain:
    """Read a chain file into a :class:`Chain` (see the module docstring for formats).

    Parameters
    ----------
    path : str or path-like
        The chain file.
    params : ParameterSpace
        Parameters to take, by name (pickles: by position, in table order).
        Other columns are ignored with a warning naming them.
    allow_pickle : bool
        Load ``.pkl``/``.pickle`` files. Unpickling can execute arbitrary code:
        only for files you trust.
    outside : {"error", "clip", "drop", "keep"}
        Samples outside the prior box: raise, clip into the box, or drop them
        (both with a warning giving the count); ``"keep"`` leaves them as they
        are (for files of points at which a density is evaluated, not posteriors).
    min_samples : int
        Minimum number of samples left after dropping.
    fmt : str, optional
        One of :data:`FORMATS`; overrides the suffix (``"txt"`` still detects
        GetDist and Cobaya files).

    Returns
    -------
    Chain
        ``source`` is ``str(path)``.

    Raises
    ------
    InputError
        One line naming the file, the column/row/key and the problem.
    """
    source = os.fspath(path)
    _check_options(outside, min_samples, source=source)
    kind = _format_of(path, fmt)
    if kind == "pickle" and not allow_pickle:
        raise _input_error(source, "allow_pickle", _PICKLE_HINT)
    _check_file(path)
    raw = _read_raw(kind, path, params)
    chain = _chain_from_raw(raw, params, source=source)
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
    """Columns as read: name -> values, plus how to call each in messages."""

    columns: dict[str, Any]
    where: dict[str, str] = field(default_factory=dict)

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
    suffix = Path(path).suffix.lower()
    if suffix not in _READ_SUFFIXES:
        raise _input_error(
            path,
            "suffix",
            f"unknown chain file type {suffix or '(no suffix)'!r}; expected one of "
            f"{', '.join(_READ_SUFFIXES)} (or pass fmt=)",
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
            df = pd.read_csv(path, sep=sep, index_col=False)
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

    _check_unique([str(n).strip() for n in pq.read_schema(path).names], source=path)
    return _frame_columns(pd.read_parquet(path), source=path)


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


def _read_paramnames(path: Path, *, chain: Any) -> list[str]:
    names = []
    first: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                name = line.split(None, 1)[0].rstrip("*")
                if name in first:
                    raise _input_error(
                        chain,
                        f"{path} line {lineno}",
                        f"duplicate parameter name {name!r} (first at line {first[name]}); "
                        "keep only one",
                    )
                first[name] = lineno
                names.append(name)
    if not names:
        raise _input_error(path, None, "no parameter names in .paramnames file")
    return names


def _read_getdist(
    path: str | os.PathLike, *, params: ParameterSpace, kind: str
) -> _Raw:
    found = [c for c in _paramnames_candidates(path) if c.is_file()]
    if not found:
        looked = ", ".join(str(c) for c in _paramnames_candidates(path))
        raise _input_error(path, "paramnames", f"GetDist chain needs {looked}")
    names = _read_paramnames(found[0], chain=path)
    df = pd.read_csv(path, sep=r"\s+", header=None, comment="#")
    if df.shape[1] != len(names) + 2:
        raise _input_error(
            path,
            "columns",
            f"{df.shape[1]} columns, but {found[0].name} lists {len(names)} parameters "
            f"(expected weight, -log posterior and {len(names)} parameters)",
        )
    df.columns = [WEIGHT, "minuslogpost", *names]
    raw = _frame_columns(df, source=path)
    raw.where.update(
        {
            WEIGHT: "first column (weight)",
            "minuslogpost": "second column (-log posterior)",
        }
    )
    return _map_cobaya(raw, source=path)


def _read_cobaya(path: str | os.PathLike, *, params: ParameterSpace, kind: str) -> _Raw:
    header = _first_line(path).strip()
    if not header.startswith("#"):
        raise _input_error(
            path, "line 1", "expected a '#' header line with column names"
        )
    names = header.lstrip("#").split()
    df = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1)
    if df.shape[1] != len(names):
        raise _input_error(
            path, "header", f"{len(names)} column names but {df.shape[1]} data columns"
        )
    df.columns = names
    return _map_cobaya(_frame_columns(df, source=path), source=path)


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
    _warn_ignored(source, "column(s)", [c for c in raw.columns if c not in known])
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
    return Chain(params, samples, weights, source=source, **logs)


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
            params, clipped, chain.weights, source=chain.source, **chain.logs()
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
    Columns: parameter names, ``weight``, then the present log columns, all
    float64; values round-trip bit for bit (and so does :meth:`Chain.sha256`).
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
        with atomic_output_path(path) as tmp:
            df.to_parquet(tmp, index=False, engine="pyarrow")
    else:
        with atomic_write(path, "w") as fh:
            df.to_csv(fh, index=False, lineterminator="\n")
