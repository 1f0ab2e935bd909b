"""Rule diagnose_sequence: the runs of one sequence -> diagnostics/<sequence>.json."""

import json

from flowprior._atomic import atomic_write_json
from flowprior._script import run_rule
from flowprior.diagnostics import diagnose_sequence
from flowprior.params import load_parameters
from flowprior.plan import parse_stage


def _run(directory):
    if directory is None:
        return None
    with open(f"{directory}/run.json") as fh:
        return {"samples": f"{directory}/samples.parquet", "run_info": json.load(fh)}


def main(snakemake):
    runs = snakemake.params.runs
    fidelity = {}
    for stage, path in runs["fidelity"].items():
        with open(path) as fh:
            fidelity[stage] = json.load(fh)
    result = diagnose_sequence(
        sequence=parse_stage(snakemake.wildcards.stage),
        params=load_parameters(snakemake.input.parameters),
        datasets=snakemake.params.datasets,
        stage1={d: _run(p) for d, p in runs["stage1"].items()},
        previous=_run(runs["previous"]),
        sequential={m: _run(p) for m, p in runs["sequential"].items()},
        joint=_run(runs["joint"]),
        fidelity=fidelity,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        settings_source=f"config: analyses: {snakemake.wildcards.analysis}: diagnostics",
    )
    atomic_write_json(snakemake.output.diagnostics, result)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
