"""flowprior.plan: stage ids, the results layout and the jobs of a config, without Snakemake."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from flowprior.errors import InputError
from flowprior.plan import (
    LAYOUT,
    AnalysisPlan,
    Layout,
    StudyPlan,
    flow_dirs,
    joint_id,
    parse_stage,
    posterior_flow_settings,
    stage_id,
)
from flowprior.samplers import sampler_names

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def validated(config: dict) -> dict:
    """``config`` checked against the workflow's schema, defaults filled (as Snakemake does)."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return config


def load(name: str) -> dict:
    return validated(yaml.safe_load((REPO / "config" / name).read_text()))


LIK = {"likelihood": "flowprior.problems.analytic:gaussian_linear"}


def analysis(**entry) -> dict:
    """A config with one analysis ``x`` of likelihood datasets A, B, C (and ``entry``)."""
    base = {
        "parameters": "p.yaml",
        "datasets": {d: {**LIK, "kwargs": {"dataset": d}} for d in "ABC"},
    }
    return validated({"analyses": {"x": {**base, **entry}}})


# ---------------------------------------------------------------------------- stage ids
def test_stage_ids_round_trip_and_joint_ids_follow_config_order():
    assert stage_id(["A", "B"]) == "A__B" and parse_stage("A__B") == ["A", "B"]
    assert joint_id(["B", "A"], order=["A", "B"]) == "A__B"
    with pytest.raises(InputError, match="A__B"):
        stage_id(["A__B"])


# ------------------------------------------------------------------------------ layout
def test_layout_gives_paths_and_the_same_patterns_with_wildcards():
    assert LAYOUT.stage1("a", "A") == "results/a/stage1/A"
    assert LAYOUT.sequential("{analysis}", "{stage}", "{sampler}") == (
        "results/{analysis}/sequential/{stage}/{sampler}"
    )
    assert LAYOUT.flow_files(LAYOUT.posterior_flow("banana")) == {
        "model": "results/flows/banana/model.zip",
        "history": "results/flows/banana/history.csv",
        "validation": "results/flows/banana/validation.json",
        "fidelity": "results/flows/banana/fidelity.json",
    }
    # posterior flows and analysis flows hold the same files
    assert set(LAYOUT.flow_files(LAYOUT.analysis_flow("a", "A"))) == set(Layout.FLOW_FILES)
    assert LAYOUT.log("a", "stage1", "A") == "logs/a/stage1/A.log"
    assert LAYOUT.benchmark("a", "flows", "A") == "results/benchmarks/a/flows/A.tsv"
    assert Layout(results="out").summary("a") == "out/a/summary.json"


# ---------------------------------------------------------------- the built-in configs
def test_plans_of_the_default_config_match_its_job_counts():
    config = load("config.yaml")
    plans = {a: AnalysisPlan.from_config(a, config) for a in config["analyses"]}
    # the job counts of `snakemake -n` on config/config.yaml (tests/test_workflow.py)
    assert sum(len(p.stage1_jobs()) for p in plans.values()) == 12
    assert sum(len(p.stage1) for p in plans.values()) == 9  # the ones the summary records
    assert sum(len(p.flows) for p in plans.values()) == 9
    assert sum(len(p.sequential) * len(p.samplers) for p in plans.values()) == 15
    assert sum(len(p.joint) for p in plans.values()) == 6
    assert sum(len(p.sequence_ids()) for p in plans.values()) == 9
    g = plans["gaussian_linear"]
    assert g.stage1 == ("A", "B") and g.flows == ("A", "B")
    assert g.sequential == ("A__B", "B__A") and g.joint == ("A__B",)
    assert g.seed == config["seed"] and g.samplers == ("pocomc", "emcee")
    assert g.stage1_sampler == "pocomc" and g.joint_sampler == "pocomc"
    assert g.sampler_settings("emcee")["walkers"] == 32
    assert g.flow_settings("A")["kind"] == "maf"  # the analysis' own flow over the top level
    assert g.threshold("mean_shift") == config["diagnostics"]["mean_shift"]
    assert len(g.figures()) == 2 + 2 + 2 * 2 + 1 + 1  # ... agreement, samplers
    assert len(plans["bimodal"].figures()) == 1 + 1 + 1 + 1 + 1


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml"])
def test_every_built_in_config_plans(name):
    config = load(name)
    for a in config["analyses"]:
        plan = AnalysisPlan.from_config(a, config)
        assert plan.sequential and set(plan.samplers) <= set(sampler_names())
        files = plan.output_files()
        assert len(files) == len(set(files))
        for d in plan.sequential:
            assert plan.sequential_inputs(d)["prior"].endswith("/model.zip")
    StudyPlan.from_config(config)
    assert set(flow_dirs(config)) >= set(config["posteriors"])


# ----------------------------------------------------------------------- the planner
def test_both_orders_share_one_joint_reference():
    plan = AnalysisPlan.from_config("x", analysis(sequences=[["A", "B"], ["B", "A"]]))
    assert plan.joint == ("A__B",)
    for s in ("A__B", "B__A"):
        assert plan.sequence_runs(s).joint == "results/x/joint/A__B"
        assert plan.before_samples(s) == f"results/x/stage1/{s[0]}/samples.parquet"
    assert "results/x/figures/sequential_B__A_pocomc.png" in plan.figures()


def test_three_stage_sequence():
    plan = AnalysisPlan.from_config("x", analysis(sequences=[["A", "B", "C"]]))
    assert plan.stage1 == ("A",) and plan.stage1_jobs() == ("A", "B", "C")
    assert plan.flows == ("A", "A__B")
    assert plan.sequential == ("A__B", "A__B__C")
    assert plan.joint == ("A__B", "A__B__C")
    runs = plan.sequence_runs("A__B__C")
    assert runs.previous == "results/x/joint/A__B"  # the joint run before the last update
    assert set(runs.stage1) == {"A", "B", "C"}
    assert runs.fidelity == {
        "A": "results/x/flows/A/fidelity.json",
        "A__B": "results/x/flows/A__B/fidelity.json",
    }
    assert plan.flow_chain("A__B") == "results/x/sequential/A__B/pocomc/samples.parquet"
    assert plan.sequential_inputs("A__B__C")["prior"] == "results/x/flows/A__B/model.zip"


def test_without_joint_the_previous_posterior_is_the_flow_samplers_run():
    plan = AnalysisPlan.from_config(
        "x", analysis(sequences=[["A", "B", "C"]], joint=False, samplers=["emcee", "pocomc"])
    )
    assert plan.joint == () and plan.flow_sampler == "emcee"
    runs = plan.sequence_runs("A__B__C")
    assert runs.previous == "results/x/sequential/A__B/emcee" and runs.joint is None
    assert plan.figures() == [
        *(f"results/x/figures/{k}_{s}.png" for k in ("flow", "training") for s in ("A", "A__B")),
        "results/x/figures/samplers.png",
    ]


def test_chain_datasets_enter_through_their_flow():
    config = analysis(sequences=[["A", "C"]])
    config["analyses"]["x"]["datasets"]["C"] = {"chain": "c.parquet"}
    config = validated(config)
    plan = AnalysisPlan.from_config("x", config)
    assert plan.stage1 == ("A", "C") and plan.flows == ("A", "C")
    assert plan.joint == ()  # C has no likelihood
    inputs = plan.sequential_inputs("A__C")
    assert inputs["likelihood_flow"] == "results/x/flows/C/model.zip"
    assert inputs["plugins"] == []
    # a chain that is not there (yet) is its own input, for Snakemake to report it missing
    assert plan.stage1_inputs("C") == {
        "parameters": "p.yaml", "chain": ["c.parquet"], "derived": [],
    }  # fmt: skip
    assert plan.sequence_runs("A__C").fidelity == {
        "A": "results/x/flows/A/fidelity.json",
        "C": "results/x/flows/C/fidelity.json",
    }


def test_a_reference_chain_stands_for_the_joint_of_all_datasets():
    """`reference`: the joint posterior of the sequences of all datasets where no joint run
    has them (chain datasets, or joint: false); a likelihood joint of them wins."""
    config = analysis(sequences=[["A", "B", "C"], ["C", "A", "B"], ["A", "B"]],
                      joint=False, derived="mine/derived.py:q",
                      reference={"chain": "published/root"})  # fmt: skip
    plan = AnalysisPlan.from_config("x", config)
    assert plan.reference == "A__B__C" and plan.joint == ()
    for seq in ("A__B__C", "C__A__B"):
        assert plan.sequence_runs(seq).joint == "results/x/reference"
        assert plan.joint_is_reference(seq)
    assert plan.sequence_runs("A__B").joint is None and not plan.joint_is_reference("A__B")
    assert plan.outputs()["joint"] == {"A__B__C": "results/x/reference"}
    assert "results/x/reference/samples.parquet" in plan.output_files()
    assert plan.benchmarks()["joint A__B__C"] == "results/benchmarks/x/reference.tsv"
    assert plan.reference_inputs() == {
        "parameters": "p.yaml", "chain": ["published/root"], "derived": ["mine/derived.py"],
    }  # fmt: skip
    assert plan.stage1_inputs("A")["derived"] == ["mine/derived.py"]
    assert plan.joint_inputs("A__B")["derived"] == ["mine/derived.py"]
    assert "sequential_A__B__C_pocomc" in " ".join(plan.figures())
    # with the likelihood joint of all three, the joint run is the reference
    both = analysis(sequences=[["A", "B", "C"]], reference={"chain": "published/root"})
    plan = AnalysisPlan.from_config("x", both)
    assert plan.reference is None
    assert plan.sequence_runs("A__B__C").joint == "results/x/joint/A__B__C"


def test_plugin_files_list_py_sources_and_declared_inputs_once():
    config = analysis(sequences=[["A", "B"]])
    ds = config["analyses"]["x"]["datasets"]
    ds["A"] = {"likelihood": "lik/mine.py:f", "inputs": ["data.csv"]}
    ds["B"] = {"likelihood": "pkg.mod:f", "inputs": ["data.csv", "more.csv"]}
    plan = AnalysisPlan.from_config("x", validated(config))
    assert plan.plugin_files(["A", "B"]) == ["lik/mine.py", "data.csv", "more.csv"]
    assert plan.joint_inputs("A__B")["plugins"] == ["lik/mine.py", "data.csv", "more.csv"]


def test_summary_inputs_and_benchmarks_cover_every_job():
    plan = AnalysisPlan.from_config("x", analysis(sequences=[["A", "B"], ["B", "A"]]))
    files = plan.summary_inputs()
    assert set(files["flows"]["A"]) == {"model", "validation"}
    assert files["fidelity"]["B"] == "results/x/flows/B/fidelity.json"
    run = files["sequential"]["B__A"]["pocomc"]["run"]
    assert run == "results/x/sequential/B__A/pocomc/run.json"
    assert files["diagnostics"] == {s: f"results/x/diagnostics/{s}.json" for s in ("A__B", "B__A")}
    assert set(plan.benchmarks()) == {
        "stage1 A", "stage1 B", "flow A", "flow B",
        "sequential A__B pocomc", "sequential B__A pocomc", "joint A__B",
    }


# -------------------------------------------------------------------------------- errors
def test_unknown_dataset_in_a_sequence_is_named():
    with pytest.raises(InputError, match=r"analyses: x: sequences\[1\]: unknown dataset\(s\) D"):
        AnalysisPlan.from_config("x", analysis(sequences=[["A", "B"], ["A", "D"]]))


@pytest.mark.parametrize("name", ["flows", "figures", "training_study"])
def test_reserved_analysis_names(name):
    config = analysis(sequences=[["A", "B"]])
    config["analyses"] = {name: config["analyses"]["x"]}
    with pytest.raises(InputError, match=f"analyses: {name}: the name is reserved"):
        AnalysisPlan.from_config(name, config)


def test_samplers_come_from_the_registry():
    config = analysis(sequences=[["A", "B"]])
    config["analyses"]["x"]["samplers"] = ["pocomc", "nosuch"]
    with pytest.raises(InputError, match="nosuch"):
        AnalysisPlan.from_config("x", config)
    config["analyses"]["x"]["samplers"] = ["pocomc"]
    config["analyses"]["x"]["joint_sampler"] = "nosuch"
    with pytest.raises(InputError, match="nosuch"):
        AnalysisPlan.from_config("x", config)


def test_an_unvalidated_config_is_a_clear_error():
    config = analysis(sequences=[["A", "B"]])
    del config["analyses"]["x"]["samplers"]
    with pytest.raises(InputError, match="analyses: x: samplers: missing"):
        AnalysisPlan.from_config("x", config)
    with pytest.raises(InputError, match="no such analysis"):
        AnalysisPlan.from_config("y", config)


# ----------------------------------------------------------------- flows and the study
def test_flow_dirs_list_posterior_and_analysis_flows():
    config = analysis(sequences=[["A", "B", "C"]])
    config["posteriors"] = {"banana": {"problem": "banana"}}
    config = validated(config)
    assert flow_dirs(config) == {
        "banana": "results/flows/banana",
        "x/A": "results/x/flows/A",
        "x/A__B": "results/x/flows/A__B",
    }


def test_select_auto_names_the_study_target_and_the_explicit_keys():
    config = analysis(sequences=[["A", "B"]], flow={"select": "auto", "lr": 0.01})
    config["posteriors"] = {"banana": {"problem": "banana", "flow": {"select": "auto"}}}
    config = validated(config)
    flow = AnalysisPlan.from_config("x", config).flow_settings("A")
    assert flow["select_target"] == "x/A" and flow["select_explicit"] == ["lr", "select"]
    assert posterior_flow_settings(config, "banana")["select_target"] == "banana"
    study = StudyPlan.from_config(config)
    with pytest.raises(InputError, match="select: auto needs a training study"):
        study.selection_input(flow)
    assert "select_target" not in AnalysisPlan.from_config("x", analysis(
        sequences=[["A", "B"]])).flow_settings("A")


def test_study_plan_of_the_default_config():
    config = load("config.yaml")
    study = StudyPlan.from_config(config)
    rows = study.grid_rows()
    assert len(rows) * len(study.targets) == 18
    assert study.problem("banana") == "banana" and study.job_inputs("banana") == {}
    settings = study.settings(
        {"loss": "kl", "kind": "maf", "transforms": 3, "hidden": "64x64", "lr": 0.001,
         "batch_size": 512, "seed": 1}
    )
    assert settings["hidden"] == [64, 64] and settings["max_steps"] == 500
    assert study.selection_input({"select": "auto"}) == ["results/training_study/selection.json"]


def test_study_targets_are_checked():
    config = analysis(sequences=[["A", "B"]])
    config["training_study"] = {"targets": ["x/A", "nosuch"]}
    with pytest.raises(InputError, match="targets: nosuch: not a built-in problem"):
        StudyPlan.from_config(validated(config))
    config["training_study"] = {"targets": ["x/Z"]}
    with pytest.raises(InputError, match="no analysis 'x' with a dataset 'Z'"):
        StudyPlan.from_config(validated(config))
    config["training_study"] = {"targets": ["x/A"]}
    study = StudyPlan.from_config(validated(config))
    assert study.job_inputs("x/A") == {
        "chain": "results/x/stage1/A/samples.parquet", "parameters": "p.yaml"
    }
