"""Rule plot_training_study: scores.csv -> score_vs_time.png."""

import pandas as pd

from flowprior._script import run_rule
from flowprior.plots import plot_score_vs_time


def main(snakemake):
    plot_score_vs_time(pd.read_csv(snakemake.input.scores), path=snakemake.output.figure)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
