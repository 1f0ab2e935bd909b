"""Rule flow_fidelity: flow model + its training chain -> fidelity.json."""

import json

from flowprior._atomic import atomic_write_json
from flowprior._script import run_rule
from flowprior.chains import read_chain
from flowprior.diagnostics import analytic_reference, flow_fidelity
from flowprior.params import load_parameters


def main(snakemake):
    params = load_parameters(snakemake.input.parameters)
    stage = snakemake.params.stage  # datasets of an analysis flow; None for a posterior's flow
    with open(snakemake.input.validation) as fh:
        validation = json.load(fh)
    result = flow_fidelity(
        model=snakemake.input.model,
        chain=read_chain(snakemake.input.chain, params),
        validation=validation,
        exact=analytic_reference(snakemake.params.datasets, stage, params) if stage else None,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
    )
    atomic_write_json(snakemake.output.fidelity, result)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
