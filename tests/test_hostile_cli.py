"""Hostile use of the command line (issue #16): data loss, inputs used as outputs, outputs that
cannot be written, bad option values and unexpected exceptions.

Every hostile situation is built inside its test. A refused command must exit with status 2
and one line on stderr naming the path and the option, and leave the working directory
exactly as it was: no partial output, every pre-existing file byte-identical (the whole tree
is compared before and after, see :func:`_snapshot`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowprior import cli, commands
from flowprior import io as model_io
from flowprior.chains import write_chain
from flowprior.cli import main
from flowprior.errors import InputError, OutputError
from flowprior.priors import FlowPrior

#: A fast, tiny training run (the model's numbers do not matter here).
FAST = ["--flow", "maf", "--transforms", "1", "--hidden", "8", "--max-steps", "20",
        "--eval-every", "10", "--seed", "2", "--quiet"]

NOTES = b"my notes: irreplaceable\n"


def _snapshot(root: Path) -> dict[str, object]:
    """Every path under ``root`` with its bytes (files), target (links) or a marker (dirs)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def _run(argv: list[str]) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as info:  # usage errors
        return info.code


def _refused(capsys, argv, *needles, status=2) -> str:
    """Run ``argv``; assert the exit status and one stderr line holding every needle."""
    rc = _run(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == status, err
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith("flowprior") and "error:" in line and "Traceback" not in line, line
    for needle in needles:
        assert str(needle) in line, (needle, line)
    return line


@pytest.fixture(scope="module")
def trained(tmp_path_factory, gauss_chain_2d):
    """A zip model and a directory model, trained once through the CLI."""
    d = tmp_path_factory.mktemp("hostile_cli")
    chain, params = d / "chain.csv", d / "params.yaml"
    write_chain(gauss_chain_2d, chain, fmt="csv")
    gauss_chain_2d.params.write(params)
    zip_model, dir_model = d / "model.zip", d / "model_dir"
    for out in (zip_model, dir_model):
        assert main(["train", str(chain), "--params", str(params), "--out", str(out), *FAST]) == 0
    return {"chain": chain, "params": params, "zip": zip_model, "dir": dir_model}


@pytest.fixture()
def work(tmp_path, monkeypatch, trained):
    """A user's working directory: chain, parameter table, notes, the two models; cwd there."""
    for name in ("chain.csv", "params.yaml"):
        shutil.copy(trained["chain"].parent / name, tmp_path / name)
    (tmp_path / "notes.txt").write_bytes(NOTES)
    shutil.copy(trained["zip"], tmp_path / "model.zip")
    shutil.copytree(trained["dir"], tmp_path / "model_dir")
    pd.DataFrame({"p0": [0.0, 1.0], "p1": [-1.0, 0.5]}).to_csv(tmp_path / "points.csv",
                                                               index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _train(out, *extra):
    return ["train", "chain.csv", "--params", "params.yaml", "--out", out, *FAST, *extra]


# ------------------------------------------------------------------------------ data loss
def _foreign_dir(d):
    (d / "results").mkdir()
    (d / "results" / "table.csv").write_text("a,b\n1,2\n")
    (d / "results" / "notes.txt").write_bytes(NOTES)
    return "results", "exists and is not a flowprior model (no manifest.json)"


def _subdir_only(d):
    (d / "out").mkdir()
    (d / "out" / "sub").mkdir()
    return "out", "sub, which is not a model file"


def _model_dir_plus_user_file(d):
    (d / "model_dir" / "notes.txt").write_bytes(NOTES)
    return "model_dir", "notes.txt, which is not part of a flowprior model"


def _dir_with_foreign_manifest(d):
    (d / "out").mkdir()
    (d / "out" / "manifest.json").write_text(json.dumps({"format": "someone-else"}))
    return "out", "not a flowprior-model manifest"


def _dir_with_broken_manifest(d):
    (d / "out").mkdir()
    (d / "out" / "manifest.json").write_text("{not json")
    return "out", "not valid JSON"


def _dir_with_deep_manifest(d):
    (d / "out").mkdir()
    (d / "out" / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    return "out", "not valid JSON"


def _model_dir_with_symlink(d):
    (d / "model_dir" / "link").symlink_to(d / "notes.txt")
    return "model_dir", "link, which is not a model file"


def _empty_dir(d):
    (d / "out").mkdir()
    return "out", "an empty directory"


def _dir_without_manifest(d):
    (d / "out").mkdir()
    (d / "out" / "weights.safetensors").write_bytes(b"\0" * 16)
    return "out", "no manifest.json"


def _file_where_model_dir(d):
    return "notes.txt", "exists and is not a directory"


def _zip_is_text(d):
    (d / "m.zip").write_bytes(NOTES)
    return "m.zip", "not a readable zip archive"


def _zip_without_manifest(d):
    with zipfile.ZipFile(d / "m.zip", "w") as zf:
        zf.writestr("data.csv", "a,b\n1,2\n")
    return "m.zip", "a zip without manifest.json"


def _zip_with_foreign_manifest(d):
    with zipfile.ZipFile(d / "m.zip", "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "other-tool"}))
    return "m.zip", "not a flowprior-model manifest"


def _zip_is_a_directory(d):
    (d / "m.zip").mkdir()
    (d / "m.zip" / "notes.txt").write_bytes(NOTES)
    return "m.zip", "is a directory"


def _symlink_to_model(d):
    (d / "link.zip").symlink_to(d / "model.zip")
    return "link.zip", "symbolic link"


def _dangling_symlink(d):
    (d / "gone.zip").symlink_to(d / "nowhere.zip")
    return "gone.zip", "symbolic link"


def _cwd_dot(d):
    return ".", "contains CHAIN"


def _cwd_absolute(d):
    return str(d), "contains CHAIN"


def _dir_holding_chain_elsewhere(d):
    (d / "sub").mkdir()
    shutil.move(d / "chain.csv", d / "sub" / "chain.csv")
    return "sub", "contains CHAIN", ["train", "sub/chain.csv", "--params", "params.yaml"]


TRAIN_OUT_CASES = {
    "foreign directory": _foreign_dir,
    "directory with only a subdirectory": _subdir_only,
    "model directory plus a user's file": _model_dir_plus_user_file,
    "directory with another tool's manifest.json": _dir_with_foreign_manifest,
    "directory with a broken manifest.json": _dir_with_broken_manifest,
    "directory with a 200k-deep manifest.json": _dir_with_deep_manifest,
    "model directory with a symlink": _model_dir_with_symlink,
    "directory without manifest.json": _dir_without_manifest,
    "empty directory": _empty_dir,
    "regular file where a model directory goes": _file_where_model_dir,
    ".zip that is a text file": _zip_is_text,
    ".zip without manifest.json": _zip_without_manifest,
    ".zip with another tool's manifest": _zip_with_foreign_manifest,
    ".zip that is a directory": _zip_is_a_directory,
    "symlink to a model": _symlink_to_model,
    "dangling symlink": _dangling_symlink,
    "--out . (the working directory)": _cwd_dot,
    "--out $PWD": _cwd_absolute,
    "directory that holds the chain": _dir_holding_chain_elsewhere,
}


@pytest.mark.parametrize("case", sorted(TRAIN_OUT_CASES))
def test_train_never_replaces_what_flowprior_did_not_write(work, capsys, case):
    built = TRAIN_OUT_CASES[case](work)
    out, reason = built[0], built[1]
    argv = _train(out)
    if len(built) == 3:
        argv = built[2] + argv[4:]
    before = _snapshot(work)
    _refused(capsys, argv, f"{out}: --out:", reason)
    assert _snapshot(work) == before
    assert (work / "notes.txt").read_bytes() == NOTES


@pytest.mark.parametrize("target", ["model.zip", "model_dir", "new.zip", "new_dir"])
def test_train_replaces_its_own_models_and_writes_new_ones(work, target):
    existed = (work / target).exists()
    assert _run(_train(target, "--seed", "9")) == 0
    prior = FlowPrior.load(work / target)
    assert prior.manifest["seed"] == 9
    if (work / target).is_dir():  # replaced, not merged into: only model entries
        assert "manifest.json" in os.listdir(work / target)
        assert set(os.listdir(work / target)) <= set(model_io.ENTRIES)
    assert existed == (target in ("model.zip", "model_dir"))
    assert (work / "notes.txt").read_bytes() == NOTES
    assert not [p for p in os.listdir(work) if p.startswith(".")]  # no temporaries left


# ------------------------------------------------------------------ inputs used as outputs
def _hardlink(work, src, name):
    os.link(work / src, work / name)
    return name


def _symlink(work, src, name):
    (work / name).symlink_to(work / src)
    return name


INPUT_AS_OUTPUT = {
    "train CHAIN --out CHAIN": (lambda w: _train("chain.csv"), "chain.csv: --out:",
                                "same file as CHAIN"),
    "train --out PARAMS": (lambda w: _train("params.yaml"), "params.yaml: --out:",
                           "same file as --params"),
    "train --out ./CHAIN (another spelling)": (lambda w: _train("./sub/../chain.csv"),
                                               "--out:", "same file as CHAIN"),
    "train --history CHAIN": (lambda w: _train("m.zip", "--history", "chain.csv"),
                              "chain.csv: --history:", "same file as CHAIN"),
    "train --history PARAMS": (lambda w: _train("m.zip", "--history", "params.yaml"),
                               "params.yaml: --history:", "same file as --params"),
    "train --history M --out M": (lambda w: _train("m.zip", "--history", "m.zip"),
                                  "m.zip: --out:", "same file as --history"),
    "train --history M --out M (existing model)": (
        lambda w: _train("model.zip", "--history", "model.zip"), "model.zip: --out:",
        "same file as --history"),
    "train --history = hard link of CHAIN": (
        lambda w: _train("m.zip", "--history", _hardlink(w, "chain.csv", "h.csv")),
        "h.csv: --history:", "same file as CHAIN"),
    "train --history = symlink to CHAIN": (
        lambda w: _train("m.zip", "--history", _symlink(w, "chain.csv", "h.csv")),
        "h.csv: --history:", "same file as CHAIN"),
    "train --out = symlink to CHAIN": (
        lambda w: _train(_symlink(w, "chain.csv", "c.zip")), "c.zip: --out:",
        "same file as CHAIN"),
    "train --history inside the --out directory": (
        lambda w: _train("model_dir", "--history", "model_dir/h.csv"), "--out:",
        "contains --history"),
    "logpdf M POINTS --out POINTS": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out", "points.csv"],
        "points.csv: --out:", "same file as POINTS"),
    "logpdf --out = hard link of POINTS": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out",
                   _hardlink(w, "points.csv", "l.csv")], "l.csv: --out:", "same file as POINTS"),
    "logpdf --out = symlink to POINTS": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out",
                   _symlink(w, "points.csv", "l.csv")], "l.csv: --out:", "same file as POINTS"),
    "logpdf --out inside the MODEL directory": (
        lambda w: ["logpdf", "model_dir", "points.csv", "--out", "model_dir/l.csv"],
        "model_dir/l.csv: --out:", "inside MODEL"),
    "logpdf --out = the MODEL (parquet-named link)": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out",
                   _symlink(w, "model.zip", "m.parquet")], "m.parquet: --out:",
        "same file as MODEL"),
    "sample --out inside the MODEL directory": (
        lambda w: ["sample", "model_dir", "-n", "5", "--out", "model_dir/s.csv"],
        "model_dir/s.csv: --out:", "inside MODEL"),
    "sample --out = the MODEL (csv-named hard link)": (
        lambda w: ["sample", "model.zip", "-n", "5", "--out",
                   _hardlink(w, "model.zip", "s.csv")], "s.csv: --out:", "same file as MODEL"),
}


@pytest.mark.parametrize("case", sorted(INPUT_AS_OUTPUT))
def test_an_input_is_never_an_output(work, capsys, case):
    build, where, reason = INPUT_AS_OUTPUT[case]
    (work / "sub").mkdir()
    argv = build(work)
    before = _snapshot(work)
    _refused(capsys, argv, where, reason)
    assert _snapshot(work) == before


# ---------------------------------------------------------- outputs checked before the work
def _file_parent(w):
    return "notes.txt/h.csv"


PRECHECK = {
    "train --history nodir/h.csv": (
        lambda w: _train("m.zip", "--history", "nodir/h.csv"), "nodir/h.csv: --history:",
        "directory 'nodir' does not exist"),
    "train --out nodir/m.zip": (lambda w: _train("nodir/m.zip"), "nodir/m.zip: --out:",
                                "does not exist"),
    "train --out nodir/model (directory model)": (lambda w: _train("nodir/model"),
                                                  "nodir/model: --out:", "does not exist"),
    "train --history under a file": (lambda w: _train("m.zip", "--history", _file_parent(w)),
                                     "notes.txt/h.csv: --history:", "is not a directory"),
    "train --history is a directory": (lambda w: _train("m.zip", "--history", "model_dir"),
                                       "model_dir: --history:", "is a directory"),
    "train --history is a user's CSV": (
        lambda w: (w / "mine.csv").write_text("a,b\n1,2\n") and _train("m.zip", "--history",
                                                                       "mine.csv"),
        "mine.csv: --history:", "not those of a flowprior training history"),
    "train --history is the notes": (lambda w: _train("m.zip", "--history", "notes.txt"),
                                     "notes.txt: --history:", "flowprior replaces only"),
    "train --out ''": (lambda w: _train(""), "--out: empty path", ""),
    "sample --out nodir/s.csv": (
        lambda w: ["sample", "model.zip", "-n", "5", "--out", "nodir/s.csv"],
        "nodir/s.csv: --out:", "does not exist"),
    "sample --out is a directory": (
        lambda w: (w / "s.csv").mkdir() or ["sample", "model.zip", "-n", "5", "--out", "s.csv"],
        "s.csv: --out:", "is a directory"),
    "sample --out is a user's CSV": (
        lambda w: (w / "s.csv").write_text("x,y\n1,2\n") and
        ["sample", "model.zip", "-n", "5", "--out", "s.csv"], "s.csv: --out:",
        "not those of flowprior samples"),
    "sample --out is a user's Parquet": (
        lambda w: pd.DataFrame({"x": [1.0]}).to_parquet(w / "s.parquet") or
        ["sample", "model.zip", "-n", "5", "--out", "s.parquet"], "s.parquet: --out:",
        "not those of flowprior samples"),
    "sample --out is garbage named .parquet": (
        lambda w: (w / "s.parquet").write_bytes(b"PAR1 not really") and
        ["sample", "model.zip", "-n", "5", "--out", "s.parquet"], "s.parquet: --out:",
        "unreadable header"),
    "sample --out is binary named .csv": (
        lambda w: (w / "s.csv").write_bytes(b"\xff\xfe\x00binary") and
        ["sample", "model.zip", "-n", "5", "--out", "s.csv"], "s.csv: --out:",
        "unreadable header"),
    "sample --out is another model's samples": (
        lambda w: (w / "s.csv").write_text("a,b,c,weight,log_prior\n1,2,3,1,0\n") and
        ["sample", "model.zip", "-n", "5", "--out", "s.csv"], "s.csv: --out:",
        "not those of flowprior samples of this model"),
    "sample --out .txt": (lambda w: ["sample", "model.zip", "-n", "5", "--out", "s.txt"],
                          "s.txt: --out: unknown file type", ".parquet"),
    "sample --out without suffix": (lambda w: ["sample", "model.zip", "-n", "5", "--out", "s"],
                                    "s: --out: unknown file type", ".csv"),
    "logpdf --out nodir/l.csv": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out", "nodir/l.csv"],
        "nodir/l.csv: --out:", "does not exist"),
    "logpdf --out is a user's CSV": (
        lambda w: ["logpdf", "model.zip", "points.csv", "--out", "chain.csv"],
        "chain.csv: --out:", "not those of flowprior log-densities"),
    "logpdf --out is the notes (.csv named)": (
        lambda w: (w / "n.csv").write_bytes(NOTES) and
        ["logpdf", "model.zip", "points.csv", "--out", "n.csv"], "n.csv: --out:",
        "flowprior replaces only"),
    "logpdf --out .json": (lambda w: ["logpdf", "model.zip", "points.csv", "--out", "l.json"],
                           "l.json: --out: unknown file type", ""),
    "logpdf --out is a directory": (
        lambda w: (w / "l.csv").mkdir() or ["logpdf", "model.zip", "points.csv", "--out",
                                            "l.csv"], "l.csv: --out:", "is a directory"),
}


@pytest.mark.parametrize("case", sorted(PRECHECK))
def test_outputs_are_checked_before_the_work(work, capsys, case):
    build, where, reason = PRECHECK[case]
    argv = build(work)
    before = _snapshot(work)
    _refused(capsys, argv, where, reason)
    assert _snapshot(work) == before
    assert not (work / "m.zip").exists() and not (work / "nodir").exists()


def test_unwritable_directory_is_refused_before_training(work, capsys, monkeypatch):
    (work / "locked").mkdir()
    locked = str(work / "locked")
    if os.geteuid() == 0:  # root writes anywhere: make the permission check see what a user sees
        real = os.access
        monkeypatch.setattr(os, "access",
                            lambda p, mode, **kw: os.path.realpath(p) != locked
                            and real(p, mode, **kw))
    else:
        os.chmod(locked, 0o500)
    before = _snapshot(work)
    try:
        _refused(capsys, _train("locked/m.zip"), "locked/m.zip: --out:",
                 "directory 'locked' is not writable")
    finally:
        os.chmod(locked, 0o700)
    assert _snapshot(work) == before


def test_history_failure_after_training_leaves_no_model(work, monkeypatch, capsys):
    """If the history cannot be completed after all, the new model is removed again."""
    import flowprior._atomic as atomic

    real = atomic._finish

    def failing_finish(tmp, path):
        if Path(path).name == "h.csv":
            raise OSError(28, "No space left on device")
        real(tmp, path)

    monkeypatch.setattr(atomic, "_finish", failing_finish)
    before = _snapshot(work)
    line = _refused(capsys, _train("m.zip", "--history", "h.csv"), "OSError",
                    "No space left on device", status=1)
    assert "run with --debug for the traceback" in line
    assert _snapshot(work) == before  # neither m.zip nor h.csv nor a temporary file


@pytest.mark.parametrize("kind", ["sample", "logpdf", "history"])
def test_own_outputs_are_replaced(work, kind):
    """The recognition rule lets a rerun replace flowprior's own earlier output."""
    if kind == "history":
        argv = _train("m.zip", "--history", "h.csv")
        out = work / "h.csv"
    elif kind == "sample":
        argv = ["sample", "model.zip", "-n", "7", "--out", "s.parquet", "--seed", "1"]
        out = work / "s.parquet"
    else:
        argv = ["logpdf", "model.zip", "points.csv", "--out", "l.csv"]
        out = work / "l.csv"
    assert _run(argv) == 0
    first = out.read_bytes()
    if kind == "sample":
        argv[-1] = "2"
    assert _run(argv) == 0
    assert out.exists() and (kind != "sample" or out.read_bytes() != first)
    assert (work / "notes.txt").read_bytes() == NOTES


# ----------------------------------------------------------------------- bad option values
BAD_VALUES = {
    "--lr inf": (["--lr", "inf"], "argument --lr: must be a finite number, got 'inf'"),
    "--lr=-inf": (["--lr=-inf"], "argument --lr: must be a finite number"),
    "--lr nan": (["--lr", "nan"], "argument --lr: must be a finite number, got 'nan'"),
    "--lr -1": (["--lr", "-1"], "flow settings: lr must be"),
    "--lr 0": (["--lr", "0"], "flow settings: lr must be"),
    "--lr 1e999": (["--lr", "1e999"], "argument --lr: must be a finite number"),
    "--max-time inf": (["--max-time", "inf"], "argument --max-time: must be a finite number"),
    "--max-time nan": (["--max-time", "nan"], "argument --max-time: must be a finite number"),
    "--validation-fraction nan": (["--validation-fraction", "nan"],
                                  "argument --validation-fraction: must be a finite number"),
    "--seed -1": (["--seed", "-1"], f"argument --seed: must be between 0 and {2**63 - 1}"),
    "--seed 2**70": (["--seed", str(2**70)], "argument --seed: must be between 0 and"),
    "--seed 2**63": (["--seed", str(2**63)], "argument --seed: must be between 0 and"),
    "--seed 1.5": (["--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
    "--seed 1e3": (["--seed", "1e3"], "argument --seed: invalid int value: '1e3'"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_train_values_are_one_line_before_any_file_is_touched(work, capsys, case):
    extra, message = BAD_VALUES[case]
    before = _snapshot(work)
    _refused(capsys, _train("m.zip", "--history", "h.csv", *extra), message)
    assert _snapshot(work) == before


BAD_SAMPLE = {
    "-n 10000000000": (["-n", "10000000000"], "-n: must be between 1 and 10000000 samples"),
    "-n 10000001": (["-n", "10000001"], "different --seed"),
    "-n 1e10": (["-n", "1e10"], "argument -n: invalid int value: '1e10'"),
    "-n 0": (["-n", "0"], "-n: must be between 1 and 10000000 samples per call, got 0"),
    "-n -3": (["-n", "-3"], "got -3"),
    "--seed -1": (["-n", "5", "--seed", "-1"], "argument --seed: must be between 0 and"),
    "--seed 2**70": (["-n", "5", "--seed", str(2**70)], "argument --seed: must be between 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAMPLE))
def test_bad_sample_values(work, capsys, case):
    extra, message = BAD_SAMPLE[case]
    before = _snapshot(work)
    _refused(capsys, ["sample", "model.zip", "--out", "s.csv", *extra], message)
    assert _snapshot(work) == before


def test_sample_bound_is_checked_before_the_model_is_read(work, capsys, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model must not be loaded for a refused -n")

    monkeypatch.setattr(FlowPrior, "load", no_load)
    _refused(capsys, ["sample", "model.zip", "-n", str(10**12), "--out", "s.csv"], "-n:")


def test_info_fingerprint(work, capsys):
    assert main(["info", "model.zip", "--fingerprint"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == model_io.model_fingerprint(work / "model.zip") and len(printed) == 64
    int(printed, 16)
    before = _snapshot(work)
    _refused(capsys, ["info", "notes.txt", "--fingerprint"], "notes.txt")
    assert _snapshot(work) == before


def test_info_json_refuses_a_non_finite_manifest_value(work, capsys, monkeypatch):
    manifest = model_io.read_manifest(work / "model.zip")
    manifest["data"]["ess"] = float("nan")
    monkeypatch.setattr(model_io, "read_manifest", lambda path, **kw: manifest)
    line = _refused(capsys, ["info", "model.zip", "--json"], "model.zip: manifest.json:",
                    "NaN or infinite")
    assert "NaN," not in line
    assert capsys.readouterr().out == ""  # no invalid JSON was printed


# ---------------------------------------------------------------------------- catch-all
def _with_command(monkeypatch, exc):
    build = cli._build_parser

    def with_boom():
        parser, subparsers = build()
        boom = subparsers.add_parser("boom")

        def run(args):
            raise exc

        boom.set_defaults(func=run)
        return parser, subparsers

    monkeypatch.setattr(cli, "_build_parser", with_boom)


@pytest.mark.parametrize(
    "exc, line",
    [
        (RuntimeError("bad state"), "flowprior: error: RuntimeError: bad state"),
        (MemoryError("cannot allocate 149 GiB"), "MemoryError: cannot allocate 149 GiB"),
        (RecursionError("maximum recursion depth exceeded"), "RecursionError: maximum"),
        (FloatingPointError("training loss is nan\n at step 1"),
         "FloatingPointError: training loss is nan at step 1"),
        (KeyError("flow"), "KeyError: 'flow'"),
        (PermissionError(13, "Permission denied"), "PermissionError: [Errno 13]"),
    ],
)
def test_unexpected_exceptions_are_one_line_with_status_1(monkeypatch, capsys, exc, line):
    _with_command(monkeypatch, exc)
    assert main(["boom"]) == cli.EXIT_UNEXPECTED == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(line) or line in err, err
    assert err.rstrip().endswith("(run with --debug for the traceback)")


def test_debug_shows_the_traceback_of_an_unexpected_exception(monkeypatch, capsys):
    _with_command(monkeypatch, RuntimeError("bad state"))
    assert main(["--debug", "boom"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise exc' in err
    assert err.rstrip().endswith("flowprior: error: RuntimeError: bad state")


def test_input_errors_keep_status_2_and_interrupts_are_not_swallowed(monkeypatch, capsys):
    _with_command(monkeypatch, OutputError("x.csv: --out: is a directory"))
    assert main(["boom"]) == 2
    assert capsys.readouterr().err == "flowprior: error: x.csv: --out: is a directory\n"
    monkeypatch.undo()
    _with_command(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        main(["boom"])
    assert issubclass(OutputError, InputError)


# ------------------------------------------------------------------- through the real CLI
def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "flowprior.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_subprocess_out_pwd_deletes_nothing(work):
    before = _snapshot(work)
    proc = _cli(_train(str(work)), work)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"flowprior: error: {work}: --out:")
    assert len([ln for ln in proc.stderr.splitlines() if "error" in ln]) == 1
    assert _snapshot(work) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "model.zip", "-n", "10000000000", "--out", "s.csv"], "-n: must be between"),
        (["train", "chain.csv", "--params", "params.yaml", "--out", "m.zip", "--lr", "inf"],
         "argument --lr: must be a finite number"),
        (["logpdf", "model.zip", "points.csv", "--out", "points.csv"], "same file as POINTS"),
    ],
)
def test_subprocess_one_line_exit_2(work, argv, message):
    before = _snapshot(work)
    proc = _cli(argv, work)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert _snapshot(work) == before


def test_logpdf_recognises_only_its_own_columns(work):
    """The rule used for logpdf outputs: exactly the model's parameter names plus logpdf."""
    reason = commands._table_reason(lambda cols: cols == ["p0", "p1", "logpdf"], "x")
    (work / "ok.csv").write_text("p0,p1,logpdf\n0,0,-1\n")
    (work / "no.csv").write_text("p0,p1,logpdf,extra\n0,0,-1,2\n")
    assert reason(work / "ok.csv") is None
    assert "not those of x" in reason(work / "no.csv")
    np.testing.assert_equal(len(pd.read_csv(work / "ok.csv")), 1)


# ------------------------------------------- issue cases of other modules, through the CLI
@pytest.mark.parametrize("weight", [1e308, 5e-324])
def test_extreme_weights_train_and_info_json_stays_valid_json(work, capsys, weight):
    chain = pd.read_csv(work / "chain.csv")
    chain["weight"] = weight
    chain.to_csv(work / "w.csv", index=False)
    assert _run(["train", "w.csv", "--params", "params.yaml", "--out", "w.zip", *FAST]) == 0
    capsys.readouterr()
    assert _run(["info", "w.zip", "--json"]) == 0
    text = capsys.readouterr().out
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in info --json"))


@pytest.mark.parametrize("case", ["zero weights", "no rows", "200k-deep manifest"])
def test_issue_inputs_are_one_line_exit_2_through_the_cli(work, capsys, case):
    if case == "200k-deep manifest":
        with zipfile.ZipFile(work / "model.zip") as zf, zipfile.ZipFile(work / "d.zip", "w") as out:
            for name in zf.namelist():
                data = zf.read(name)
                out.writestr(name, "[" * 200_000 + "]" * 200_000 if name == "manifest.json"
                             else data)
        argv, needles = ["info", "d.zip"], ["d.zip", "manifest.json"]
    else:
        chain = pd.read_csv(work / "chain.csv")
        chain = chain.iloc[:0] if case == "no rows" else chain.assign(weight=0.0)
        chain.to_csv(work / "bad.csv", index=False)
        argv = ["train", "bad.csv", "--params", "params.yaml", "--out", "m.zip", *FAST]
        needles = ["bad.csv"] + (["weight"] if case == "zero weights" else [])
    before = _snapshot(work)
    _refused(capsys, argv, *needles)
    assert _snapshot(work) == before
