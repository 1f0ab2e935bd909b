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


rule plot_stage_flow:
    """Corner plot of a flow prior of an analysis over the chain it learned."""
    input:
        model="results/{analysis}/flows/{stage}/model",
        chain=stage_samples,
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        figure=report(
            "results/{analysis}/figures/flow_{stage}.png",
            caption="../report/stage_flow.rst",
            category="{analysis}",
            subcategory="Flow priors",
        ),
    log:
        "logs/{analysis}/figures/flow_{stage}.log",
    benchmark:
        "results/benchmarks/{analysis}/figures/flow_{stage}.tsv"
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
        n_samples=config["figures"]["n_samples"],
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/plot_analysis.py"


rule plot_training:
    """Training and validation loss of a flow prior of an analysis."""
    input:
        model="results/{analysis}/flows/{stage}/model",
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        figure=report(
            "results/{analysis}/figures/training_{stage}.png",
            caption="../report/training.rst",
            category="{analysis}",
            subcategory="Training curves",
        ),
    log:
        "logs/{analysis}/figures/training_{stage}.log",
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/plot_analysis.py"


rule plot_sequential:
    """Sequential versus joint posterior of one sequence and sampler (corner plot)."""
    input:
        joint=joint_samples,
        before=before_samples,
        sequential="results/{analysis}/sequential/{stage}/{sampler}/samples.parquet",
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        figure=report(
            "results/{analysis}/figures/sequential_{stage}_{sampler}.png",
            caption="../report/sequential.rst",
            category="{analysis}",
            subcategory="Sequential vs joint",
        ),
    log:
        "logs/{analysis}/figures/sequential_{stage}_{sampler}.log",
    benchmark:
        "results/benchmarks/{analysis}/figures/sequential_{stage}_{sampler}.tsv"
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
    script:
        "../../scripts/plot_analysis.py"


rule plot_agreement:
    """Dot chart of the sequential-vs-joint mean shifts of every sequence and sampler."""
    input:
        summary="results/{analysis}/summary.json",
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        figure=report(
            "results/{analysis}/figures/agreement.png",
            caption="../report/agreement.rst",
            category="{analysis}",
            subcategory="Agreement",
        ),
    log:
        "logs/{analysis}/figures/agreement.log",
    conda:
        "../../envs/plots.yaml"
    params:
        threshold=lambda wc: analysis_diagnostics(wc.analysis)["mean_shift"],
    script:
        "../../scripts/plot_analysis.py"
