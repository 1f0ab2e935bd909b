rule score_configuration:
    """One job of the training-strategy study: train one configuration with one seed on one
    target and score it on held-out samples that training never saw."""
    input:
        unpack(study_job_input),
    output:
        score=f"{LAYOUT.study_job('{target}', STUDY_SPACE.wildcard_pattern)}/score.json",
    log:
        LAYOUT.log("training_study", "{target}", STUDY_SPACE.wildcard_pattern),
    benchmark:
        LAYOUT.benchmark("training_study", "{target}", STUDY_SPACE.wildcard_pattern)
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        problem=study_problem,
        settings=study_settings,
        n_samples=STUDY.study["n_samples"],
        n_held_out=STUDY.study["n_held_out"],
        held_out_fraction=STUDY.study["held_out_fraction"],
        n_flow_samples=STUDY.study["n_flow_samples"],
        n_boot=STUDY.study["n_boot"],
        c2st_max_n=STUDY.study["c2st_max_n"],
        seed=config["seed"],
    script:
        "../../scripts/score_configuration.py"


rule summarise_training_study:
    """scores.csv (one row per job), the ranking per target, the loss comparison and the
    selection (winner per target and overall) of the training-strategy study."""
    input:
        scores=study_scores(),
    output:
        scores=f"{LAYOUT.study}/scores.csv",
        ranking=f"{LAYOUT.study}/ranking.md",
        losses=f"{LAYOUT.study}/loss_comparison.csv",
        losses_md=f"{LAYOUT.study}/loss_comparison.md",
        selection=STUDY.selection,
    log:
        LAYOUT.log("training_study", "summary"),
    benchmark:
        LAYOUT.benchmark("training_study", "summary")
    conda:
        "../../envs/flowprior.yaml"
    params:
        metric=STUDY.study["metric"],
    script:
        "../../scripts/summarise_training_study.py"


rule plot_training_study:
    """Held-out score against training wall time, per loss and architecture."""
    input:
        scores=rules.summarise_training_study.output.scores,
    output:
        figure=report(
            f"{LAYOUT.study}/figures/score_vs_time.png",
            caption="../report/training_study.rst",
            category="Training study",
        ),
    log:
        LAYOUT.log("training_study", "plot"),
    benchmark:
        LAYOUT.benchmark("training_study", "plot")
    conda:
        "../../envs/plots.yaml"
    script:
        "../../scripts/plot_training_study.py"
