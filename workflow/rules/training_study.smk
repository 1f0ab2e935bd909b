rule score_configuration:
    """One job of the training-strategy study: train one configuration with one seed on one
    target and score it on held-out samples that training never saw."""
    input:
        unpack(study_job_input),
    output:
        score=f"{STUDY_DIR}/jobs/{{target}}/{STUDY_SPACE.wildcard_pattern}/score.json",
    log:
        f"logs/training_study/{{target}}/{STUDY_SPACE.wildcard_pattern}.log",
    benchmark:
        f"results/benchmarks/training_study/{{target}}/{STUDY_SPACE.wildcard_pattern}.tsv"
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        problem=study_problem,
        settings=study_settings,
        n_samples=STUDY["n_samples"],
        n_held_out=STUDY["n_held_out"],
        held_out_fraction=STUDY["held_out_fraction"],
        n_flow_samples=STUDY["n_flow_samples"],
        n_boot=STUDY["n_boot"],
        c2st_max_n=STUDY["c2st_max_n"],
        seed=config["seed"],
    script:
        "../../scripts/score_configuration.py"


rule summarise_training_study:
    """scores.csv (one row per job), the ranking per target, the loss comparison and the
    selection (winner per target and overall) of the training-strategy study."""
    input:
        scores=study_jobs("score.json"),
    output:
        scores=f"{STUDY_DIR}/scores.csv",
        ranking=f"{STUDY_DIR}/ranking.md",
        losses=f"{STUDY_DIR}/loss_comparison.csv",
        losses_md=f"{STUDY_DIR}/loss_comparison.md",
        selection=f"{STUDY_DIR}/selection.json",
    log:
        "logs/training_study/summary.log",
    benchmark:
        "results/benchmarks/training_study/summary.tsv"
    conda:
        "../../envs/flowprior.yaml"
    params:
        metric=STUDY["metric"],
    script:
        "../../scripts/summarise_training_study.py"


rule plot_training_study:
    """Held-out score against training wall time, per loss and architecture."""
    input:
        scores=rules.summarise_training_study.output.scores,
    output:
        figure=report(
            f"{STUDY_DIR}/figures/score_vs_time.png",
            caption="../report/training_study.rst",
            category="Training study",
        ),
    log:
        "logs/training_study/plot.log",
    benchmark:
        "results/benchmarks/training_study/plot.tsv"
    conda:
        "../../envs/flowprior.yaml"
    script:
        "../../scripts/plot_training_study.py"
