"""The train / sample / logpdf / info subcommands, end to end through ``main``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowprior.chains import read_chain, write_chain
from flowprior.cli import main
from flowprior.priors import FlowPrior


@pytest.fixture(scope="module")
def files(tmp_path_factory, gauss_chain_2d):
    d = tmp_path_factory.mktemp("cli")
    chain, params = d / "chain.csv", d / "params.yaml"
    write_chain(gauss_chain_2d, chain, fmt="csv")
    gauss_chain_2d.params.write(params)
    model = d / "model.zip"
    rc = main([
        "train", str(chain), "--params", str(params), "--out", str(model), "--flow", "maf",
        "--transforms", "2", "--hidden", "16", "--max-steps", "60", "--seed", "5", "--quiet",
        "--history", str(d / "history.csv"),
    ])
    assert rc == 0
    return {"dir": d, "chain": chain, "params": params, "model": model}


def test_train_writes_a_loadable_model_and_history(files):
    prior = FlowPrior.load(files["model"])
    assert prior.names == ("p0", "p1") and prior.manifest["training"]["hidden"] == [16, 16]
    assert prior.manifest["seed"] == 5
    assert len(pd.read_csv(files["dir"] / "history.csv")) >= 1


def test_sample_and_logpdf(files, tmp_path):
    out = tmp_path / "s.parquet"
    assert main(["sample", str(files["model"]), "-n", "500", "--out", str(out), "--seed", "3"]) == 0
    prior = FlowPrior.load(files["model"])
    samples = read_chain(out, prior.params)
    np.testing.assert_array_equal(samples.samples, prior.rvs(500, seed=3))
    np.testing.assert_allclose(samples.log_prior, prior.logpdf(samples.samples))

    pts = tmp_path / "pts.csv"
    pd.DataFrame({"p0": [0.0, 7.0], "p1": [-1.0, 0.0]}).to_csv(pts, index=False)
    res = tmp_path / "logpdf.csv"
    assert main(["logpdf", str(files["model"]), str(pts), "--out", str(res)]) == 0
    got = pd.read_csv(res)
    assert got["logpdf"].iloc[0] == pytest.approx(prior.logpdf(np.array([0.0, -1.0])), abs=1e-12)
    assert got["logpdf"].iloc[1] == -np.inf  # outside the box


def test_info(files, capsys):
    assert main(["info", str(files["model"])]) == 0
    out = capsys.readouterr().out
    assert "maf, 2 transforms" in out and "p0" in out and "seed 5" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "missing.zip"], "missing.zip: model not found"),
        (["sample", "missing.zip", "-n", "3", "--out", "x.parquet"], "model not found"),
        (["train", "nochain.csv", "--params", "PARAMS", "--out", "m.zip"], "nochain.csv"),
        (["train", "CHAIN", "--params", "PARAMS", "--out", "m.zip", "--loss", "kl"],
         "needs a log_posterior"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(files, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "bare.csv"
    pd.read_csv(files["chain"])[["p0", "p1"]].to_csv(bare, index=False)
    argv = [str(files["params"]) if a == "PARAMS" else str(bare) if a == "CHAIN" else a
            for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "m.zip").exists()
