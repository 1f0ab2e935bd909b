"""Helpers and input functions of the flowprior workflow (no rules here)."""

import os
import re
from pathlib import Path


# The rule scripts `import flowprior`. Put this checkout's src/ first on the jobs' PYTHONPATH,
# so that they use the library of the same commit as the workflow, also inside the conda
# environments of envs/ (which hold the dependencies only; see envs/README.md).
def _prepend_pythonpath(path):
    entries = [str(path)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    os.environ.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(entries)))


_prepend_pythonpath(Path(workflow.basedir) / "src")


POSTERIORS = list(config["posteriors"])
ANALYSES = list(config["analyses"])
RESERVED = {"flows", "posteriors", "figures", "tables", "benchmarks"}


def one_of(names):
    """Wildcard regex matching exactly one of ``names`` (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    posterior=one_of(POSTERIORS),
    analysis=one_of(ANALYSES),
    sampler="pocomc|emcee",
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    stage="[A-Za-z0-9][A-Za-z0-9_-]*",


def posterior_cfg(name):
    """Config entry (schema-validated, defaults filled) of the posterior called ``name``."""
    return config["posteriors"][name]


def is_chain(name):
    """True for an external-chain entry, False for a built-in problem."""
    return "chain" in posterior_cfg(name)


def chain_input(wildcards):
    """External chain file of a `chain` entry; nothing for a `problem` entry."""
    cfg = posterior_cfg(wildcards.posterior)
    return cfg["chain"] if is_chain(wildcards.posterior) else []


def parameters_input(wildcards):
    """Parameter table of a `chain` entry; nothing for a `problem` entry."""
    cfg = posterior_cfg(wildcards.posterior)
    return cfg["parameters"] if is_chain(wildcards.posterior) else []


def posterior_setting(key):
    """Params function: the posterior entry's value for ``key`` (None if it has none)."""

    def get(wildcards):
        return posterior_cfg(wildcards.posterior).get(key)

    return get


def flow_params(wildcards):
    """Flow settings of a posterior: top-level `flow`, updated by the entry's own `flow`."""
    return {**config["flow"], **posterior_cfg(wildcards.posterior).get("flow", {})}


def flow_threads(wildcards):
    """Torch threads of the posterior's training job."""
    return flow_params(wildcards)["threads"]


# ---------------------------------------------------------------------------- analyses
ANALYSIS_DEFAULTS = {
    "samplers": ["pocomc"],
    "joint": True,
    "threads": 1,
    "flow": {},
    "pocomc": {},
    "emcee": {},
}


def analysis_cfg(analysis):
    """Config entry (schema-validated) of an analysis, with the schema's defaults."""
    return {**ANALYSIS_DEFAULTS, **config["analyses"][analysis]}


def dataset_cfg(analysis, dataset):
    """Config entry of one dataset of an analysis."""
    return analysis_cfg(analysis)["datasets"][dataset]


def has_likelihood(analysis, dataset):
    """True for a likelihood plug-in, False for a chain dataset."""
    return "likelihood" in dataset_cfg(analysis, dataset)


def analysis_seed(analysis):
    """Seed of an analysis (its own, else the top-level one)."""
    return analysis_cfg(analysis).get("seed", config["seed"])


def flow_sampler(analysis):
    """The sampler whose sequential posteriors later flows are trained on."""
    return analysis_cfg(analysis)["samplers"][0]


def check_analysis(analysis):
    """Consistency checks the schema cannot express; a clear error naming the key."""
    cfg = analysis_cfg(analysis)
    where = f"config: analyses: {analysis}"
    if analysis in RESERVED:
        raise ValueError(
            f"{where}: the name is reserved ({', '.join(sorted(RESERVED))})"
        )
    for i, seq in enumerate(cfg["sequences"]):
        unknown = [d for d in seq if d not in cfg["datasets"]]
        if unknown:
            raise ValueError(
                f"{where}: sequences[{i}]: unknown dataset(s) {', '.join(unknown)}; "
                f"declared: {', '.join(cfg['datasets'])}"
            )


for _a in ANALYSES:
    check_analysis(_a)


def stage_name(datasets):
    """``["A", "B"] -> "A__B"`` (flowprior.pipeline.stage_id)."""
    return "__".join(datasets)


def analysis_plan(analysis):
    """Every job of an analysis: stage-1 datasets, flow stages, sequential stages, joints."""
    cfg = analysis_cfg(analysis)
    order = list(cfg["datasets"])
    stage1, flows, sequential, joint = [], [], [], []

    def add(lst, item):
        if item not in lst:
            lst.append(item)

    for seq in cfg["sequences"]:
        add(stage1, seq[0])
        for k in range(1, len(seq)):
            add(flows, stage_name(seq[:k]))
            if not has_likelihood(analysis, seq[k]):  # a chain enters through its flow
                add(stage1, seq[k])
                add(flows, seq[k])
        for k in range(2, len(seq) + 1):
            add(sequential, stage_name(seq[:k]))
            prefix = seq[:k]
            if cfg["joint"] and all(has_likelihood(analysis, d) for d in prefix):
                add(joint, stage_name(sorted(prefix, key=order.index)))
    return {"stage1": stage1, "flows": flows, "sequential": sequential, "joint": joint}


def stage_samples(wildcards):
    """Samples a flow stage is trained on: stage 1, or the flow sampler's sequential run."""
    datasets = wildcards.stage.split("__")
    if len(datasets) == 1:
        return f"results/{wildcards.analysis}/stage1/{wildcards.stage}/samples.parquet"
    sampler = flow_sampler(wildcards.analysis)
    return f"results/{wildcards.analysis}/sequential/{wildcards.stage}/{sampler}/samples.parquet"


def plugin_files(analysis, datasets):
    """Plug-in source files (``path.py:function``) of likelihood datasets: rerun triggers."""
    files = []
    for d in datasets:
        if has_likelihood(analysis, d):
            spec = dataset_cfg(analysis, d)["likelihood"].rsplit(":", 1)[0]
            if spec.endswith(".py"):
                files.append(spec)
    return files


def stage1_input(wildcards):
    """Inputs of a stage-1 job: the parameter table, and the chain or the plug-in file."""
    a, d = wildcards.analysis, wildcards.dataset
    out = {"parameters": analysis_cfg(a)["parameters"]}
    if has_likelihood(a, d):
        out["plugins"] = plugin_files(a, [d])
    else:
        out["chain"] = dataset_cfg(a, d)["chain"]
    return out


def sequential_input(wildcards):
    """Inputs of a sequential stage: the flow prior of the previous stage, the new data."""
    a = wildcards.analysis
    datasets = wildcards.stage.split("__")
    prefix, last = datasets[:-1], datasets[-1]
    out = {
        "parameters": analysis_cfg(a)["parameters"],
        "prior": f"results/{a}/flows/{stage_name(prefix)}/model",
        "plugins": plugin_files(a, [last]),
    }
    if not has_likelihood(a, last):
        out["likelihood_flow"] = f"results/{a}/flows/{last}/model"
    return out


def joint_input(wildcards):
    """Inputs of a joint run: the parameter table and the plug-in files."""
    a = wildcards.analysis
    return {
        "parameters": analysis_cfg(a)["parameters"],
        "plugins": plugin_files(a, wildcards.stage.split("__")),
    }


def analysis_flow_params(wildcards):
    """Flow settings of an analysis: top-level `flow`, updated by the analysis' own `flow`."""
    return {**config["flow"], **analysis_cfg(wildcards.analysis).get("flow", {})}


def analysis_flow_threads(wildcards):
    """Torch threads of an analysis' flow-training job."""
    return analysis_flow_params(wildcards)["threads"]


def analysis_threads(wildcards):
    """Threads of an analysis' sampler jobs."""
    return analysis_cfg(wildcards.analysis)["threads"]


def analysis_outputs(analysis):
    """Every per-job output of an analysis (inputs of its summary), by kind."""
    plan = analysis_plan(analysis)
    samplers = analysis_cfg(analysis)["samplers"]
    base = f"results/{analysis}"
    return {
        "stage1": {d: f"{base}/stage1/{d}" for d in plan["stage1"]},
        "flows": {s: f"{base}/flows/{s}" for s in plan["flows"]},
        "sequential": {
            s: {m: f"{base}/sequential/{s}/{m}" for m in samplers}
            for s in plan["sequential"]
        },
        "joint": {j: f"{base}/joint/{j}" for j in plan["joint"]},
    }


def summary_input(wildcards):
    """All per-job files of an analysis (flattened, for Snakemake)."""
    o = analysis_outputs(wildcards.analysis)
    files = []
    for d in list(o["stage1"].values()) + list(o["joint"].values()):
        files += [f"{d}/samples.parquet", f"{d}/run.json"]
    for d in o["flows"].values():
        files += [f"{d}/model", f"{d}/validation.json"]
    for by_sampler in o["sequential"].values():
        for d in by_sampler.values():
            files += [f"{d}/samples.parquet", f"{d}/run.json"]
    return files
