rule extract_nuclides:
    """Measured atomic masses -> nuclear binding energies (Parquet) with their provenance.

    Reads the isotope table bundled with the pinned mendeleev package (no network); the JSON
    sidecar records mendeleev's version, the SHA-256 of its database and of the table.
    """
    output:
        table="resources/nuclides.parquet",
        provenance="resources/nuclides.parquet.json",
    log:
        "logs/extract_nuclides.log",
    benchmark:
        "results/benchmarks/extract_nuclides.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    script:
        "../../scripts/extract_nuclides.py"
