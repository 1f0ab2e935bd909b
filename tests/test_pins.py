"""The pip lock, pyproject.toml and the conda environments pin the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
ENVS = sorted((REPO / "envs").glob("*.yaml"))
TORCH = "2.13.0"

# conda-forge package name -> pip distribution name, where they differ
CONDA_TO_PIP = {"matplotlib-base": "matplotlib", "python-tzdata": "tzdata", "pytorch": "torch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        assert match, f"requirements.lock: {line!r} is not an exact name==version pin"
        pins[_norm(match[1])] = match[2]
    return pins


def _env_pins(path: Path) -> list[tuple[str, str | None, str]]:
    """(name, version or None, kind) for every dependency of a conda environment file."""
    env = yaml.safe_load(path.read_text())
    out = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if line.startswith("-"):
                    assert not line.startswith(("-e", "--editable")), f"{path.name}: {line}"
                    continue  # pip options such as --extra-index-url
                match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)", line)
                out.append((line, None, "pip") if not match else (match[1], match[2], "pip"))
        else:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==?\s*(\S+)", dep)
            out.append((dep, None, "conda") if not match else (match[1], match[2], "conda"))
    return out


def test_lock_is_exact_and_has_no_local_versions():
    pins = _lock()
    assert len(pins) > 50
    for name, version in pins.items():
        assert "+" not in version, f"requirements.lock: {name}=={version}: drop the local label"


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_env_pins_equal_lock(env_file):
    lock = _lock()
    for name, version, kind in _env_pins(env_file):
        if _norm(name) == "python":
            assert version is not None and version.startswith("3.11"), env_file.name
            continue
        assert version is not None, f"{env_file.name}: {kind} dependency {name!r} is not pinned"
        pip_name = _norm(CONDA_TO_PIP.get(_norm(name), name))
        assert pip_name in lock, f"{env_file.name}: {name} is not in requirements.lock"
        assert (
            version == lock[pip_name]
        ), f"{env_file.name}: {name}=={version} but requirements.lock has {lock[pip_name]}"


def test_envs_exist():
    assert {p.name for p in ENVS} >= {"flowprior.yaml", "plots.yaml"}


def test_torch_pinned_everywhere():
    assert _lock()["torch"] == TORCH
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"torch=={TORCH}" in deps
    for env_file in ENVS:
        torch = [(n, v) for n, v, _ in _env_pins(env_file) if _norm(n) in {"torch", "pytorch"}]
        assert torch == [("torch", TORCH)], env_file.name


def test_pyproject_lower_bounds_are_the_locked_versions():
    lock = _lock()
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(==|>=)(\S+)", dep)
        assert match, f"pyproject.toml: {dep!r}: expected name>=version (or torch==)"
        assert lock[_norm(match[1])] == match[3], f"pyproject.toml: {dep} vs lock"


def test_plots_env_extends_library_env():
    lib = {(_norm(n), v) for n, v, _ in _env_pins(REPO / "envs" / "flowprior.yaml")}
    plots = {(_norm(n), v) for n, v, _ in _env_pins(REPO / "envs" / "plots.yaml")}
    assert lib <= plots
    assert {"matplotlib-base", "corner"} <= {n for n, _ in plots}
