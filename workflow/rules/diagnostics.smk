rule diagnose_sequence:
    """Agreement with the joint posterior, tension, modes and the verdict of one sequence."""
    input:
        diagnose_input,
        parameters=analysis("parameters"),
    output:
        diagnostics=LAYOUT.diagnostics("{analysis}", "{stage}"),
    log:
        LAYOUT.log("{analysis}", "diagnostics", "{stage}"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "diagnostics", "{stage}")
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        runs=sequence_runs,
        datasets=analysis("datasets"),
        settings=diagnostics_settings,
        seed=analysis("seed"),
    script:
        "../../scripts/diagnose_sequence.py"
