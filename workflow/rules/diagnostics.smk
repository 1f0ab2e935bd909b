rule flow_fidelity:
    """A flow prior of an analysis against the held-out part of the chain it learned."""
    input:
        model="results/{analysis}/flows/{stage}/model",
        validation="results/{analysis}/flows/{stage}/validation.json",
        chain=stage_samples,
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        fidelity="results/{analysis}/flows/{stage}/fidelity.json",
    log:
        "logs/{analysis}/fidelity/{stage}.log",
    benchmark:
        "results/benchmarks/{analysis}/fidelity/{stage}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        datasets=lambda wc: analysis_cfg(wc.analysis)["datasets"],
        settings=lambda wc: analysis_diagnostics(wc.analysis),
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/flow_fidelity.py"


rule diagnose_sequence:
    """Agreement with the joint posterior, tension, modes and the verdict of one sequence."""
    input:
        diagnose_input,
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        diagnostics="results/{analysis}/diagnostics/{stage}.json",
    log:
        "logs/{analysis}/diagnostics/{stage}.log",
    benchmark:
        "results/benchmarks/{analysis}/diagnostics/{stage}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        runs=lambda wc: sequence_runs(wc.analysis, wc.stage),
        datasets=lambda wc: analysis_cfg(wc.analysis)["datasets"],
        settings=lambda wc: analysis_diagnostics(wc.analysis),
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/diagnose_sequence.py"
