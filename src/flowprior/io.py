"""Portable model files: a directory (or one ``.zip`` of it) that loads without pickle.

Layout::

    manifest.json        format version, parameters and box, flow architecture, training
                         settings, standardisation, data hash, versions, metrics, file hashes
    weights.safetensors  the flow's state dict (safetensors: no code is ever executed on load)
    history.csv          the training history

``manifest["files"]`` holds the SHA-256 of every other file; :func:`load_flow` checks them, so a
tampered or truncated file is an error. Writes are atomic (temporary sibling, then rename).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__
from ._atomic import atomic_output_path
from .errors import FlowpriorError, InputError
from .flows import BoundedFlow, build_flow
from .params import ParameterSpace

if TYPE_CHECKING:
    from .train import TrainResult

__all__ = ["FORMAT", "FORMAT_VERSION", "load_flow", "read_manifest", "save_model"]

log = logging.getLogger(__name__)

FORMAT = "flowprior-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
HISTORY = "history.csv"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: same content -> same zip bytes


class ModelFileError(FlowpriorError, ValueError):
    """A model file that is missing, corrupt, tampered with or of an unknown format."""


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


def build_manifest(result: TrainResult, *, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The manifest of a trained model (JSON-safe)."""
    flow, chain, cfg = result.flow, result.chain, result.config
    hist = result.history
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "parameters": chain.params.to_dict()["parameters"],
        "flow": {
            **cfg.architecture(),
            "dim": chain.params.dim,
            "dtype": cfg.dtype,
            "eps": flow.eps,
            "outer": "logit of the box-scaled coordinate",
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
        "metrics": dict(result.metrics),
        "history_summary": {
            "evaluations": int(len(hist)),
            "first_val_nll": float(hist["val_nll"].iloc[0]) if len(hist) else None,
            "last_val_nll": float(hist["val_nll"].iloc[-1]) if len(hist) else None,
        },
        "versions": package_versions(),
        "files": {name: _sha256(data) for name, data in files.items()},
    }


def save_model(result: TrainResult, path: str | Path) -> Path:
    """Write a trained model to ``path`` (a directory, or a single file ending in ``.zip``).

    The write is atomic: on error nothing is left at ``path``; an existing model at ``path`` is
    replaced only once the new one is complete.
    """
    path = Path(path)
    files = {
        WEIGHTS: _weights_bytes(result.flow),
        HISTORY: result.history.to_csv(index=False).encode(),
    }
    manifest = build_manifest(result, files=files)
    files = {MANIFEST: (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), **files}
    if path.suffix == ".zip":
        _write_zip(path, files)
    else:
        _write_dir(path, files)
    log.info("wrote model %s", path)
    return path


def _write_zip(path: Path, files: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)


def _write_dir(path: Path, files: Mapping[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------ reading
def _read_files(path: Path) -> dict[str, bytes]:
    """Raw bytes of every entry of a model directory or zip."""
    if not path.exists():
        raise ModelFileError(f"{path}: model not found")
    try:
        if path.is_dir():
            return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return {name: zf.read(name) for name in zf.namelist()}
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: unreadable model ({exc})") from None
    raise ModelFileError(f"{path}: not a flowprior model (expected a directory or a .zip)")


def _parse_manifest(path: Path, files: Mapping[str, bytes]) -> dict[str, Any]:
    if MANIFEST not in files:
        raise ModelFileError(f"{path}: {MANIFEST}: missing; not a flowprior model")
    try:
        manifest = json.loads(files[MANIFEST])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: {MANIFEST}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: {MANIFEST}: format: not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: {MANIFEST}: format_version: {version!r} is not supported "
            f"(this flowprior reads version {FORMAT_VERSION})"
        )
    return manifest


def read_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Read (and by default verify) the manifest of a model directory or ``.zip``."""
    path = Path(path)
    files = _read_files(path)
    manifest = _parse_manifest(path, files)
    if verify:
        _verify(path, manifest, files)
    return manifest


def _verify(path: Path, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    expected = manifest.get("files")
    if not isinstance(expected, dict) or WEIGHTS not in expected:
        raise ModelFileError(f"{path}: {MANIFEST}: files: no checksum for {WEIGHTS}")
    for name, digest in expected.items():
        if name not in files:
            raise ModelFileError(f"{path}: {name}: listed in the manifest but missing")
        if _sha256(files[name]) != digest:
            raise ModelFileError(
                f"{path}: {name}: SHA-256 does not match the manifest (file modified or truncated)"
            )


def load_flow(path: str | Path) -> tuple[BoundedFlow, ParameterSpace, dict[str, Any]]:
    """Load a model: the flow (eval mode, CPU), its parameter box and its manifest.

    Needs neither the training data nor the original config; never unpickles anything.
    """
    path = Path(path)
    files = _read_files(path)
    manifest = _parse_manifest(path, files)
    _verify(path, manifest, files)
    try:
        params = ParameterSpace.from_dict(
            {"parameters": manifest["parameters"]}, source=f"{path}: {MANIFEST}"
        )
        arch = manifest["flow"]
        with torch.random.fork_rng(devices=[]):  # initialisation must not touch global RNG
            core = build_flow(
                kind=arch["kind"],
                dim=int(arch["dim"]),
                transforms=int(arch["transforms"]),
                hidden=arch["hidden"],
                bins=int(arch["bins"]),
            )
        dtype = {"float32": torch.float32, "float64": torch.float64}[arch["dtype"]]
        state = st_load(files[WEIGHTS])
        flow = BoundedFlow(
            core,
            lower=state["lower"],
            upper=state["upper"],
            shift=state["shift"],
            scale=state["scale"],
            eps=float(arch["eps"]),
            core_dtype=dtype,
        )
        flow.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise ModelFileError(f"{path}: inconsistent model ({type(exc).__name__}: {exc})") from None
    if not (
        torch.equal(flow.lower, torch.tensor(params.lower))
        and torch.equal(flow.upper, torch.tensor(params.upper))
    ):
        raise ModelFileError(f"{path}: {MANIFEST}: parameters: bounds differ from the weights")
    flow.eval()
    return flow, params, manifest


def history_frame(path: str | Path):
    """The training history stored in a model, as a pandas DataFrame."""
    import pandas as pd

    files = _read_files(Path(path))
    return pd.read_csv(io.BytesIO(files[HISTORY]))
