"""Portable model files: a directory (or one ``.zip`` of it) that loads without pickle.

Layout (format version 2)::

    manifest.json        format version, parameters and box, flow architecture, training
                         settings, standardisation, data hash, versions, metrics, and the
                         SHA-256 and size of weights.safetensors and history.csv
    model.sha256         "<sha256 of manifest.json>  manifest.json" (``sha256sum -c`` format)
    weights.safetensors  the flow's state dict (safetensors: no code is ever executed on load)
    history.csv          the training history (without wall times)
    timing.json          optional: wall times (train_seconds, seconds per evaluation)

Integrity. ``model.sha256`` covers the manifest byte for byte, and the manifest covers the
weights and the history, so an edit of any of them is an error on load, a manifest edit
included. The set of files is fixed by the format version: a file missing from the model or
from ``manifest["files"]``, or any other entry, is an error. This detects edits and
corruption, not forgery (anyone can recompute a SHA-256).

Determinism. Wall times are the only run-dependent values; they live in ``timing.json``,
which no digest and no fingerprint covers (it is still validated: finite, non-negative
numbers). Everything else, and with ``timing=False`` the whole file, is byte-identical when
the same chain is trained twice with the same seed. :func:`model_fingerprint` digests what
determines the density (parameters, architecture, standardisation, weights).

Hostile files. Every read is bounded (entry sizes checked before reading, the weights and the
history read only up to the sizes the manifest declares); the manifest's JSON depth is checked
before parsing and every value is validated against a strict schema before use; architecture
sizes are bounded before the flow is allocated; symbolic links, duplicate, unlisted, encrypted
and oddly compressed entries are errors. Every problem is a one-line :class:`ModelFileError`
(an :class:`~flowprior.errors.InputError`) naming the model file and the entry or key.

Writes are atomic (temporary sibling, then rename), and an existing path is replaced only when
it is itself a flowprior model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import platform
import re
import shutil
import stat
import tempfile
import typing
import zipfile
from collections import Counter
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__
from ._atomic import atomic_output_path
from ._csv import read_csv
from .errors import InputError
from .flows import DEFAULT_EPS, FLOW_KINDS, BoundedFlow, build_flow, check_architecture
from .params import ParameterSpace

if TYPE_CHECKING:
    from .train import TrainResult

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "is_model",
    "load_flow",
    "model_fingerprint",
    "read_manifest",
    "save_model",
]

log = logging.getLogger(__name__)

FORMAT = "flowprior-model"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
DIGEST = "model.sha256"
WEIGHTS = "weights.safetensors"
HISTORY = "history.csv"
TIMING = "timing.json"
#: Files whose SHA-256 and size the manifest records (fixed by the format version).
HASHED = (WEIGHTS, HISTORY)
REQUIRED = (MANIFEST, DIGEST, *HASHED)
ENTRIES = (*REQUIRED, TIMING)
OUTER = "logit of the box-scaled coordinate"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: same content -> same zip bytes

#: Read limits (bytes) and JSON nesting limit; module attributes so tests can lower them.
MAX_MANIFEST_BYTES = 8 << 20
MAX_DIGEST_BYTES = 256
MAX_TIMING_BYTES = 1 << 20
MAX_HISTORY_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 1 << 30
MAX_JSON_DEPTH = 16
MAX_STRING = 4096
STOP_REASONS = ("max_steps", "patience", "max_time")


class ModelFileError(InputError):
    """A model file that is missing, corrupt, tampered with, hostile or of an unknown format."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that define a model's numerics."""
    out = {"flowprior": __version__, "python": platform.python_version()}
    for pkg in ("torch", "zuko", "numpy", "safetensors"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[pkg] = "unknown"
    return out


def _weights_bytes(flow: BoundedFlow) -> bytes:
    state = {k: v.detach().cpu().contiguous().clone() for k, v in flow.state_dict().items()}
    return st_save(state)


def _canonical(obj: Any) -> bytes:
    """The one serialisation flowprior writes (sorted keys, no NaN, ASCII)."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


# ------------------------------------------------------------------------------ writing
def build_manifest(result: TrainResult, *, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The manifest of a trained model (JSON-safe; without wall times)."""
    flow, chain, cfg = result.flow, result.chain, result.config
    hist = result.history
    metrics = {k: v for k, v in result.metrics.items() if k != "train_seconds"}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "parameters": chain.params.to_dict()["parameters"],
        "flow": {
            **cfg.architecture(),
            "dim": chain.params.dim,
            "dtype": cfg.dtype,
            "eps": flow.eps,
            "outer": OUTER,
        },
        "standardisation": {
            "shift": flow.shift.tolist(),
            "scale": flow.scale.tolist(),
            "space": "logit",
        },
        "training": cfg.to_dict(),
        "seed": cfg.seed,
        "data": {
            "source": chain.source,
            "sha256": chain.sha256(),
            "n": chain.n,
            "ess": float(chain.ess),
            "n_train": int(result.split["train"].size),
            "n_validation": int(result.split["validation"].size),
        },
        "metrics": metrics,
        "history_summary": {
            "evaluations": int(len(hist)),
            "first_val_nll": float(hist["val_nll"].iloc[0]) if len(hist) else None,
            "last_val_nll": float(hist["val_nll"].iloc[-1]) if len(hist) else None,
        },
        "versions": package_versions(),
        "files": {
            name: {"sha256": _sha256(data), "size": len(data)} for name, data in files.items()
        },
    }


def _timing(result: TrainResult) -> dict[str, Any]:
    hist = result.history
    seconds = [float(s) for s in hist["seconds"]] if "seconds" in hist else []
    return {"train_seconds": float(result.metrics["train_seconds"]), "eval_seconds": seconds}


def _non_finite(obj: Any, key: str = "") -> str | None:
    """Key path of the first NaN/inf number in ``obj``, else None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return key or "<root>"
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _non_finite(v, f"{key}.{k}" if key else str(k))
            if found:
                return found
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _non_finite(v, f"{key}[{i}]")
            if found:
                return found
    return None


def save_model(result: TrainResult, path: str | Path, *, timing: bool = True) -> Path:
    """Write a trained model to ``path`` (a directory, or a single file ending in ``.zip``).

    Parameters
    ----------
    result : TrainResult
    path : str or Path
    timing : bool
        Also store the wall times (``timing.json``, outside every digest). Without them the
        file is byte-identical for the same chain, settings and seed.

    The write is atomic: on error nothing is left at ``path``. An existing ``path`` is replaced
    only when it is a flowprior model (:func:`is_model`); anything else is an
    :class:`~flowprior.errors.InputError` and is left untouched.
    """
    path = Path(path)
    _check_replaceable(path)
    history = result.history.drop(columns=["seconds"], errors="ignore")
    files = {
        WEIGHTS: _weights_bytes(result.flow),
        HISTORY: history.to_csv(index=False).encode(),
    }
    manifest = build_manifest(result, files=files)
    bad = _non_finite(manifest)
    if bad:
        raise ModelFileError(f"{path}: {MANIFEST}: {bad}: not a finite number; model not written")
    _check_manifest(f"{path}: {MANIFEST}", manifest)  # never write what cannot be loaded
    manifest_bytes = _canonical(manifest)
    out = {
        MANIFEST: manifest_bytes,
        DIGEST: f"{_sha256(manifest_bytes)}  {MANIFEST}\n".encode(),
        **files,
    }
    if timing:
        times = _timing(result)
        bad = _non_finite(times)
        if bad:
            raise ModelFileError(f"{path}: {TIMING}: {bad}: not a finite number; model not written")
        out[TIMING] = _canonical(times)
    if path.suffix == ".zip":
        _write_zip(path, out)
    else:
        _write_dir(path, out)
    log.info("wrote model %s", path)
    return path


def _check_replaceable(path: Path) -> None:
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not is_model(path) or path.is_dir() != (path.suffix != ".zip"):
        raise InputError(
            f"{path}: exists and is not a flowprior model of this kind (a "
            f"{'zip' if path.suffix == '.zip' else 'directory'}); refusing to replace it"
        )


def _write_zip(path: Path, files: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.create_system = 3
                zf.writestr(info, data)


def _write_dir(path: Path, files: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, data in files.items():
            with open(tmp / name, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.lexists(path):  # a flowprior model (checked by save_model)
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


# ------------------------------------------------------------------------------ containers
class _Container:
    """The entries of a model directory or zip, with bounded reads.

    Construction rejects anything that is not a plain, listed entry: symbolic links (never
    followed), sub-directories, duplicate names, unknown names, encrypted or unsupported
    compressed zip entries.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self.sizes: dict[str, int] = {}
        if not os.path.lexists(path):
            raise ModelFileError(f"{path}: model not found")
        try:
            if path.is_dir():
                self._scan_dir()
            elif path.is_file() and zipfile.is_zipfile(path):
                self._scan_zip()
            else:
                raise ModelFileError(
                    f"{path}: not a flowprior model (expected a directory or a .zip)"
                )
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            self.close()
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"{path}: unreadable model ({exc})") from None

    def _error(self, name: str, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {name}: {what}")

    def _scan_dir(self) -> None:
        with os.scandir(self.path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.is_symlink():
                raise self._error(
                    entry.name, "a symbolic link inside a model directory; refusing to follow it"
                )
            if not entry.is_file(follow_symlinks=False):
                raise self._error(entry.name, "not a regular file; not part of a model")
            if entry.name not in ENTRIES:
                raise self._error(
                    entry.name, f"unexpected entry (a model holds only {', '.join(ENTRIES)})"
                )
            self.sizes[entry.name] = entry.stat(follow_symlinks=False).st_size

    def _scan_zip(self) -> None:
        self._zip = zipfile.ZipFile(self.path)
        infos = self._zip.infolist()
        dupes = sorted(n for n, c in Counter(i.filename for i in infos).items() if c > 1)
        if dupes:
            raise self._error(dupes[0], "duplicate zip entry")
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise self._error(name, "a symbolic link entry; refusing it")
            if info.is_dir():
                raise self._error(name, "a directory entry; not part of a model")
            if name not in ENTRIES:
                raise self._error(
                    name, f"unexpected zip entry (a model holds only {', '.join(ENTRIES)})"
                )
            if info.flag_bits & 0x1:
                raise self._error(name, "encrypted zip entry; not supported")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._error(
                    name,
                    f"unsupported zip compression (method {info.compress_type}; "
                    "flowprior writes deflate)",
                )
            self.sizes[name] = info.file_size

    def read(self, name: str, cap: int) -> bytes:
        """The bytes of ``name``; an error if it is missing or longer than ``cap``."""
        if name not in self.sizes:
            raise self._error(name, f"missing (format version {FORMAT_VERSION} requires it)")
        if self.sizes[name] > cap:
            raise self._error(
                name, f"{self.sizes[name]} bytes, more than the {cap} allowed here; refusing it"
            )
        try:
            if self._zip is not None:
                with self._zip.open(name) as fh:
                    data = fh.read(cap + 1)
            else:
                fd = os.open(self.path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                with os.fdopen(fd, "rb") as fh:
                    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                        raise self._error(name, "not a regular file")
                    data = fh.read(cap + 1)
        except ModelFileError:
            raise
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
            raise self._error(name, f"unreadable ({type(exc).__name__}: {exc})") from None
        except Exception as exc:  # zlib.error and friends from a corrupt stream
            raise self._error(name, f"unreadable ({type(exc).__name__}: {exc})") from None
        if len(data) > cap:
            raise self._error(name, f"longer than the {cap} bytes allowed here; refusing it")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> _Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------ JSON
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (no parsing, no recursion)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_json(where: str, data: bytes) -> Any:
    """Parse a bounded, depth-checked, strict JSON document (no NaN, no duplicate keys)."""
    depth = _json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(f"{where}: nested {depth} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{where}: not valid JSON ({exc})") from None


# ------------------------------------------------------------------------------ schema
class _Schema:
    """Typed accessors that raise a one-line :class:`ModelFileError` naming the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, what: str) -> ModelFileError:
        return ModelFileError(f"{self.where}: {key}: {what}")

    def obj(self, value: Any, key: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected an object, got {type(value).__name__}")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(key, f"missing key(s) {', '.join(missing)}")
        unknown = sorted(set(value) - required - optional)
        if unknown:
            raise self.fail(key, f"unknown key(s) {', '.join(map(str, unknown))}")
        return value

    def int(self, value: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is outside [{lo}, {hi}]")
        return value

    def num(self, value: Any, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.fail(key, f"{value!r} is not a finite number in [{lo}, {hi}]")
        return float(value)

    def str(self, value: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise self.fail(key, f"expected a string (at most {MAX_STRING} characters)")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def hex(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
            raise self.fail(key, "expected a SHA-256 hex digest")
        return value

    def list(self, value: Any, key: str, lo: int, hi: int) -> list:
        if not isinstance(value, list) or not lo <= len(value) <= hi:
            raise self.fail(key, f"expected a list of {lo} to {hi} items")
        return value


_TOP = {
    "format", "format_version", "parameters", "flow", "standardisation", "training", "seed",
    "data", "metrics", "history_summary", "versions", "files",
}
_METRICS_INT = ("steps", "best_step", "n_train", "n_validation")
_METRICS_NUM = ("best_val_nll", "final_train_loss", "ess_train", "ess_validation")


def _check_header(where: str, m: Any) -> None:
    """``format`` and ``format_version`` (before the digest: a clear message for old files)."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ModelFileError(f"{where}: format: not a {FORMAT} manifest")
    version = m.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        hint = (
            "; version 1 did not protect the manifest by a digest: retrain the model"
            if type(version) is int and version == 1
            else ""
        )
        raise ModelFileError(
            f"{where}: format_version: {version!r} is not supported "
            f"(this flowprior reads the integer {FORMAT_VERSION}){hint}"
        )


def _check_manifest(where: str, m: Any) -> tuple[ParameterSpace, dict[str, Any]]:
    """Validate every value of a manifest; returns the parameter space and the flow section."""
    s = _Schema(where)
    _check_header(where, m)
    s.obj(m, "<manifest>", _TOP)

    # parameters
    from .flows import MAX_DIM

    plist = s.list(m["parameters"], "parameters", 1, MAX_DIM)
    for i, p in enumerate(plist):
        key = f"parameters[{i}]"
        s.obj(p, key, {"name", "lower", "upper", "label"})
        s.str(p["name"], f"{key}.name")
        s.str(p["label"], f"{key}.label")
        s.num(p["lower"], f"{key}.lower")
        s.num(p["upper"], f"{key}.upper")
    try:
        params = ParameterSpace.from_dict({"parameters": plist}, source=f"{where}: parameters")
    except InputError as exc:
        raise ModelFileError(str(exc)) from None
    dim = params.dim

    # flow
    flow = s.obj(m["flow"], "flow", {"kind", "transforms", "hidden", "bins", "dim", "dtype", "eps", "outer"})
    s.str(flow["kind"], "flow.kind", FLOW_KINDS)
    s.str(flow["dtype"], "flow.dtype", ("float32", "float64"))
    s.str(flow["outer"], "flow.outer", (OUTER,))
    if type(flow["eps"]) is not float or flow["eps"] != DEFAULT_EPS:
        raise s.fail("flow.eps", f"{flow['eps']!r}; this version writes exactly {DEFAULT_EPS!r}")
    if s.int(flow["dim"], "flow.dim", 1, MAX_DIM) != dim:
        raise s.fail("flow.dim", f"{flow['dim']} but {dim} parameters")
    s.list(flow["hidden"], "flow.hidden", 1, 10**6)
    try:
        check_architecture(
            kind=flow["kind"], dim=dim, transforms=flow["transforms"], hidden=flow["hidden"],
            bins=flow["bins"],
        )
    except ValueError as exc:
        raise ModelFileError(f"{where}: flow.{exc}") from None
    if flow["transforms"] < 1:
        raise s.fail("flow.transforms", "must be >= 1")

    # standardisation
    st = s.obj(m["standardisation"], "standardisation", {"shift", "scale", "space"})
    s.str(st["space"], "standardisation.space", ("logit",))
    for i, v in enumerate(s.list(st["shift"], "standardisation.shift", dim, dim)):
        s.num(v, f"standardisation.shift[{i}]")
    scale = s.list(st["scale"], "standardisation.scale", dim, dim)
    matrix = bool(scale) and isinstance(scale[0], list)
    for i, row in enumerate(scale):
        if matrix:
            for j, v in enumerate(s.list(row, f"standardisation.scale[{i}]", dim, dim)):
                s.num(v, f"standardisation.scale[{i}][{j}]")
        else:
            s.num(row, f"standardisation.scale[{i}]", lo=5e-324)

    # training settings: the exact field set of TrainConfig, typed, consistent with flow
    from .train import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    # keys added after format version 2 files were first written: optional, the default if absent
    # (degeneracy_tolerance is a check made before training; it does not change a trained flow)
    later = {"degeneracy_tolerance"}
    training = dict(s.obj(m["training"], "training", fields - later, later))
    for name in later - set(training):
        training[name] = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)
    hints = typing.get_type_hints(TrainConfig)
    for name in sorted(fields):
        value, kind = training[name], hints[name]
        if kind is bool and not isinstance(value, bool):
            raise s.fail(f"training.{name}", f"expected true or false, got {value!r}")
        if kind is int:
            s.int(value, f"training.{name}", -(2**63), 2**63)
        if kind is float:
            s.num(value, f"training.{name}")
        if kind is str:
            s.str(value, f"training.{name}")
    try:
        cfg = TrainConfig.from_dict({**training, "hidden": tuple(training["hidden"])})
    except InputError as exc:
        raise ModelFileError(f"{where}: training: {exc}") from None
    for name in ("kind", "transforms", "bins", "dtype"):
        if training[name] != flow[name]:
            raise s.fail(f"training.{name}", f"{training[name]!r} differs from flow.{name}")
    if list(cfg.hidden) != flow["hidden"]:
        raise s.fail("training.hidden", "differs from flow.hidden")
    if cfg.whiten not in ("diagonal", "full"):  # `auto` is resolved before training
        raise s.fail("training.whiten", f"{cfg.whiten!r}: a model file records diagonal or full")
    if matrix != (cfg.whiten == "full" and dim > 1):
        raise s.fail("standardisation.scale", f"shape does not match training.whiten {cfg.whiten!r}")
    if s.int(m["seed"], "seed", 0, 2**63 - 1) != cfg.seed:
        raise s.fail("seed", f"{m['seed']} differs from training.seed {cfg.seed}")

    # data
    data = s.obj(m["data"], "data", {"source", "sha256", "n", "ess", "n_train", "n_validation"})
    s.str(data["source"], "data.source")
    s.hex(data["sha256"], "data.sha256")
    n = s.int(data["n"], "data.n", 1, 2**62)
    s.num(data["ess"], "data.ess", 1.0 - 1e-9, n * (1 + 1e-9))
    n_train = s.int(data["n_train"], "data.n_train", 1, n)
    n_val = s.int(data["n_validation"], "data.n_validation", 1, n)
    if n_train + n_val > n:
        raise s.fail("data.n_validation", f"n_train + n_validation = {n_train + n_val} > n = {n}")

    # metrics
    met = s.obj(
        m["metrics"], "metrics", {*_METRICS_INT, *_METRICS_NUM, "stop_reason"},
        {"val_kl", "whiten_auto"},
    )
    if "whiten_auto" in met:  # the pilots' validation NLLs of `whiten: auto`
        pilots = s.obj(met["whiten_auto"], "metrics.whiten_auto", {"diagonal", "full"})
        for name in sorted(pilots):  # None: that pilot failed or was never scored
            if pilots[name] is not None:
                s.num(pilots[name], f"metrics.whiten_auto.{name}")
    for name in _METRICS_INT:
        s.int(met[name], f"metrics.{name}", 0, 2**62)
    for name in _METRICS_NUM:
        s.num(met[name], f"metrics.{name}")
    if "val_kl" in met:
        s.num(met["val_kl"], "metrics.val_kl")
    s.str(met["stop_reason"], "metrics.stop_reason", STOP_REASONS)
    if met["best_step"] > met["steps"]:
        raise s.fail("metrics.best_step", f"{met['best_step']} > steps {met['steps']}")
    if (met["n_train"], met["n_validation"]) != (n_train, n_val):
        raise s.fail("metrics.n_train", "differs from data.n_train / data.n_validation")
    s.num(met["ess_train"], "metrics.ess_train", 1.0 - 1e-9, n_train * (1 + 1e-9))
    s.num(met["ess_validation"], "metrics.ess_validation", 1.0 - 1e-9, n_val * (1 + 1e-9))

    hs = s.obj(m["history_summary"], "history_summary", {"evaluations", "first_val_nll", "last_val_nll"})
    s.int(hs["evaluations"], "history_summary.evaluations", 0, 2**62)
    for name in ("first_val_nll", "last_val_nll"):
        if hs[name] is not None:
            s.num(hs[name], f"history_summary.{name}")

    versions = m["versions"]
    if not isinstance(versions, dict) or len(versions) > 64:
        raise s.fail("versions", "expected an object of at most 64 name: version strings")
    for k, v in versions.items():
        s.str(v, f"versions.{s.str(k, 'versions')}")

    files = s.obj(m["files"], "files", set(HASHED))
    limits = {WEIGHTS: MAX_WEIGHTS_BYTES, HISTORY: MAX_HISTORY_BYTES}
    for name in HASHED:
        s.obj(files[name], f"files.{name}", {"sha256", "size"})
        s.hex(files[name]["sha256"], f"files.{name}.sha256")
        s.int(files[name]["size"], f"files.{name}.size", 0, limits[name])
    return params, flow


def _check_timing(where: str, t: Any, evaluations: int) -> dict[str, Any]:
    s = _Schema(where)
    s.obj(t, "<timing>", {"train_seconds", "eval_seconds"})
    s.num(t["train_seconds"], "train_seconds", 0.0)
    for i, v in enumerate(s.list(t["eval_seconds"], "eval_seconds", 0, evaluations)):
        s.num(v, f"eval_seconds[{i}]", 0.0)
    return t


# ------------------------------------------------------------------------------ reading
def _read_verified(path: Path, *, hashed: bool) -> tuple[dict[str, Any], dict[str, bytes], ParameterSpace]:
    """Manifest (digest-checked, schema-validated), the hashed files' bytes and the box."""
    where = f"{path}: {MANIFEST}"
    with _Container(path) as box:
        raw = box.read(MANIFEST, MAX_MANIFEST_BYTES)
        manifest = _parse_json(where, raw)
        _check_header(where, manifest)
        digest = box.read(DIGEST, MAX_DIGEST_BYTES)
        match = re.fullmatch(rb"([0-9a-f]{64})  manifest\.json\n", digest)
        if not match:
            raise ModelFileError(f"{path}: {DIGEST}: not a '<sha256>  {MANIFEST}' line")
        if match.group(1).decode() != _sha256(raw):
            raise ModelFileError(
                f"{where}: SHA-256 does not match {DIGEST} (manifest edited or corrupted)"
            )
        params, _ = _check_manifest(where, manifest)
        files: dict[str, bytes] = {}
        for name in HASHED if hashed else ():
            declared = manifest["files"][name]
            if box.sizes.get(name, declared["size"]) != declared["size"]:
                raise ModelFileError(
                    f"{path}: {name}: {box.sizes[name]} bytes, the manifest declares "
                    f"{declared['size']} (file modified or truncated)"
                )
            data = box.read(name, declared["size"])
            if _sha256(data) != declared["sha256"]:
                raise ModelFileError(
                    f"{path}: {name}: SHA-256 does not match the manifest "
                    "(file modified or truncated)"
                )
            files[name] = data
        if TIMING in box.sizes:
            timing = _parse_json(f"{path}: {TIMING}", box.read(TIMING, MAX_TIMING_BYTES))
            evaluations = manifest["history_summary"]["evaluations"]
            manifest["timing"] = _check_timing(f"{path}: {TIMING}", timing, evaluations)
            manifest["metrics"]["train_seconds"] = manifest["timing"]["train_seconds"]
    return manifest, files, params


def read_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Read and validate the manifest of a model directory or ``.zip``.

    The manifest is always checked against ``model.sha256`` and the schema; with ``verify``
    (the default) the weights and the history are read and checked against it too. When the
    model holds ``timing.json``, its wall times are added as ``"timing"`` and
    ``metrics.train_seconds`` (not covered by any digest).
    """
    manifest, _, _ = _read_verified(Path(path), hashed=verify)
    return manifest


def _fingerprint(manifest: Mapping[str, Any]) -> str:
    content = {
        "format": manifest["format"],
        "format_version": manifest["format_version"],
        "parameters": manifest["parameters"],
        "flow": manifest["flow"],
        "standardisation": manifest["standardisation"],
        "weights_sha256": manifest["files"][WEIGHTS]["sha256"],
    }
    return _sha256(_canonical(content))


def model_fingerprint(path: str | Path) -> str:
    """SHA-256 (hex) of what determines a model's density, after full verification.

    Covers the parameters (names, box, labels), the flow architecture, the standardisation and
    the weights; not the seed, the data's path, the metrics, package versions or wall times.
    Two models with the same fingerprint have the same density.
    """
    manifest, _, _ = _read_verified(Path(path), hashed=True)
    return _fingerprint(manifest)


def is_model(path: str | Path) -> bool:
    """Whether ``path`` is a flowprior model (recognised by its manifest; any version).

    A directory qualifies when it holds only model entries (no symbolic links) and its
    ``manifest.json`` declares ``"format": "flowprior-model"``; a file when it is such a zip.
    Digests are not checked: a corrupt model of ours is still ours to replace.
    """
    try:
        with _Container(Path(path)) as box:
            manifest = _parse_json(str(path), box.read(MANIFEST, MAX_MANIFEST_BYTES))
    except ModelFileError:
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def load_flow(path: str | Path) -> tuple[BoundedFlow, ParameterSpace, dict[str, Any]]:
    """Load a model: the flow (eval mode, CPU), its parameter box and its manifest.

    Needs neither the training data nor the original config; never unpickles anything.
    Raises :class:`ModelFileError` (one line, naming the file and the entry or key) for any
    missing, corrupt, tampered or hostile model.
    """
    path = Path(path)
    manifest, files, params = _read_verified(path, hashed=True)
    arch = manifest["flow"]
    dtype = {"float32": torch.float32, "float64": torch.float64}[arch["dtype"]]
    st = manifest["standardisation"]
    try:
        state = st_load(files[WEIGHTS])
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"{path}: {WEIGHTS}: unreadable ({exc})") from None
    try:
        with torch.random.fork_rng(devices=[]):  # initialisation must not touch global RNG
            core = build_flow(
                kind=arch["kind"],
                dim=arch["dim"],
                transforms=arch["transforms"],
                hidden=arch["hidden"],
                bins=arch["bins"],
            )
        flow = BoundedFlow(
            core,
            lower=torch.tensor(params.lower, dtype=torch.float64),
            upper=torch.tensor(params.upper, dtype=torch.float64),
            shift=torch.tensor(st["shift"], dtype=torch.float64),
            scale=torch.tensor(st["scale"], dtype=torch.float64),
            eps=arch["eps"],
            core_dtype=dtype,
        )
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: {MANIFEST}: standardisation: {exc}") from None
    expected = flow.state_dict()
    if set(state) != set(expected):
        extra = sorted(set(state) ^ set(expected))
        raise ModelFileError(f"{path}: {WEIGHTS}: tensors {extra[:3]} do not match the architecture")
    for key, tensor in expected.items():
        got = state[key]
        if got.dtype != tensor.dtype or got.shape != tensor.shape:
            raise ModelFileError(
                f"{path}: {WEIGHTS}: {key}: {got.dtype} {tuple(got.shape)}, the manifest's "
                f"architecture needs {tensor.dtype} {tuple(tensor.shape)}"
            )
        if key in ("lower", "upper", "shift", "scale") and not torch.equal(got, tensor):
            where = "parameters" if key in ("lower", "upper") else f"standardisation.{key}"
            raise ModelFileError(f"{path}: {MANIFEST}: {where}: differs from the weights")
    flow.load_state_dict(state, strict=True)
    flow.eval()
    return flow, params, manifest


def history_frame(path: str | Path):
    """The training history stored in a model (verified), as a pandas DataFrame."""
    _, files, _ = _read_verified(Path(path), hashed=True)
    return read_csv(io.BytesIO(files[HISTORY]))
