"""The command line: version, help, error handling."""

from __future__ import annotations

import subprocess
import sys

import pytest

import flowprior
from flowprior import cli
from flowprior.errors import InputError


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"flowprior {flowprior.__version__}"


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: flowprior")
    assert "--debug" in out and "--version" in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert capsys.readouterr().out.startswith("usage: flowprior")


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "c.csv", "--params", "p"], "the following arguments are required: --out"),
        (["train", "c.csv", "--out", "m", "--burn-in", "1.5"], "argument --burn-in: a fraction"),
        (["train", "c.csv", "--out", "m", "--select", "a,,b"], "argument --select: expected"),
        (["train", "c.csv", "--out", "m", "--format", "hdf"], "argument --format: invalid choice"),
        (["train", "c.csv", "--params", "p", "--out", "m", "--no-such"], "unrecognized arguments"),
        (["sample", "m.zip", "-n", "many", "--out", "s.csv"], "argument -n: invalid int value"),
    ],
)
def test_usage_errors_of_a_command_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("flowprior")
    assert "error:" in err[0] and err[0].endswith("--help)")


def _parser_with_failing_command(monkeypatch):
    build = cli._build_parser

    def with_fail():
        parser, subparsers = build()
        fail = subparsers.add_parser("fail")

        def run(args):
            raise InputError("chain.csv: column x: not a number")

        fail.set_defaults(func=run)
        ok = subparsers.add_parser("ok")
        ok.set_defaults(func=lambda args: None)
        return parser, subparsers

    monkeypatch.setattr(cli, "_build_parser", with_fail)


def test_flowprior_error_is_one_line_and_status_2(monkeypatch, capsys):
    _parser_with_failing_command(monkeypatch)
    assert cli.main(["fail"]) == cli.EXIT_ERROR == 2
    err = capsys.readouterr().err
    assert err == "flowprior: error: chain.csv: column x: not a number\n"
    assert cli.main(["ok"]) == 0


def test_debug_shows_the_traceback(monkeypatch, capsys):
    _parser_with_failing_command(monkeypatch)
    assert cli.main(["--debug", "fail"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.rstrip().endswith("flowprior: error: chain.csv: column x: not a number")


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "flowprior.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"flowprior {flowprior.__version__}"
