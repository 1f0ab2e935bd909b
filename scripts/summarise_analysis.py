"""Rule summarise_analysis: every artifact and run record of an analysis -> summary.json."""

import json

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.params import load_parameters
from flowprior.pipeline import summarise_analysis


def main(snakemake):
    o = snakemake.params.outputs
    run_files = lambda d: {"samples": f"{d}/samples.parquet", "run": f"{d}/run.json"}  # noqa: E731
    summary = summarise_analysis(
        analysis=snakemake.wildcards.analysis,
        names=load_parameters(snakemake.input.parameters).names,
        stage1={k: run_files(d) for k, d in o["stage1"].items()},
        flows={k: {"model": f"{d}/model", "validation": f"{d}/validation.json"}
               for k, d in o["flows"].items()},
        sequential={s: {m: run_files(d) for m, d in by.items()} for s, by in o["sequential"].items()},
        joint={k: run_files(d) for k, d in o["joint"].items()},
        sequences=snakemake.params.sequences,
        dataset_order=snakemake.params.datasets,
    )
    atomic_write_text(snakemake.output.summary, json.dumps(summary, indent=2) + "\n")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
