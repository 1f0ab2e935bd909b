"""The workflow's tension diagnostics (issue #14): the parameter subset of the config, the
flow parameter shift in the tension record and table, the verdict that uses it, and the SEMF
random split behind the real-data control.

Known answers: Gaussian chains offset by k sigma in chosen parameters, whose exact shift is
``norm.isf(chi2.sf(chi2, D) / 2)`` with the chains' own Gaussian ``chi2``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from flowprior.chains import Chain
from flowprior.diagnostics import analysis_tables, diagnose_sequence, register_rule
from flowprior.diagnostics.sequence import FLOW_SHIFT_KEYS, flow_shift_entries
from flowprior.diagnostics.settings import TENSION_SETTINGS, split_settings, tension_settings
from flowprior.diagnostics.shift import WORKFLOW_SHIFT, ShiftSettings, shift_sigma
from flowprior.diagnostics.verdict import (
    Rule,
    checks_from_record,
    get_rule,
    notes_from_record,
    verdict,
)
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.problems import semf

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG = REPO / "config" / "config.yaml"
NAMES = ["p0", "p1", "p2", "p3"]
SOURCE = "config: analyses: demo: diagnostics"


# ------------------------------------------------------------------------ the config key
def _config_with(tension, *, where="analysis"):
    config = yaml.safe_load(CONFIG.read_text())
    if where == "analysis":
        config["analyses"]["semf_random"]["diagnostics"] = {"tension": tension}
    else:
        config["diagnostics"]["tension"] = tension
    return config


def _schema_errors(config):
    validator = jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))
    return [e.message for e in validator.iter_errors(config)]


def test_schema_accepts_a_parameter_subset_per_analysis():
    assert _schema_errors(_config_with({"parameters": ["a_V", "sigma_th"]})) == []
    assert _schema_errors(_config_with({"parameters": None, "method": "gaussian"})) == []


@pytest.mark.parametrize(
    "tension",
    [
        {"parameters": "a_V"},  # a string, not a list
        {"parameters": []},
        {"parameters": ["a_V", "a_V"]},
        {"method": "kde"},
        {"paramters": ["a_V"]},  # misspelt key
        3.0,  # the pattern for plug-in thresholds does not take "tension"
    ],
)
def test_schema_rejects_bad_tension_settings(tension):
    assert _schema_errors(_config_with(tension))


def test_schema_rejects_tension_at_the_top_level():
    """The parameter names are an analysis' own: no study-wide subset."""
    assert _schema_errors(_config_with({"parameters": ["a_V"]}, where="top"))


def test_tension_settings_defaults_and_subset():
    assert tension_settings(None, names=NAMES) == {"parameters": NAMES, "method": "flow",
                                                   "calibrate": True}
    assert tension_settings({"tension": {"calibrate": False}}, names=NAMES)["calibrate"] is False
    assert tension_settings({"c2st": 0.6}, names=NAMES)["parameters"] == NAMES
    got = tension_settings({"tension": {"parameters": ["p2", "p0"]}}, names=NAMES)
    assert got == {"parameters": ["p2", "p0"], "method": "flow", "calibrate": True}
    # null means every parameter, as the schema's default says
    assert tension_settings({"tension": {"parameters": None}}, names=NAMES)["parameters"] == NAMES
    assert TENSION_SETTINGS == {"parameters": None, "method": "flow", "calibrate": True}


@pytest.mark.parametrize(
    ("tension", "message"),
    [
        ({"parameters": ["p0", "a_V"]}, r"^config: analyses: demo: diagnostics: tension: "
         r"parameters: 'a_V' not a parameter of the analysis \(it has: p0, p1, p2, p3\)$"),
        ({"parameters": ["p0", "p0"]}, r"tension: parameters: p0 repeated$"),
        ({"parameters": []}, r"tension: parameters: expected a non-empty list"),
        ({"parameters": "p0"}, r"tension: parameters: expected a non-empty list"),
        ({"method": "kde"}, r"tension: method: expected one of flow, gaussian"),
        ({"calibrate": "yes"}, r"tension: calibrate: expected true or false, got 'yes'$"),
        ({"paramters": ["p0"]}, r"tension: paramters: unknown key"),
    ],
)
def test_tension_settings_errors_are_one_line_naming_the_key(tension, message):
    with pytest.raises(InputError, match=message) as err:
        tension_settings({"tension": tension}, names=NAMES, source=SOURCE)
    assert "\n" not in str(err.value)


def test_split_settings_leaves_tension_to_its_own_reader():
    sizes, thresholds = split_settings({"tension": {"parameters": ["p0"]}, "c2st": 0.6})
    assert thresholds == {"c2st": 0.6} and "tension" not in sizes


def test_a_rule_may_not_take_the_tension_key():
    rule = dataclasses.replace(get_rule("c2st"), check="my_check", threshold="tension")
    with pytest.raises(InputError, match="tension: threshold key already used by a nested"):
        register_rule(rule)


def test_diagnose_sequence_names_the_config_key_of_an_unknown_parameter(tmp_path):
    """Checked before any chain is read (the paths here do not exist)."""
    space = ParameterSpace(tuple(NAMES), [-1.0] * 4, [1.0] * 4)
    missing = {"samples": str(tmp_path / "none.parquet"), "run_info": {}}
    with pytest.raises(InputError, match=r"^config: analyses: demo: diagnostics: tension: "
                       r"parameters: 'q' not a parameter"):
        diagnose_sequence(
            sequence=["A", "B"], params=space, datasets={}, stage1={"A": missing, "B": missing},
            previous=None, sequential={"pocomc": missing}, joint=None, fidelity={},
            settings={"tension": {"parameters": ["q"]}}, settings_source=SOURCE,
        )


# ------------------------------------------------------------------- the workflow's settings
def test_workflow_shift_settings_are_the_cli_options():
    """`flowprior tension --n-pairs 20000 --n-flows 2 --max-steps 500` runs the workflow's
    settings, so the CLI reproduces the workflow's numbers for the same chains and seed."""
    from flowprior.cli import _build_parser
    from flowprior.commands import _shift_settings

    parser, _ = _build_parser()
    args = parser.parse_args([
        "tension", "a.csv", "b.csv", "--out", "r.json",
        "--n-pairs", str(WORKFLOW_SHIFT["n_pairs"]), "--n-flows", str(WORKFLOW_SHIFT["n_flows"]),
        "--max-steps", str(WORKFLOW_SHIFT["max_steps"]),
    ])
    assert _shift_settings(args) == ShiftSettings.workflow()
    assert ShiftSettings.workflow() != ShiftSettings()


# ------------------------------------------------------------- flow shift on known answers
def _gaussian_chains(offset, *, n=4096, seed=0):
    """A ~ N(offset * sqrt(2), I) and B ~ N(0, I) in 4-D: the difference is |offset| sigma."""
    rng = np.random.default_rng(seed)
    space = ParameterSpace(tuple(NAMES), [-60.0] * 4, [60.0] * 4)
    a = Chain(space, rng.normal(size=(n, 4)) + np.sqrt(2.0) * np.asarray(offset), source="A")
    b = Chain(space, rng.normal(size=(n, 4)), source="B")
    return a, b


def _exact(a, b, names):
    """The exact shift of the two Gaussian chains: from their own Gaussian chi2."""
    from flowprior.diagnostics import parameter_shift

    cols = [NAMES.index(p) for p in names]
    chi2 = parameter_shift(a.samples[:, cols], b.samples[:, cols])["chi2"]
    return shift_sigma(float(stats.chi2.sf(chi2, len(names))))


@pytest.mark.slow
def test_flow_shift_on_a_subset_recovers_a_discrepancy_the_full_set_dilutes():
    """3 sigma in p0 only: the subset (p0, p1) shows it; all four parameters dilute it.

    Tolerance: issue #14's, 0.1 sigma or the reported error where that is larger (the
    workflow's short training, :meth:`ShiftSettings.workflow`, measured 0.03-0.15 sigma
    deviations on 6-D Gaussian chains of this size; the calibration twins put that into the
    error).
    """
    a, b = _gaussian_chains([3.0, 0.0, 0.0, 0.0])
    subset = ["p0", "p1"]
    out = flow_shift_entries(a, b, names=subset, gaussian_sigma=_exact(a, b, subset),
                             method="flow", seed=1)
    assert out["shift_used"] == "flow" and out["shift_skipped"] is None
    assert out["shift_sigma_is_lower_bound"] is False
    assert abs(out["shift_sigma"] - _exact(a, b, subset)) <= max(0.1, out["shift_sigma_err"])
    assert 0 < out["shift_probability"] < 1 and out["shift_probability_err"] > 0
    assert out["shift_disagreement"] is False
    assert out["shift_n_pairs"] == WORKFLOW_SHIFT["n_pairs"]
    # the same discrepancy over all four parameters reads lower (dilution)
    assert _exact(a, b, NAMES) < _exact(a, b, subset) - 0.3


def test_flow_shift_fields_stay_null_with_too_few_samples():
    a, b = _gaussian_chains([2.0, 0.0, 0.0, 0.0], n=60)
    out = flow_shift_entries(a, b, names=NAMES, gaussian_sigma=1.0, method="flow", seed=1)
    assert all(out[k] is None for k in FLOW_SHIFT_KEYS)  # never 0
    assert out["shift_used"] == "gaussian" and out["shift_disagreement"] is None
    assert "too few samples" in out["shift_skipped"] and "min_ess" in out["shift_skipped"]


def test_method_gaussian_does_not_compute_the_flow_shift():
    a, b = _gaussian_chains([2.0, 0.0, 0.0, 0.0])
    out = flow_shift_entries(a, b, names=NAMES, gaussian_sigma=1.0, method="gaussian", seed=1)
    assert all(out[k] is None for k in FLOW_SHIFT_KEYS)
    assert "method: gaussian" in out["shift_skipped"] and out["shift_seconds"] is None


# ------------------------------------------------------------------ the verdict and tables
def _record(**tension):
    base = {
        "parameters": ["p0", "p1"], "parameter_shift_sigma": 0.5,
        **dict.fromkeys(FLOW_SHIFT_KEYS), "shift_skipped": None, "shift_disagreement": None,
        "shift_used": "gaussian", "suspiciousness_sigma": None, "log_R": None,
    }  # fmt: skip
    return {"sequence": ["A", "B"], "tension": {**base, **tension}}


def _verdict(record):
    return verdict(checks_from_record(record), notes=notes_from_record(record))


def test_verdict_uses_the_flow_shift_where_there_is_one():
    rec = _record(shift_sigma=4.2, shift_sigma_err=0.1, shift_probability=1 - 2.7e-5,
                  shift_probability_err=1e-6, shift_sigma_is_lower_bound=False,
                  shift_disagreement=True, shift_used="flow")  # fmt: skip
    v = _verdict(rec)
    assert v.status == "fail"
    assert "(flow parameter shift) = 4.2 >= threshold tension_sigma = 3" in v.reasons[0]
    (note,) = v.notes
    assert "used the flow parameter shift (4.20 +- 0.10 sigma; Gaussian 0.50 sigma)" in note
    assert "on p0, p1" in note and "differ by more than 1 sigma" in note


def test_verdict_says_when_the_flow_shift_cannot_be_made():
    rec = _record(parameter_shift_sigma=3.5, shift_skipped="too few samples: chain A ...")
    v = _verdict(rec)
    assert v.status == "fail" and "(Gaussian parameter shift) = 3.5" in v.reasons[0]
    (note,) = v.notes
    assert "flow parameter shift cannot be made (too few samples: chain A ...)" in note
    assert "used the Gaussian one (Gaussian 3.50 sigma)" in note
    ok = _verdict(_record(shift_skipped="too few samples"))
    assert ok.status == "ok" and "cannot be made" in ok.notes[0]


def test_verdict_flow_shift_below_the_threshold_passes_though_gaussian_is_above():
    """The flow shift replaces the Gaussian one in the check (not the larger of the two)."""
    rec = _record(parameter_shift_sigma=3.4, shift_sigma=2.0, shift_sigma_err=0.05,
                  shift_probability=0.95, shift_probability_err=0.001,
                  shift_sigma_is_lower_bound=False, shift_disagreement=True, shift_used="flow")
    assert _verdict(rec).status == "ok"


def test_tension_table_has_the_flow_shift_columns_and_keeps_nulls():
    flow = _record(shift_sigma=2.0, shift_sigma_err=0.05, shift_probability=0.9545,
                   shift_probability_err=0.001, shift_sigma_is_lower_bound=False,
                   shift_disagreement=True, shift_used="flow")
    none = _record(shift_skipped="too few samples")
    seqs = []
    for label, rec in (("A", flow), ("B", none)):
        rec = copy.deepcopy(rec)
        rec["sequence"] = [label, "C"]
        rec["verdict"] = _verdict(rec).to_dict()
        seqs.append({"sequence": [label, "C"], "diagnostics": rec})
    tables = analysis_tables({"sequences": seqs})
    t = tables["tension"].set_index("sequence")
    for col in ("parameters", "parameter_shift_sigma", *FLOW_SHIFT_KEYS, "shift_disagreement",
                "shift_used", "shift_skipped"):
        assert col in t.columns, col
    assert t.loc["A→C", "shift_sigma"] == 2.0 and bool(t.loc["A→C", "shift_disagreement"])
    assert t.loc["A→C", "parameters"] == "p0, p1" and t.loc["A→C", "shift_used"] == "flow"
    assert all(pd.isna(t.loc["B→C", k]) for k in FLOW_SHIFT_KEYS)  # unknown, not 0
    assert t.loc["B→C", "shift_used"] == "gaussian"
    notes = [s["diagnostics"]["verdict"]["notes"][0] for s in seqs]
    assert "flow parameter shift (2.00" in notes[0] and "cannot be made" in notes[1]


# ------------------------------------------------------------------- the SEMF random split
def _table(n=101):
    rng = np.random.default_rng(3)
    return pd.DataFrame({"Z": np.arange(n) + 8, "A": 2 * np.arange(n) + 16,
                         "binding_energy_mev": rng.normal(size=n) + 100.0,
                         "binding_energy_uncertainty_mev": np.full(n, 0.01)})


def test_random_split_gives_two_disjoint_seeded_halves():
    table = _table()
    first = semf.split_nuclides(table, split="random", part="first", split_seed=1)
    second = semf.split_nuclides(table, split="random", part="second", split_seed=1)
    assert (len(first), len(second)) == (50, 51)
    both = pd.concat([first, second]).sort_values("Z").reset_index(drop=True)
    pd.testing.assert_frame_equal(both, table)  # disjoint, together the whole table
    assert first["Z"].is_monotonic_increasing  # table order kept
    again = semf.split_nuclides(table, split="random", part="first", split_seed=1)
    pd.testing.assert_frame_equal(again, first)
    other = semf.split_nuclides(table, split="random", part="first", split_seed=2)
    assert not other["Z"].equals(first["Z"])


@pytest.mark.parametrize("seed", [-1, 1.5, True, "1"])
def test_random_split_rejects_a_bad_seed(seed):
    with pytest.raises(InputError, match="split_seed: expected a non-negative integer"):
        semf.split_nuclides(_table(), split="random", part="first", split_seed=seed)


def test_config_declares_the_random_control():
    config = yaml.safe_load(CONFIG.read_text())
    entry = config["analyses"]["semf_random"]
    parts = {d["kwargs"]["part"] for d in entry["datasets"].values()}
    assert parts == set(semf.SPLITS["random"])
    seeds = {d["kwargs"]["split_seed"] for d in entry["datasets"].values()}
    assert len(seeds) == 1  # both halves of the same permutation
    assert entry["joint"] is True


def test_rule_note_must_be_callable():
    with pytest.raises(InputError, match="note: expected a callable"):
        Rule("x", "x_thr", 1.0, "warn", "x", "y", "z", note="not callable")
