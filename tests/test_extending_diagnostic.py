"""Add a diagnostic through the documented route (docs/extending.md, "Add a diagnostic").

The code example of that section is executed as written: it registers a sequence quantity
and its verdict rule. ``diagnose_sequence`` on exact samples of ``gaussian_linear`` must then
carry the new value in the diagnostics record, in the verdict (ok with the default threshold,
warn past a lower one) and in the tables. The registration is removed afterwards.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from flowprior.chains import Chain, write_chain
from flowprior.diagnostics import (
    analysis_tables,
    default_thresholds,
    diagnose_sequence,
    quantities,
    rules,
    tables_markdown,
    unregister_quantity,
    unregister_rule,
)
from flowprior.errors import InputError
from flowprior.problems.analytic import SPEC_PREFIX, get_analysis

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
# Small samples; the Gaussian parameter shift for the tension (the toy quantity reads none of
# it, and the flow shift would train two flows in each of the three diagnose_sequence calls:
# 71 s instead of 17 s; tests/test_tension_workflow.py tests flow_shift_entries, and the
# end-to-end study diagnose_sequence with the flow shift).
SMALL = {"n_exact_samples": 1500, "n_flow_samples": 1500, "n_boot": 20, "c2st_max_n": 1000,
         "tension": {"method": "gaussian"}}


def _documented_example() -> str:
    section = DOC.read_text().split("## Add a diagnostic", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section should show exactly one code example"
    return blocks[0]


@pytest.fixture
def toy_diagnostic():
    before_q, before_r = quantities(), rules()
    exec(compile(_documented_example(), str(DOC), "exec"), {"__name__": "toy_diagnostic"})
    try:
        yield
    finally:
        if "spread_ratio" in {q.name for q in quantities()}:
            unregister_quantity("spread_ratio")
        if "spread_ratio" in {r.check for r in rules()}:
            unregister_rule("spread_ratio")
        assert quantities() == before_q and rules() == before_r


def _run(tmp_path, problem, datasets, label, *, n, seed):
    x = problem.sample_posterior(datasets, n, seed=seed)
    chain = Chain(problem.params, x, log_likelihood=sum(problem.loglike(d)(x) for d in datasets),
                  log_prior=np.full(n, -problem.params.log_volume))
    path = tmp_path / f"{label}.parquet"
    write_chain(chain, path)
    return {"samples": str(path),
            "run_info": {"log_evidence": problem.log_evidence(datasets), "log_evidence_err": 0.01}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toy")
    problem = get_analysis("gaussian_linear")
    datasets = {d: {"likelihood": f"{SPEC_PREFIX}gaussian_linear", "kwargs": {"dataset": d}}
                for d in ("A", "B")}
    return dict(
        sequence=["A", "B"], params=problem.params, datasets=datasets,
        stage1={d: _run(tmp, problem, [d], f"s1{d}", n=2000, seed=i) for i, d in enumerate("AB")},
        previous=None,
        sequential={"pocomc": _run(tmp, problem, ["A", "B"], "seq", n=2000, seed=10)},
        joint=_run(tmp, problem, ["A", "B"], "joint", n=2000, seed=11),
        fidelity={}, seed=1,
    )  # fmt: skip


def test_toy_diagnostic_reaches_record_verdict_and_tables(toy_diagnostic, inputs):
    assert default_thresholds()["spread_ratio"] == 1.0
    out = diagnose_sequence(**inputs, settings=SMALL)
    ratio = out["spread_ratio"]["pocomc"]
    problem = get_analysis("gaussian_linear")
    exact = np.mean(np.sqrt(np.diag(problem.posterior_moments(["A", "B"])[1])
                            / np.diag(problem.posterior_moments(["B"])[1])))
    assert ratio == pytest.approx(exact, rel=0.05)  # the value, not only its presence
    assert ratio < 0.9  # A and B together constrain more than B alone
    assert out["verdict"]["status"] == "ok", out["verdict"]
    assert "spread_ratio" not in out["verdict"]["not_measured"]

    strict = diagnose_sequence(**inputs, settings={**SMALL, "spread_ratio": 0.3})
    assert strict["spread_ratio"] == out["spread_ratio"]
    assert strict["verdict"]["status"] == "warn"
    (reason,) = strict["verdict"]["reasons"]
    assert "spread ratio" in reason and "pocomc" in reason and "spread_ratio = 0.3" in reason

    off = diagnose_sequence(**inputs, settings={**SMALL, "spread_ratio": None})
    assert off["verdict"]["status"] == "ok"

    # the tables read the record back from summary.json (JSON round trip)
    record = json.loads(json.dumps(strict))
    summary = {"analysis": "toy", "sequences": [
        {"sequence": ["A", "B"], "stage": "A__B", "diagnostics": record,
         "verdict": record["verdict"]}]}  # fmt: skip
    verdicts = analysis_tables(summary)["verdicts"]
    assert list(verdicts.columns) == ["sequence", "verdict", "reasons", "max_spread_ratio"]
    assert verdicts.loc[0, "max_spread_ratio"] == pytest.approx(ratio)
    assert verdicts.loc[0, "verdict"] == "warn"
    assert "max_spread_ratio" in tables_markdown("Analysis toy", analysis_tables(summary))


def test_without_the_registration_the_key_is_refused(inputs):
    assert "spread_ratio" not in default_thresholds()
    with pytest.raises(InputError, match="diagnostics: spread_ratio: unknown key"):
        diagnose_sequence(**inputs, settings={**SMALL, "spread_ratio": 0.5})


def test_registering_twice_is_refused(toy_diagnostic):
    with pytest.raises(InputError, match="registered already"):
        exec(compile(_documented_example(), str(DOC), "exec"), {"__name__": "again"})
