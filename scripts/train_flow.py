"""Rules train_flow and train_stage_flow: chain + parameter table -> model (+ history/validation)."""

import json
import logging

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.chains import read_chain
from flowprior.params import load_parameters
from flowprior.train import TrainConfig, train_flow

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    space = load_parameters(snakemake.input.parameters)
    chain = read_chain(snakemake.input.chain, space)
    config = TrainConfig.from_dict(
        {
            **snakemake.params.flow,
            "seed": snakemake.params.seed,
            "threads": snakemake.threads,
            "progress": False,
        }
    )
    log.info("training on %d samples (ESS %.1f): %s", chain.n, chain.ess, config.to_dict())
    result = train_flow(chain, config)
    log.info("metrics: %s", result.metrics)
    result.save(snakemake.output.model)
    if "history" in snakemake.output.keys():
        atomic_write_text(snakemake.output.history, result.history.to_csv(index=False))
    if "validation" in snakemake.output.keys():
        validation = {**result.metrics, "model": snakemake.output.model, "config": config.to_dict()}
        atomic_write_text(snakemake.output.validation, json.dumps(validation, indent=2) + "\n")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
