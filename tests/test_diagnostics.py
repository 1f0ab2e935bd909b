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

SMALL = {"n_exact_samples": 2000, "n_flow_samples": 2000, "n_boot": 20, "c2st_max_n": 1500}


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


def _diagnose(tmp_path, name, kwargs, *, n=3000):
    problem = get_analysis(name, **kwargs)
    datasets = {d: _plugin(name, d, **kwargs) for d in ("A", "B")}
    stage1 = {d: _run(tmp_path, problem, [d], f"s1{d}", n=n, seed=i) for i, d in enumerate("AB")}
    seq = _run(tmp_path, problem, ["A", "B"], "seq", n=n, seed=10)
    joint = _run(tmp_path, problem, ["A", "B"], "joint", n=n, seed=11)
    return diagnose_sequence(
        sequence=["A", "B"], params=problem.params, datasets=datasets, stage1=stage1,
        previous=None, sequential={"pocomc": seq}, joint=joint, fidelity={},
        settings=SMALL, seed=1,
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


def test_tension_of_four_sigma_fails(tension_diagnosis):
    out = tension_diagnosis
    assert out["verdict"]["status"] == "fail"
    assert out["tension"]["parameter_shift_sigma"] >= 3
    assert out["tension"]["suspiciousness_sigma"] >= 3
    assert any("tension" in r for r in out["verdict"]["reasons"])


def test_bimodal_is_flagged_for_multimodality(tmp_path):
    out = _diagnose(tmp_path, "bimodal", {})
    assert out["verdict"]["status"] in ("warn", "fail")
    assert out["modes"]["stage 1 A"]["n_modes"] == 2
    assert any("modes" in r for r in out["verdict"]["reasons"])


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
    out = flow_fidelity(model=tmp_path / "model", chain=chain, validation=result.metrics,
                        exact=(problem, ["A"]), settings=SMALL, seed=1)
    assert out["n_held_out"] == 600
    assert 0 < out["exact_kl"] < 0.5
    assert out["c2st"] < 0.6 and out["modes"]["n_modes"] == 1
    assert out["held_out_nll"] == pytest.approx(result.metrics["best_val_nll"], abs=1e-4)
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
