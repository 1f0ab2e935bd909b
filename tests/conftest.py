"""Shared fixtures: small trained models and the end-to-end workflow run, built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see env notes: the threads trap

import numpy as np
import pytest
import torch

# One torch intra-op thread in the test processes: `make test` runs two pytest-xdist workers on
# two cores, and the flows of the unit tests are small (a second thread costs more in
# hand-offs than it saves: test_flows, test_prior_transform and test_fastflow take ~15 %
# less time with one). The library sets its own threads where it trains or samples
# (TrainConfig.threads, the samplers' ``threads``), and the tests of that restore (test_train,
# test_samplers, test_nested) set a different count around the call so that a leak shows.
# Subprocesses (the end-to-end study, CLI tests) are not affected.
torch.set_num_threads(1)

from flowprior.chains import Chain
from flowprior.params import ParameterSpace


def assert_one_line(exc_info, *needles):
    """The error of ``pytest.raises`` is one line and contains every needle."""
    msg = str(exc_info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    for needle in needles:
        assert str(needle) in msg, (needle, msg)


def make_space(bounds, names=None) -> ParameterSpace:
    """A parameter space from a list of (lower, upper) pairs."""
    names = names or [f"p{i}" for i in range(len(bounds))]
    return ParameterSpace.from_dict(
        {"parameters": [{"name": n, "lower": lo, "upper": hi} for n, (lo, hi) in zip(names, bounds)]}
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test of the end-to-end run is slow. They all live in tests/test_workflow.py, so
    ``make test`` (pytest-xdist, ``--dist loadfile``) runs them on one worker and the workflow
    runs once per test session.

    That file is also moved to the front of the collection: the end-to-end study is the longest
    single piece of ``make test``, so it must start first. With ``--no-loadscope-reorder`` (the
    Makefile's) xdist hands out files in collection order, the first to the first worker, and
    gives that worker nothing more while it has more than two tests of the file pending; the
    other worker takes every other file meanwhile. (xdist's default order, most tests first,
    started it after about 80 s of unit tests.)

    The unit-test files follow, the slowest first (:data:`SLOWEST_FIRST`, measured): when the
    end-to-end worker comes free, only short files are left, so the two workers end within
    seconds of each other (in alphabetical order a 20-s file could run alone at the end).
    """
    for item in items:
        if "e2e_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    rank = {name: k for k, name in enumerate(("test_workflow.py", *SLOWEST_FIRST))}
    # stable: files not listed keep their (alphabetical) order after the listed ones
    items.sort(key=lambda i: rank.get(i.path.name, len(rank)))


#: Unit-test files by their time in ``make test`` (seconds summed over a file's tests with
#: ``--durations=0``, fresh clone, 2026-12-06): shift 60, diagnostics 38, whiten_auto 24,
#: hostile_cli 21, tension_workflow 20, nested 20, diagnostics_metrics 17, extending_diagnostic
#: 17, samplers 16, profiles 15, chain_inputs_workflow 11, hostile_inputs 12, config_schema 12,
#: training_study 12, hostile_models 11. A file left out only runs later; nothing else changes.
SLOWEST_FIRST = (
    "test_shift.py", "test_diagnostics.py", "test_whiten_auto.py", "test_hostile_cli.py",
    "test_tension_workflow.py", "test_nested.py", "test_diagnostics_metrics.py",
    "test_extending_diagnostic.py", "test_samplers.py", "test_profiles.py",
    "test_hostile_inputs.py", "test_config_schema.py", "test_training_study.py",
    "test_chain_inputs_workflow.py", "test_hostile_models.py",
)  # fmt: skip


@pytest.fixture(scope="session")
def e2e_study(tmp_path_factory):
    """The end-to-end study (tests/e2e.py), run by Snakemake once per session (per worker)."""
    from e2e import run_study

    study = run_study(tmp_path_factory.mktemp("e2e"))
    assert study.proc.returncode == 0, study.failure_report()
    return study


@pytest.fixture(scope="session")
def gauss_chain_2d() -> Chain:
    """Exact N((0.5, -1), diag(1, 0.25)) samples in the box [-5, 5] x [-4, 3]."""
    rng = np.random.default_rng(7)
    mean, sd = np.array([0.5, -1.0]), np.array([1.0, 0.5])
    x = mean + sd * rng.standard_normal((4000, 2))
    logp = -0.5 * np.sum(((x - mean) / sd) ** 2, axis=1) - np.log(sd).sum() - np.log(2 * np.pi)
    return Chain(make_space([(-5, 5), (-4, 3)]), x, log_posterior=logp, source="gauss2d")


@pytest.fixture(scope="session")
def small_result(gauss_chain_2d):
    """A quickly trained MAF on the 2-D Gaussian chain."""
    from flowprior.train import TrainConfig, train_flow

    cfg = TrainConfig(
        kind="maf", transforms=2, hidden=(16, 16), max_steps=150, eval_every=50,
        batch_size=256, lr=3e-3, progress=False, seed=3, whiten="diagonal",
    )
    return train_flow(gauss_chain_2d, cfg)
