rule prepare_posterior:
    """Write a posterior as a chain in the workflow's format, with its parameter table.

    Built-in problems are sampled exactly; external chains are read, validated against their
    prior box and converted.
    """
    input:
        chain=posterior_chain_files,
        parameters=posterior_file("parameters"),
    output:
        **LAYOUT.posterior("{posterior}"),
    log:
        LAYOUT.log("prepare_posterior", "{posterior}"),
    benchmark:
        LAYOUT.benchmark("prepare_posterior", "{posterior}")
    conda:
        "../../envs/flowprior.yaml"
    params:
        problem=posterior_setting("problem"),
        chain=posterior_setting("chain"),
        select=posterior_setting("select"),
        n_samples=posterior_setting("n_samples"),
        allow_pickle=posterior_setting("allow_pickle"),
        outside=posterior_setting("outside"),
        fmt=posterior_setting("format"),
        burn_in=posterior_setting("burn_in"),
        seed=config["seed"],
    script:
        "../../scripts/prepare_posterior.py"
