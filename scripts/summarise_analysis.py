"""Rule summarise_analysis: every artifact, run record and diagnostic of an analysis ->
summary.json and the analysis' tables (CSV + one Markdown page)."""

from flowprior._atomic import atomic_output_path, atomic_write_json, atomic_write_text
from flowprior._script import run_rule
from flowprior.diagnostics import analysis_tables, cost_table, tables_markdown
from flowprior.params import load_parameters
from flowprior.pipeline import summarise_analysis


def main(snakemake):
    files = snakemake.params.files  # flowprior.plan.AnalysisPlan.summary_inputs()
    analysis = snakemake.wildcards.analysis
    summary = summarise_analysis(
        analysis=analysis,
        names=load_parameters(snakemake.input.parameters).names,
        stage1=files["stage1"],
        flows=files["flows"],
        sequential=files["sequential"],
        joint=files["joint"],
        sequences=snakemake.params.sequences,
        dataset_order=snakemake.params.datasets,
        fidelity=files["fidelity"],
        diagnostics=files["diagnostics"],
    )
    runs = {f"stage1 {k}": v["run_info"] for k, v in summary["stage1"].items()}
    runs.update({f"joint {k}": v["run_info"] for k, v in summary["joint"].items()})
    for s, by in summary["sequential"].items():
        runs.update({f"sequential {s} {m}": v["run_info"] for m, v in by.items()})
    tables = analysis_tables(summary, costs=cost_table(snakemake.params.benchmarks, runs))
    for name, frame in tables.items():
        with atomic_output_path(getattr(snakemake.output, name)) as tmp:
            frame.to_csv(tmp, index=False)
    atomic_write_text(snakemake.output.markdown, tables_markdown(f"Analysis {analysis}", tables))
    atomic_write_json(snakemake.output.summary, summary)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
