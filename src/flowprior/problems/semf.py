r"""Real data: the semi-empirical mass formula (SEMF) on measured atomic masses.

Three steps, each a public function:

1. :func:`extract_nuclides` reads the isotope table bundled with the ``mendeleev`` package
   (ground-state atomic masses with uncertainties, and discovery years), derives nuclear
   binding energies and writes them as a Parquet table plus a JSON provenance sidecar;
2. :func:`load_nuclides` reads that table back, validates it and applies the quality cuts;
   :func:`split_nuclides` selects one part of a split (historical, regional, or two seeded
   random halves);
3. :func:`loglike` is the likelihood plug-in (``"flowprior.problems.semf:loglike"``) of the
   SEMF with a model-discrepancy scale ``sigma_th``; :func:`binding_energy` is the model and
   :func:`fit_least_squares` the (profile) maximum-likelihood fit used to cross-check a sampler.

Only step 1 needs ``mendeleev`` (the optional extra ``pip install 'flowprior[semf]'``, locked
in ``requirements.lock``); it is imported inside :func:`extract_nuclides`, so this module, the
likelihood and the fit work without it.

The model
---------
Parameters, in this order (:data:`PARAMETER_NAMES`), all in MeV:
``a_V, a_S, a_C, a_A, a_P, sigma_th``. The binding energy of a nucleus with mass number ``A``,
proton number ``Z`` and neutron number ``N = A - Z`` is

.. math::

    B(A, Z) = a_V A - a_S A^{2/3} - a_C \frac{Z (Z - 1)}{A^{1/3}}
              - a_A \frac{(A - 2Z)^2}{A} + \delta, \qquad
    \delta = \begin{cases} +a_P A^{-1/2} & Z, N \text{ even} \\
                           -a_P A^{-1/2} & Z, N \text{ odd} \\
                           0 & \text{otherwise,} \end{cases}

linear in the five coefficients (:func:`design_matrix`). Each measured binding energy ``B_i``
with uncertainty ``s_i`` is Gaussian around the model with variance ``s_i^2 + sigma_th^2``;
the log-likelihood is fully normalised,

.. math::

    \log L = -\frac12 \sum_i \left[\frac{(B_i - B(A_i, Z_i))^2}{s_i^2 + \sigma_{th}^2}
             + \log\left(2\pi (s_i^2 + \sigma_{th}^2)\right)\right].

``sigma_th`` absorbs what the liquid drop misses (shell effects, deformation; of the order of
2-3 MeV). ``sigma_th <= 0`` has zero likelihood (``-inf``).

Binding energies
----------------
``B = Z M(1H) + N m_n - M(A, Z)`` from *atomic* masses (electron masses cancel; electron
binding energies are neglected, as in the Atomic Mass Evaluation), converted with
``1 u = 931.49410242 MeV`` (:data:`U_MEV`); ``M(1H) = 1.00782503223 u`` (:data:`M_H1_U`),
``m_n = 1.00866491595 u`` (:data:`M_N_U`) (CODATA 2018). The uncertainty of ``B`` is that of
``M(A, Z)`` (those of the two constants are below 1e-9 u and are neglected).

Provenance
----------
The sidecar ``<table>.json`` (or the path given) records the mendeleev version, the SHA-256 of
mendeleev's bundled SQLite database (``mendeleev/elements.db``) that the table was read from,
the citation keys mendeleev gives for its isotope columns, the constants, the row counts and the
SHA-256 of the written Parquet file. The source part (everything but the table's own hash) is
also stored in the Parquet schema metadata under the key ``flowprior.semf``, so that the table
carries its origin even without the sidecar.

Table columns (one row per nuclide, ground states, sorted by ``Z`` then ``A``)
------------------------------------------------------------------------------
``Z, N, A`` (int64), ``symbol`` (str), ``mass_u`` and ``mass_uncertainty_u`` (float64, u),
``discovery_year`` (nullable Int64), ``binding_energy_mev``,
``binding_energy_uncertainty_mev`` and ``binding_energy_per_nucleon_mev`` (float64, MeV).

mendeleev does not say which masses are *measured* and which are AME extrapolations from
systematics (marked ``#`` in the AME); every row with a finite mass and uncertainty is kept at
extraction. Extrapolated masses carry large uncertainties, so the default quality cut of
:func:`load_nuclides` (mass uncertainty <= 100 keV) removes (nearly all of) them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import numbers
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from .._atomic import atomic_output_path, atomic_write_text
from ..errors import FlowpriorError, _input_error

__all__ = [
    "COLUMNS",
    "PARAMETER_NAMES",
    "SPLITS",
    "M_H1_U",
    "M_N_U",
    "U_MEV",
    "SemfFit",
    "binding_energy",
    "design_matrix",
    "extract_nuclides",
    "fit_least_squares",
    "load_nuclides",
    "loglike",
    "split_nuclides",
]

logger = logging.getLogger(__name__)

#: Energy equivalent of the atomic mass unit, MeV / u (CODATA 2018).
U_MEV = 931.49410242
#: Atomic mass of hydrogen-1, u (CODATA 2018).
M_H1_U = 1.00782503223
#: Neutron mass, u (CODATA 2018).
M_N_U = 1.00866491595

#: Parameter order of :func:`loglike` (all in MeV).
PARAMETER_NAMES = ("a_V", "a_S", "a_C", "a_A", "a_P", "sigma_th")

#: Columns of the extracted table, in order.
COLUMNS = (
    "Z",
    "N",
    "A",
    "symbol",
    "mass_u",
    "mass_uncertainty_u",
    "discovery_year",
    "binding_energy_mev",
    "binding_energy_uncertainty_mev",
    "binding_energy_per_nucleon_mev",
)
#: Columns :func:`load_nuclides` needs; ``discovery_year`` is needed by the historical split.
REQUIRED_COLUMNS = ("Z", "A", "binding_energy_mev", "binding_energy_uncertainty_mev")

#: Split name -> its part names.
SPLITS = {
    "all": ("all",),
    "historical": ("early", "late"),
    "regional": ("light", "heavy"),
    "random": ("first", "second"),
}
#: Default boundary of the regional split: ``light`` is ``A < 100``, ``heavy`` ``A >= 100``.
DEFAULT_CUT_A = 100
#: Default seed of the random split (the config states its own: ``kwargs: {split_seed: ...}``).
DEFAULT_SPLIT_SEED = 0

_METADATA_KEY = b"flowprior.semf"
_MENDELEEV_COLUMNS = ("atomic_number", "mass_number", "mass", "mass_uncertainty", "discovery_year")
#: Bytes of float64 temporaries per likelihood chunk (about 4 arrays of n_chunk x n_nuclides).
_CHUNK_BYTES = 200 * 1024**2


# =============================================================================== extraction
def _sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mendeleev_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The isotope, element and property-metadata tables and the source's identity."""
    try:
        from mendeleev import db as mdb
        from mendeleev.fetch import fetch_table
    except ImportError as exc:  # pragma: no cover - mendeleev is in requirements.lock
        raise FlowpriorError(
            f"extract_nuclides needs the package mendeleev ({exc}): the optional extra of the "
            "SEMF study, pip install 'flowprior[semf]' (or install requirements.lock)"
        ) from exc
    db_path = Path(mdb.get_package_dbpath())
    if not db_path.is_file():  # pragma: no cover - broken installation
        raise _input_error(db_path, None, "mendeleev's bundled database is missing")
    sha_before = _sha256_file(db_path)
    isotopes = fetch_table("isotopes")
    elements = fetch_table("elements")
    meta = fetch_table("propertymetadata")
    if _sha256_file(db_path) != sha_before:  # pragma: no cover - someone wrote the database
        raise FlowpriorError(f"{db_path}: database changed while it was read; run again")
    source = {
        "package": "mendeleev",
        "version": metadata.version("mendeleev"),
        "database": f"mendeleev/{db_path.name}",
        "database_sha256": sha_before,
        "table": "isotopes",
    }
    return isotopes, elements, meta, source


def _citations(meta: pd.DataFrame) -> dict[str, str]:
    """mendeleev's citation keys of the isotope columns that the table uses."""
    out = {}
    if {"table_name", "column_name", "citation_keys"} <= set(meta.columns):
        rows = meta[meta["table_name"] == "isotopes"]
        for col, keys in zip(rows["column_name"], rows["citation_keys"]):
            if col in _MENDELEEV_COLUMNS and isinstance(keys, str):
                out[str(col)] = keys
    return dict(sorted(out.items()))


def _nuclide_frame(isotopes: pd.DataFrame, elements: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Binding energies from mendeleev's isotope table (rows with a finite mass and uncertainty)."""
    missing = [c for c in _MENDELEEV_COLUMNS if c not in isotopes.columns]
    if missing:
        raise _input_error(source, ", ".join(missing), "column(s) missing from table 'isotopes'")
    for col in ("atomic_number", "symbol"):
        if col not in elements.columns:
            raise _input_error(source, col, "column missing from table 'elements'")
    mass = pd.to_numeric(isotopes["mass"], errors="coerce").to_numpy(np.float64)
    unc = pd.to_numeric(isotopes["mass_uncertainty"], errors="coerce").to_numpy(np.float64)
    keep = np.isfinite(mass) & (mass > 0) & np.isfinite(unc) & (unc >= 0)
    if not keep.all():
        logger.info(
            "%s: %d of %d isotopes without a finite mass and uncertainty dropped",
            source,
            int((~keep).sum()),
            keep.size,
        )
    iso = isotopes.loc[keep]
    z = iso["atomic_number"].to_numpy(np.int64)
    a = iso["mass_number"].to_numpy(np.int64)
    n = a - z
    if (z < 1).any() or (n < 0).any():
        raise _input_error(source, "atomic_number, mass_number", "Z < 1 or Z > A in 'isotopes'")
    mass, unc = mass[keep], unc[keep]
    b = (z * M_H1_U + n * M_N_U - mass) * U_MEV
    symbols = dict(zip(elements["atomic_number"].astype(int), elements["symbol"].astype(str)))
    unknown = sorted(set(z.tolist()) - set(symbols))
    if unknown:
        raise _input_error(source, "symbol", f"no element symbol for Z = {unknown}")
    year = pd.to_numeric(iso["discovery_year"], errors="coerce").to_numpy(np.float64)
    bad_year = np.isfinite(year) & (year != np.round(year))
    if bad_year.any():
        raise _input_error(source, "discovery_year", "non-integer discovery years")
    df = pd.DataFrame(
        {
            "Z": z,
            "N": n,
            "A": a,
            "symbol": pd.array([symbols[int(v)] for v in z], dtype="str"),
            "mass_u": mass,
            "mass_uncertainty_u": unc,
            "discovery_year": pd.array(
                [int(v) if math.isfinite(v) else None for v in year], dtype="Int64"
            ),
            "binding_energy_mev": b,
            "binding_energy_uncertainty_mev": unc * U_MEV,
            "binding_energy_per_nucleon_mev": b / a,
        },
        columns=list(COLUMNS),
    )
    df = df.sort_values(["Z", "A"], kind="stable").reset_index(drop=True)
    if df.duplicated(["Z", "A"]).any():
        first = df[df.duplicated(["Z", "A"])].iloc[0]
        raise _input_error(
            source, "atomic_number, mass_number", f"duplicate nuclide Z={first.Z}, A={first.A}"
        )
    return df


def extract_nuclides(
    path: str | os.PathLike, *, provenance: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Write the nuclide table (Parquet) and its provenance sidecar (JSON), atomically.

    Parameters
    ----------
    path : str or path-like
        The Parquet file to write; its directory must exist.
    provenance : str or path-like, optional
        The JSON sidecar to write; default ``<path>.json`` (e.g. ``nuclides.parquet.json``).

    Returns
    -------
    pandas.DataFrame
        The table as written (columns :data:`COLUMNS`, one row per nuclide, sorted by Z, A).

    Notes
    -----
    The sidecar holds ``table`` (file name, ``sha256`` of the Parquet bytes, ``rows``,
    ``columns``), ``source`` (mendeleev ``version``, ``database``, ``database_sha256``,
    ``table``, ``citation_keys``, ``rows_read``), ``constants`` (``u_MeV``, ``M_1H_u``,
    ``m_n_u``) and ``flowprior_version``. It contains no time stamp: the same mendeleev,
    pandas and pyarrow give byte-identical outputs. The table is written first, then the
    sidecar; each write is atomic.
    """
    path = Path(path)
    sidecar = Path(provenance) if provenance is not None else Path(f"{path}.json")
    isotopes, elements, meta, source = _mendeleev_tables()
    table = _nuclide_frame(isotopes, elements, source=source["database"])
    source = {**source, "citation_keys": _citations(meta), "rows_read": int(len(isotopes))}
    constants = {"u_MeV": U_MEV, "M_1H_u": M_H1_U, "m_n_u": M_N_U}
    embedded = {"source": source, "constants": constants, "flowprior_version": __version__}

    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata(
        {**(arrow.schema.metadata or {}), _METADATA_KEY: json.dumps(embedded, sort_keys=True)}
    )
    with atomic_output_path(path) as tmp:
        pq.write_table(arrow, tmp)
    record = {
        "table": {
            "file": path.name,
            "sha256": _sha256_file(path),
            "rows": int(len(table)),
            "columns": list(COLUMNS),
        },
        **embedded,
    }
    atomic_write_text(sidecar, json.dumps(record, indent=2, sort_keys=True) + "\n")
    logger.info(
        "%s: %d nuclides from mendeleev %s (%s sha256 %s); provenance in %s",
        path,
        len(table),
        source["version"],
        source["database"],
        source["database_sha256"][:12],
        sidecar,
    )
    return table


# =============================================================================== loading
def _read_table(path: str | os.PathLike) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise _input_error(path, None, "file not found (run the rule extract_nuclides first?)")
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for non-Parquet input
        raise _input_error(
            path, None, f"cannot read as Parquet ({type(exc).__name__}: {exc})"
        ) from None


def _numeric(df: pd.DataFrame, col: str, *, source: Any, nullable: bool = False) -> np.ndarray:
    """A column as float64; non-numeric values or (unless nullable) NaN raise InputError."""
    s = df[col]
    if s.dtype.kind not in "iuf" and not pd.api.types.is_numeric_dtype(s.dtype):
        raise _input_error(source, col, f"expected numbers, got dtype {s.dtype}")
    values = s.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    if not nullable:
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise _input_error(
                source, col, f"{int(bad.sum())} missing or non-finite value(s), first in row {i}"
            )
    return values


def _integral(values: np.ndarray, col: str, *, source: Any) -> None:
    finite = np.isfinite(values)
    if (values[finite] != np.round(values[finite])).any():
        raise _input_error(source, col, "expected whole numbers")


def _validated(df: pd.DataFrame, *, source: Any) -> pd.DataFrame:
    """Check the columns a SEMF table needs; return it with Z, A (and N) as int64."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise _input_error(
            source,
            ", ".join(missing),
            f"missing column(s); found {', '.join(map(str, df.columns))}",
        )
    out = df.copy()
    z = _numeric(df, "Z", source=source)
    a = _numeric(df, "A", source=source)
    _integral(z, "Z", source=source)
    _integral(a, "A", source=source)
    if (a < 1).any():
        raise _input_error(source, "A", f"mass number < 1 in row {int(np.argmax(a < 1))}")
    if ((z < 0) | (z > a)).any():
        raise _input_error(
            source, "Z", f"Z outside [0, A] in row {int(np.argmax((z < 0) | (z > a)))}"
        )
    out["Z"], out["A"] = z.astype(np.int64), a.astype(np.int64)
    if "N" in df.columns:
        n = _numeric(df, "N", source=source)
        if (n != a - z).any():
            raise _input_error(source, "N", f"N != A - Z in row {int(np.argmax(n != a - z))}")
        out["N"] = n.astype(np.int64)
    _numeric(df, "binding_energy_mev", source=source)
    sig = _numeric(df, "binding_energy_uncertainty_mev", source=source)
    if (sig < 0).any():
        raise _input_error(
            source, "binding_energy_uncertainty_mev", f"negative in row {int(np.argmax(sig < 0))}"
        )
    if "discovery_year" in df.columns:
        year = _numeric(df, "discovery_year", source=source, nullable=True)
        _integral(year, "discovery_year", source=source)
    if out.duplicated(["Z", "A"]).any():
        i = int(np.argmax(out.duplicated(["Z", "A"]).to_numpy()))
        raise _input_error(source, "Z, A", f"duplicate nuclide in row {i}")
    return out


def load_nuclides(
    path: str | os.PathLike, *, max_mass_uncertainty_kev: float = 100.0, min_a: int = 16
) -> pd.DataFrame:
    """Read the nuclide table and apply the quality cuts.

    Parameters
    ----------
    path : str or path-like
        Parquet table written by :func:`extract_nuclides` (or any table with at least the
        columns ``Z, A, binding_energy_mev, binding_energy_uncertainty_mev``, all finite).
    max_mass_uncertainty_kev : float, default 100.0
        Keep nuclides whose mass uncertainty (= binding-energy uncertainty) is at most this,
        keV. Removes poorly measured and extrapolated masses.
    min_a : int, default 16
        Keep nuclides with ``A >= min_a``: the liquid drop does not describe the lightest
        nuclei.

    Returns
    -------
    pandas.DataFrame
        The rows that pass both cuts, in file order, with a fresh index. The counts are logged
        (INFO).

    Raises
    ------
    InputError
        Missing or unreadable file; a missing column; NaN or non-finite values in a required
        column; non-integral Z, A; ``Z`` outside ``[0, A]``; ``N != A - Z``; negative
        uncertainty; duplicate nuclides; a bad cut value. One line naming the file and column.
    """
    if (
        isinstance(max_mass_uncertainty_kev, bool)
        or not isinstance(max_mass_uncertainty_kev, numbers.Real)
        or not max_mass_uncertainty_kev > 0
    ):
        raise _input_error(
            path,
            "max_mass_uncertainty_kev",
            f"expected a positive number, got {max_mass_uncertainty_kev!r}",
        )
    if isinstance(min_a, bool) or not isinstance(min_a, numbers.Integral) or min_a < 1:
        raise _input_error(path, "min_a", f"expected an integer >= 1, got {min_a!r}")
    df = _validated(_read_table(path), source=path)
    unc_kev = df["binding_energy_uncertainty_mev"].to_numpy(np.float64) * 1e3
    precise = unc_kev <= max_mass_uncertainty_kev
    heavy = df["A"].to_numpy() >= min_a
    keep = precise & heavy
    logger.info(
        "%s: %d nuclides; %d with mass uncertainty > %g keV, %d with A < %d removed "
        "(%d both); %d kept",
        path,
        len(df),
        int((~precise).sum()),
        max_mass_uncertainty_kev,
        int((~heavy).sum()),
        min_a,
        int((~precise & ~heavy).sum()),
        int(keep.sum()),
    )
    return df.loc[keep].reset_index(drop=True)


# =============================================================================== splits
def split_nuclides(
    table: pd.DataFrame,
    *,
    split: str,
    part: str,
    cut_year: float | None = None,
    cut_a: float | None = None,
    split_seed: int = DEFAULT_SPLIT_SEED,
) -> pd.DataFrame:
    """One part of a split of the (cut) nuclide table.

    Parameters
    ----------
    table : pandas.DataFrame
        Usually the output of :func:`load_nuclides`.
    split : {"all", "historical", "regional", "random"}
        ``"all"``: part ``"all"`` is the whole table.
        ``"historical"``: part ``"early"`` are the nuclides discovered before ``cut_year``
        (``discovery_year < cut_year``), ``"late"`` the others with a discovery year
        (``>= cut_year``). Nuclides without a discovery year belong to neither part (their
        number is logged).
        ``"regional"``: part ``"light"`` is ``A < cut_a``, ``"heavy"`` is ``A >= cut_a``.
        ``"random"``: a random permutation of the rows seeded by ``split_seed``
        (``numpy.random.default_rng(split_seed).permutation``); part ``"first"`` is its first
        ``n // 2`` rows, ``"second"`` the rest. The two halves sample the same nuclides, so
        they must agree: the real-data control of a sequential analysis.
    part : str
        One of :data:`SPLITS` ``[split]``.
    cut_year : float, optional
        Historical split only; default: the median discovery year of ``table`` (over the
        nuclides that have one).
    cut_a : float, optional
        Regional split only; default :data:`DEFAULT_CUT_A` (100).
    split_seed : int
        Random split only; default :data:`DEFAULT_SPLIT_SEED`.

    Returns
    -------
    pandas.DataFrame
        The selected rows, in table order, with a fresh index.

    Raises
    ------
    InputError
        Unknown split or part; ``discovery_year`` missing for the historical split; a
        non-finite cut; a ``split_seed`` that is not a non-negative integer.
    """
    source = "split_nuclides"
    if split not in SPLITS:
        raise _input_error(
            source, "split", f"unknown split {split!r}; expected one of {', '.join(SPLITS)}"
        )
    if part not in SPLITS[split]:
        raise _input_error(
            source,
            "part",
            f"unknown part {part!r} of split {split!r}; expected one of {', '.join(SPLITS[split])}",
        )
    if split == "all":
        return table.reset_index(drop=True)
    if split == "historical":
        if "discovery_year" not in table.columns:
            raise _input_error(
                source, "discovery_year", "missing column (needed by split 'historical')"
            )
        year = table["discovery_year"].astype("Float64").to_numpy(np.float64, na_value=np.nan)
        has_year = np.isfinite(year)
        if cut_year is None:
            if not has_year.any():
                raise _input_error(source, "discovery_year", "no nuclide has a discovery year")
            cut_year = float(np.median(year[has_year]))
        cut_year = _finite(cut_year, "cut_year", source=source)
        early = has_year & (year < cut_year)
        late = has_year & (year >= cut_year)
        mask = early if part == "early" else late
        logger.info(
            "historical split at %g: %d early, %d late, %d without a discovery year excluded",
            cut_year,
            int(early.sum()),
            int(late.sum()),
            int((~has_year).sum()),
        )
    elif split == "random":
        if (
            isinstance(split_seed, bool)
            or not isinstance(split_seed, numbers.Integral)
            or split_seed < 0
        ):
            raise _input_error(
                source, "split_seed", f"expected a non-negative integer, got {split_seed!r}"
            )
        n = len(table)
        first = np.zeros(n, dtype=bool)
        first[np.random.default_rng(int(split_seed)).permutation(n)[: n // 2]] = True
        mask = first if part == "first" else ~first
        logger.info(
            "random split (seed %d): %d first, %d second", split_seed, n // 2, n - n // 2
        )
    else:
        cut_a = _finite(DEFAULT_CUT_A if cut_a is None else cut_a, "cut_a", source=source)
        a = table["A"].to_numpy(np.float64)
        mask = a < cut_a if part == "light" else a >= cut_a
        logger.info(
            "regional split at A = %g: %d light, %d heavy",
            cut_a,
            int((a < cut_a).sum()),
            int((a >= cut_a).sum()),
        )
    return table.loc[mask].reset_index(drop=True)


def _finite(value: Any, name: str, *, source: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _input_error(source, name, f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out):
        raise _input_error(source, name, f"expected a finite number, got {value!r}")
    return out


# =============================================================================== the model
def design_matrix(A: Any, Z: Any) -> np.ndarray:
    """The SEMF's linear design: ``B = design_matrix(A, Z) @ [a_V, a_S, a_C, a_A, a_P]``.

    Parameters
    ----------
    A, Z : array_like (m,)
        Mass and proton numbers (broadcast together).

    Returns
    -------
    ndarray (m, 5) float64
        Columns ``A``, ``-A^(2/3)``, ``-Z (Z - 1) / A^(1/3)``, ``-(A - 2Z)^2 / A`` and
        ``s A^(-1/2)`` with ``s = +1`` (even Z, even N), ``-1`` (odd, odd), else 0.
    """
    a_int, z_int = np.broadcast_arrays(np.asarray(A), np.asarray(Z))
    a = a_int.astype(np.float64).reshape(-1)
    z = z_int.astype(np.float64).reshape(-1)
    zi = np.rint(z).astype(np.int64)
    ni = np.rint(a - z).astype(np.int64)
    sign = np.where(
        (zi % 2 == 0) & (ni % 2 == 0), 1.0, np.where((zi % 2 == 1) & (ni % 2 == 1), -1.0, 0.0)
    )
    return np.column_stack(
        [
            a,
            -(a ** (2.0 / 3.0)),
            -z * (z - 1.0) / np.cbrt(a),
            -((a - 2.0 * z) ** 2) / a,
            sign / np.sqrt(a),
        ]
    )


def binding_energy(theta: Any, A: Any, Z: Any) -> np.ndarray:
    """SEMF binding energies, MeV.

    Parameters
    ----------
    theta : array_like (n, k) or (k,), k = 5 or 6
        ``a_V, a_S, a_C, a_A, a_P`` (MeV) in the first five columns; a sixth (``sigma_th``)
        is ignored.
    A, Z : array_like (m,)
        Mass and proton numbers.

    Returns
    -------
    ndarray (n, m) float64, or (m,) for a single ``theta`` of shape (k,)
    """
    th = np.asarray(theta, dtype=np.float64)
    single = th.ndim == 1
    th = np.atleast_2d(th)
    if th.ndim != 2 or th.shape[1] not in (5, 6):
        raise ValueError(
            f"binding_energy: expected theta of shape (n, 5) or (n, 6), got {np.shape(theta)}"
        )
    out = th[:, :5] @ design_matrix(A, Z).T
    return out[0] if single else out


# =============================================================================== least squares
@dataclass(frozen=True)
class SemfFit:
    """Profile maximum-likelihood fit of the SEMF (see :func:`fit_least_squares`).

    Attributes
    ----------
    coefficients : ndarray (5,)
        ``a_V, a_S, a_C, a_A, a_P``, MeV.
    covariance : ndarray (5, 5)
        Their covariance at the fitted ``sigma_th`` (weighted least squares), MeV^2.
    sigma_th : float
        Maximum-likelihood model-discrepancy scale, MeV.
    rms_residual : float
        Unweighted root-mean-square of ``B - B_model``, MeV.
    loglike : float
        The log-likelihood of :func:`loglike` at ``theta``.
    n : int
        Number of nuclides.
    """

    coefficients: np.ndarray
    covariance: np.ndarray
    sigma_th: float
    rms_residual: float
    loglike: float
    n: int

    @property
    def errors(self) -> np.ndarray:
        """Standard errors of the coefficients, ndarray (5,), MeV."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def theta(self) -> np.ndarray:
        """The fit as one parameter vector ``(6,)`` in :data:`PARAMETER_NAMES` order."""
        return np.append(self.coefficients, self.sigma_th)

    def summary(self) -> str:
        """One line: coefficients ± errors, sigma_th, rms residual and n."""
        parts = [
            f"{n} = {v:.4f} ± {e:.4f}"
            for n, v, e in zip(PARAMETER_NAMES, self.coefficients, self.errors)
        ]
        return (
            f"{', '.join(parts)}, sigma_th = {self.sigma_th:.4f}, "
            f"rms = {self.rms_residual:.4f} MeV "
            f"(n = {self.n})"
        )


def _gauss_loglike(r: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Sum over the last axis of the normalised Gaussian log-density of residuals ``r``."""
    return -0.5 * np.sum(r * r / var + np.log(2.0 * np.pi * var), axis=-1)


def _wls(x: np.ndarray, b: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = 1.0 / np.sqrt(var)
    xw, bw = x * w[:, None], b * w
    coef, *_ = np.linalg.lstsq(xw, bw, rcond=None)
    cov = np.linalg.inv(xw.T @ xw)
    return coef, cov


def fit_least_squares(table: pd.DataFrame, *, max_iter: int = 50, rtol: float = 1e-10) -> SemfFit:
    """Maximum-likelihood SEMF fit: weighted linear least squares with a fitted ``sigma_th``.

    Alternates (a) weighted least squares for the five coefficients with weights
    ``1 / (s_i^2 + sigma_th^2)`` and (b) the one-dimensional maximisation of the likelihood
    over ``sigma_th`` at fixed coefficients, until ``sigma_th`` changes by less than ``rtol``
    (relative). The result maximises :func:`loglike` (a cross-check of any sampler: the
    posterior mean should be close to it, and its errors close to the posterior widths).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``A``, ``Z``, ``binding_energy_mev``, ``binding_energy_uncertainty_mev``
        (e.g. from :func:`load_nuclides` / :func:`split_nuclides`); at least 6 rows.
    max_iter : int, default 50
    rtol : float, default 1e-10

    Returns
    -------
    SemfFit
    """
    from scipy.optimize import minimize_scalar

    if len(table) < 6:
        raise _input_error(
            "fit_least_squares", "table", f"needs at least 6 nuclides, got {len(table)}"
        )
    x = design_matrix(table["A"].to_numpy(), table["Z"].to_numpy())
    b = table["binding_energy_mev"].to_numpy(np.float64)
    s2 = table["binding_energy_uncertainty_mev"].to_numpy(np.float64) ** 2
    coef, _ = _wls(x, b, np.ones_like(b))  # ordinary least squares to start
    sigma = float(np.sqrt(np.mean((b - x @ coef) ** 2)))
    for _ in range(max_iter):
        coef, cov = _wls(x, b, s2 + sigma**2)
        r = b - x @ coef
        res = minimize_scalar(
            lambda t: -_gauss_loglike(r, s2 + np.exp(2.0 * t)),
            bounds=(math.log(sigma) - 3.0, math.log(sigma) + 3.0),
            method="bounded",
            options={"xatol": 1e-12},
        )
        new = float(np.exp(res.x))
        done = abs(new - sigma) <= rtol * sigma
        sigma = new
        if done:
            break
    else:  # pragma: no cover - converges in a few iterations on real data
        logger.warning("fit_least_squares: sigma_th not converged after %d iterations", max_iter)
    coef, cov = _wls(x, b, s2 + sigma**2)
    r = b - x @ coef
    return SemfFit(
        coefficients=coef,
        covariance=cov,
        sigma_th=sigma,
        rms_residual=float(np.sqrt(np.mean(r * r))),
        loglike=float(_gauss_loglike(r, s2 + sigma**2)),
        n=int(len(b)),
    )


# =============================================================================== the plug-in
@dataclass(frozen=True)
class _Arrays:
    design: np.ndarray  # (m, 5)
    b: np.ndarray  # (m,)
    s2: np.ndarray  # (m,)


def _resolve(data: str | os.PathLike) -> Path:
    if not isinstance(data, (str, os.PathLike)):
        raise _input_error(
            "semf.loglike", "data", f"expected a path to the nuclide table, got {data!r}"
        )
    p = Path(data).expanduser()
    return (p if p.is_absolute() else Path.cwd() / p).resolve()


@functools.lru_cache(maxsize=32)
def _cached_arrays(
    path: str,
    mtime_ns: int,
    size: int,
    max_mass_uncertainty_kev: float,
    min_a: int,
    split: str,
    part: str,
    cut_year: float | None,
    cut_a: float | None,
    split_seed: int,
) -> _Arrays:
    del mtime_ns, size  # cache key only: a rewritten file is read again
    table = load_nuclides(path, max_mass_uncertainty_kev=max_mass_uncertainty_kev, min_a=min_a)
    sub = split_nuclides(
        table, split=split, part=part, cut_year=cut_year, cut_a=cut_a, split_seed=split_seed
    )
    if len(sub) == 0:
        raise _input_error(path, "part", f"split {split!r}, part {part!r}: no nuclides left")
    arrays = _Arrays(
        design=design_matrix(sub["A"].to_numpy(), sub["Z"].to_numpy()),
        b=sub["binding_energy_mev"].to_numpy(np.float64).copy(),
        s2=sub["binding_energy_uncertainty_mev"].to_numpy(np.float64) ** 2,
    )
    for arr in (arrays.design, arrays.b, arrays.s2):
        arr.setflags(write=False)
    logger.info("semf likelihood: %s, split %s, part %s: %d nuclides", path, split, part, len(sub))
    return arrays


def _arrays(
    data: str | os.PathLike,
    *,
    split: str,
    part: str,
    max_mass_uncertainty_kev: float,
    min_a: int,
    cut_year: float | None,
    cut_a: float | None,
    split_seed: int,
) -> _Arrays:
    path = _resolve(data)
    try:
        st = path.stat()
    except OSError:
        raise _input_error(
            path, None, "file not found (run the rule extract_nuclides first?)"
        ) from None
    return _cached_arrays(
        str(path),
        st.st_mtime_ns,
        st.st_size,
        max_mass_uncertainty_kev,
        min_a,
        split,
        part,
        None if cut_year is None else float(cut_year),
        None if cut_a is None else float(cut_a),
        split_seed,
    )


def loglike(
    theta: np.ndarray,
    *,
    data: str | os.PathLike,
    split: str,
    part: str,
    max_mass_uncertainty_kev: float = 100.0,
    min_a: int = 16,
    cut_year: float | None = None,
    cut_a: float | None = None,
    split_seed: int = DEFAULT_SPLIT_SEED,
) -> np.ndarray:
    """Likelihood plug-in ``"flowprior.problems.semf:loglike"``: the SEMF on measured data.

    Parameters
    ----------
    theta : ndarray (n, 6) float64
        ``a_V, a_S, a_C, a_A, a_P, sigma_th`` in MeV (:data:`PARAMETER_NAMES`).
    data : str or path-like
        The Parquet table of :func:`extract_nuclides`; a relative path is resolved against the
        current directory (Snakemake's working directory).
    split, part : str
        Which nuclides (see :func:`split_nuclides`): ``all/all``, ``historical/early|late``,
        ``regional/light|heavy``, ``random/first|second``.
    max_mass_uncertainty_kev, min_a : float, int
        Quality cuts (see :func:`load_nuclides`).
    cut_year, cut_a : float, optional
        Split boundaries (see :func:`split_nuclides`).
    split_seed : int
        Seed of the random split (see :func:`split_nuclides`).

    Returns
    -------
    ndarray (n,) float64
        Fully normalised Gaussian log-likelihoods (see the module docstring); ``-inf`` where
        ``sigma_th <= 0``.

    Notes
    -----
    The cut and split arrays are cached per process (keyed on the resolved path, its
    modification time and size, and the cut arguments), so repeated calls read the file once.
    The evaluation is vectorised over parameter sets and nuclides in chunks of parameter
    sets that keep the temporaries under about 200 MB.
    """
    arr = _arrays(
        data,
        split=split,
        part=part,
        max_mass_uncertainty_kev=max_mass_uncertainty_kev,
        min_a=min_a,
        cut_year=cut_year,
        cut_a=cut_a,
        split_seed=split_seed,
    )
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 2 or th.shape[1] != len(PARAMETER_NAMES):
        raise ValueError(f"semf.loglike: expected theta of shape (n, 6), got {np.shape(theta)}")
    n, m = th.shape[0], arr.b.size
    out = np.full(n, -np.inf)
    ok = ~(th[:, 5] <= 0.0)  # NaN stays in and comes out NaN
    idx = np.flatnonzero(ok)
    step = max(1, _CHUNK_BYTES // (4 * 8 * m))
    for start in range(0, idx.size, step):
        rows = idx[start : start + step]
        t = th[rows]
        r = arr.b - t[:, :5] @ arr.design.T  # (k, m)
        var = arr.s2 + (t[:, 5:6] ** 2)  # (k, m)
        out[rows] = _gauss_loglike(r, var)
    return out
