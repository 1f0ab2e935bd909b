"""The training-strategy study: the funnel target, scoring, held-out selection, tables, figure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from flowprior.errors import InputError
from flowprior.plots import plot_score_vs_time
from flowprior.problems import PROBLEMS, get_problem
from flowprior.study import (
    apply_selection,
    GRID_KEYS,
    hidden_label,
    loss_comparison,
    parse_hidden,
    score_configuration,
    select_best,
    selected_settings,
    selection,
    split_held_out,
    to_markdown,
)
from flowprior.train import TrainConfig


# ------------------------------------------------------------------------------- funnel
def test_funnel_is_registered_and_normalised_on_its_box():
    assert "funnel" in PROBLEMS
    p = get_problem("funnel")
    (vlo, vhi), (xlo, xhi) = p.params.bounds

    def inner(v):
        sd = np.exp(0.5 * v)
        lo, hi = max(xlo, -14 * sd), min(xhi, 14 * sd)  # beyond 14 sd: < 1e-40
        f = lambda x: np.exp(p.log_density(np.array([[v, x]])))[0]  # noqa: E731
        return integrate.quad(f, lo, hi, points=[0.0], limit=200)[0]

    total = integrate.quad(inner, vlo, vhi, points=[0.0], limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-7)


def test_funnel_samples_match_the_closed_form_moments():
    p = get_problem("funnel")
    x = p.sample(200_000, seed=3)
    assert p.params.contains(x).all()
    v, y = x[:, 0], x[:, 1]
    assert v.mean() == pytest.approx(0.0, abs=0.02)
    assert v.var() == pytest.approx(2.25, rel=0.02)
    assert y.mean() == pytest.approx(0.0, abs=0.03)
    assert y.var() == pytest.approx(np.exp(2.25 / 2), rel=0.05)  # E[exp(v)]
    # log_prob is the exact density: its mean over samples is minus the entropy, finite
    assert np.isfinite(p.log_prob(x[:1000])).all()
    assert p.log_prob(np.array([[11.0, 0.0]]))[0] == -np.inf


# ----------------------------------------------------------------------------- helpers
def test_hidden_label_round_trip():
    assert hidden_label([64, 32]) == "64x32"
    assert parse_hidden("64x32") == [64, 32]
    assert parse_hidden(16) == [16]
    with pytest.raises(InputError, match="widths"):
        parse_hidden("wide")


def test_split_held_out_is_disjoint_and_reproducible():
    chain = get_problem("banana").chain(1000, seed=1)
    tr, ho = split_held_out(chain, fraction=0.25, seed=4)
    assert (tr.n, ho.n) == (750, 250)
    both = np.concatenate([tr.samples, ho.samples])
    assert len(np.unique(both, axis=0)) == 1000
    tr2, _ = split_held_out(chain, fraction=0.25, seed=4)
    np.testing.assert_array_equal(tr.samples, tr2.samples)
    with pytest.raises(InputError, match="fraction"):
        split_held_out(chain, fraction=1.0, seed=0)


# --------------------------------------------------------------------------- one job
def test_score_configuration_scores_on_independent_held_out_samples():
    p = get_problem("banana")
    train = p.chain(3000, seed=1)
    held = p.chain(3000, seed=2)
    cfg = TrainConfig(kind="maf", loss="kl", max_steps=150, max_time=5, progress=False, seed=3)
    row = score_configuration(
        chain=train, train_config=cfg, exact=p, held_out=held, seed=0, n_boot=10, c2st_max_n=500
    )
    assert {*GRID_KEYS, "seed", "held_out_nll", "exact_kl", "c2st"} <= set(row)
    assert row["loss"] == "kl" and row["hidden"] == "64x64" and row["seed"] == 3
    assert row["n_train"] == 3000 and row["n_held_out"] == 3000
    # exact KL = held-out NLL minus the exact entropy estimate on the same samples
    entropy = -np.mean(p.log_prob(held.samples))
    assert row["exact_kl"] == pytest.approx(row["held_out_nll"] - entropy, abs=1e-9)
    assert 0 <= row["exact_kl"] < 0.5
    assert 0.4 < row["c2st"] < 0.8
    assert row["steps"] <= 150 and row["train_seconds"] > 0
    json.dumps(row)  # one JSON-safe flat row


def test_score_configuration_splits_a_chain_without_exact_density():
    chain = get_problem("gaussian_7d").chain(2000, seed=1)
    cfg = TrainConfig(kind="maf", max_steps=50, max_time=5, progress=False)
    row = score_configuration(
        chain=chain, train_config=cfg, held_out=0.2, seed=1, n_boot=5, c2st_max_n=300
    )
    assert (row["n_train"], row["n_held_out"]) == (1600, 400)
    assert np.isnan(row["exact_kl"]) and np.isfinite(row["held_out_nll"])


# ------------------------------------------------------------------------- selection
def _scores() -> pd.DataFrame:
    rows = []
    base = {"transforms": 3, "hidden": "64x64", "lr": 0.001, "batch_size": 512}
    values = {  # target -> loss -> per-seed held-out NLL
        "banana": {"nll": [1.0, 1.2], "kl": [1.0, 1.2], "jeffreys": [1.5, 1.3]},
        "gauss": {"nll": [2.1, 2.1], "kl": [2.0, 2.05], "jeffreys": [2.2, 2.3]},
    }
    for target, by_loss in values.items():
        for loss, vals in by_loss.items():
            for seed, v in enumerate(vals):
                rows.append(
                    {
                        "target": target,
                        "loss": loss,
                        "kind": "maf",
                        **base,
                        "seed": seed,
                        "held_out_nll": v,
                        "exact_kl": v - 0.9,
                        "c2st": 0.5 + (v - 0.9) / 10,
                        "max_moment_score": v,
                        "sliced_wasserstein": v / 100,
                        "train_seconds": 10.0 + seed,
                        # a training-data score that must never drive the selection
                        "train_nll": -v,
                    }
                )
    return pd.DataFrame(rows)


def test_select_best_ranks_on_the_mean_held_out_score_with_the_seed_spread():
    ranking, winners = select_best(_scores())
    top = ranking[ranking["rank"] == 1].set_index("target")
    assert top.loc["banana", "loss"] == "nll"  # tie with kl: the first in the grid wins
    assert top.loc["gauss", "loss"] == "kl"
    assert top.loc["gauss", "mean"] == pytest.approx(2.025)
    assert top.loc["gauss", "sd"] == pytest.approx(np.std([2.0, 2.05], ddof=1))
    assert (top.loc["gauss", "min"], top.loc["gauss", "max"]) == (2.0, 2.05)
    assert top.loc["gauss", "n_seeds"] == 2
    assert list(ranking[ranking["target"] == "banana"]["rank"]) == [1, 2, 3]
    assert winners["gauss"] == {
        "loss": "kl",
        "kind": "maf",
        "transforms": 3,
        "hidden": [64, 64],
        "lr": 0.001,
        "batch_size": 512,
    }
    md = to_markdown(ranking, kind="ranking")
    assert md.count("\n| banana |") == 3 and "2.0250 ± 0.0354" in md


def test_select_best_refuses_training_data_metrics_and_ranks_c2st_by_distance():
    with pytest.raises(InputError, match="metric"):
        select_best(_scores(), metric="train_nll")
    df = _scores()
    df.loc[(df["target"] == "gauss") & (df["loss"] == "jeffreys"), "c2st"] = 0.3
    _, winners = select_best(df, metric="c2st")
    assert winners["gauss"]["loss"] == "kl"  # 0.61 is closer to 0.5 than 0.3


def test_selected_settings_per_target_else_the_best_mean_rank():
    sel = selection(_scores())
    assert sel["overall"]["loss"] in ("nll", "kl")
    assert sel["overall"]["mean_rank"] == pytest.approx(1.5)
    json.dumps(sel)
    assert selected_settings(sel, target="gauss")["loss"] == "kl"
    fallback = selected_settings(sel, target="semf_historical/early__late")
    assert fallback == {k: sel["overall"][k] for k in GRID_KEYS}
    assert selected_settings(sel, target=None) == fallback
    with pytest.raises(InputError, match="winner"):
        selected_settings({"by_target": {}}, target="x")


def test_loss_comparison_table():
    table = loss_comparison(_scores())
    row = table[(table["target"] == "banana") & (table["loss"] == "jeffreys")].iloc[0]
    assert row["n"] == 2
    assert row["held_out_nll_mean"] == pytest.approx(1.4)
    assert row["held_out_nll_sd"] == pytest.approx(np.std([1.5, 1.3], ddof=1))
    md = to_markdown(table, kind="losses")
    assert "| banana | maf | jeffreys | 2 | 1.4000 ± 0.1414 |" in md


def test_plot_score_vs_time(tmp_path):
    out = tmp_path / "score_vs_time.png"
    plot_score_vs_time(_scores(), path=out)
    assert out.stat().st_size > 1000
    with pytest.raises(InputError, match="missing"):
        plot_score_vs_time(pd.DataFrame({"target": []}), path=out)


def test_apply_selection_fills_the_grid_keys_the_entry_does_not_set():
    sel = selection(_scores())
    flow = {"select": "auto", "kind": "nsf", "loss": "nll", "max_steps": 99, "transforms": 5}
    out = apply_selection(flow, sel, target="gauss", explicit=["select", "transforms"])
    assert "select" not in out
    assert out["loss"] == "kl" and out["kind"] == "maf"  # the winner's
    assert out["transforms"] == 5 and out["max_steps"] == 99  # the entry's own, kept
    TrainConfig.from_dict({**out, "progress": False})
    # without select: auto, the settings pass through unchanged
    assert apply_selection({"kind": "nsf"}, sel, target="gauss") == {"kind": "nsf"}


# ------------------------------------------------------------------ workflow wiring (dry run)
def test_select_auto_makes_the_flow_jobs_wait_for_the_selection(tmp_path):
    """A dry run: study jobs fan out per (target, configuration, seed), and a `select: auto`
    analysis trains its flows after selection.json, with the study target in its settings."""
    import shutil
    import subprocess
    import sys

    import yaml

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "config" / "parameters", tmp_path / "config" / "parameters")
    config = {
        "analyses": {
            "lin": {
                "parameters": "config/parameters/gaussian_linear.yaml",
                "datasets": {
                    "A": {"likelihood": "flowprior.problems.analytic:gaussian_linear", "kwargs": {"dataset": "A"}},
                    "B": {"likelihood": "flowprior.problems.analytic:gaussian_linear", "kwargs": {"dataset": "B"}},
                },
                "sequences": [["A", "B"]],
                "joint": False,
                "flow": {"select": "auto", "max_steps": 10},
            }
        },
        "training_study": {
            "targets": ["banana", "lin/A"],
            "grid": {"loss": ["nll", "jeffreys"], "kind": ["maf"]},
            "seeds": [1, 2],
        },
    }
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
        "--directory", str(tmp_path), "-n", "--cores", "1", "-p",
        "--configfile", str(cfg), "--replace-workflow-config",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    flat = " ".join(out.split())
    assert "score_configuration 8" in flat  # 2 targets x 2 losses x 1 kind x 2 seeds
    assert "results/training_study/jobs/lin/A/loss~jeffreys/kind~maf/" in out
    assert "results/lin/stage1/A/samples.parquet" in out
    block = out[out.index("rule train_stage_flow:") :]
    assert "results/training_study/selection.json" in block.split("rule ", 2)[1]
