"""The README's worked example: a likelihood in a standalone .py file outside the repository
and a stage-1 posterior that exists only as a CSV chain, run end to end by the workflow (the
analysis ``mine`` of the end-to-end study, tests/e2e.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from e2e import MU_A, MU_B, SD_A, SD_B


def test_external_likelihood_and_csv_chain(e2e_study):
    work = e2e_study.workdir
    assert not e2e_study.user.is_relative_to(work)  # the user's files lie outside the run
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
