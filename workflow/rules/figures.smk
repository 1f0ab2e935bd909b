rule plot_flow:
    """Corner plot of flow samples over the target chain."""
    input:
        target=rules.prepare_posterior.output.chain,
        parameters=rules.prepare_posterior.output.parameters,
        flow=rules.sample_flow.output.samples,
    output:
        figure=report(
            "results/figures/flow_{posterior}.png",
            caption="../report/flow.rst",
            category="Flow priors",
        ),
    log:
        "logs/plot_flow/{posterior}.log",
    benchmark:
        "results/benchmarks/plot_flow/{posterior}.tsv"
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
    script:
        "../../scripts/plot_flow.py"
