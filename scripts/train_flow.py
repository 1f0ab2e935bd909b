"""Rules train_flow and train_stage_flow: chain + parameter table -> model.zip, history.csv,
validation.json (the same files for a posterior's flow and an analysis stage's flow).

validation.json holds the training metrics (the validation split: early stopping and the
learning-rate schedule) and the test-split scores of TrainResult.test (``test_nll`` with its
standard error and the Gaussian baseline; null without a test split)."""

import json
import logging

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.chains import read_chain
from flowprior.params import load_parameters
from flowprior.study import apply_selection
from flowprior.train import TrainConfig, train_flow

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    space = load_parameters(snakemake.input.parameters)
    chain = read_chain(snakemake.input.chain, space)
    flow = dict(snakemake.params.flow)
    if flow.get("select") == "auto":  # `flow: {select: auto}`: the training study's winner
        selection = json.loads(open(snakemake.input.selection).read())
        target = flow.pop("select_target")
        explicit = flow.pop("select_explicit")
        flow = apply_selection(flow, selection, target=target, explicit=explicit)
        log.info("select: auto for study target %s: %s", target, flow)
    config = TrainConfig.from_dict(
        {
            **flow,
            "seed": snakemake.params.seed,
            "threads": snakemake.threads,
            "progress": False,
        }
    )
    log.info("training on %d samples (ESS %.1f): %s", chain.n, chain.ess, config.to_dict())
    result = train_flow(chain, config)
    log.info("metrics: %s", result.metrics)
    # byte-identical for the same chain, settings and seed; the wall time is in validation.json
    result.save(snakemake.output.model, timing=False)
    atomic_write_text(snakemake.output.history, result.history.to_csv(index=False))
    # test_nll, gaussian_test_nll, ...: the test split (held out from everything in training)
    validation = {
        **result.metrics,
        **result.test,
        "model": snakemake.output.model,
        # the settings used (`whiten: auto` replaced by the whitening it chose; the pilots'
        # validation NLLs are metrics.whiten_auto)
        "config": result.config.to_dict(),
    }
    atomic_write_text(snakemake.output.validation, json.dumps(validation, indent=2) + "\n")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
