rule stage1:
    """Stage-1 posterior of one dataset: pocoMC under the uniform box prior (likelihood
    plug-ins), or the dataset's own chain, converted and validated (chain datasets)."""
    input:
        unpack(stage1_input),
    output:
        samples="results/{analysis}/stage1/{dataset}/samples.parquet",
        run="results/{analysis}/stage1/{dataset}/run.json",
    log:
        "logs/{analysis}/stage1/{dataset}.log",
    benchmark:
        "results/benchmarks/{analysis}/stage1/{dataset}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis_threads
    params:
        dataset=lambda wc: dataset_cfg(wc.analysis, wc.dataset),
        pocomc=lambda wc: analysis_cfg(wc.analysis)["pocomc"],
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/stage1.py"


rule train_stage_flow:
    """Flow prior of one stage of an analysis, trained on that stage's posterior."""
    input:
        chain=stage_samples,
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
        selection=stage_flow_selection,
    output:
        model=directory("results/{analysis}/flows/{stage}/model"),
        validation="results/{analysis}/flows/{stage}/validation.json",
    log:
        "logs/{analysis}/flows/{stage}.log",
    benchmark:
        "results/benchmarks/{analysis}/flows/{stage}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis_flow_threads
    params:
        flow=stage_flow_settings,
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/train_flow.py"


rule sequential:
    """One sequential stage: the previous stage's flow prior times the next dataset."""
    input:
        unpack(sequential_input),
    output:
        samples="results/{analysis}/sequential/{stage}/{sampler}/samples.parquet",
        run="results/{analysis}/sequential/{stage}/{sampler}/run.json",
    log:
        "logs/{analysis}/sequential/{stage}/{sampler}.log",
    benchmark:
        "results/benchmarks/{analysis}/sequential/{stage}/{sampler}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis_threads
    params:
        dataset=lambda wc: wc.stage.split("__")[-1],
        datasets=lambda wc: analysis_cfg(wc.analysis)["datasets"],
        settings=lambda wc: analysis_cfg(wc.analysis)[wc.sampler],
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/sequential.py"


rule joint:
    """Joint reference: pocoMC on the product of the likelihoods under the box prior."""
    input:
        unpack(joint_input),
    output:
        samples="results/{analysis}/joint/{stage}/samples.parquet",
        run="results/{analysis}/joint/{stage}/run.json",
    log:
        "logs/{analysis}/joint/{stage}.log",
    benchmark:
        "results/benchmarks/{analysis}/joint/{stage}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis_threads
    params:
        datasets=lambda wc: analysis_cfg(wc.analysis)["datasets"],
        pocomc=lambda wc: analysis_cfg(wc.analysis)["pocomc"],
        seed=lambda wc: analysis_seed(wc.analysis),
    script:
        "../../scripts/joint.py"


rule summarise_analysis:
    """Every artifact, run record and diagnostic of an analysis in one JSON file (evidence
    bookkeeping, sequential-versus-joint comparison, verdicts), and its tables."""
    input:
        summary_input,
        lambda wc: expand(
            "results/{{analysis}}/flows/{stage}/fidelity.json",
            stage=analysis_plan(wc.analysis)["flows"],
        ),
        lambda wc: expand(
            rules.diagnose_sequence.output.diagnostics,
            stage=sequence_ids(wc.analysis),
            allow_missing=True,
        ),
        lambda wc: list(analysis_benchmarks(wc.analysis).values()),
        parameters=lambda wc: analysis_cfg(wc.analysis)["parameters"],
    output:
        summary="results/{analysis}/summary.json",
        verdicts="results/{analysis}/tables/verdicts.csv",
        flow_fidelity="results/{analysis}/tables/flow_fidelity.csv",
        agreement="results/{analysis}/tables/agreement.csv",
        tension="results/{analysis}/tables/tension.csv",
        evidence="results/{analysis}/tables/evidence.csv",
        cost="results/{analysis}/tables/cost.csv",
        markdown="results/{analysis}/tables/tables.md",
    log:
        "logs/{analysis}/summary.log",
    benchmark:
        "results/benchmarks/{analysis}/summary.tsv"
    conda:
        "../../envs/flowprior.yaml"
    params:
        outputs=lambda wc: analysis_outputs(wc.analysis),
        sequences=lambda wc: analysis_cfg(wc.analysis)["sequences"],
        datasets=lambda wc: list(analysis_cfg(wc.analysis)["datasets"]),
        diagnostics=lambda wc: {
            s: f"results/{wc.analysis}/diagnostics/{s}.json"
            for s in sequence_ids(wc.analysis)
        },
        benchmarks=lambda wc: analysis_benchmarks(wc.analysis),
    script:
        "../../scripts/summarise_analysis.py"


rule study_summary:
    """results/summary.md: every analysis' verdicts first, then its tables and figure links."""
    input:
        summaries=expand(rules.summarise_analysis.output.summary, analysis=ANALYSES),
        flows=[rules.summarise_flows.output.table] if POSTERIORS else [],
    output:
        markdown=report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
    log:
        "logs/study_summary.log",
    conda:
        "../../envs/flowprior.yaml"
    params:
        tables={a: f"results/{a}/tables/tables.md" for a in ANALYSES},
        figures={a: analysis_figures(a) for a in ANALYSES},
    script:
        "../../scripts/study_summary.py"
