"""Rule sample_flow: model.zip -> samples.parquet (equally weighted flow samples)."""

import logging

import numpy as np

from flowprior._script import run_rule
from flowprior.chains import Chain, write_chain
from flowprior.priors import FlowPrior

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    prior = FlowPrior.load(snakemake.input.model)
    n = snakemake.params.n_samples
    samples = prior.rvs(n, seed=snakemake.params.seed)
    chain = Chain(
        params=prior.params,
        samples=np.asarray(samples, dtype=np.float64),
        weights=np.ones(n),
        log_likelihood=None,
        log_prior=None,
        log_posterior=None,
        source=f"flow {snakemake.input.model}",
    )
    log.info("%d samples from %s, seed %d", n, snakemake.input.model, snakemake.params.seed)
    write_chain(chain, snakemake.output.samples)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
