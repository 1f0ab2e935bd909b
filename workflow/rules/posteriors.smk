rule prepare_posterior:
    """Write a posterior as a chain in the workflow's format, with its parameter table.

    Built-in problems are sampled exactly; external chains are read, validated against their
    prior box and converted.
    """
    input:
        chain=chain_input,
        parameters=parameters_input,
    output:
        chain="results/posteriors/{posterior}/chain.parquet",
        parameters="results/posteriors/{posterior}/parameters.yaml",
    log:
        "logs/prepare_posterior/{posterior}.log",
    benchmark:
        "results/benchmarks/prepare_posterior/{posterior}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    params:
        problem=posterior_setting("problem"),
        n_samples=posterior_setting("n_samples"),
        allow_pickle=posterior_setting("allow_pickle"),
        outside=posterior_setting("outside"),
        fmt=posterior_setting("format"),
        seed=config["seed"],
    script:
        "../../scripts/prepare_posterior.py"
