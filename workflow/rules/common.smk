"""Helpers and input functions of the flowprior workflow (no rules here)."""

import os
import re
from pathlib import Path

from snakemake.utils import Paramspace


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
    """Files of likelihood datasets: plug-in sources (``path.py:function``), rerun triggers,
    and the files each declares in `inputs` (data tables), built first."""
    files = []
    for d in datasets:
        if has_likelihood(analysis, d):
            entry = dataset_cfg(analysis, d)
            spec = entry["likelihood"].rsplit(":", 1)[0]
            if spec.endswith(".py"):
                files.append(spec)
            files += [f for f in entry.get("inputs", []) if f not in files]
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


# ------------------------------------------------------------------------- diagnostics
def analysis_diagnostics(analysis):
    """Diagnostics settings of an analysis: top-level `diagnostics`, updated by its own."""
    return {**config["diagnostics"], **analysis_cfg(analysis).get("diagnostics", {})}


def sequence_flows(analysis, seq):
    """Flow stages a sequence goes through: each prefix's prior, each chain dataset's flow."""
    flows = [stage_name(seq[:k]) for k in range(1, len(seq))]
    flows += [d for d in seq[1:] if not has_likelihood(analysis, d) and d not in flows]
    return flows


def sequence_runs(analysis, stage):
    """Run directories a sequence's diagnostics read, by role (see flowprior.diagnostics)."""
    cfg = analysis_cfg(analysis)
    seq = stage.split("__")
    base = f"results/{analysis}"
    order = list(cfg["datasets"])
    plan = analysis_plan(analysis)
    joint = stage_name(sorted(seq, key=order.index))
    previous = None
    if len(seq) > 2:
        prefix = seq[:-1]
        pj = stage_name(sorted(prefix, key=order.index))
        previous = (
            f"{base}/joint/{pj}"
            if pj in plan["joint"]
            else f"{base}/sequential/{stage_name(prefix)}/{flow_sampler(analysis)}"
        )
    return {
        "stage1": {d: f"{base}/stage1/{d}" for d in dict.fromkeys(seq)},
        "previous": previous,
        "sequential": {m: f"{base}/sequential/{stage}/{m}" for m in cfg["samplers"]},
        "joint": f"{base}/joint/{joint}" if joint in plan["joint"] else None,
        "fidelity": {
            f: f"{base}/flows/{f}/fidelity.json" for f in sequence_flows(analysis, seq)
        },
    }


def joint_samples(wildcards):
    """Samples of the joint run of a sequence."""
    runs = sequence_runs(wildcards.analysis, wildcards.stage)
    return f"{runs['joint']}/samples.parquet"


def before_samples(wildcards):
    """Samples of the posterior before a sequence's last update."""
    runs = sequence_runs(wildcards.analysis, wildcards.stage)
    first = wildcards.stage.split("__")[0]
    return f"{runs['previous'] or runs['stage1'][first]}/samples.parquet"


def diagnose_input(wildcards):
    """Every file a sequence's diagnostics read."""
    runs = sequence_runs(wildcards.analysis, wildcards.stage)
    dirs = list(runs["stage1"].values()) + list(runs["sequential"].values())
    dirs += [d for d in (runs["previous"], runs["joint"]) if d]
    files = [f"{d}/{name}" for d in dirs for name in ("samples.parquet", "run.json")]
    return files + list(runs["fidelity"].values())


def sequence_ids(analysis):
    """Stage ids of the full sequences of an analysis."""
    return [stage_name(seq) for seq in analysis_cfg(analysis)["sequences"]]


def analysis_benchmarks(analysis):
    """Benchmark files of every compute job of an analysis, by job label."""
    o = analysis_outputs(analysis)
    b = f"results/benchmarks/{analysis}"
    out = {f"stage1 {d}": f"{b}/stage1/{d}.tsv" for d in o["stage1"]}
    out.update({f"flow {s}": f"{b}/flows/{s}.tsv" for s in o["flows"]})
    for s, by in o["sequential"].items():
        out.update({f"sequential {s} {m}": f"{b}/sequential/{s}/{m}.tsv" for m in by})
    out.update({f"joint {j}": f"{b}/joint/{j}.tsv" for j in o["joint"]})
    return out


def analysis_figures(analysis):
    """Every figure of an analysis."""
    cfg = analysis_cfg(analysis)
    plan = analysis_plan(analysis)
    base = f"results/{analysis}/figures"
    figs = [f"{base}/flow_{s}.png" for s in plan["flows"]]
    figs += [f"{base}/training_{s}.png" for s in plan["flows"]]
    figs += [
        f"{base}/sequential_{s}_{m}.png"
        for s in sequence_ids(analysis)
        for m in cfg["samplers"]
        if sequence_runs(analysis, s)["joint"]
    ]
    if any(sequence_runs(analysis, s)["joint"] for s in sequence_ids(analysis)):
        figs.append(f"{base}/agreement.png")
    return figs


# ------------------------------------------------------------------ training-strategy study
STUDY = config["training_study"]
STUDY_TARGETS = list(STUDY["targets"])
STUDY_DIR = "results/training_study"


def study_grid():
    """Every (configuration, seed) of the study as a DataFrame (one Paramspace row each)."""
    import itertools

    import pandas as pd

    grid = STUDY["grid"]
    hidden = ["x".join(str(h) for h in widths) for widths in grid["hidden"]]
    rows = itertools.product(
        grid["loss"],
        grid["kind"],
        grid["transforms"],
        hidden,
        [float(lr) for lr in grid["lr"]],
        grid["batch_size"],
        STUDY["seeds"],
    )
    cols = ["loss", "kind", "transforms", "hidden", "lr", "batch_size", "seed"]
    return pd.DataFrame(list(rows), columns=cols)


STUDY_SPACE = Paramspace(study_grid(), param_sep="~")


def study_target_source(target):
    """``("problem", name)`` or ``("chain", (analysis, dataset))`` of a study target."""
    from flowprior.problems import PROBLEMS

    where = f"config: training_study: targets: {target}"
    if "/" not in target:
        if target not in PROBLEMS:
            raise ValueError(
                f"{where}: not a built-in problem ({', '.join(PROBLEMS)}) "
                "nor '<analysis>/<dataset>'"
            )
        return "problem", target
    analysis, dataset = target.split("/")
    if analysis not in ANALYSES or dataset not in analysis_cfg(analysis)["datasets"]:
        raise ValueError(
            f"{where}: no analysis {analysis!r} with a dataset {dataset!r}"
        )
    return "chain", (analysis, dataset)


for _t in STUDY_TARGETS:
    study_target_source(_t)


wildcard_constraints:
    target=one_of(STUDY_TARGETS),


def study_job_input(wildcards):
    """A stage-1 posterior target's samples and parameter table; nothing for a problem."""
    kind, source = study_target_source(wildcards.target)
    if kind == "problem":
        return {}
    analysis, dataset = source
    return {
        "chain": f"results/{analysis}/stage1/{dataset}/samples.parquet",
        "parameters": analysis_cfg(analysis)["parameters"],
    }


def study_problem(wildcards):
    """Params function: the built-in problem of a study target (None for a chain)."""
    kind, source = study_target_source(wildcards.target)
    return source if kind == "problem" else None


def study_settings(wildcards):
    """Params function: the TrainConfig settings of one study job."""
    inst = STUDY_SPACE.instance(wildcards)
    settings = {
        **config["flow"],
        "max_steps": STUDY["max_steps"],
        "max_time": STUDY["max_time"],
    }
    settings.update(
        loss=str(inst["loss"]),
        kind=str(inst["kind"]),
        transforms=int(inst["transforms"]),
        hidden=[int(h) for h in str(inst["hidden"]).split("x")],
        lr=float(inst["lr"]),
        batch_size=int(inst["batch_size"]),
        seed=int(inst["seed"]),
        threads=1,
    )
    return settings


def study_jobs(name):
    """Every per-job file ``name`` (score.json, or a benchmark) of the study."""
    if name == "benchmark":
        pattern = "results/benchmarks/training_study/{target}/{params}.tsv"
    else:
        pattern = f"{STUDY_DIR}/jobs/{{target}}/{{params}}/{name}"
    return expand(pattern, target=STUDY_TARGETS, params=STUDY_SPACE.instance_patterns)


def selection_input(flow_cfg):
    """selection.json when the flow settings say `select: auto`, else nothing."""
    if flow_cfg.get("select") != "auto":
        return []
    if not STUDY_TARGETS:
        raise ValueError(
            "config: flow: select: auto needs a training study "
            "(training_study: targets: [...])"
        )
    return f"{STUDY_DIR}/selection.json"


def stage_flow_selection(wildcards):
    """selection.json for an analysis with `flow: {select: auto}`."""
    return selection_input(analysis_flow_params(wildcards))


def posterior_flow_selection(wildcards):
    """selection.json for a posterior with `flow: {select: auto}`."""
    return selection_input(flow_params(wildcards))


def with_selection(flow, *, target, explicit):
    """Flow settings; with `select: auto`, also the study target and the keys the entry sets
    itself (``select_target``, ``select_explicit``: flowprior.study.apply_selection reads
    them). Without it the settings are unchanged (no rerun of existing flows)."""
    if flow.get("select") != "auto":
        return flow
    return {**flow, "select_target": target, "select_explicit": sorted(explicit)}


def stage_flow_settings(wildcards):
    """Params function of train_stage_flow: the analysis' flow settings; a stage-1 posterior's
    study target is ``<analysis>/<dataset>``, later stages take the overall winner."""
    return with_selection(
        analysis_flow_params(wildcards),
        target=f"{wildcards.analysis}/{wildcards.stage}",
        explicit=analysis_cfg(wildcards.analysis)["flow"],
    )


def posterior_flow_settings(wildcards):
    """Params function of train_flow: a posterior's flow settings; its study target is its
    built-in problem (None for an external chain: the overall winner)."""
    return with_selection(
        flow_params(wildcards),
        target=posterior_cfg(wildcards.posterior).get("problem"),
        explicit=posterior_cfg(wildcards.posterior).get("flow", {}),
    )
