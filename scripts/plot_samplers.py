"""Rule plot_samplers: tables/samplers.csv -> figures/samplers.png."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from flowprior._script import run_rule  # noqa: E402
from flowprior.plots import plot_sampler_comparison  # noqa: E402


def main(snakemake):
    plot_sampler_comparison(
        pd.read_csv(snakemake.input.table),
        path=snakemake.output.figure,
        c2st_threshold=snakemake.params.c2st_threshold,
        title=f"{snakemake.wildcards.analysis}: samplers",
    )


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
