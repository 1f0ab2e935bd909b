"""Rules plot_stage_flow, plot_training, plot_sequential and plot_agreement: the figures of an
analysis (one adapter; the rule name picks the figure)."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from flowprior._script import run_rule  # noqa: E402
from flowprior.chains import Chain, read_chain  # noqa: E402
from flowprior.derived import with_derived_columns  # noqa: E402
from flowprior.params import load_parameters  # noqa: E402
from flowprior.plan import parse_stage  # noqa: E402
from flowprior.plots import (  # noqa: E402
    plot_agreement,
    plot_flow_vs_target,
    plot_sequential_vs_joint,
    plot_training_curves,
)
from flowprior.samplers import get_sampler, sampler_names  # noqa: E402

# display names of the samplers (the registry's labels)
SAMPLER_NAMES = {name: get_sampler(name).label for name in sampler_names()}


def stage_flow(snakemake, space):
    from flowprior.priors import FlowPrior

    prior = FlowPrior.load(snakemake.input.model)
    n = snakemake.params.n_samples
    flow = Chain(space, np.asarray(prior.rvs(n, seed=snakemake.params.seed), dtype=np.float64))
    plot_flow_vs_target(
        target=read_chain(snakemake.input.chain, space),
        flow=flow,
        params=space,
        levels=snakemake.params.levels,
        path=snakemake.output.figure,
    )


def training(snakemake, space):
    stage = "→".join(parse_stage(snakemake.wildcards.stage))
    plot_training_curves(
        pd.read_csv(snakemake.input.history),
        path=snakemake.output.figure,
        title=f"{snakemake.wildcards.analysis}: flow {stage}",
    )


def sequential(snakemake, space):
    seq = parse_stage(snakemake.wildcards.stage)
    before = "+".join(seq[:-1]) if len(seq) > 2 else seq[0]
    # the derived quantities every posterior carries (the analysis' `derived`) as more axes
    joint, stage1, final = with_derived_columns(
        [read_chain(snakemake.input[k], space) for k in ("joint", "before", "sequential")]
    )
    reference = "reference" if snakemake.params.joint_is_reference else "joint"
    plot_sequential_vs_joint(
        params=final.params,
        joint=joint,
        stage1=stage1,
        sequential=final,
        labels=(
            f"{reference} {'+'.join(sorted(seq))}",
            f"stage 1: {seq[0]}" if len(seq) == 2 else f"before {seq[-1]}: {before}",
            f"sequential {'→'.join(seq)}",
        ),
        sampler_name=SAMPLER_NAMES[snakemake.wildcards.sampler],
        levels=snakemake.params.levels,
        title=f"{snakemake.wildcards.analysis}: {'→'.join(seq)} "
        f"({SAMPLER_NAMES[snakemake.wildcards.sampler]})",
        path=snakemake.output.figure,
    )


def agreement(snakemake, space):
    with open(snakemake.input.summary) as fh:
        summary = json.load(fh)
    rows = []
    for entry in summary["sequences"]:
        for sampler, a in (entry.get("diagnostics") or {}).get("agreement", {}).items():
            for name, value in a["mean_shift_in_ref_sd"].items():
                rows.append({
                    "sequence": "→".join(entry["sequence"]),
                    "sampler": SAMPLER_NAMES.get(sampler, sampler),
                    "parameter": name,
                    "value": value,
                })
    plot_agreement(
        pd.DataFrame(rows, columns=["sequence", "sampler", "parameter", "value"]),
        path=snakemake.output.figure,
        metric="mean_shift_in_ref_sd",
        threshold=snakemake.params.threshold,
        params=space,
        title=f"{snakemake.wildcards.analysis}: sequential vs joint",
    )


FIGURES = {
    "plot_stage_flow": stage_flow,
    "plot_training": training,
    "plot_sequential": sequential,
    "plot_agreement": agreement,
}


def main(snakemake):
    FIGURES[snakemake.rule](snakemake, load_parameters(snakemake.input.parameters))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
