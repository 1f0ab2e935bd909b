"""flowprior: normalizing-flow priors learned from posterior chains.

Run from the repository root: `make run`, or `snakemake --cores all`.
"""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/posteriors.smk"
include: "workflow/rules/flows.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/training_study.smk"


localrules:
    all,


rule all:
    input:
        expand(rules.plot_flow.output.figure, posterior=POSTERIORS),
        rules.summarise_flows.output.table if FLOWS else [],
        expand(rules.summarise_analysis.output.summary, analysis=ANALYSES),
        expand(rules.summarise_analysis.output.markdown, analysis=ANALYSES),
        [analysis_figures(a) for a in ANALYSES],
        rules.study_summary.output.markdown if ANALYSES else [],
        rules.summarise_training_study.output if STUDY_TARGETS else [],
        rules.plot_training_study.output.figure if STUDY_TARGETS else [],
