"""flowprior: normalizing-flow priors learned from posterior chains.

Run from the repository root: `make run`, or `snakemake --cores all`.
"""

import sys

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# Bounded (alias bombs, duplicate keys), then validated against the schema, which fills the
# defaults; errors are one line naming the config file(s) and the key path (flowprior.config).
# This checkout's library, as in common.smk.
sys.path.insert(0, f"{workflow.basedir}/src")
from flowprior.config import check_workflow_config

check_workflow_config(
    config,
    f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
    configfiles=workflow.configfiles,
)


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
