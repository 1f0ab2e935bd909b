"""A GetDist root as an external posterior of the workflow (issue #13): every file of the root
is an input of rule prepare_posterior, the parameter table may be left out (the root's names,
labels and ranges are used), `select` keeps the sampled parameters asked for, derived columns
are kept aside, and a change to one chain file reruns the job.

Only rule prepare_posterior runs (a few seconds); the full study is tests/test_workflow.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from e2e import job_blocks, snakemake

from flowprior.chains import read_chain
from flowprior.params import load_parameters

NAMES = ["omegabh2", "omegach2", "H0*"]
RANGES = {"omegabh2": [0.005, 0.1], "omegach2": [0.001, 0.99]}


@pytest.fixture
def study(tmp_path):
    from getdist import MCSamples

    rng = np.random.default_rng(0)
    parts = []
    for n in (400, 300, 500):
        x = np.column_stack([rng.normal(0.0224, 0.0002, n), rng.normal(0.12, 0.002, n)])
        parts.append(np.column_stack([x, 100 * np.sqrt(x.sum(axis=1) / 0.14)]))
    (tmp_path / "chains").mkdir()
    MCSamples(samples=parts, loglikes=[np.ones(len(p)) for p in parts], names=NAMES,
              labels=[r"\Omega_b h^2", r"\Omega_c h^2", "H_0"], ranges=RANGES).saveChainsAsText(
        str(tmp_path / "chains" / "planck"))  # fmt: skip
    config = {
        "posteriors": {
            "planck": {"chain": "chains/planck", "select": ["omegach2", "omegabh2"],
                       "burn_in": 0.25},  # fmt: skip
        }
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return tmp_path, path, parts


def _run(workdir, config, *more):
    proc = snakemake("--cores", "1", "--configfile", str(config), "--replace-workflow-config",
                     *more, "results/posteriors/planck/chain.parquet", workdir=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_a_getdist_root_without_a_table_is_a_posterior_and_its_files_are_inputs(study):
    workdir, config, parts = study
    out = _run(workdir, config)
    (block,) = job_blocks(out, "prepare_posterior")
    for name in ("planck_1.txt", "planck_2.txt", "planck_3.txt", "planck.paramnames",
                 "planck.ranges"):  # fmt: skip
        assert f"chains/{name}" in block, (name, block)
    base = workdir / "results/posteriors/planck"
    space = load_parameters(base / "parameters.yaml")
    # select: these sampled parameters, in this order, with the root's labels and ranges
    assert space.names == ("omegach2", "omegabh2")
    assert space.labels == (r"\Omega_c h^2", r"\Omega_b h^2")
    np.testing.assert_array_equal(space.lower, [0.001, 0.005])
    np.testing.assert_array_equal(space.upper, [0.99, 0.1])
    chain = read_chain(base / "chain.parquet", space)
    # exactly what the library reads from the root (tests/test_readers.py: = getdist's reading)
    ref = read_chain(workdir / "chains" / "planck", burn_in=0.25, select=["omegach2", "omegabh2"])
    np.testing.assert_array_equal(chain.samples, ref.samples)
    assert chain.sha256() == ref.sha256()
    # burn-in per chain file (getdist writes ~10 significant digits)
    kept = np.concatenate([p[len(p) // 4:] for p in parts])
    np.testing.assert_allclose(chain.samples, kept[:, [1, 0]], rtol=1e-8)
    # the derived H0 is carried along, aside
    np.testing.assert_array_equal(chain.derived["H0"], ref.derived["H0"])
    np.testing.assert_allclose(chain.derived["H0"], kept[:, 2], rtol=1e-8)
    # a change to one chain file reruns the job (tests/test_workflow.py: no change, no rerun)
    f = workdir / "chains" / "planck_2.txt"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines + lines[-1:]))  # one more sample in the second file
    (block,) = job_blocks(_run(workdir, config, "--dry-run"), "prepare_posterior")
    assert "chains/planck_2.txt" in block and "updated input files" in block.lower(), block
