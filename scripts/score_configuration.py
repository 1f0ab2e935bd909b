"""Rule score_configuration: one (target, configuration, seed) of the study -> score.json."""

import json
import logging

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.chains import read_chain
from flowprior.params import load_parameters
from flowprior.problems import get_problem
from flowprior.study import score_configuration
from flowprior.train import TrainConfig

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    p = snakemake.params
    config = TrainConfig.from_dict({**p.settings, "threads": snakemake.threads, "progress": False})
    sizes = {"n_flow_samples": p.n_flow_samples, "n_boot": p.n_boot, "c2st_max_n": p.c2st_max_n}
    if p.problem:
        # The same training and held-out sets for every job of the target (top-level seed).
        problem = get_problem(p.problem)
        chain = problem.chain(p.n_samples, seed=[p.seed, 0])
        held_out = problem.chain(p.n_held_out, seed=[p.seed, 1])
        row = score_configuration(
            chain=chain, train_config=config, exact=problem, held_out=held_out, seed=p.seed, **sizes
        )
    else:
        chain = read_chain(snakemake.input.chain, load_parameters(snakemake.input.parameters))
        row = score_configuration(
            chain=chain, train_config=config, held_out=p.held_out_fraction, seed=p.seed, **sizes
        )
    row = {"target": snakemake.wildcards.target, **row}
    log.info("scores: %s", row)
    atomic_write_text(snakemake.output.score, json.dumps(row, indent=2) + "\n")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
