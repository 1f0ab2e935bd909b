"""Rule stage1: one dataset's stage-1 posterior -> samples.parquet + run.json."""

from flowprior._script import run_rule
from flowprior.params import load_parameters
from flowprior.pipeline import run_stage1


def main(snakemake):
    run = run_stage1(
        dataset=snakemake.wildcards.dataset,
        entry=snakemake.params.dataset,
        params=load_parameters(snakemake.input.parameters),
        sampler=snakemake.params.sampler,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        derived=snakemake.params.derived,
    )
    run.write(samples=snakemake.output.samples, run_json=snakemake.output.run)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
