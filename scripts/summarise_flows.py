"""Rule summarise_flows: every model.zip -> one row of results/tables/flows.csv."""

import logging

import pandas as pd

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.errors import InputError
from flowprior.io import read_manifest

log = logging.getLogger("flowprior.rule")

# column -> path of its value in the model manifest
COLUMNS = {
    "posterior": None,
    "kind": ("flow", "kind"),
    "loss": ("training", "loss"),
    "steps": ("metrics", "steps"),
    "best_val_nll": ("metrics", "best_val_nll"),
    "train_seconds": ("metrics", "train_seconds"),
    "ess": ("data", "ess"),
}


def _lookup(manifest, keys, source):
    value = manifest
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise InputError(f"{source}: manifest key {'.'.join(keys)}: missing")
        value = value[key]
    return value


def main(snakemake):
    rows = []
    for name, path in zip(snakemake.params.posteriors, snakemake.input.models, strict=True):
        manifest = read_manifest(path)
        row = {"posterior": name}
        for column, keys in COLUMNS.items():
            if keys is not None:
                row[column] = _lookup(manifest, keys, path)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    log.info("%d flows", len(table))
    atomic_write_text(snakemake.output.table, table.to_csv(index=False))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
