"""Rule summarise_training_study: every score.json -> scores.csv, ranking, losses, selection."""

import json
import logging

import pandas as pd

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.study import loss_comparison, select_best, selection, to_markdown

log = logging.getLogger("flowprior.rule")


def main(snakemake):
    rows = [json.loads(open(path).read()) for path in snakemake.input.scores]
    scores = pd.DataFrame(rows)
    metric = snakemake.params.metric
    ranking, _ = select_best(scores, metric=metric)
    losses = loss_comparison(scores)
    out = snakemake.output
    atomic_write_text(out.scores, scores.to_csv(index=False))
    atomic_write_text(out.ranking, to_markdown(ranking, kind="ranking"))
    atomic_write_text(out.losses, losses.to_csv(index=False))
    atomic_write_text(out.losses_md, to_markdown(losses, kind="losses"))
    atomic_write_text(out.selection, json.dumps(selection(scores, metric=metric), indent=2) + "\n")
    log.info("%d jobs, %d configurations", len(scores), len(ranking))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
