"""Rule study_summary: every analysis' summary.json -> results/summary.md."""

import json

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.diagnostics import study_markdown


def main(snakemake):
    summaries = []
    for path in snakemake.input.summaries:
        with open(path) as fh:
            summaries.append(json.load(fh))
    text = study_markdown(
        summaries,
        tables=snakemake.params.tables,
        figures=snakemake.params.figures,
        flows_table=snakemake.input.flows[0] if snakemake.input.flows else None,
        root="results",
    )
    atomic_write_text(snakemake.output.markdown, text)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
