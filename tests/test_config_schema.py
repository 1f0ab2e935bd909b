"""The workflow's config schema: defaults, misspelt keys, and agreement with the library."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from flowprior.config import validate_config
from flowprior.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT = REPO / "config" / "config.yaml"
TEST = REPO / "config" / "test.yaml"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _validate(config: dict) -> dict:
    """The workflow's validation (flowprior.config, called by the Snakefile)."""
    return validate_config(config, SCHEMA, configfiles=["my.yaml"])


def _schema() -> dict:
    return _load(SCHEMA)


def _error(config: dict) -> str:
    with pytest.raises(InputError) as info:
        _validate(config)
    message = str(info.value)
    assert "\n" not in message and len(message) < 600, message
    assert message.startswith("my.yaml: "), message
    return message


MINIMAL = {"posteriors": {"p": {"problem": "banana"}}}
ANALYSIS = {
    "parameters": "p.yaml",
    "datasets": {"A": {"likelihood": "m:f"}, "B": {"chain": "b.csv"}},
    "sequences": [["A", "B"]],
}


@pytest.mark.parametrize("config", ["config.yaml", "test.yaml", "paper.yaml", "minimal"])
def test_defaults_are_filled_exactly_like_snakemake(config):
    doc = copy.deepcopy(MINIMAL) if config == "minimal" else _load(REPO / "config" / config)
    ours, theirs = copy.deepcopy(doc), copy.deepcopy(doc)
    validate(theirs, str(SCHEMA))
    assert _validate(ours) == theirs


def test_default_config_validates_and_is_complete():
    config = _load(DEFAULT)
    filled = _validate(copy.deepcopy(config))
    assert filled == config, "config/config.yaml should spell out every default"
    assert set(config["posteriors"]) == {"banana", "mixture_7d"}


def test_test_config_validates_with_defaults_filled():
    config = _validate(_load(TEST))
    assert list(config["posteriors"]) == ["banana"]
    assert config["posteriors"]["banana"]["n_samples"] == 4000
    assert config["flow"]["hidden"] == [16, 16]
    assert config["flow"]["max_steps"] == 200
    assert config["flow"]["kind"] == "nsf"  # filled in
    assert config["figures"] == {"n_samples": 2000, "levels": "sigma"}


def test_paper_config_validates_and_is_paper_scale():
    config = _validate(_load(REPO / "config" / "paper.yaml"))
    study = config["training_study"]
    assert {"banana", "gaussian_7d", "mixture_7d", "funnel"} <= set(study["targets"])
    assert len(study["seeds"]) == 5 and study["grid"]["loss"] == ["nll", "kl", "jeffreys"]
    poco = config["analyses"]["gaussian_linear"]["pocomc"]
    assert poco["n_effective"] == 128000 and poco["n_active"] == 64000
    assert poco["n_total"] == 100000 and poco["n_evidence"] == 7500


def test_parameter_tables_of_the_configs_exist():
    for name in ("config.yaml", "test.yaml", "paper.yaml"):
        for analysis in _load(REPO / "config" / name).get("analyses", {}).values():
            assert (REPO / analysis["parameters"]).is_file(), (name, analysis["parameters"])


def test_defaults_fill_a_minimal_config():
    config = _validate(copy.deepcopy(MINIMAL))
    assert config["training_study"]["targets"] == []  # no study unless asked for
    assert config["training_study"]["grid"]["kind"] == ["nsf", "maf", "realnvp"]
    assert config["seed"] == 1
    assert config["flow"]["transforms"] == 3
    assert config["flow"]["lr"] == 0.004
    assert config["figures"]["levels"] == "sigma"
    assert config["posteriors"]["p"] == {"problem": "banana", "n_samples": 100000}


def test_chain_entry_gets_its_defaults_and_keeps_flow_override_sparse():
    config = _validate(
        {
            "posteriors": {
                "c": {"chain": "c.csv", "parameters": "p.yaml", "flow": {"kind": "maf"}},
                "p": {"problem": "gaussian_7d", "n_samples": 500},
            }
        }
    )
    assert config["posteriors"]["c"] == {
        "chain": "c.csv",
        "parameters": "p.yaml",
        "allow_pickle": False,
        "outside": "error",
        "format": None,
        "burn_in": None,
        "select": None,
        "flow": {"kind": "maf"},  # no defaults here: unset keys keep the top-level value
    }
    assert config["posteriors"]["p"] == {"problem": "gaussian_7d", "n_samples": 500}


def test_burn_in_of_a_chain_entry_is_a_fraction_or_a_count():
    entry = {"chain": "c.csv", "parameters": "p.yaml"}
    for good in (0, 0.3, 500):
        config = _validate({"posteriors": {"c": {**entry, "burn_in": good}}})
        assert config["posteriors"]["c"]["burn_in"] == good
    for bad in (1.5, -1, "half", True):
        with pytest.raises(InputError, match="burn_in"):
            _validate({"posteriors": {"c": {**entry, "burn_in": bad}}})


@pytest.mark.parametrize(
    "config, key, path",
    [
        ({**MINIMAL, "seeed": 2}, "seeed", "seeed"),
        ({**MINIMAL, "flow": {"trasforms": 3}}, "trasforms", "flow.trasforms"),
        ({**MINIMAL, "figures": {"level": "sigma"}}, "level", "figures.level"),
        (
            {"posteriors": {"p": {"problem": "banana", "n_sample": 10}}},
            "n_sample",
            "posteriors.p.n_sample",
        ),
        (
            {"posteriors": {"p": {"problem": "banana", "flow": {"hiden": [8]}}}},
            "hiden",
            "posteriors.p.flow.hiden",
        ),
        (
            {"posteriors": {"c": {"chain": "c.csv", "parameters": "p.yaml", "outsde": "drop"}}},
            "outsde",
            "posteriors.c.outsde",
        ),
        (
            {"posteriors": {"c": {"chain": "c.csv", "parameters": "p.yaml", "problem": "banana"}}},
            "problem",
            "posteriors.c.problem",
        ),
    ],
)
def test_misspelt_key_is_named(config, key, path):
    message = _error(copy.deepcopy(config))
    assert f"'{key}' was unexpected" in message
    assert message.startswith(f"my.yaml: {path}: "), message


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({**MINIMAL, "flow": {"kind": "glow"}}, "'glow' is not one of"),
        ({**MINIMAL, "flow": {"loss": "reverse_kl"}}, "'reverse_kl' is not one of"),
        ({**MINIMAL, "flow": {"lr": "1e-3"}}, "'1e-3' is not of type 'number'"),
        ({**MINIMAL, "flow": {"validation_fraction": 1.0}}, "1.0"),
        ({**MINIMAL, "flow": {"threads": 0}}, "0 is less than the minimum of 1"),
        ({**MINIMAL, "figures": {"levels": "2sigma"}}, "'2sigma' is not one of"),
        ({"posteriors": {"p": {"problem": "rosenbrock"}}}, "'rosenbrock' is not one of"),
        ({"posteriors": {"p": {}}}, "'problem' is a required property"),
        ({"posteriors": {"c": {"chain": "c.csv", "select": []}}}, "should be non-empty"),
        ({"posteriors": {"c": {"chain": "c.csv", "select": "a,b"}}}, "is not of type 'array'"),
        ({"posteriors": {"a/b": {"problem": "banana"}}}, "'a/b' does not match"),
        ({"analyses": {"x": {**ANALYSIS, "sequences": [["A"]]}}}, "is too short"),
        ({"analyses": {"x": {**ANALYSIS, "samplers": ["nuts"]}}}, "'nuts' is not one of"),
        ({"analyses": {"x": {**ANALYSIS, "pocomc": {"n_efective": 9}}}}, "'n_efective' was unexpected"),
        ({"analyses": {"x": {**ANALYSIS, "datasets": {"A": {"likelihod": "m:f"}, "B": {"chain": "b.csv"}}}}},
         "'likelihod' was unexpected"),
        ({"analyses": {"x": {**ANALYSIS, "datasets": {"A__1": {"chain": "a.csv"}, "B": {"chain": "b.csv"}}}}},
         "'A__1' does not match"),
        ({"analyses": {"x": {**ANALYSIS, "emcee": {"burn_in": "later"}}}}, "burn_in"),
    ],
)
def test_bad_values_are_rejected(config, fragment):
    assert fragment in _error(copy.deepcopy(config))


@pytest.mark.parametrize(
    "config, path",
    [
        ({**MINIMAL, "flow": {"hidden": [64, 0]}}, "flow.hidden[1]"),
        ({**MINIMAL, "flow": {"lr": "1e-3"}}, "flow.lr"),
        ({"analyses": {"x": {**ANALYSIS, "emcee": {"walkers": 2}}}}, "analyses.x.emcee.walkers"),
        (
            {"analyses": {"x": {**ANALYSIS, "datasets": {
                "A": {"likelihood": "m:f", "timeout": 0}, "B": {"chain": "b.csv"}}}}},
            "analyses.x.datasets.A.timeout",
        ),
        (
            {"analyses": {"x": {**ANALYSIS, "datasets": {
                "A": {"likelihood": "m:f", "timeout": "1 minute"}, "B": {"chain": "b.csv"}}}}},
            "analyses.x.datasets.A.timeout",
        ),
    ],
)
def test_bad_value_names_the_key_path(config, path):
    assert _error(copy.deepcopy(config)).startswith(f"my.yaml: {path}: ")


def test_likelihood_timeout_is_optional_without_default():
    config = _validate(
        {"analyses": {"x": {**ANALYSIS, "datasets": {
            "A": {"likelihood": "m:f", "timeout": 2.5}, "B": {"likelihood": "m:g"}}}}}
    )
    datasets = config["analyses"]["x"]["datasets"]
    assert datasets["A"]["timeout"] == 2.5 and "timeout" not in datasets["B"]


def _properties(schema: dict, node: object, where: str):
    """Yield (where, property schema) for every property anywhere in the schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}.{name}", sub
        for key, value in node.items():
            yield from _properties(schema, value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(schema, value, f"{where}[{i}]")


def _resolve(schema: dict, sub: dict) -> dict:
    ref = sub.get("$ref")
    if ref is None:
        return sub
    node = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return {**_resolve(schema, node), **{k: v for k, v in sub.items() if k != "$ref"}}


def test_every_key_has_a_description_and_objects_are_closed():
    schema = _schema()
    props = list(_properties(schema, schema, "#"))
    assert len(props) > 30
    for where, sub in props:
        assert _resolve(schema, sub).get("description"), f"{where}: no description"

    def closed(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, f"{where}: not closed"
            for key, value in node.items():
                closed(value, f"{where}/{key}")

    closed(schema, "#")


def test_schema_matches_the_library():
    from flowprior.chains import FORMATS
    from flowprior.plots import CONTOUR_LEVELS
    from flowprior.problems import PROBLEMS
    from flowprior.train import TrainConfig

    schema = _schema()
    defs = schema["$defs"]
    flow = schema["properties"]["flow"]["properties"]
    # every TrainConfig knob a study may set (seed is global; progress is off in the workflow)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(flow) == set(fields) - {"seed", "progress"}
    assert set(defs["flow_override"]["properties"]) == set(flow) | {"select"}
    study = schema["properties"]["training_study"]["properties"]
    from flowprior.study import GRID_KEYS, LOWER_IS_BETTER

    assert set(study["grid"]["properties"]) == set(GRID_KEYS)
    assert set(study["metric"]["enum"]) == set(LOWER_IS_BETTER)
    for name, sub in flow.items():
        default = fields[name].default
        expected = list(default) if isinstance(default, tuple) else default
        assert sub["default"] == expected, f"flow.{name}: schema default != TrainConfig default"
    assert defs["kind"]["enum"] == ["nsf", "maf", "realnvp"]
    assert set(defs["problem_posterior"]["properties"]["problem"]["enum"]) == set(PROBLEMS)
    chain_format = defs["chain_posterior"]["properties"]["format"]["enum"]
    assert set(chain_format) == set(FORMATS) | {None}
    assert set(schema["properties"]["figures"]["properties"]["levels"]["enum"]) == set(
        CONTOUR_LEVELS
    )


def test_config_readme_documents_every_key():
    readme = (REPO / "config" / "README.md").read_text()
    schema = _schema()
    keys = set(schema["properties"])
    keys |= set(schema["properties"]["flow"]["properties"])
    keys |= set(schema["properties"]["figures"]["properties"])
    keys |= set(schema["properties"]["training_study"]["properties"])
    keys |= set(schema["properties"]["training_study"]["properties"]["grid"]["properties"])
    keys |= set(schema["$defs"]["flow_override"]["properties"])
    keys |= set(schema["$defs"]["problem_posterior"]["properties"])
    keys |= set(schema["$defs"]["chain_posterior"]["properties"])
    for name in ("analysis", "likelihood_dataset", "chain_dataset", "pocomc", "emcee"):
        keys |= set(schema["$defs"][name]["properties"])
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert not missing, f"config/README.md does not document {missing}"


def test_snakemake_dry_run_names_a_misspelt_key(tmp_path):
    config = _load(DEFAULT)
    config["flow"]["trasforms"] = config["flow"].pop("transforms")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(bad),
            "--replace-workflow-config",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "trasforms" in ln]
    assert lines == [f"{bad}: flow.trasforms: unknown key ('trasforms' was unexpected)"], lines


def test_derived_and_reference_of_an_analysis():
    """`derived` is a spec or {function, kwargs}; `reference` takes a chain dataset's keys."""
    analysis = {
        **ANALYSIS,
        "derived": "mine.py:s8",
        "reference": {"chain": "joint/root", "burn_in": 0.3},
    }
    config = _validate({"analyses": {"a": analysis}})["analyses"]["a"]
    assert config["derived"] == "mine.py:s8"
    assert config["reference"] == {
        "chain": "joint/root", "burn_in": 0.3, "allow_pickle": False, "outside": "error",
        "format": None,
    }  # fmt: skip
    config = _validate({"analyses": {"a": {**analysis, "derived": {"function": "m:f"}}}})
    assert config["analyses"]["a"]["derived"] == {"function": "m:f", "kwargs": {}}
    for bad, message in (
        ({"derived": "no_colon"}, "is not valid under any of the given schemas"),
        ({"derived": {"function": "m:f", "args": []}}, "is not valid under any"),
        ({"reference": {"burn_in": 0.3}}, "'chain' is a required property"),
        ({"reference": {"chain": "j.csv", "select": ["a"]}}, "reference.select: unknown key"),
    ):
        with pytest.raises(Exception, match=message):
            _validate({"analyses": {"a": {**analysis, **bad}}})
