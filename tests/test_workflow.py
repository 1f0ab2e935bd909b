"""The Snakemake workflow: dry run, lint, formatting, and the end-to-end run of the study of
tests/e2e.py (config/test.yaml plus an external chain and the README's worked example), which
runs once per session (fixture ``e2e_study``) and is checked by the ``test_e2e_*`` tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from e2e import BIN, REPO, copy_inputs, job_blocks, snakemake, snakemake_env

LINT_CLEAN = "Congratulations, your workflow is in a good condition!"


def test_dry_run_of_default_config(tmp_path):
    copy_inputs(tmp_path)
    proc = snakemake(
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        workdir=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for rule, count in [
        ("prepare_posterior", 2),
        ("train_flow", 2),
        ("posterior_flow_fidelity", 2),  # one flow pipeline: posterior flows are checked too
        ("sample_flow", 2),
        ("plot_flow", 2),
        ("summarise_flows", 1),
        ("extract_nuclides", 1),
        ("stage1", 12),  # the last dataset of each sequence too: the tension diagnostics
        ("train_stage_flow", 9),
        ("sequential", 15),
        ("joint", 6),
        ("flow_fidelity", 9),
        ("diagnose_sequence", 9),
        ("summarise_analysis", 6),
        ("plot_stage_flow", 9),
        ("plot_training", 9),
        ("plot_sequential", 15),
        ("plot_agreement", 6),
        ("study_summary", 1),
        ("score_configuration", 18),  # training study: 2 targets x 3 losses x 3 flows x 1 seed
        ("summarise_training_study", 1),
        ("plot_training_study", 1),
    ]:
        assert f"rule {rule}:" in out
        assert f"{rule} {count}" in " ".join(out.split()), f"{rule}: expected {count} jobs"
    assert "results/figures/flow_mixture_7d.png" in out
    assert "results/tables/flows.csv" in out
    assert "results/training_study/figures/score_vs_time.png" in out


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        capture_output=True,
        text=True,
        timeout=300,
        env=snakemake_env(),
        cwd=REPO,
    )
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, out
    assert out == LINT_CLEAN, out


def test_snakefmt_check():
    snakefmt = shutil.which("snakefmt", path=str(BIN)) or shutil.which("snakefmt")
    if snakefmt is None:
        pytest.fail("snakefmt is not installed (it is in requirements.lock)")
    proc = subprocess.run(
        [snakefmt, "--check", "Snakefile", "workflow/"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_do_not_read_config():
    for script in (REPO / "scripts").glob("*.py"):
        text = script.read_text()
        assert "snakemake.config" not in text, f"{script.name}: values come via params"
        assert "run_rule(snakemake, main)" in text, f"{script.name}: use flowprior._script"


def test_e2e_outputs_logs_and_benchmarks(e2e_study):
    results = e2e_study.results
    expected = [
        "posteriors/banana/chain.parquet",
        "posteriors/banana/parameters.yaml",
        "flows/banana/model.zip",
        "flows/banana/history.csv",
        "flows/banana/validation.json",
        "flows/banana/fidelity.json",
        "flows/banana/samples.parquet",
        "figures/flow_banana.png",
        "tables/flows.csv",
    ]
    for rel in expected:
        assert (results / rel).is_file() and (results / rel).stat().st_size > 0, rel
    for rule in ["prepare_posterior", "train_flow", "flow_fidelity", "sample_flow", "plot_flow"]:
        assert (e2e_study.workdir / "logs" / rule / "banana.log").is_file(), rule
        assert (results / "benchmarks" / rule / "banana.tsv").is_file(), rule
    assert not list(results.rglob("*.tmp*")), "temporary files left behind"


def test_e2e_flows_table(e2e_study):
    """One table of every flow: the posteriors' and the analyses' flows, with their fidelity."""
    table = pd.read_csv(e2e_study.results / "tables" / "flows.csv").set_index("flow")
    assert list(table.columns) == [
        "kind",
        "loss",
        "steps",
        "best_val_nll",
        "train_seconds",
        "ess",
        "held_out_nll",
        "gaussian_held_out_nll",
        "exact_kl",
        "max_moment_score",
        "c2st",
        "sliced_wasserstein",
        "mode_mass_difference",
    ]
    # posteriors first, then the analyses' flows, each in config order
    flows = ["banana", "ext", "gaussian_linear/A", "semf/early", "mine/A",
             "nested/A"]
    assert table.index.tolist() == flows
    assert table.loc["banana", "kind"] == "nsf" and table.loc["banana", "loss"] == "nll"
    assert 0 < table.loc["banana", "steps"] <= 200
    assert table.loc["banana", "ess"] == pytest.approx(4000)
    assert pd.isna(table.loc["banana", "exact_kl"])  # exact KL: analytic analyses only
    assert table.loc["gaussian_linear/A", "exact_kl"] > 0
    assert (table["c2st"].between(0, 1)).all() and (table["held_out_nll"].notna()).all()


def test_e2e_flow_samples_lie_in_the_box(e2e_study):
    from flowprior.chains import read_chain
    from flowprior.params import load_parameters

    results = e2e_study.results
    space = load_parameters(results / "posteriors" / "banana" / "parameters.yaml")
    samples = read_chain(results / "flows" / "banana" / "samples.parquet", space)
    assert samples.n == 2000
    assert space.contains(samples.samples).all()


def test_e2e_report_renders(e2e_study):
    """The report renders the captions (Jinja templates) of the finished run."""
    report = e2e_study.workdir / "report.html"
    proc = snakemake(
        "--cores", "1", *e2e_study.args, "--report", str(report), workdir=e2e_study.workdir
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.is_file() and report.stat().st_size > 0


def test_e2e_second_run_is_a_no_op(e2e_study):
    proc = snakemake("-n", "--cores", "1", *e2e_study.args, workdir=e2e_study.workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_e2e_external_chain_entry(e2e_study):
    """A `chain` entry: its files are the job's inputs; per-posterior flow settings apply."""
    import numpy as np

    from flowprior.chains import read_chain
    from flowprior.params import load_parameters

    (prepare,) = [b for b in job_blocks(e2e_study.output, "prepare_posterior")
                  if "wildcards: posterior=ext" in b]
    assert "input: data/chain.csv, data/params.yaml" in prepare, prepare
    (train,) = [b for b in job_blocks(e2e_study.output, "train_flow")
                if "wildcards: posterior=ext" in b]
    assert "threads: 2" in train, train  # the entry's flow.threads

    results = e2e_study.results
    space = load_parameters(results / "posteriors/ext/parameters.yaml")
    assert space.names == ("a", "b") and space.labels[0] == r"\alpha"
    chain = read_chain(results / "posteriors/ext/chain.parquet", space)
    np.testing.assert_array_equal(chain.samples, np.round(e2e_study.ext_samples, 6))
    np.testing.assert_allclose(chain.weights, np.round(e2e_study.ext_weights, 3))


def test_e2e_gaussian_linear_evidence_and_means(e2e_study):
    _check_analysis_summary(e2e_study.results / "gaussian_linear")


def test_e2e_diagnostics_tables_and_figures(e2e_study):
    _check_diagnostics(e2e_study.results)


def test_e2e_semf(e2e_study):
    _check_semf(e2e_study.workdir)


def _check_analysis_summary(base: Path) -> None:
    """The tiny gaussian_linear analysis: layout, run records, evidence bookkeeping."""
    import json

    import numpy as np

    from flowprior.problems.analytic import get_analysis

    summary = json.loads((base / "summary.json").read_text())
    problem = get_analysis("gaussian_linear")
    names = list(problem.params.names)
    assert summary["parameters"] == names
    # one order: B's stage-1 run (results/.../stage1/B) serves the tension diagnostics only,
    # and B has no flow
    assert set(summary["stage1"]) == {"A"} and set(summary["flows"]) == {"A"}
    assert set(summary["sequential"]) == {"A__B"}
    assert all(set(v) == {"pocomc", "emcee"} for v in summary["sequential"].values())
    assert set(summary["joint"]) == {"A__B"}
    for rel in ["stage1/A", "stage1/B", "joint/A__B", "sequential/A__B/pocomc",
                "sequential/A__B/emcee"]:
        frame = pd.read_parquet(base / rel / "samples.parquet")
        assert list(frame.columns) == names + ["weight", "log_likelihood", "log_prior"], rel
        run = json.loads((base / rel / "run.json").read_text())
        for key in ["sampler", "settings", "seed", "log_evidence", "n_likelihood_calls",
                    "wall_seconds", "diagnostics"]:
            assert key in run, (rel, key)
        assert run["n_likelihood_calls"] > 0
    for name in ["model.zip", "history.csv", "validation.json", "fidelity.json"]:
        assert (base / "flows" / "A" / name).is_file(), name
    # Evidence bookkeeping and agreement with the joint run: against the
    # closed forms, within 4 of the estimators' own reported errors.
    exact = problem.log_evidence(["A", "B"])
    joint = summary["joint"]["A__B"]["run_info"]
    for seq in summary["sequences"]:
        check, chain = seq["evidence_check"], seq["sequential_evidence"]
        fc = chain["flow_corrected"]
        first = summary["stage1"][seq["sequence"][0]]["run_info"]
        # stage 1 and joint: unbiased estimates (measured 0.07-0.5 and 1.0 errors)
        assert abs(first["log_evidence"] - problem.log_evidence(seq["sequence"][:1])) < (
            4 * first["log_evidence_err"]), first
        assert check["joint_log_evidence"] == joint["log_evidence"]
        assert abs(joint["log_evidence"] - exact) < 4 * joint["log_evidence_err"], joint
        # the flow-corrected total against the exact log Z_AB (measured 0.8 and 1.1 errors)
        assert abs(fc["log_evidence"] - exact) < 4 * fc["log_evidence_err"], fc
        # the raw chain is off by the flow's bias (0.13-0.14 nats here, 5-7 errors), which is
        # exactly what the correction removes: raw - flow_bias = corrected (documented sign)
        assert chain["log_evidence"] - fc["flow_bias"] == pytest.approx(fc["log_evidence"])
        assert check["skipped"] is None and check["flow_corrected"]["skipped"] is None
        assert check["n_sigma"] == pytest.approx(
            (chain["log_evidence"] - joint["log_evidence"])
            / np.hypot(chain["log_evidence_err"], joint["log_evidence_err"]))
        # posterior means: the joint against the exact ones within 4 / sqrt(Kish ESS) sd
        # (measured 0.76 SE); each sequential against the joint within
        # 4 sqrt(1/n_eff + 1/n_eff_joint) joint sd with pocoMC's particle ESS n_effective_final
        # (its particles are MCMC-correlated across iterations, so the Kish ESS over all of
        # them overstates the independent samples; measured 2.2 SE, the flow's error included)
        vs_exact = seq["diagnostics"]["vs_exact"]["joint"]["max_abs_mean_shift"]
        assert vs_exact < 4 / np.sqrt(joint["diagnostics"]["ess"]), vs_exact
        n_seq = summary["sequential"][seq["stage"]]["pocomc"]["run_info"]["diagnostics"]
        n_joint = joint["diagnostics"]["n_effective_final"]
        shift = seq["vs_joint"]["pocomc"]["max_abs_mean_shift"]
        assert shift < 4 * np.sqrt(1 / n_seq["n_effective_final"] + 1 / n_joint), shift


def _check_diagnostics(results: Path) -> None:
    """Diagnostics, tables, figures and results/summary.md of the tiny analysis."""
    import json

    from PIL import Image

    base = results / "gaussian_linear"
    summary = json.loads((base / "summary.json").read_text())
    assert set(summary["verdicts"]) == {"A__B"}
    for seq in summary["sequences"]:
        diag = seq["diagnostics"]
        # the verdict against the rule table of docs/workflow.md, applied here by hand
        expected, n_reasons = _expected_verdict(diag)
        assert seq["verdict"]["status"] == expected, seq["verdict"]
        assert len(seq["verdict"]["reasons"]) == n_reasons, seq["verdict"]
        assert set(diag["agreement"]) == {"pocomc", "emcee"}
        assert "emcee_vs_pocomc" in diag and set(diag["vs_exact"]) == {"pocomc", "emcee", "joint"}
        assert diag["tension"]["parameter_shift_sigma"] < 3
        _check_flow_shift(diag)
        assert "flow_corrected" in seq["sequential_evidence"]
    assert set(summary["fidelity"]) == {"A"}
    assert all(f["exact_kl"] > 0 for f in summary["fidelity"].values())
    rows = {"verdicts": 1, "flow_fidelity": 1, "tension": 1, "evidence": 1,
            "agreement": 2 + 1 + 3, "cost": 1 + 1 + 2 + 1}
    for name, n in rows.items():
        frame = pd.read_csv(base / "tables" / f"{name}.csv")
        assert len(frame) == n, (name, frame)
    assert (base / "tables" / "tables.md").read_text().startswith("# Analysis gaussian_linear")
    tension = pd.read_csv(base / "tables" / "tension.csv")
    assert {"shift_sigma", "shift_sigma_err", "shift_probability", "shift_probability_err",
            "shift_disagreement", "shift_used"} <= set(tension.columns)
    figures = ["flow_A", "training_A"] + [
        f"sequential_A__B_{m}" for m in ("pocomc", "emcee")
    ] + ["agreement"]
    for name in figures:
        with Image.open(base / "figures" / f"{name}.png") as img:
            img.load()
            assert img.size[0] >= 600 and img.size[1] >= 400, (name, img.size)
    page = (results / "summary.md").read_text()
    assert page.index("| gaussian_linear | A→B |") < page.index("## gaussian_linear")


def _check_flow_shift(diag: dict) -> None:
    """The flow parameter shift (the analysis' default method) or why it could not be made."""
    t, notes = diag["tension"], " ".join(diag["verdict"].get("notes", []))
    assert t["shift_used"] in ("flow", "gaussian"), t
    if t["shift_used"] == "flow":
        assert t["shift_sigma"] is not None and t["shift_skipped"] is None, t
        assert "flow parameter shift" in notes, notes
        # consistent Gaussian data: the flow and Gaussian shifts agree to within 1 sigma
        assert abs(t["shift_sigma"] - t["parameter_shift_sigma"]) < 1, t
        assert t["shift_disagreement"] is False, t
    else:
        keys = ("shift_probability", "shift_probability_err", "shift_sigma", "shift_sigma_err")
        assert all(t[k] is None for k in keys), t  # unknown, never 0
        assert t["shift_skipped"] and "cannot be made" in notes, (t, notes)


def _expected_verdict(diag: dict) -> tuple[str, int]:
    """Status and number of reasons by the default thresholds of docs/workflow.md's table."""
    agree, flows = diag["agreement"].values(), diag["flows"].values()
    tension = diag["tension"]
    # the verdict's shift is the flow one where it was made, else the Gaussian one
    shift = tension["shift_sigma" if tension["shift_used"] == "flow" else "parameter_shift_sigma"]
    fails = [
        (shift or 0) >= 3 or (tension.get("suspiciousness_sigma") or 0) >= 3,
        any(abs(f["mode_mass_difference"]) > 0.1 for f in flows),
        any(a["c2st"] > 0.55 for a in agree) or any(f["c2st"] > 0.55 for f in flows),
        any(abs(v) > 0.2 for a in agree for v in a["mean_shift_in_ref_sd"].values()),
        any(abs(v - 1) > 0.2 for a in agree for v in a["sd_ratio"].values()),
    ]
    warns = [
        any(m["n_modes"] > 1 for m in diag["modes"].values()),
        any(abs(a["max_abs_correlation_difference"]) > 0.1 for a in agree),
        any(v < 0.8 for a in agree for v in a["min_interval_overlap"].values()),
        any(abs(f["max_moment_score"]) > 4 for f in flows),
        any(f["sliced_wasserstein"] > 0.1 for f in flows),
    ]
    status = "fail" if any(fails) else "warn" if any(warns) else "ok"
    return status, sum(fails) + sum(warns)


def _check_semf(workdir: Path) -> None:
    """The small real-data SEMF analysis: extracted data with provenance, sensible fit."""
    import json

    provenance = json.loads((workdir / "resources" / "nuclides.parquet.json").read_text())
    assert provenance["source"]["package"] == "mendeleev" and len(provenance["table"]["sha256"]) == 64
    base = workdir / "results" / "semf"
    summary = json.loads((base / "summary.json").read_text())
    assert set(summary["verdicts"]) == {"early__late"}
    joint = pd.read_parquet(base / "joint" / "early__late" / "samples.parquet")
    w = joint["weight"] / joint["weight"].sum()
    mean = {k: float((joint[k] * w).sum()) for k in ("a_V", "a_S", "a_C", "a_A", "sigma_th")}
    assert 14.5 < mean["a_V"] < 17.5 and 15 < mean["a_S"] < 21 and 0.6 < mean["a_C"] < 0.8, mean
    assert 19 < mean["a_A"] < 27 and 0.5 < mean["sigma_th"] < 5, mean
    assert (base / "figures" / "sequential_early__late_pocomc.png").is_file()


def test_e2e_sampler_comparison_tables_and_figure(e2e_study):
    """gaussian_linear (pocoMC and emcee): every run in samplers.csv, accuracy against the exact
    answer for every run, log Z only where the sampler gives one (emcee: empty, never 0)."""
    import numpy as np

    base = e2e_study.results / "gaussian_linear"
    table = pd.read_csv(base / "tables" / "samplers.csv")
    runs = set(zip(table["kind"], table["stage"], table["sampler"]))
    assert {("stage1", "A", "pocomc"), ("stage1", "B", "pocomc")} <= runs
    assert {("sequential", "A→B", m) for m in ("pocomc", "emcee")} <= runs
    assert ("joint", "A+B", "pocomc") in runs
    assert table["c2st"].between(0.3, 1).all() and table["n_likelihood_calls"].gt(0).all()
    emcee = table["sampler"] == "emcee"
    assert table.loc[emcee, "log_Z"].isna().all() and table.loc[~emcee, "log_Z"].notna().all()
    assert np.isfinite(table.loc[~emcee, "log_Z_total_error_sigma"]).all()
    figure = base / "figures" / "samplers.png"
    assert figure.is_file() and figure.stat().st_size > 10_000


def test_e2e_nested_sampler_every_stage(e2e_study):
    """analyses.nested: nautilus for stage 1, the sequential stage (flow prior transform) and
    the joint; its weighted samples and log Z +- error against the closed forms."""
    import json

    import numpy as np

    from e2e import NESTED_DIM
    from flowprior.problems.analytic import get_analysis

    base = e2e_study.results / "nested"
    problem = get_analysis("gaussian_linear", dim=NESTED_DIM)
    summary = json.loads((base / "summary.json").read_text())
    runs = {
        "stage1/A": (summary["stage1"]["A"]["run_info"], ["A"]),
        "joint/A__B": (summary["joint"]["A__B"]["run_info"], ["A", "B"]),
        "sequential/A__B/nautilus": (summary["sequential"]["A__B"]["nautilus"]["run_info"], None),
    }
    for rel, (run, datasets) in runs.items():
        assert run["sampler"] == "nautilus", rel
        assert run["log_evidence_err"] is not None and run["log_evidence_err"] > 0, rel
        frame = pd.read_parquet(base / rel / "samples.parquet")
        w = frame["weight"].to_numpy()
        assert (w >= 0).all() and w.max() == pytest.approx(1.0), rel  # importance weights
        if datasets is not None:  # closed-form log Z within 4 reported errors
            err = abs(run["log_evidence"] - problem.log_evidence(datasets))
            assert err < 4 * run["log_evidence_err"], (rel, err, run["log_evidence_err"])
    # the sequential posterior against the exact joint, and the flow-corrected log Z_AB
    frame = pd.read_parquet(base / "sequential/A__B/nautilus/samples.parquet")
    x = frame[list(problem.params.names)].to_numpy()
    w = frame["weight"].to_numpy()
    mean, cov = problem.posterior_moments(["A", "B"])
    sd = np.sqrt(np.diag(cov))
    ess = w.sum() ** 2 / (w**2).sum()
    shift = np.abs(np.average(x, weights=w, axis=0) - mean) / sd
    assert shift.max() < 0.1 + 4 / np.sqrt(ess), shift
    (seq,) = summary["sequences"]
    fc = seq["sequential_evidence"]["flow_corrected"]
    exact = problem.log_evidence(["A", "B"])
    assert abs(fc["log_evidence"] - exact) < 4 * fc["log_evidence_err"], (fc, exact)


def test_e2e_external_likelihood_and_csv_chain(e2e_study):
    """The README's worked example (analysis ``mine``): a likelihood in a standalone .py file
    outside the run directory, a stage-1 posterior that exists only as a CSV chain, a published
    joint chain (GetDist root) as the reference and a derived quantity (``total``)."""
    import json

    import numpy as np
    from scipy import stats

    from e2e import MU_A, MU_B, N_REFERENCE, SD_A, SD_B, exact_joint, job_blocks

    from flowprior.chains import read_chain
    from flowprior.params import load_parameters

    work = e2e_study.workdir
    assert not e2e_study.user.is_relative_to(work)  # the user's files lie outside the run
    summary = json.loads((work / "results/mine/summary.json").read_text())
    # A has no likelihood, so no joint run: the reference chain stands for the joint posterior
    reference = summary["joint"]["A__B"]["run_info"]
    assert reference["sampler"] == "reference" and reference["log_evidence"] is None
    assert reference["n_samples"] == sum(N_REFERENCE)
    assert not (work / "results/mine/joint").exists()
    assert summary["stage1"]["A"]["run_info"]["sampler"] == "chain"
    # the root's files are the reference job's inputs (Snakemake checks them, reruns on change)
    (block,) = job_blocks(e2e_study.output, "reference")
    for name in ("joint_1.txt", "joint_2.txt", "joint.paramnames", "joint.ranges", "derived.py"):
        assert name in block, (name, block)
    # closed form: product of the two Gaussians; `total` = mass + width
    mean, sd = exact_joint()
    log_z = stats.norm.logpdf(MU_A, MU_B, np.sqrt(SD_A**2 + SD_B**2)).sum()
    space = load_parameters(e2e_study.user / "params.yaml")
    frame = pd.read_parquet(work / "results/mine/sequential/A__B/pocomc/samples.parquet")
    w = frame["weight"].to_numpy()
    got = np.average(frame[["mass", "width"]].to_numpy(), weights=w, axis=0)
    np.testing.assert_allclose(got, mean, atol=0.1 * sd.max() + 0.02)
    run = summary["sequential"]["A__B"]["pocomc"]["run_info"]
    assert run["log_evidence"] == pytest.approx(log_z, abs=0.1)  # log Z_{B|A}
    # the derived quantity on every run, exactly its function of the samples
    assert run["derived"]["names"] == ["total"]
    for rel in ("sequential/A__B/pocomc", "stage1/A", "stage1/B", "reference"):
        chain = read_chain(work / f"results/mine/{rel}/samples.parquet", space)
        np.testing.assert_array_equal(chain.derived["total"], chain.samples.sum(axis=1), rel)
    assert "sum_sq" in read_chain(work / "results/mine/reference/samples.parquet", space).derived
    # ... in the derived table, against the closed form (sd of a sum of independent parameters)
    table = pd.read_csv(work / "results/mine/tables/derived.csv")
    assert set(table["run"]) == {"pocomc", "reference"} and set(table["quantity"]) == {"total"}
    total_sd = float(np.hypot(*sd))
    for _, row in table.iterrows():
        assert row["mean"] == pytest.approx(mean.sum(), abs=0.1 * total_sd + 0.02), row
        assert row["sd"] == pytest.approx(total_sd, rel=0.1), row
    seq = table[table["run"] == "pocomc"].iloc[0]
    assert abs(seq["mean_shift_in_ref_sd"]) < 0.15 and abs(seq["sd_ratio"] - 1) < 0.1
    # the diagnostics and the verdict compare with the reference chain
    diag = json.loads((work / "results/mine/diagnostics/A__B.json").read_text())
    assert diag["agreement_reference"] == "reference chain"
    assert diag["agreement"]["pocomc"]["c2st"] < 0.55, diag["agreement"]
    assert diag["derived"]["reference"] == "reference chain"
    assert diag["verdict"]["status"] in ("ok", "warn"), diag["verdict"]
    assert (diag["tension"]["log_R"], diag["tension"]["suspiciousness_sigma"]) == (None, None)
    agreement = pd.read_csv(work / "results/mine/tables/agreement.csv")
    assert list(agreement["reference"]) == ["reference"]
    for fig in ("sequential_A__B_pocomc", "agreement"):
        assert (work / f"results/mine/figures/{fig}.png").stat().st_size > 10_000, fig
