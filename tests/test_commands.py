"""The train / sample / logpdf / info subcommands, end to end through ``main``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from flowprior import cli
from flowprior.chains import read_chain, write_chain
from flowprior.cli import main
from flowprior.commands import train_config_from_args, train_option
from flowprior.priors import FlowPrior
from flowprior.train import TrainConfig

#: A value other than the default for every TrainConfig field, as typed and as parsed.
NON_DEFAULT = {
    "kind": ("maf", "maf"),
    "transforms": ("5", 5),
    "hidden": ("8,16,8", (8, 16, 8)),
    "bins": ("12", 12),
    "loss": ("jeffreys", "jeffreys"),
    "batch_size": ("128", 128),
    "lr": ("0.0025", 0.0025),
    "lr_schedule": ("plateau", "plateau"),
    "warmup_steps": ("5", 5),
    "max_steps": ("77", 77),
    "max_time": ("12.5", 12.5),
    "patience": ("33", 33),
    "eval_every": ("7", 7),
    "ema_decay": ("0.9", 0.9),
    "eval_subset": ("300", 300),
    "validation_fraction": ("0.35", 0.35),
    "test_fraction": ("0.15", 0.15),
    "seed": ("42", 42),
    "threads": ("2", 2),
    "device": ("cuda", "cuda"),
    "dtype": ("float64", "float64"),
    "whiten": ("full", "full"),
    "degeneracy_tolerance": ("0", 0.0),
    "progress": (None, False),  # a switch: --quiet
}


def _train_args(extra):
    parser, _ = cli._build_parser()
    return parser.parse_args(["train", "chain.csv", "--params", "p.yaml", "--out", "m.zip", *extra])


def test_every_train_config_field_has_an_option_with_its_default_and_help():
    fields = dataclasses.fields(TrainConfig)
    assert set(NON_DEFAULT) == {f.name for f in fields}
    assert train_config_from_args(_train_args([])) == TrainConfig()
    parser, subparsers = cli._build_parser()
    help_text = subparsers.choices["train"].format_help()
    for f in fields:
        assert train_option(f) in help_text, f.name
    # the long-standing option names stay
    for option in ("--flow", "--hidden", "--batch-size", "--max-time", "--quiet", "--whiten",
                   "--dtype", "--eval-every"):
        assert option in help_text


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_each_train_option_round_trips_into_train_config(name):
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    typed, parsed = NON_DEFAULT[name]
    argv = [train_option(f)] + ([] if typed is None else [typed])
    cfg = train_config_from_args(_train_args(argv))
    assert getattr(cfg, name) == parsed != f.default
    assert cfg == dataclasses.replace(TrainConfig(), **{name: parsed})


def test_all_train_options_at_once_round_trip():
    argv = []
    for f in dataclasses.fields(TrainConfig):
        typed = NON_DEFAULT[f.name][0]
        argv += [train_option(f)] + ([] if typed is None else [typed])
    cfg = train_config_from_args(_train_args(argv))
    assert cfg == TrainConfig(**{name: parsed for name, (_, parsed) in NON_DEFAULT.items()})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--transforms", "three"], "argument --transforms: invalid int value: 'three'"),
        (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["--whiten", "partial"], "argument --whiten: invalid choice: 'partial'"),
        (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["--hidden", "64,x"], "argument --hidden: '64,x' is not N or N,N,..."),
        (["--eval-every", "0"], "flow settings: eval_every must be >= 1"),
        (["--validation-fraction", "1.5"], "flow settings: validation_fraction must be in (0, 1)"),
    ],
)
def test_bad_train_option_values_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv,
                                                        message):
    monkeypatch.chdir(tmp_path)  # the settings are checked before the chain file is looked at
    try:
        status = main(["train", "missing.csv", "--params", "p.yaml", "--out", "m.zip", *argv])
    except SystemExit as info:
        status = info.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "m.zip").exists()


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


def test_training_twice_with_the_same_seed_gives_byte_identical_files(files, tmp_path):
    argv = [
        "train", str(files["chain"]), "--params", str(files["params"]), "--flow", "maf",
        "--transforms", "2", "--hidden", "16", "--max-steps", "60", "--seed", "5", "--quiet",
    ]
    assert main([*argv, "--out", str(tmp_path / "again.zip"),
                 "--history", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.zip").read_bytes() == files["model"].read_bytes()
    # (the --history CSV keeps its wall-time column: it is a report, not the model)
    # a different seed gives a different model: the comparison above can fail
    assert main([*argv[:-3], "--seed", "6", "--quiet", "--out", str(tmp_path / "other.zip")]) == 0
    assert (tmp_path / "other.zip").read_bytes() != files["model"].read_bytes()
    assert "wall time not recorded" in _info_text(files["model"])


def _info_text(model) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["info", str(model)]) == 0
    return buf.getvalue()


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
