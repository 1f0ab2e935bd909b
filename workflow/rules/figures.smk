rule plot_flow:
    """Corner plot of flow samples over the target chain."""
    input:
        target=rules.prepare_posterior.output.chain,
        parameters=rules.prepare_posterior.output.parameters,
        flow=rules.sample_flow.output.samples,
    output:
        figure=report(
            LAYOUT.posterior_figure("{posterior}"),
            caption="../report/flow.rst",
            category="Flow priors",
        ),
    log:
        LAYOUT.log("plot_flow", "{posterior}"),
    benchmark:
        LAYOUT.benchmark("plot_flow", "{posterior}")
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
    script:
        "../../scripts/plot_flow.py"


rule plot_stage_flow:
    """Corner plot of a flow prior of an analysis over the chain it learned."""
    input:
        model=rules.train_stage_flow.output.model,
        chain=stage_flow_chain,
        parameters=analysis("parameters"),
    output:
        figure=report(
            LAYOUT.figure("{analysis}", "flow_{stage}"),
            caption="../report/stage_flow.rst",
            category="{analysis}",
            subcategory="Flow priors",
        ),
    log:
        LAYOUT.log("{analysis}", "figures", "flow_{stage}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "figures", "flow_{stage}")
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
        n_samples=config["figures"]["n_samples"],
        seed=analysis("seed"),
    script:
        "../../scripts/plot_analysis.py"


rule plot_training:
    """Training and validation loss of a flow prior of an analysis."""
    input:
        history=rules.train_stage_flow.output.history,
        parameters=analysis("parameters"),
    output:
        figure=report(
            LAYOUT.figure("{analysis}", "training_{stage}"),
            caption="../report/training.rst",
            category="{analysis}",
            subcategory="Training curves",
        ),
    log:
        LAYOUT.log("{analysis}", "figures", "training_{stage}"),
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/plot_analysis.py"


rule plot_sequential:
    """Sequential versus joint posterior of one sequence and sampler (corner plot)."""
    input:
        joint=joint_samples,
        before=before_samples,
        sequential=rules.sequential.output.samples,
        parameters=analysis("parameters"),
    output:
        figure=report(
            LAYOUT.figure("{analysis}", "sequential_{stage}_{sampler}"),
            caption="../report/sequential.rst",
            category="{analysis}",
            subcategory="Sequential vs joint",
        ),
    log:
        LAYOUT.log("{analysis}", "figures", "sequential_{stage}_{sampler}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "figures", "sequential_{stage}_{sampler}")
    conda:
        "../../envs/plots.yaml"
    params:
        levels=config["figures"]["levels"],
        joint_is_reference=lambda wc: plan(wc).joint_is_reference(wc.stage),
    script:
        "../../scripts/plot_analysis.py"


rule plot_agreement:
    """Dot chart of the sequential-vs-joint mean shifts of every sequence and sampler."""
    input:
        summary=rules.summarise_analysis.output.summary,
        parameters=analysis("parameters"),
    output:
        figure=report(
            LAYOUT.figure("{analysis}", "agreement"),
            caption="../report/agreement.rst",
            category="{analysis}",
            subcategory="Agreement",
        ),
    log:
        LAYOUT.log("{analysis}", "figures", "agreement"),
    conda:
        "../../envs/plots.yaml"
    params:
        threshold=lambda wc: plan(wc).threshold("mean_shift"),
    script:
        "../../scripts/plot_analysis.py"


rule plot_samplers:
    """Every sampler run of an analysis side by side: likelihood calls, wall time, C2ST
    against the exact posterior and log Z."""
    input:
        table=rules.compare_samplers.output.samplers,
    output:
        figure=report(
            LAYOUT.figure("{analysis}", "samplers"),
            caption="../report/samplers.rst",
            category="{analysis}",
            subcategory="Samplers",
        ),
    log:
        LAYOUT.log("{analysis}", "figures", "samplers"),
    conda:
        "../../envs/plots.yaml"
    params:
        c2st_threshold=lambda wc: plan(wc).threshold("c2st"),
    script:
        "../../scripts/plot_samplers.py"
