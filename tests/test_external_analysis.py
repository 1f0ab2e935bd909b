"""The README's worked example: a likelihood in a standalone .py file outside the repository
and a stage-1 posterior that exists only as a CSV chain, run end to end by the workflow."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from test_workflow import snakemake

MU_A, SD_A = np.array([0.5, -0.5]), np.array([0.6, 0.8])
MU_B, SD_B = np.array([1.0, 0.0]), np.array([0.5, 0.5])

LIKELIHOOD = textwrap.dedent(
    '''
    """A user's likelihood: a Gaussian measurement of both parameters."""
    import numpy as np

    def loglike(theta, *, mean, sd):
        mean, sd = np.asarray(mean), np.asarray(sd)
        z = (theta - mean) / sd
        return -0.5 * np.sum(z**2, axis=1) - np.sum(np.log(sd)) - np.log(2 * np.pi)
    '''
)


@pytest.mark.slow
def test_external_likelihood_and_csv_chain(tmp_path):
    user = tmp_path / "user"  # outside the repository
    user.mkdir()
    (user / "mylike.py").write_text(LIKELIHOOD)
    rng = np.random.default_rng(3)
    x = MU_A + SD_A * rng.standard_normal((6000, 2))
    pd.DataFrame({"mass": x[:, 0], "width": x[:, 1]}).to_csv(user / "stage_a.csv", index=False)
    (user / "params.yaml").write_text(
        "parameters:\n"
        "  - {name: mass, lower: -5, upper: 5, label: 'm'}\n"
        "  - {name: width, lower: -5, upper: 5, label: '\\Gamma'}\n"
    )
    config = {
        "analyses": {
            "mine": {
                "parameters": str(user / "params.yaml"),
                "datasets": {
                    "A": {"chain": str(user / "stage_a.csv")},
                    "B": {
                        "likelihood": f"{user / 'mylike.py'}:loglike",
                        "kwargs": {"mean": MU_B.tolist(), "sd": SD_B.tolist()},
                    },
                },
                "sequences": [["A", "B"]],
                "samplers": ["pocomc", "emcee"],
                "flow": {"max_steps": 1500, "patience": 500},
                "pocomc": {"n_effective": 512, "n_active": 256, "n_total": 2048},
                "emcee": {"walkers": 16, "steps": 2000},
            }
        }
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(
        "--cores", "2", "--configfile", str(tmp_path / "study.yaml"),
        "--replace-workflow-config", workdir=work, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    summary = json.loads((work / "results/mine/summary.json").read_text())
    assert summary["joint"] == {}  # A has no likelihood: no joint reference
    assert summary["stage1"]["A"]["run_info"]["sampler"] == "chain"
    # closed form: product of the two Gaussians
    prec = 1 / SD_A**2 + 1 / SD_B**2
    mean = (MU_A / SD_A**2 + MU_B / SD_B**2) / prec
    sd = np.sqrt(1 / prec)
    log_z = stats.norm.logpdf(MU_A, MU_B, np.sqrt(SD_A**2 + SD_B**2)).sum()
    for sampler in ("pocomc", "emcee"):
        frame = pd.read_parquet(work / f"results/mine/sequential/A__B/{sampler}/samples.parquet")
        w = frame["weight"].to_numpy()
        got = np.average(frame[["mass", "width"]].to_numpy(), weights=w, axis=0)
        np.testing.assert_allclose(got, mean, atol=0.1 * sd.max() + 0.02, err_msg=sampler)
    run = summary["sequential"]["A__B"]["pocomc"]["run_info"]
    assert run["log_evidence"] == pytest.approx(log_z, abs=0.1)  # log Z_{B|A}
