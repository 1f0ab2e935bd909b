"""The parameter table: names, prior box and plotting labels.

A parameter table is read from YAML or from a delimited text file::

    # params.yaml (list form)
    parameters:
      - {name: alpha, lower: 0.0, upper: 1.0, label: '\\alpha'}
      - {name: beta,  lower: -5,  upper: 5}

    # params.yaml (mapping form)
    alpha: {lower: 0.0, upper: 1.0, label: '\\alpha'}
    beta:  {lower: -5, upper: 5}

    # params.tsv (or .csv)
    name    lower   upper   label
    alpha   0.0     1.0     \\alpha

The box ``[lower, upper]`` is the *original* prior box; it is carried forward
through every stage of a sequential analysis (never re-estimated from samples).
"""

from __future__ import annotations

import csv
import io
import keyword
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ._atomic import atomic_write_text
from .config import load_yaml
from .errors import _input_error

__all__ = ["ParameterSpace", "load_parameters", "RESERVED_NAMES"]

logger = logging.getLogger(__name__)

#: Names a parameter may not have: they are chain columns (or prior methods).
RESERVED_NAMES = frozenset(
    {"weight", "log_likelihood", "log_prior", "log_posterior", "logpdf"}
)
_KEYS = ("name", "lower", "upper", "label")
_YAML_SUFFIXES = (".yaml", ".yml")
_DELIMITERS = {".tsv": "\t", ".csv": ","}


@dataclass(frozen=True, eq=False)
class ParameterSpace:
    """Named parameters with a uniform prior box.

    Parameters
    ----------
    names : tuple of str, length d
        Unique Python identifiers, not keywords, not in :data:`RESERVED_NAMES`.
    lower, upper : array_like (d,)
        Finite bounds with ``lower < upper``; stored as read-only float64.
    labels : tuple of str, length d, optional
        LaTeX labels for plots; default: the names.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = tuple(self.names)
        labels = tuple(self.labels) if len(self.labels) else names
        lower = _frozen_array(self.lower)
        upper = _frozen_array(self.upper)
        _validate(names, lower, upper, labels, source="<ParameterSpace>")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "labels", tuple(str(s) for s in labels))
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return len(self.names)

    @property
    def bounds(self) -> np.ndarray:
        """Prior box as a new (d, 2) float64 array of ``[lower, upper]`` rows."""
        return np.column_stack([self.lower, self.upper])

    @property
    def log_volume(self) -> float:
        """Natural log of the box volume, ``sum(log(upper - lower))``."""
        return float(np.sum(np.log(self.upper - self.lower)))

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Whether points lie in the closed box ``lower <= x <= upper``.

        Parameters
        ----------
        x : array_like (n, d) (or (d,))

        Returns
        -------
        np.ndarray of bool, (n,) (or a 0-d array for a single point)
            NaN coordinates count as outside.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"contains: expected shape (n, {self.dim}), got {x.shape}")
        return np.all((x >= self.lower) & (x <= self.upper), axis=-1)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """``{"parameters": [{"name", "lower", "upper", "label"}, ...]}`` (YAML/JSON safe)."""
        return {
            "parameters": [
                {"name": n, "lower": float(lo), "upper": float(hi), "label": lab}
                for n, lo, hi, lab in zip(
                    self.names, self.lower, self.upper, self.labels
                )
            ]
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: str = "<dict>"
    ) -> ParameterSpace:
        """Build and validate a parameter space from a parsed YAML/JSON document.

        Parameters
        ----------
        d : mapping
            Either ``{"parameters": [{"name", "lower", "upper", "label"?}, ...]}``,
            ``{"parameters": {name: {"lower", "upper", "label"?}, ...}}`` or
            directly ``{name: {"lower", "upper", "label"?}, ...}``.
        source : str
            Named in error messages (normally the file).

        Raises
        ------
        InputError
            On any invalid entry; the message names the source and the entry.
        """
        entries = _entries_from_document(d, source=source)
        return _from_entries(entries, source=source)

    def write(self, path: str | os.PathLike) -> None:
        """Atomically write the table as YAML (.yaml/.yml), TSV (.tsv) or CSV (.csv)."""
        suffix = Path(path).suffix.lower()
        if suffix in _YAML_SUFFIXES:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        elif suffix in _DELIMITERS:
            text = _delimited_text(self, delimiter=_DELIMITERS[suffix])
        else:
            raise _input_error(path, "suffix", _suffix_problem(suffix))
        atomic_write_text(path, text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return (
            self.names == other.names
            and self.labels == other.labels
            and np.array_equal(self.lower, other.lower)
            and np.array_equal(self.upper, other.upper)
        )

    def __hash__(self) -> int:
        return hash(
            (self.names, self.labels, self.lower.tobytes(), self.upper.tobytes())
        )


def load_parameters(path: str | os.PathLike) -> ParameterSpace:
    """Read and validate a parameter table.

    Parameters
    ----------
    path : str or path-like
        ``.yaml``/``.yml`` (see :meth:`ParameterSpace.from_dict` for the two
        layouts) or ``.tsv``/``.csv`` with columns ``name, lower, upper[, label]``.
        Extra columns/keys are ignored with a warning.

    Returns
    -------
    ParameterSpace

    Raises
    ------
    InputError
        Unknown suffix, unreadable or empty file, parse error, missing column,
        invalid or duplicate name, non-finite or non-numeric bound,
        ``lower >= upper``. The one-line message names the file and the entry.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _YAML_SUFFIXES and suffix not in _DELIMITERS:
        raise _input_error(path, "suffix", _suffix_problem(suffix))
    text = _read_text(path)
    if not text.strip():
        raise _input_error(path, None, "file is empty; expected a parameter table")
    if suffix in _YAML_SUFFIXES:
        return ParameterSpace.from_dict(
            _parse_yaml(text, source=path), source=str(path)
        )
    rows = _parse_delimited(text, delimiter=_DELIMITERS[suffix], source=path)
    return _from_entries(rows, source=str(path), where_fmt="row {} (0-based)")


# --------------------------------------------------------------------------- helpers


def _frozen_array(values: Any) -> np.ndarray:
    arr = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    arr.setflags(write=False)
    return arr


def _suffix_problem(suffix: str) -> str:
    return (
        f"unknown parameter-table type {suffix or '(no suffix)'!r}; "
        "expected .yaml, .yml, .tsv or .csv"
    )


def _read_text(path: str | os.PathLike) -> str:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except FileNotFoundError:
        raise _input_error(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _input_error(path, None, f"cannot read file ({reason})") from exc


def _parse_yaml(text: str, *, source: object) -> Any:
    """Bounded YAML (aliases, depth, expansion, duplicate keys): see :func:`load_yaml`."""
    name = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    return load_yaml(name, text=text)


def _parse_delimited(text: str, *, delimiter: str, source: object) -> list[dict]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        lines = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise _input_error(source, f"line {reader.line_num}", f"invalid table ({exc})") from None
    if not lines:
        raise _input_error(source, None, "no header row; expected columns name, lower, upper")
    header = [cell.strip() for cell in lines[0]]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise _input_error(
            source,
            "header",
            f"duplicate column name(s) {', '.join(map(repr, dupes))}; keep only one of each",
        )
    missing = [k for k in ("name", "lower", "upper") if k not in header]
    if missing:
        raise _input_error(
            source,
            "header",
            f"missing column(s) {', '.join(missing)}; found {', '.join(header)}",
        )
    _warn_extra(source, "column(s)", [c for c in header if c not in _KEYS])
    rows = []
    for i, cells in enumerate(lines[1:]):
        if len(cells) != len(header):
            raise _input_error(
                source,
                f"row {i} (0-based)",
                f"has {len(cells)} fields, the header has {len(header)}",
            )
        row = {k: v.strip() for k, v in zip(header, cells) if k in _KEYS}
        if row.get("label") == "":
            del row["label"]
        rows.append(row)
    return rows


def _warn_extra(source: object, what: str, extra: list[str]) -> None:
    if extra:
        logger.warning("%s: ignoring unknown %s: %s", source, what, ", ".join(extra))


def _entries_from_document(d: Any, *, source: str) -> list[dict]:
    """Normalise the accepted YAML layouts to a list of entry dicts."""
    if not isinstance(d, Mapping):
        raise _input_error(
            source,
            None,
            f"expected a mapping with key 'parameters', got {type(d).__name__}",
        )
    body = d["parameters"] if "parameters" in d else d
    if "parameters" in d and len(d) > 1:
        _warn_extra(
            source, "top-level key(s)", [str(k) for k in d if k != "parameters"]
        )
    if isinstance(body, Mapping):
        return [
            _mapping_entry(name, spec, source=source) for name, spec in body.items()
        ]
    if isinstance(body, Sequence) and not isinstance(body, (str, bytes)):
        return list(body)
    raise _input_error(
        source,
        "parameters",
        f"expected a list of entries or a mapping name -> entry, got {type(body).__name__}",
    )


def _mapping_entry(name: Any, spec: Any, *, source: str) -> dict:
    if not isinstance(spec, Mapping):
        raise _input_error(
            source,
            f"parameter {name!r}",
            f"expected a mapping with keys lower, upper[, label], got {type(spec).__name__}",
        )
    if "name" in spec and spec["name"] != name:
        raise _input_error(
            source, f"parameter {name!r}", f"conflicting name {spec['name']!r}"
        )
    return {"name": name, **spec}


def _from_entries(
    entries: list, *, source: str, where_fmt: str = "parameters[{}]"
) -> ParameterSpace:
    if not entries:
        raise _input_error(source, "parameters", "no parameters defined")
    names, lower, upper, labels = [], [], [], []
    for i, entry in enumerate(entries):
        where = where_fmt.format(i)
        name, lo, hi, label = _parse_entry(entry, where=where, source=source)
        names.append(name)
        lower.append(lo)
        upper.append(hi)
        labels.append(label)
    _validate(
        tuple(names),
        np.array(lower),
        np.array(upper),
        tuple(labels),
        source=source,
        where_fmt=where_fmt,
    )
    return ParameterSpace(tuple(names), np.array(lower), np.array(upper), tuple(labels))


def _parse_entry(
    entry: Any, *, where: str, source: str
) -> tuple[str, float, float, str]:
    if not isinstance(entry, Mapping):
        raise _input_error(
            source,
            where,
            f"expected a mapping with keys name, lower, upper[, label], got {entry!r}",
        )
    missing = [k for k in ("name", "lower", "upper") if k not in entry]
    if missing:
        raise _input_error(source, where, f"missing key(s) {', '.join(missing)}")
    name = entry["name"]
    where = f"{where} (name {name!r})"
    _warn_extra(source, f"key(s) in {where}", [str(k) for k in entry if k not in _KEYS])
    lo = _as_bound(entry["lower"], key="lower", where=where, source=source)
    hi = _as_bound(entry["upper"], key="upper", where=where, source=source)
    label = entry.get("label")
    return name, lo, hi, (name if label is None else str(label))


def _as_bound(value: Any, *, key: str, where: str, source: str) -> float:
    """Convert a bound to float; strings such as '1e-3' (YAML 1.1 quirk) are accepted."""
    if isinstance(value, bool):
        raise _input_error(
            source, f"{where}, {key}", f"expected a number, got {value!r}"
        )
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _input_error(
            source, f"{where}, {key}", f"expected a number, got {value!r}"
        ) from None


def _validate(
    names: tuple,
    lower: np.ndarray,
    upper: np.ndarray,
    labels: tuple,
    *,
    source: str,
    where_fmt: str = "parameters[{}]",
) -> None:
    """Check names and bounds; raise a one-line InputError on the first problem."""
    d = len(names)
    if d == 0:
        raise _input_error(source, "parameters", "no parameters defined")
    if lower.shape != (d,) or upper.shape != (d,) or len(labels) != d:
        raise _input_error(
            source,
            "parameters",
            f"{d} names but lower {lower.shape}, upper {upper.shape}, {len(labels)} labels",
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        where = where_fmt.format(i)
        _check_name(name, where=where, source=source)
        if name in seen:
            raise _input_error(
                source,
                f"{where} (name {name!r})",
                f"duplicate parameter name (also {where_fmt.format(seen[name])})",
            )
        seen[name] = i
        _check_bounds(
            lower[i], upper[i], where=f"{where} (name {name!r})", source=source
        )


def _check_name(name: Any, *, where: str, source: str) -> None:
    if not isinstance(name, str):
        problem = (
            f"name must be a string, got {type(name).__name__} {name!r} (quote it)"
        )
    elif not name.isidentifier() or keyword.iskeyword(name):
        problem = (
            f"invalid name {name!r}: must be a Python identifier and not a keyword"
        )
    elif name in RESERVED_NAMES:
        problem = (
            f"invalid name {name!r}: reserved for a chain column "
            f"({', '.join(sorted(RESERVED_NAMES))})"
        )
    else:
        return
    raise _input_error(source, where, problem)


def _check_bounds(lo: float, hi: float, *, where: str, source: str) -> None:
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise _input_error(source, where, f"bounds must be finite, got [{lo}, {hi}]")
    if not lo < hi:
        raise _input_error(source, where, f"lower ({lo!r}) must be < upper ({hi!r})")


def _delimited_text(space: ParameterSpace, *, delimiter: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(_KEYS)
    for n, lo, hi, lab in zip(space.names, space.lower, space.upper, space.labels):
        writer.writerow([n, repr(float(lo)), repr(float(hi)), lab])
    return buf.getvalue()
