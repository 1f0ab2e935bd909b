rule train_flow:
    """Train a bounded normalizing flow on a posterior chain."""
    input:
        chain=rules.prepare_posterior.output.chain,
        parameters=rules.prepare_posterior.output.parameters,
        selection=posterior_flow_selection,
    output:
        model="results/flows/{posterior}/model.zip",
        history="results/flows/{posterior}/history.csv",
    log:
        "logs/train_flow/{posterior}.log",
    benchmark:
        "results/benchmarks/train_flow/{posterior}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: flow_threads
    params:
        flow=posterior_flow_settings,
        seed=config["seed"],
    script:
        "../../scripts/train_flow.py"


rule sample_flow:
    """Draw samples from a trained flow prior."""
    input:
        model=rules.train_flow.output.model,
    output:
        samples="results/flows/{posterior}/samples.parquet",
    log:
        "logs/sample_flow/{posterior}.log",
    benchmark:
        "results/benchmarks/sample_flow/{posterior}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    params:
        n_samples=config["figures"]["n_samples"],
        seed=config["seed"],
    script:
        "../../scripts/sample_flow.py"


rule summarise_flows:
    """One table row per trained flow: settings, training cost and fit quality."""
    input:
        models=expand(rules.train_flow.output.model, posterior=POSTERIORS),
    output:
        table="results/tables/flows.csv",
    log:
        "logs/summarise_flows.log",
    benchmark:
        "results/benchmarks/summarise_flows.tsv"
    conda:
        "../../envs/flowprior.yaml"
    params:
        posteriors=POSTERIORS,
    script:
        "../../scripts/summarise_flows.py"
