"""Rule prepare_posterior: built-in problem or external chain -> chain.parquet, parameters.yaml."""

import logging

from flowprior._script import run_rule
from flowprior.chains import read_chain, write_chain
from flowprior.params import load_parameters
from flowprior.problems import get_problem

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    params = snakemake.params
    if params.problem is not None:
        chain = get_problem(params.problem).chain(params.n_samples, seed=params.seed)
        log.info("problem %s: %d exact samples, seed %d", params.problem, chain.n, params.seed)
    else:
        # without a parameter table: the names, labels and box the chain carries (GetDist
        # .paramnames/.ranges, Cobaya .updated.yaml); `select` keeps some of its parameters
        table = snakemake.input.get("parameters")
        chain = read_chain(
            params.chain,
            load_parameters(table) if table else None,
            allow_pickle=params.allow_pickle,
            outside=params.outside,
            fmt=params.fmt,
            burn_in=params.burn_in,
            select=params.select,
        )
        log.info("chain %s: %d samples, ESS %.1f", params.chain, chain.n, chain.ess)
    write_chain(chain, snakemake.output.chain)
    chain.params.write(snakemake.output.parameters)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
