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
    """
    for item in items:
        if "e2e_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    first = [i for i in items if i.path.name == "test_workflow.py"]
    if first:
        rest = [i for i in items if i.path.name != "test_workflow.py"]
        items[:] = first + rest


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
