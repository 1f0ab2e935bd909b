"""Atomic file output: write to a temporary file, fsync, then rename.

A reader (or a Snakemake rule) never sees a half-written output: either the
old file (or nothing) is at ``path``, or the complete new one is. On error the
temporary file is removed and ``path`` is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_output_path",
    "plain_json",
]


def _default_mode() -> int:
    """File permissions a plain ``open(path, "w")`` would give (0o666 & ~umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644  # umask unknown without changing it; 022 is the usual value


def _target_mode(path: Path) -> int:
    """Keep the permissions of an existing target, else the umask default."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return _default_mode()


def _fsync_dir(directory: Path) -> None:
    """Best-effort fsync of a directory so that the rename itself is durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _finish(tmp: str, path: Path) -> None:
    """Set permissions, rename ``tmp`` onto ``path`` and sync the directory."""
    os.chmod(tmp, _target_mode(path))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _mkstemp(path: Path, *, suffix: str) -> tuple[int, str]:
    directory = path.parent if str(path.parent) else Path(".")
    return tempfile.mkstemp(dir=directory, prefix=f".{path.stem}.", suffix=suffix)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; rename it on success.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its directory must exist.
    mode : {"w", "wt", "wb"}
        Text or binary mode.
    encoding : str or None
        Text encoding (ignored in binary mode).

    Yields
    ------
    file object
        Write to it; on leaving the block without an exception it is flushed,
        fsynced and atomically renamed onto ``path``. On an exception the
        temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', not {mode!r}")
    path = Path(path)
    fd, tmp = _mkstemp(path, suffix=".tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _finish(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path`` (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(
    path: str | os.PathLike, text: str, *, encoding: str = "utf-8"
) -> None:
    """Atomically write ``text`` to ``path`` (see :func:`atomic_write`).

    Newlines are written as given (no platform translation).
    """
    with atomic_write(path, "w", encoding=encoding) as fh:
        fh.write(text)


def plain_json(value: Any) -> Any:
    """JSON-safe copy: mappings with str keys, numpy scalars/arrays to Python, NaN/inf to None."""
    import math
    from collections.abc import Mapping

    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    """Atomically write strict, indented JSON (:func:`plain_json`: non-finite numbers -> null)."""
    import json

    atomic_write_text(path, json.dumps(plain_json(value), indent=2, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for libraries that insist on writing a filename.

    The temporary file lives in the same directory as ``path`` and has the
    same suffix (so that suffix-sniffing writers pick the right format). On
    success it is fsynced and renamed onto ``path``; on an exception it is
    removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its directory must exist.

    Yields
    ------
    pathlib.Path
        Where the caller should write the complete output (an empty file
        already exists there; writers may overwrite or replace it).
    """
    path = Path(path)
    fd, tmp = _mkstemp(path, suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _finish(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
