"""Rule compare_samplers: every sampler run of an analysis -> tables/samplers.csv and
tables/evidence_consistency.csv."""

from flowprior._atomic import atomic_output_path
from flowprior._script import run_rule
from flowprior.diagnostics import sampler_comparison
from flowprior.params import load_parameters


def main(snakemake):
    tables = sampler_comparison(
        runs=snakemake.params.runs,
        params=load_parameters(snakemake.input.parameters),
        datasets=snakemake.params.datasets,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
    )
    for name, path in (("samplers", snakemake.output.samplers),
                       ("evidence_consistency", snakemake.output.consistency)):  # fmt: skip
        with atomic_output_path(path) as tmp:
            tables[name].to_csv(tmp, index=False)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
