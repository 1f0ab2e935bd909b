rule stage1:
    """Stage-1 posterior of one dataset: the analysis' stage-1 sampler under the uniform box
    prior (likelihood plug-ins), or the dataset's own chain, converted and validated (chain
    datasets)."""
    input:
        unpack(stage1_input),
    output:
        **LAYOUT.run_files(LAYOUT.stage1("{analysis}", "{dataset}")),
    log:
        LAYOUT.log("{analysis}", "stage1", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "stage1", "{dataset}")
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis("threads")
    params:
        dataset=lambda wc: plan(wc).datasets[wc.dataset],
        sampler=analysis("stage1_sampler"),
        settings=lambda wc: plan(wc).sampler_settings(plan(wc).stage1_sampler),
        seed=analysis("seed"),
        derived=analysis("derived"),
    script:
        "../../scripts/stage1.py"


rule sequential:
    """One sequential stage: the previous stage's flow prior times the next dataset."""
    input:
        unpack(sequential_input),
    output:
        **LAYOUT.run_files(LAYOUT.sequential("{analysis}", "{stage}", "{sampler}")),
    log:
        LAYOUT.log("{analysis}", "sequential", "{stage}", "{sampler}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "sequential", "{stage}", "{sampler}")
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis("threads")
    params:
        dataset=lambda wc: parse_stage(wc.stage)[-1],
        datasets=analysis("datasets"),
        settings=lambda wc: plan(wc).sampler_settings(wc.sampler),
        seed=analysis("seed"),
        derived=analysis("derived"),
    script:
        "../../scripts/sequential.py"


rule joint:
    """Joint reference: the analysis' joint sampler on the product of the likelihoods under
    the box prior."""
    input:
        unpack(joint_input),
    output:
        **LAYOUT.run_files(LAYOUT.joint("{analysis}", "{stage}")),
    log:
        LAYOUT.log("{analysis}", "joint", "{stage}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "joint", "{stage}")
    conda:
        "../../envs/flowprior.yaml"
    threads: analysis("threads")
    params:
        datasets=analysis("datasets"),
        sampler=analysis("joint_sampler"),
        settings=lambda wc: plan(wc).sampler_settings(plan(wc).joint_sampler),
        seed=analysis("seed"),
        derived=analysis("derived"),
    script:
        "../../scripts/joint.py"


rule reference:
    """The analysis' reference chain (a published joint posterior of all its datasets), read
    over the analysis' parameters: the joint posterior of the sequences of all the datasets
    where no joint run has one."""
    input:
        unpack(lambda wc: plan(wc).reference_inputs()),
    output:
        **LAYOUT.run_files(LAYOUT.reference("{analysis}")),
    log:
        LAYOUT.log("{analysis}", "reference"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "reference")
    conda:
        "../../envs/flowprior.yaml"
    params:
        entry=lambda wc: plan(wc).entry["reference"],
        stage=analysis("reference"),
        derived=analysis("derived"),
    script:
        "../../scripts/reference.py"


rule summarise_analysis:
    """Every artifact, run record and diagnostic of an analysis in one JSON file (evidence
    bookkeeping, sequential-versus-joint comparison, verdicts), and its tables."""
    input:
        lambda wc: plan(wc).output_files(),
        lambda wc: list(plan(wc).benchmarks().values()),
        parameters=analysis("parameters"),
    output:
        **LAYOUT.tables("{analysis}"),
        summary=LAYOUT.summary("{analysis}"),
    log:
        LAYOUT.log("{analysis}", "summary"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "summary")
    conda:
        "../../envs/flowprior.yaml"
    params:
        files=lambda wc: plan(wc).summary_inputs(),
        sequences=analysis("sequences"),
        datasets=analysis("dataset_order"),
        benchmarks=lambda wc: plan(wc).benchmarks(),
    script:
        "../../scripts/summarise_analysis.py"


rule study_summary:
    """results/summary.md: every analysis' verdicts first, then its tables and figure links."""
    input:
        summaries=expand(rules.summarise_analysis.output.summary, analysis=ANALYSES),
        flows=[rules.summarise_flows.output.table] if FLOWS else [],
    output:
        markdown=report(
            LAYOUT.study_summary, caption="../report/summary.rst", category="Summary"
        ),
    log:
        LAYOUT.log("study_summary"),
    conda:
        "../../envs/flowprior.yaml"
    params:
        tables={a: LAYOUT.tables(a)["markdown"] for a in ANALYSES},
        figures={a: PLANS[a].figures() for a in ANALYSES},
    script:
        "../../scripts/study_summary.py"
