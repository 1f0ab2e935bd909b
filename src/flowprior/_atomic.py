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
from typing import IO, Any, Callable

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_output_path",
    "check_output_path",
    "is_within",
    "plain_json",
    "same_file",
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


# ------------------------------------------------------------------------ output pre-checks
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file or directory.

    True when their real paths (symbolic links resolved) are equal, or when both exist and
    are the same inode (hard links, bind mounts). Paths that do not exist yet are compared by
    real path only.
    """
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_within(path: str | os.PathLike, directory: str | os.PathLike) -> bool:
    """Whether ``path`` lies strictly inside ``directory`` (real paths, symbolic links resolved)."""
    p, d = os.path.realpath(path), os.path.realpath(directory)
    return p != d and os.path.commonpath([p, d]) == d


def check_output_path(
    path: str | os.PathLike,
    *,
    option: str,
    avoid: dict[str, str | os.PathLike] | None = None,
    directory: bool = False,
    ours: Callable[[Path], str | None] | None = None,
    kind: str = "flowprior output",
) -> Path:
    """Check, before any work starts, that writing ``path`` loses nothing and can succeed.

    Parameters
    ----------
    path : str or path-like
        The output (a file; a directory when ``directory``).
    option : str
        The option that names it (``"--out"``), for the message.
    avoid : dict of str to path, optional
        The command's inputs and its other outputs, by the name the user knows them by
        (``{"CHAIN": "chain.csv", "--history": "h.csv"}``). ``path`` must not be one of them
        (same real path or same inode), lie inside one, or contain one.
    directory : bool
        The output is a directory (a model directory) rather than a file.
    ours : callable, optional
        ``ours(path) -> None`` when the existing ``path`` is a flowprior output of this kind
        (then it may be replaced), else a short reason why it is not. Without it, any
        existing file is refused.
    kind : str
        What the output is (``"flowprior model"``), for the message.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        One line ``"<path>: <option>: <what is wrong>"``: the path is empty, one of the
        inputs/outputs, inside or around one, a symbolic link, in a missing or read-only
        directory, a directory where a file is expected (or the reverse), or an existing
        file or directory that is not a flowprior output of this kind.
    """
    from .errors import OutputError

    def fail(what: str) -> OutputError:
        return OutputError(f"{os.fspath(path) or repr('')}: {option}: {what}")

    if not os.fspath(path):
        raise fail("empty path")
    p = Path(path)
    for name, other in (avoid or {}).items():
        if other is None:
            continue
        if same_file(p, other):
            raise fail(f"is the same file as {name} ({os.fspath(other)}); choose another path")
        if is_within(p, other):
            raise fail(f"lies inside {name} ({os.fspath(other)}); choose another path")
        if is_within(other, p):
            raise fail(f"contains {name} ({os.fspath(other)}); choose another path")
    if os.path.islink(p):
        raise fail("is a symbolic link; flowprior does not replace links (give the real path)")
    parent = p.parent
    if not parent.exists():
        raise fail(f"directory {os.fspath(parent)!r} does not exist")
    if not parent.is_dir():
        raise fail(f"{os.fspath(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"directory {os.fspath(parent)!r} is not writable")
    if not p.exists():
        return p
    if directory and not p.is_dir():
        raise fail(f"exists and is not a directory; a {kind} directory is written here")
    if not directory and p.is_dir():
        raise fail(f"is a directory; a {kind} file is written here")
    if not directory and not p.is_file():
        raise fail("exists and is not a regular file")
    reason = "an existing file is never replaced" if ours is None else ours(p)
    if reason is not None:
        raise fail(
            f"exists and is not a {kind} ({reason}); flowprior replaces only its own "
            "outputs: remove it or choose another path"
        )
    return p
