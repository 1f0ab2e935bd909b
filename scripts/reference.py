"""Rule reference: an analysis' published joint chain -> samples.parquet + run.json."""

from flowprior._script import run_rule
from flowprior.params import load_parameters
from flowprior.pipeline import run_reference


def main(snakemake):
    run = run_reference(
        entry=snakemake.params.entry,
        params=load_parameters(snakemake.input.parameters),
        stage=snakemake.params.stage,
        derived=snakemake.params.derived,
    )
    run.write(samples=snakemake.output.samples, run_json=snakemake.output.run)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
