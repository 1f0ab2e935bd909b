"""Rule plot_flow: target chain + flow samples -> corner plot (PNG)."""

import matplotlib

matplotlib.use("Agg")

from flowprior._script import run_rule  # noqa: E402
from flowprior.chains import read_chain  # noqa: E402
from flowprior.params import load_parameters  # noqa: E402
from flowprior.plots import plot_flow_vs_target  # noqa: E402


def main(snakemake):
    space = load_parameters(snakemake.input.parameters)
    plot_flow_vs_target(
        target=read_chain(snakemake.input.target, space),
        flow=read_chain(snakemake.input.flow, space),
        params=space,
        levels=snakemake.params.levels,
        path=snakemake.output.figure,
    )


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
