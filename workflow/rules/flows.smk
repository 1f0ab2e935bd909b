# One flow pipeline: a posterior's flow (results/flows/<posterior>/) and an analysis stage's
# flow (results/<analysis>/flows/<stage>/) are trained by the same rule and checked by the same
# rule, and write the same files: model.zip, history.csv, validation.json, fidelity.json.


rule train_flow:
    """Train a bounded normalizing flow on a posterior chain: the model, its training history
    and its validation record."""
    input:
        chain=rules.prepare_posterior.output.chain,
        parameters=rules.prepare_posterior.output.parameters,
        selection=posterior_flow_selection,
    output:
        model=POSTERIOR_FLOW["model"],
        history=POSTERIOR_FLOW["history"],
        validation=POSTERIOR_FLOW["validation"],
    log:
        LAYOUT.log("train_flow", "{posterior}"),
    benchmark:
        LAYOUT.benchmark("train_flow", "{posterior}")
    conda:
        "../../envs/flowprior.yaml"
    threads: posterior_flow_threads
    params:
        flow=posterior_flow,
        seed=config["seed"],
    script:
        "../../scripts/train_flow.py"


use rule train_flow as train_stage_flow with:
    input:
        chain=stage_flow_chain,
        parameters=analysis("parameters"),
        selection=stage_flow_selection,
    output:
        model=STAGE_FLOW["model"],
        history=STAGE_FLOW["history"],
        validation=STAGE_FLOW["validation"],
    log:
        LAYOUT.log("{analysis}", "flows", "{stage}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "flows", "{stage}")
    threads: stage_flow_threads
    params:
        flow=stage_flow,
        seed=analysis("seed"),


rule flow_fidelity:
    """A flow against the held-out part of the chain it learned (and the exact posterior of a
    built-in analytic problem): held-out NLL, moment scores, C2ST, sliced Wasserstein, modes.
    """
    input:
        model=rules.train_stage_flow.output.model,
        validation=rules.train_stage_flow.output.validation,
        chain=stage_flow_chain,
        parameters=analysis("parameters"),
    output:
        fidelity=STAGE_FLOW["fidelity"],
    log:
        LAYOUT.log("{analysis}", "fidelity", "{stage}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "fidelity", "{stage}")
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        stage=lambda wc: parse_stage(wc.stage),
        datasets=analysis("datasets"),
        settings=diagnostics_settings,
        seed=analysis("seed"),
    script:
        "../../scripts/flow_fidelity.py"


use rule flow_fidelity as posterior_flow_fidelity with:
    input:
        model=rules.train_flow.output.model,
        validation=rules.train_flow.output.validation,
        chain=rules.prepare_posterior.output.chain,
        parameters=rules.prepare_posterior.output.parameters,
    output:
        fidelity=POSTERIOR_FLOW["fidelity"],
    log:
        LAYOUT.log("flow_fidelity", "{posterior}"),
    benchmark:
        LAYOUT.benchmark("flow_fidelity", "{posterior}")
    params:
        stage=None,
        datasets={},
        settings=config["diagnostics"],
        seed=config["seed"],


rule sample_flow:
    """Draw samples from a posterior's trained flow (for its figure)."""
    input:
        model=rules.train_flow.output.model,
    output:
        samples=LAYOUT.flow_samples("{posterior}"),
    log:
        LAYOUT.log("sample_flow", "{posterior}"),
    benchmark:
        LAYOUT.benchmark("sample_flow", "{posterior}")
    conda:
        "../../envs/flowprior.yaml"
    params:
        n_samples=config["figures"]["n_samples"],
        seed=config["seed"],
    script:
        "../../scripts/sample_flow.py"


rule summarise_flows:
    """One table row per trained flow (posterior and analysis flows): settings, training
    cost, fit quality and fidelity on held-out samples."""
    input:
        models=flows_files("model"),
        validations=flows_files("validation"),
        fidelities=flows_files("fidelity"),
    output:
        table=LAYOUT.flows_table,
    log:
        LAYOUT.log("summarise_flows"),
    benchmark:
        LAYOUT.benchmark("summarise_flows")
    conda:
        "../../envs/flowprior.yaml"
    params:
        flows=list(FLOWS),
    script:
        "../../scripts/summarise_flows.py"
