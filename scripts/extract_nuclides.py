"""Rule extract_nuclides: mendeleev's isotope table -> nuclides.parquet + provenance JSON."""

from flowprior._script import run_rule
from flowprior.problems.semf import extract_nuclides


def main(snakemake):
    extract_nuclides(snakemake.output.table, provenance=snakemake.output.provenance)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
