from flowprior.diagnostics import comparison_runs
from flowprior.diagnostics.settings import tension_settings
from flowprior.params import load_parameters

# A tension parameter subset naming an unknown parameter fails here, before any job runs.
for _name, _plan in PLANS.items():
    tension_settings(
        _plan.diagnostics_settings(),
        names=load_parameters(_plan.parameters).names,
        source=f"config: analyses: {_name}: diagnostics",
    )


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


rule compare_samplers:
    """Every sampler run of an analysis side by side (likelihood calls, wall time, accuracy
    against the exact answer where there is one, evidences) and the consistency of the
    samplers' evidences at each stage."""
    input:
        runs=lambda wc: [
            f for r in comparison_runs(plan(wc)) for f in (r["samples"], r["run"])
        ],
        parameters=analysis("parameters"),
    output:
        samplers=f"{LAYOUT.results}/{{analysis}}/tables/samplers.csv",
        consistency=f"{LAYOUT.results}/{{analysis}}/tables/evidence_consistency.csv",
    log:
        LAYOUT.log("{analysis}", "compare_samplers"),
    benchmark:
        LAYOUT.benchmark("{analysis}", "compare_samplers")
    conda:
        "../../envs/flowprior.yaml"
    threads: 1
    params:
        runs=lambda wc: comparison_runs(plan(wc)),
        datasets=analysis("datasets"),
        settings=diagnostics_settings,
        seed=analysis("seed"),
    script:
        "../../scripts/compare_samplers.py"
