"""flowprior._script.run_rule: the shared behaviour of the workflow's rule scripts."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from flowprior._script import run_rule
from flowprior.errors import InputError


def _fake_snakemake(log_path):
    return SimpleNamespace(
        log=[str(log_path)],
        rule="some_rule",
        wildcards=SimpleNamespace(items=lambda: [("posterior", "banana")]),
    )


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_success_logs_to_the_rule_log(tmp_path):
    log_path = tmp_path / "rule.log"

    def main(snakemake):
        logging.getLogger("flowprior.test").info("working on %s", snakemake.rule)

    run_rule(_fake_snakemake(log_path), main)
    text = log_path.read_text()
    assert "rule some_rule, wildcards {'posterior': 'banana'}" in text
    assert "working on some_rule" in text
    assert text.rstrip().endswith("done")


def test_flowprior_error_is_one_log_line_and_exit_1(tmp_path, capsys):
    log_path = tmp_path / "rule.log"

    def main(snakemake):
        raise InputError("data/chain.csv: column x: not a number")

    with pytest.raises(SystemExit) as info:
        run_rule(_fake_snakemake(log_path), main)
    assert info.value.code == 1
    errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert errors[0].endswith("data/chain.csv: column x: not a number")
    assert "Traceback" not in log_path.read_text()
    assert "data/chain.csv: column x: not a number" in capsys.readouterr().err


def test_other_errors_are_logged_with_traceback_and_reraised(tmp_path):
    log_path = tmp_path / "rule.log"

    def main(snakemake):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_rule(_fake_snakemake(log_path), main)
    text = log_path.read_text()
    assert "rule some_rule failed" in text and "Traceback" in text and "boom" in text
