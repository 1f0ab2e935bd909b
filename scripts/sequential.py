"""Rule sequential: flow prior of the previous stage x next dataset -> samples + run.json."""

from flowprior._script import run_rule
from flowprior.pipeline import run_sequential


def main(snakemake):
    run = run_sequential(
        stage=snakemake.wildcards.stage,
        sampler=snakemake.wildcards.sampler,
        datasets=snakemake.params.datasets,
        prior_model=snakemake.input.prior,
        likelihood_flow=snakemake.input.get("likelihood_flow"),
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        derived=snakemake.params.derived,
    )
    run.write(samples=snakemake.output.samples, run_json=snakemake.output.run)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
