"""Diagnostics of a sequence on the built-in problems, with exact samples standing in for the
sampler runs: the verdicts must come out right (gaussian_linear ok, tension fail, bimodal warn
for multimodality), and the tables/Markdown must carry them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flowprior.problems.analytic import SPEC_PREFIX, get_analysis
from flowprior.chains import Chain, write_chain
from flowprior.diagnostics import (
    analysis_tables,
    analytic_reference,
    cost_table,
    diagnose_sequence,
    flow_fidelity,
    study_markdown,
    tables_markdown,
)

#: The flow parameter shift is left out here (``method: gaussian``): it has its own tests against
#: known shifts in tests/test_tension_workflow.py and tests/test_shift.py, and would add about a
#: minute to these, which check everything else a sequence's diagnosis holds.
SMALL = {"n_exact_samples": 2000, "n_flow_samples": 2000, "n_boot": 20, "c2st_max_n": 1500,
         "tension": {"method": "gaussian"}}
#: For checks of the bookkeeping only (values that are exact, whatever the sample sizes).
TINY = {"n_exact_samples": 300, "n_flow_samples": 300, "n_boot": 5, "c2st_max_n": 300,
        "tension": {"method": "gaussian"}}


def _plugin(name, dataset, **kw):
    return {"likelihood": f"{SPEC_PREFIX}{name}", "kwargs": {"dataset": dataset, **kw}}


def _run(tmp_path, problem, datasets, label, *, n, seed):
    x = problem.sample_posterior(datasets, n, seed=seed)
    loglike = sum(problem.loglike(d)(x) for d in datasets)
    chain = Chain(problem.params, x, log_likelihood=loglike,
                  log_prior=np.full(n, -problem.params.log_volume))
    path = tmp_path / f"{label}.parquet"
    write_chain(chain, path)
    return {"samples": str(path),
            "run_info": {"log_evidence": problem.log_evidence(datasets), "log_evidence_err": 0.01}}


def _diagnose(tmp_path, name, kwargs, *, n=3000, no_err=(), settings=SMALL):
    """``no_err``: runs ("A", "B", "joint") whose sampler reports no log Z error."""
    problem = get_analysis(name, **kwargs)
    datasets = {d: _plugin(name, d, **kwargs) for d in ("A", "B")}
    stage1 = {d: _run(tmp_path, problem, [d], f"s1{d}", n=n, seed=i) for i, d in enumerate("AB")}
    seq = _run(tmp_path, problem, ["A", "B"], "seq", n=n, seed=10)
    joint = _run(tmp_path, problem, ["A", "B"], "joint", n=n, seed=11)
    for label in no_err:
        (joint if label == "joint" else stage1[label])["run_info"]["log_evidence_err"] = None
    return diagnose_sequence(
        sequence=["A", "B"], params=problem.params, datasets=datasets, stage1=stage1,
        previous=None, sequential={"pocomc": seq}, joint=joint, fidelity={},
        settings=settings, seed=1,
    )


@pytest.fixture(scope="module")
def tension_diagnosis(tmp_path_factory):
    return _diagnose(tmp_path_factory.mktemp("tension"), "tension", {"offset": 4.0})


def test_gaussian_linear_is_ok(tmp_path):
    out = _diagnose(tmp_path, "gaussian_linear", {})
    assert out["verdict"]["status"] == "ok", out["verdict"]
    assert out["tension"]["parameter_shift_sigma"] < 2
    assert out["tension"]["parameter_shift_sigma"] == pytest.approx(
        out["tension"]["exact_parameter_shift_sigma"], abs=0.3)
    assert all(m["n_modes"] == 1 for m in out["modes"].values())
    assert out["agreement"]["pocomc"]["max_abs_mean_shift"] < 0.15
    assert out["vs_exact"]["joint"]["c2st"] < 0.55


@pytest.mark.parametrize("no_err, named", [
    (("A",), "A"), (("B",), "stage 1 B"), (("joint",), "joint A__B"),
    (("A", "B", "joint"), "joint A__B, A, stage 1 B"),
])
def test_log_r_error_stays_unknown_without_a_log_z_error(tmp_path, no_err, named):
    # log R and its error come from the runs' log Z values and errors only (exact here):
    # small samples suffice
    out = _diagnose(tmp_path, "gaussian_linear", {}, n=300, no_err=no_err, settings=TINY)
    t = out["tension"]
    problem = get_analysis("gaussian_linear")
    exact = (problem.log_evidence(["A", "B"]) - problem.log_evidence(["A"])
             - problem.log_evidence(["B"]))
    assert t["log_R"] == pytest.approx(exact)  # the value is known; its error is not
    assert t["log_R_err"] is None  # never sqrt of made-up zeros
    assert t["log_R_err_skipped"] == f"no log Z error reported by {named}"
    json.dumps(out, allow_nan=False)


def test_log_r_error_with_every_error_known(tmp_path):
    t = _diagnose(tmp_path, "gaussian_linear", {}, n=300, settings=TINY)["tension"]
    assert t["log_R_err"] == pytest.approx(np.sqrt(3) * 0.01)
    assert "log_R_err_skipped" not in t


def test_tension_of_four_sigma_fails(tension_diagnosis):
    out = tension_diagnosis
    assert out["verdict"]["status"] == "fail"
    assert out["tension"]["parameter_shift_sigma"] >= 3
    assert out["tension"]["suspiciousness_sigma"] >= 3
    assert any("tension" in r for r in out["verdict"]["reasons"])


def test_bimodal_is_flagged_for_multimodality(tmp_path):
    out = _diagnose(tmp_path, "bimodal", {})
    # exact samples everywhere: no failure, and multimodality is a warning (other warnings
    # may come from sampling noise: the 68 % interval overlap of two exact sample sets of a
    # bimodal posterior is 0.78 here)
    assert out["verdict"]["status"] == "warn", out["verdict"]
    assert out["modes"]["stage 1 A"]["n_modes"] == 2
    assert out["verdict"]["reasons"][0].startswith("number of modes (stage 1 A) = 2 > threshold")


def test_analytic_reference_needs_one_problem_and_its_box():
    problem = get_analysis("gaussian_linear")
    ds = {"A": _plugin("gaussian_linear", "A"), "B": _plugin("gaussian_linear", "B"),
          "X": {"likelihood": "mymodule:f"}, "T": _plugin("tension", "B")}
    ref = analytic_reference(ds, ["A", "B"], problem.params)
    assert ref is not None and ref[1] == ["A", "B"]
    assert analytic_reference(ds, ["A", "X"], problem.params) is None
    assert analytic_reference(ds, ["A", "T"], problem.params) is None
    from flowprior.params import ParameterSpace

    other = ParameterSpace(problem.params.names, problem.params.lower, problem.params.upper * 2)
    assert analytic_reference(ds, ["A"], other) is None


@pytest.mark.slow
def test_flow_fidelity_of_a_trained_flow(tmp_path):
    from flowprior.io import save_model
    from flowprior.train import TrainConfig, train_flow

    problem = get_analysis("gaussian_linear")
    x = problem.sample_posterior(["A"], 3000, seed=0)
    chain = Chain(problem.params, x, source="exact A")
    result = train_flow(chain, TrainConfig(kind="maf", hidden=(16, 16), max_steps=300,
                                           progress=False, seed=3))
    save_model(result, tmp_path / "model")
    out = flow_fidelity(model=tmp_path / "model", chain=chain,
                        validation={**result.metrics, **result.test},
                        exact=(problem, ["A"]), settings=SMALL, seed=1)
    assert out["n_held_out"] == 300 and out["held_out_split"] == "test"
    assert 0 < out["exact_kl"] < 0.5
    assert out["c2st"] < 0.6 and out["modes"]["n_modes"] == 1
    # the test split, which steered nothing (not the early-stopping split)
    assert out["held_out_nll"] == pytest.approx(result.test["test_nll"], abs=1e-4)
    assert out["gaussian_held_out_nll"] == result.test["gaussian_test_nll"]
    # not the chain the flow learned: refused
    other = Chain(problem.params, problem.sample_posterior(["A"], 3000, seed=5), source="other")
    with pytest.raises(Exception, match="not the chain this flow was trained on"):
        flow_fidelity(model=tmp_path / "model", chain=other, validation={}, settings=SMALL)


def test_tables_and_markdown_carry_the_verdicts(tension_diagnosis):
    out = tension_diagnosis
    summary = {"analysis": "tension", "sequences": [
        {"sequence": ["A", "B"], "stage": "A__B", "diagnostics": out, "verdict": out["verdict"]}]}
    tables = analysis_tables(summary)
    assert tables["verdicts"].loc[0, "verdict"] == "fail"
    assert tables["tension"].loc[0, "parameter_shift_sigma"] >= 3
    assert set(tables["agreement"]["reference"]) == {"joint", "exact"}
    md = tables_markdown("Analysis tension", tables)
    assert md.startswith("# Analysis tension") and "| A→B | fail |" in md
    page = study_markdown([summary], tables={"tension": "results/tension/tables/tables.md"},
                          figures={"tension": ["results/tension/figures/agreement.png"]})
    first_table = page.split("## tension")[0]
    assert "| tension | A→B | **fail** |" in first_table  # verdicts first
    assert "(tension/figures/agreement.png)" in page


def test_cost_table_reads_benchmarks(tmp_path):
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t345.6\n")
    frame = cost_table({"stage1 A": bench}, {"stage1 A": {"n_likelihood_calls": 100,
                                                           "wall_seconds": 11.0}})
    row = frame.iloc[0]
    assert row["job"] == "stage1 A" and row["wall_seconds"] == 12.5
    assert row["max_rss_mb"] == pytest.approx(345.6) and row["n_likelihood_calls"] == 100
    json.dumps(frame.to_dict(orient="records"))


def test_unknown_evidence_errors_are_dashes_in_markdown_and_empty_in_csv(tmp_path):
    """pocoMC with precondition: false reports no log Z error: "–", never 0, and a reason."""
    import pandas as pd

    check = {"sequential_log_evidence": -40.0, "joint_log_evidence": -30.0,
             "difference": -10.0, "combined_error": None, "n_sigma": None,
             "skipped": "no log Z error reported by A, A__B (e.g. pocoMC with precondition: "
                        "false)",
             "flow_corrected": {"log_evidence": -31.0, "difference": -1.0,
                                "combined_error": None, "n_sigma": None,
                                "skipped": "no log Z error reported by A__B"}}
    chain = {"terms": [], "log_evidence": -40.0, "log_evidence_err": None,
             "err_unknown": ["A", "A__B"],
             "flow_corrected": {"log_evidence": -31.0, "log_evidence_err": None,
                                "flow_bias": -9.0, "ess_fraction": 0.04}}
    tension = {"parameter_shift_sigma": 15.9, "log_R": -102.0, "log_R_err": None,
               "log_R_err_skipped": "no log Z error reported by joint A__B"}
    summary = {"analysis": "semf", "sequences": [
        {"sequence": ["A", "B"], "stage": "A__B", "sequential_evidence": chain,
         "evidence_check": check, "diagnostics": {"tension": tension}}]}
    tables = analysis_tables(summary)
    row = tables["evidence"].iloc[0]
    for key in ("sequential_err", "n_sigma", "corrected_err", "corrected_n_sigma"):
        assert pd.isna(row[key]), key  # not 0
    assert row["n_sigma_skipped"] == check["skipped"]
    assert pd.isna(tables["tension"].iloc[0]["log_R_err"])
    md = tables_markdown("Analysis semf", tables)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| sequence | sequential_log_Z"))
    cells = [c.strip() for c in lines[lines.index(header) + 2].strip("|").split("|")]
    got = dict(zip([c.strip() for c in header.strip("|").split("|")], cells))
    assert got["sequential_log_Z"] == "-40" and got["joint_log_Z"] == "-30"
    for key in ("sequential_err", "n_sigma", "corrected_err", "corrected_n_sigma"):
        assert got[key] == "–", (key, got[key])
    assert "precondition: false" in got["n_sigma_skipped"]
    page = study_markdown([summary], tables={}, figures={})
    assert "| A→B | -40 | – | -30 | – |" in page
    csv = tmp_path / "evidence.csv"
    tables["evidence"].to_csv(csv, index=False)
    back = pd.read_csv(csv)
    assert back["sequential_err"].isna().all() and back["n_sigma"].isna().all()
    assert "–" not in csv.read_text()  # CSV keeps empty/NA, the dash is for people
