"""Rule summarise_flows: every trained flow (posterior and analysis flows) -> one row of
results/tables/flows.csv: settings and training cost (model manifest), fit quality on held-out
samples (fidelity record: the test split, which steered nothing in training, with the NLL of a
Gaussian fitted to the training split on the same samples)."""

import json
import logging

import pandas as pd

from flowprior._atomic import atomic_write_text
from flowprior._script import run_rule
from flowprior.errors import InputError
from flowprior.io import read_manifest

log = logging.getLogger("flowprior.rule")

# column -> path of its value in the model manifest
MANIFEST_COLUMNS = {
    "kind": ("flow", "kind"),
    "loss": ("training", "loss"),
    "steps": ("metrics", "steps"),
    "best_val_nll": ("metrics", "best_val_nll"),
    "ess": ("data", "ess"),
}
# columns taken from the fidelity record (flowprior.diagnostics.flow_fidelity)
FIDELITY_COLUMNS = [
    "train_seconds",  # from validation.json (model files hold no wall times)
    "held_out_nll",  # the test split (null without one)
    "gaussian_held_out_nll",  # a weighted Gaussian fit on the same test split
    "exact_kl",
    "max_moment_score",
    "c2st",
    "sliced_wasserstein",
    "mode_mass_difference",
]


def _lookup(record, keys, source):
    value = record
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise InputError(f"{source}: key {'.'.join(keys)}: missing")
        value = value[key]
    return value


def main(snakemake):
    flows = snakemake.params.flows
    paths = zip(flows, snakemake.input.models, snakemake.input.fidelities, strict=True)
    rows = []
    for name, model, fidelity_path in paths:
        manifest = read_manifest(model)
        with open(fidelity_path) as fh:
            fidelity = json.load(fh)
        row = {"flow": name}
        row.update({c: _lookup(manifest, k, model) for c, k in MANIFEST_COLUMNS.items()})
        row.update({c: _lookup(fidelity, (c,), fidelity_path) for c in FIDELITY_COLUMNS})
        rows.append(row)
    # the order of the table's columns (train_seconds after the training metrics)
    columns = ["flow", "kind", "loss", "steps", "best_val_nll", "train_seconds", "ess"]
    columns += [c for c in FIDELITY_COLUMNS if c != "train_seconds"]
    table = pd.DataFrame(rows, columns=columns)
    log.info("%d flows", len(table))
    atomic_write_text(snakemake.output.table, table.to_csv(index=False))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
