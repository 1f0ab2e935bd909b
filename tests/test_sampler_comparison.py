"""Sampler comparison per analysis and the evidence-consistency check (issue #15).

Synthetic run records with closed-form numbers: exact samples of the built-in
``gaussian_linear`` problem stand in for the chains, and every log Z is the exact value plus a
chosen offset, so each error in sigma and each consistency n_sigma is known in advance.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from flowprior.chains import Chain, write_chain
from flowprior.diagnostics import (
    comparison_runs,
    default_thresholds,
    evidence_consistency,
    sampler_comparison,
    verdict,
)
from flowprior.diagnostics.comparison import CONSISTENCY_COLUMNS, SAMPLER_COLUMNS
from flowprior.diagnostics.sequence import quantities
from flowprior.diagnostics.verdict import checks_from_record
from flowprior.errors import InputError
from flowprior.plan import AnalysisPlan
from flowprior.problems.analytic import SPEC_PREFIX, get_analysis

SIZES = {"n_exact_samples": 300, "c2st_max_n": 150}
PROBLEM = get_analysis("gaussian_linear")
ANALYTIC = {
    d: {"likelihood": f"{SPEC_PREFIX}gaussian_linear", "kwargs": {"dataset": d}} for d in "AB"
}
OTHER = {d: {"likelihood": "my_module:loglike", "kwargs": {"dataset": d}} for d in "AB"}


# --------------------------------------------------------------------- evidence consistency
def test_consistency_in_combined_errors_closed_form():
    pairs = evidence_consistency([
        {"stage": "A__B", "sampler": "pocomc", "log_evidence": -10.0, "log_evidence_err": 0.3},
        {"stage": "A__B", "sampler": "nested", "log_evidence": -12.0, "log_evidence_err": 0.4},
        {"stage": "A__B", "sampler": "emcee", "log_evidence": None, "log_evidence_err": None},
        {"stage": "A", "sampler": "pocomc", "log_evidence": -5.0, "log_evidence_err": 0.1},
    ])  # fmt: skip
    assert len(pairs) == 1  # emcee has no log Z; stage A has a single run
    (p,) = pairs
    assert (p["stage"], p["sampler_a"], p["sampler_b"]) == ("A__B", "pocomc", "nested")
    assert p["difference"] == pytest.approx(2.0)
    assert p["combined_error"] == pytest.approx(0.5)  # sqrt(0.3^2 + 0.4^2)
    assert p["n_sigma"] == pytest.approx(4.0) and p["skipped"] is None


def test_consistency_unknown_or_zero_error_cannot_be_made():
    pairs = evidence_consistency([
        {"stage": "s", "sampler": "a", "log_evidence": 1.0, "log_evidence_err": None},
        {"stage": "s", "sampler": "b", "log_evidence": 1.5, "log_evidence_err": 0.2},
        {"stage": "t", "sampler": "a", "log_evidence": 1.0, "log_evidence_err": 0.0},
        {"stage": "t", "sampler": "b", "log_evidence": 1.0, "log_evidence_err": 0.0},
    ])  # fmt: skip
    unknown, zero = pairs
    assert unknown["n_sigma"] is None and unknown["combined_error"] is None
    assert "no log Z error reported by a" in unknown["skipped"]
    assert unknown["difference"] == pytest.approx(-0.5)
    assert zero["n_sigma"] is None and "combined log Z error is 0" in zero["skipped"]


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"stage": "s", "sampler": "a", "log_evidence": 1.0}, "missing key 'log_evidence_err'"),
        ({"stage": "s", "sampler": "a", "log_evidence": "x", "log_evidence_err": 0.1}, "number"),
        ({"stage": "s", "sampler": "a", "log_evidence": math.inf, "log_evidence_err": 0.1},
         "finite"),
        ({"stage": "s", "sampler": "a", "log_evidence": 1.0, "log_evidence_err": -0.1},
         "negative"),
    ],
)  # fmt: skip
def test_consistency_bad_input(bad, match):
    with pytest.raises(InputError, match=match):
        evidence_consistency([bad])
    twice = {"stage": "s", "sampler": "a", "log_evidence": 1.0, "log_evidence_err": 0.1}
    with pytest.raises(InputError, match="listed twice"):
        evidence_consistency([twice, twice])


def test_consistency_warns_in_the_verdict_above_three():
    def record(n_sigma):
        pair = {"stage": "A__B", "sampler_a": "pocomc", "sampler_b": "nested", "n_sigma": n_sigma}
        return {"evidence_consistency": [pair]}

    assert default_thresholds()["evidence_consistency"] == 3.0
    low = verdict(checks_from_record(record(2.9)))
    assert low.status == "ok" and "evidence_consistency" not in low.not_measured
    high = verdict(checks_from_record(record(3.2)))
    assert high.status == "warn"
    (reason,) = high.reasons
    assert "pocomc vs nested at A→B" in reason and "3.2" in reason
    unknown = verdict(checks_from_record(record(None)))
    assert unknown.status == "ok" and "evidence_consistency" in unknown.not_measured
    assert "evidence_consistency" in [q.name for q in quantities()]


# ------------------------------------------------------------------------- the tables
def _write_run(root, kind, stage, sampler, *, info, chain_of=None, seed=0):
    """A run directory: exact samples of ``chain_of`` datasets (equal weights) + run.json."""
    d = root / kind / stage / sampler
    d.mkdir(parents=True)
    x = PROBLEM.sample_posterior(chain_of or stage.split("__"), 400, seed=seed)
    write_chain(Chain(PROBLEM.params, x), d / "samples.parquet")
    (d / "run.json").write_text(json.dumps({"sampler": sampler, **info}))
    return {"kind": kind, "stage": stage, "sampler": sampler,
            "samples": str(d / "samples.parquet"), "run": str(d / "run.json")}  # fmt: skip


def _exact(*names):
    return PROBLEM.log_evidence(names)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    z_a, z_b, z_ab = _exact("A"), _exact("B"), _exact("A", "B")
    z_b_a = z_ab - z_a
    calls = {"n_likelihood_calls": 1000, "wall_seconds": 2.0}
    return [
        _write_run(root, "stage1", "A", "pocomc", seed=1,
                   info={**calls, "log_evidence": z_a + 0.1, "log_evidence_err": 0.05}),
        _write_run(root, "stage1", "B", "pocomc", seed=2,
                   info={**calls, "log_evidence": z_b, "log_evidence_err": None}),
        _write_run(root, "sequential", "A__B", "pocomc", seed=3,
                   info={**calls, "log_evidence": z_b_a - 0.3, "log_evidence_err": 0.1}),
        _write_run(root, "sequential", "A__B", "nested", seed=4,
                   info={"n_likelihood_calls": 5000, "wall_seconds": 9.0,
                         "log_evidence": z_b_a + 0.2, "log_evidence_err": 0.1,
                         "flow_correction": {"log_mean_ratio": z_a - 0.05,
                                             "log_mean_ratio_err": 0.05}}),
        _write_run(root, "sequential", "A__B", "emcee", seed=5,
                   info={"n_likelihood_calls": 800, "wall_seconds": 1.0,
                         "log_evidence": None, "log_evidence_err": None}),
        # a biased "joint" run: samples of A only, 4 sigma above the exact log Z
        _write_run(root, "joint", "A__B", "pocomc", chain_of=["A"], seed=6,
                   info={**calls, "log_evidence": z_ab + 0.4, "log_evidence_err": 0.1}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tables(runs):
    return sampler_comparison(
        runs=runs, params=PROBLEM.params, datasets=ANALYTIC, settings=SIZES, seed=3
    )


def _row(table, kind, stage, sampler):
    rows = table[(table["kind"] == kind) & (table["stage"] == stage) & (table["sampler"] == sampler)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_sampler_table_columns_and_closed_form_numbers(tables):
    t = tables["samplers"]
    assert tuple(t.columns) == SAMPLER_COLUMNS
    assert list(zip(t["kind"], t["stage"], t["sampler"])) == [
        ("stage1", "A", "pocomc"), ("stage1", "B", "pocomc"), ("sequential", "A→B", "pocomc"),
        ("sequential", "A→B", "nested"), ("sequential", "A→B", "emcee"),
        ("joint", "A+B", "pocomc"),
    ]  # fmt: skip
    # registry labels; a name the registry does not know is shown as it is
    assert list(t["sampler_label"]) == ["pocoMC", "pocoMC", "pocoMC", "nested", "emcee", "pocoMC"]
    a = _row(t, "stage1", "A", "pocomc")
    assert a["exact_log_Z"] == pytest.approx(_exact("A"), abs=1e-12)
    assert a["log_Z_error_sigma"] == pytest.approx(2.0)  # +0.1 / 0.05
    assert a["log_Z_total_route"] == "own" and a["log_Z_total_error_sigma"] == pytest.approx(2.0)
    assert (a["n_likelihood_calls"], a["wall_seconds"]) == (1000, 2.0)
    # sequential: own log Z_{B|A} against exact log Z_AB - log Z_A; total via stage 1 + term
    p = _row(t, "sequential", "A→B", "pocomc")
    assert p["exact_log_Z"] == pytest.approx(_exact("A", "B") - _exact("A"), abs=1e-12)
    assert p["log_Z_error_sigma"] == pytest.approx(-3.0)
    assert p["log_Z_total_route"] == "stage 1 + sequential terms"
    assert p["log_Z_total"] == pytest.approx(_exact("A", "B") - 0.2)
    assert p["log_Z_total_err"] == pytest.approx(math.hypot(0.05, 0.1))
    assert p["log_Z_total_error_sigma"] == pytest.approx(-0.2 / math.hypot(0.05, 0.1))
    # flow-corrected total: own log Z + log E[r], errors in quadrature
    n = _row(t, "sequential", "A→B", "nested")
    assert n["log_Z_total_route"] == "flow-corrected"
    assert n["log_Z_total"] == pytest.approx(_exact("A", "B") + 0.15)
    assert n["log_Z_total_error_sigma"] == pytest.approx(0.15 / math.hypot(0.1, 0.05))
    j = _row(t, "joint", "A+B", "pocomc")
    assert j["log_Z_error_sigma"] == pytest.approx(4.0)


def test_unknown_values_stay_null_with_a_reason(tables):
    t = tables["samplers"]
    b = _row(t, "stage1", "B", "pocomc")  # log Z without an error
    assert b["log_Z_err"] is None and b["log_Z_error_sigma"] is None
    assert "no log Z error reported" in b["notes"]
    e = _row(t, "sequential", "A→B", "emcee")
    assert e["log_Z"] is None and e["log_Z_error_sigma"] is None and e["log_Z_total"] is None
    assert "emcee gives no evidence" in e["notes"]
    assert e["c2st"] is not None  # accuracy does not need an evidence


def test_accuracy_against_exact_separates_right_and_wrong_posteriors(tables):
    t = tables["samplers"]
    good = _row(t, "sequential", "A→B", "pocomc")
    bad = _row(t, "joint", "A+B", "pocomc")  # samples of A standing in for A+B
    # exact samples: shifts are sampling noise (400 points: se of a mean 0.05 sd)
    assert good["max_abs_mean_shift"] < 0.25 and good["max_abs_sd_ratio_deviation"] < 0.25
    assert bad["max_abs_sd_ratio_deviation"] > 0.3  # A alone is much wider than A+B
    assert good["c2st"] < bad["c2st"]


def test_consistency_table_flags_above_three(tables):
    c = tables["evidence_consistency"]
    assert tuple(c.columns) == CONSISTENCY_COLUMNS
    (row,) = c.itertuples(index=False)  # one stage with two evidences (emcee has none)
    assert (row.kind, row.stage, row.sampler_a, row.sampler_b) == (
        "sequential", "A→B", "pocomc", "nested"
    )
    assert row.difference == pytest.approx(-0.5)
    assert row.n_sigma == pytest.approx(0.5 / math.hypot(0.1, 0.1))  # 3.54 > 3
    assert row.flag is True and row.threshold == 3.0 and row.skipped is None


def test_threshold_from_settings_and_csv_round_trip(runs, tmp_path):
    out = sampler_comparison(
        runs=runs[2:4], params=PROBLEM.params, datasets=ANALYTIC,
        settings={**SIZES, "evidence_consistency": 4.0}, seed=3,
    )  # fmt: skip
    c = out["evidence_consistency"]
    assert c["flag"].tolist() == [False] and c["threshold"].tolist() == [4.0]
    # without stage 1 of A the pocoMC chain A -> B has no total: an empty CSV cell, never 0
    path = tmp_path / "samplers.csv"
    out["samplers"].to_csv(path, index=False)
    back = pd.read_csv(path)
    assert back["log_Z_total"].isna().tolist() == [True, False]
    assert back["log_Z_total_error_sigma"].isna().tolist() == [True, False]
    assert "total unknown" in back.loc[0, "notes"]
    assert back["log_Z"].notna().all()


def test_without_exact_answer_accuracy_is_null_and_said(runs):
    out = sampler_comparison(
        runs=runs[:1] + runs[4:5], params=PROBLEM.params, datasets=OTHER, settings=SIZES
    )
    t = out["samplers"]
    for column in ("exact_log_Z", "log_Z_error_sigma", "exact_log_Z_total",
                   "log_Z_total_error_sigma", "max_abs_mean_shift",
                   "max_abs_sd_ratio_deviation", "c2st"):  # fmt: skip
        assert t[column].tolist() == [None, None], column
    assert all("no exact answer" in n for n in t["notes"])
    assert t["log_Z"].iloc[0] is not None  # the run's own numbers stay


def test_bad_runs_are_named(runs, tmp_path):
    with pytest.raises(InputError, match=r"runs\[0\]\.kind"):
        sampler_comparison(runs=[{**runs[0], "kind": "final"}], params=PROBLEM.params,
                           datasets=ANALYTIC)  # fmt: skip
    with pytest.raises(InputError, match="listed twice"):
        sampler_comparison(runs=[runs[0], runs[0]], params=PROBLEM.params, datasets=ANALYTIC)
    (tmp_path / "run.json").write_text("[1]")
    with pytest.raises(InputError, match="run.json: expected a JSON object"):
        sampler_comparison(runs=[{**runs[0], "run": str(tmp_path / "run.json")}],
                           params=PROBLEM.params, datasets=ANALYTIC)  # fmt: skip


def test_comparison_runs_follow_the_plan_and_the_registry():
    config = {
        "seed": 1, "flow": {},
        "analyses": {"g": {
            "parameters": "p.yaml", "datasets": {**ANALYTIC, "C": {"chain": "c.parquet"}},
            "sequences": [["A", "B"], ["B", "A", "C"]], "samplers": ["pocomc", "emcee"],
            "stage1_sampler": "pocomc", "joint_sampler": "emcee", "joint": True,
        }},
    }  # fmt: skip
    runs = comparison_runs(AnalysisPlan.from_config("g", config))
    got = [(r["kind"], r["stage"], r["sampler"]) for r in runs]
    assert got == [
        ("stage1", "A", "pocomc"), ("stage1", "B", "pocomc"),  # no run for chain dataset C
        ("sequential", "A__B", "pocomc"), ("sequential", "A__B", "emcee"),
        ("sequential", "B__A", "pocomc"), ("sequential", "B__A", "emcee"),
        ("sequential", "B__A__C", "pocomc"), ("sequential", "B__A__C", "emcee"),
        ("joint", "A__B", "emcee"),
    ]  # fmt: skip
    assert runs[2]["run"] == "results/g/sequential/A__B/pocomc/run.json"


# ----------------------------------------------------------------------------- the figure
def test_comparison_figure_written_and_readable(tables, tmp_path):
    from flowprior import plots
    from test_analysis_plots import assert_readable

    path = tmp_path / "samplers.png"
    plots.plot_sampler_comparison(tables["samplers"], path=path, c2st_threshold=0.55, dpi=30,
                                  title="gaussian_linear: samplers")  # fmt: skip
    assert path.stat().st_size > 0
    fig = plots._sampler_comparison_figure(
        tables["samplers"], c2st_threshold=0.55, title="gaussian_linear: samplers"
    )
    assert_readable(fig)
    axes = fig.axes
    assert len(axes) == 4
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "stage 1: A", "stage 1: B", "A→B", "joint A+B"
    ]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "pocoMC", "nested", "emcee", "C2ST 0.55"
    ]
    # log Z panel: exact-relative offsets, emcee (no evidence) not drawn
    xs = np.sort(np.concatenate([c.get_xdata() for c in axes[3].get_lines()
                                 if c.get_marker() in plots._MARKERS]))  # fmt: skip
    assert xs == pytest.approx(np.sort([0.1, 0.0, -0.3, 0.2, 0.4]))


def test_comparison_figure_without_exact_answer_and_bad_input(runs, tmp_path):
    from flowprior import plots
    from test_analysis_plots import assert_readable

    t = sampler_comparison(runs=runs[:1] + runs[4:5], params=PROBLEM.params, datasets=OTHER,
                           settings=SIZES)["samplers"]  # fmt: skip
    fig = plots._sampler_comparison_figure(t)
    assert_readable(fig)
    assert "no exact answer" in [x.get_text() for x in fig.axes[2].texts]
    assert fig.axes[3].get_xlabel() == r"$\log Z-\overline{\log Z}$"  # no exact value
    with pytest.raises(InputError, match=r"columns \['c2st'\] missing"):
        plots.plot_sampler_comparison(t.drop(columns="c2st"), path=tmp_path / "a.png")
    with pytest.raises(InputError, match="no rows"):
        plots.plot_sampler_comparison(t.iloc[:0], path=tmp_path / "a.png")
    with pytest.raises(InputError, match="duplicate rows"):
        plots.plot_sampler_comparison(pd.concat([t, t]), path=tmp_path / "a.png")
    with pytest.raises(InputError, match="c2st_threshold"):
        plots.plot_sampler_comparison(t, path=tmp_path / "a.png", c2st_threshold=0.4)
    assert not (tmp_path / "a.png").exists()
