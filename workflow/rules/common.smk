"""Thin input functions of the flowprior workflow (no rules here).

What to run and where its files go is planned in the library (flowprior.plan, unit-tested
without Snakemake); this file only adapts those plans to Snakemake's wildcards.
"""

import os
import re
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import Paramspace


# The rule scripts `import flowprior`. Put this checkout's src/ first on the jobs' PYTHONPATH,
# so that they use the library of the same commit as the workflow, also inside the conda
# environments of envs/ (which hold the dependencies only; see envs/README.md).
def _prepend_pythonpath(path):
    entries = [str(path)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    os.environ.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(entries)))


_SRC = Path(workflow.basedir) / "src"
_prepend_pythonpath(_SRC)
# ... and the same library for the planning done here, whatever flowprior is installed.
sys.path.insert(0, str(_SRC))

from flowprior.plan import (
    LAYOUT,
    STUDY_COLUMNS,
    AnalysisPlan,
    StudyPlan,
    flow_dirs,
    parse_stage,
    posterior_flow_settings,
)
from flowprior.chains import chain_input_files
from flowprior.samplers import sampler_names

POSTERIORS = list(config["posteriors"])
ANALYSES = list(config["analyses"])
PLANS = {a: AnalysisPlan.from_config(a, config) for a in ANALYSES}
STUDY = StudyPlan.from_config(config)
STUDY_TARGETS = STUDY.targets
STUDY_SPACE = Paramspace(
    pd.DataFrame(STUDY.grid_rows(), columns=STUDY_COLUMNS), param_sep="~"
)
FLOWS = flow_dirs(config)  # every trained flow: label -> directory
# The files of a flow directory (model, history, validation, fidelity), as rule patterns.
POSTERIOR_FLOW = LAYOUT.flow_files(LAYOUT.posterior_flow("{posterior}"))
STAGE_FLOW = LAYOUT.flow_files(LAYOUT.analysis_flow("{analysis}", "{stage}"))


def one_of(names):
    """Wildcard regex matching exactly one of ``names`` (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    posterior=one_of(POSTERIORS),
    analysis=one_of(ANALYSES),
    sampler=one_of(sampler_names()),
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    stage="[A-Za-z0-9][A-Za-z0-9_-]*",
    target=one_of(STUDY_TARGETS),


# ---------------------------------------------------------------------------- posteriors
def posterior_cfg(name):
    """Config entry (schema-validated, defaults filled) of the posterior called ``name``."""
    return config["posteriors"][name]


def posterior_file(key):
    """Input function: the `chain` entry's file ``key``; nothing for a `problem` entry."""

    def get(wildcards):
        return posterior_cfg(wildcards.posterior).get(key, [])

    return get


def posterior_chain_files(wildcards):
    """Input function: every file an external chain entry reads (a GetDist/Cobaya root's
    chain files and its .paramnames/.ranges/.updated.yaml); nothing for a `problem` entry.
    """
    entry = posterior_cfg(wildcards.posterior)
    if "chain" not in entry:
        return []
    return chain_input_files(entry["chain"], fmt=entry.get("format"))


def posterior_setting(key):
    """Params function: the posterior entry's value for ``key`` (None if it has none)."""

    def get(wildcards):
        return posterior_cfg(wildcards.posterior).get(key)

    return get


def posterior_flow(wildcards):
    """Params function: a posterior's flow settings."""
    return posterior_flow_settings(config, wildcards.posterior)


def posterior_flow_threads(wildcards):
    """Torch threads of a posterior's training job."""
    return posterior_flow(wildcards)["threads"]


def posterior_flow_selection(wildcards):
    """selection.json for a posterior with `flow: {select: auto}`."""
    return STUDY.selection_input(posterior_flow(wildcards))


# ------------------------------------------------------------------------------ analyses
def plan(wildcards):
    """The plan of the wildcards' analysis."""
    return PLANS[wildcards.analysis]


def analysis(attribute):
    """Input/params function: ``attribute`` of the analysis' plan (a property's value)."""
    return lambda wildcards: getattr(plan(wildcards), attribute)


def stage1_input(wildcards):
    return plan(wildcards).stage1_inputs(wildcards.dataset)


def sequential_input(wildcards):
    return plan(wildcards).sequential_inputs(wildcards.stage)


def joint_input(wildcards):
    return plan(wildcards).joint_inputs(wildcards.stage)


def stage_flow_chain(wildcards):
    """Samples an analysis flow is trained on."""
    return plan(wildcards).flow_chain(wildcards.stage)


def stage_flow(wildcards):
    """Params function: the flow settings of an analysis stage."""
    return plan(wildcards).flow_settings(wildcards.stage)


def stage_flow_threads(wildcards):
    return stage_flow(wildcards)["threads"]


def stage_flow_selection(wildcards):
    """selection.json for an analysis with `flow: {select: auto}`."""
    return STUDY.selection_input(stage_flow(wildcards))


def diagnostics_settings(wildcards):
    return plan(wildcards).diagnostics_settings()


def sequence_runs(wildcards):
    return plan(wildcards).sequence_runs(wildcards.stage).as_dict()


def joint_samples(wildcards):
    """Samples of the joint run of a sequence."""
    return LAYOUT.run_files(plan(wildcards).sequence_runs(wildcards.stage).joint)[
        "samples"
    ]


def before_samples(wildcards):
    return plan(wildcards).before_samples(wildcards.stage)


def diagnose_input(wildcards):
    return plan(wildcards).diagnose_inputs(wildcards.stage)


def analysis_figures(name):
    return PLANS[name].figures()


# ------------------------------------------------------------------------- all flows
def flows_files(role):
    """Every flow's file ``role`` (model, validation, fidelity), in :data:`FLOWS` order."""
    return [LAYOUT.flow_files(d)[role] for d in FLOWS.values()]


# ------------------------------------------------------------------ training-strategy study
def study_job_input(wildcards):
    return STUDY.job_inputs(wildcards.target)


def study_problem(wildcards):
    return STUDY.problem(wildcards.target)


def study_settings(wildcards):
    return STUDY.settings(STUDY_SPACE.instance(wildcards))


def study_scores():
    """Every job's score.json of the study."""
    pattern = f"{LAYOUT.study_job('{target}', '{params}')}/score.json"
    return expand(pattern, target=STUDY_TARGETS, params=STUDY_SPACE.instance_patterns)
