"""The analysis planner: stage ids, the results layout, and the jobs of a validated config.

The workflow (``workflow/rules/*.smk``) asks this module what to run and where its files go;
nothing here imports Snakemake, so every plan is unit-tested on its own (tests/test_plan.py).

Vocabulary
----------
stage id
    The datasets absorbed so far, joined with :data:`SEP`: ``"A"`` is the stage-1 posterior of
    A, ``"A__B"`` the sequential posterior after A then B. This module holds the only
    definition of the separator and of the id functions; the workflow, the pipeline and the
    diagnostics use them.
layout
    :class:`Layout` writes every path pattern once. Its methods take names and return paths;
    called with wildcard strings (``"{analysis}"``) they return the rule's output patterns, so
    rules and input functions share one definition.
plan
    :class:`AnalysisPlan` lists the jobs of one analysis (stage 1, flows, sequential stages,
    joint references), the runs each sequence's diagnostics read, and every output, figure and
    benchmark of the analysis. :class:`StudyPlan` does the same for the training-strategy study,
    :func:`flow_dirs` lists every trained flow of a config (posterior and analysis flows alike).

The config passed in is the one ``snakemake.utils.validate`` has checked against
``workflow/schemas/config.schema.yaml``: the schema is the one source of its defaults, and a key
that validation would have filled is an :class:`~flowprior.errors.InputError` when missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

__all__ = [
    "LAYOUT",
    "RESERVED",
    "SEP",
    "STUDY_COLUMNS",
    "AnalysisPlan",
    "Layout",
    "SequenceRuns",
    "StudyPlan",
    "flow_dirs",
    "flow_settings",
    "joint_id",
    "parse_stage",
    "posterior_flow_settings",
    "stage_id",
]

#: Separator of dataset names in stage ids (dataset names may not contain it).
SEP = "__"

#: Names an analysis may not take: they are directories of results/ of their own.
RESERVED = frozenset({"flows", "posteriors", "figures", "tables", "benchmarks", "training_study"})


def stage_id(datasets: Sequence[str]) -> str:
    """``["A", "B"] -> "A__B"``."""
    if not datasets:
        raise ValueError("a stage needs at least one dataset")
    for d in datasets:
        if SEP in d:
            raise InputError(f"datasets: {d}: a dataset name may not contain {SEP!r}")
    return SEP.join(datasets)


def parse_stage(stage: str) -> list[str]:
    """``"A__B" -> ["A", "B"]``."""
    return stage.split(SEP)


def joint_id(datasets: Sequence[str], order: Sequence[str]) -> str:
    """Canonical id of a joint run: the datasets in config order (``B, A`` -> ``A__B``)."""
    rank = {name: i for i, name in enumerate(order)}
    return stage_id(sorted(set(datasets), key=rank.__getitem__))


def _spec_source(spec: str) -> list[str]:
    """The source file of a plug-in spec ``"path.py:function"`` (a rerun trigger of the jobs
    that call it); nothing for ``"package.module:function"``."""
    source = spec.rsplit(":", 1)[0]
    return [source] if source.endswith(".py") else []


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise InputError(
            f"{where}: {key}: missing (validate the config against "
            "workflow/schemas/config.schema.yaml first: it fills the defaults)"
        )
    return mapping[key]


# ------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class Layout:
    """Every path of the workflow's outputs, logs and benchmarks, written once.

    Each method returns a path for the names given; pass wildcard strings (``"{analysis}"``)
    to get the pattern of a rule's output. Directories of runs and flows hold fixed file names
    (:attr:`RUN_FILES`, :attr:`FLOW_FILES`).
    """

    results: str = "results"
    logs: str = "logs"

    #: Files of a sampler run directory (stage 1, sequential, joint), by role.
    RUN_FILES = {"samples": "samples.parquet", "run": "run.json"}
    #: Files of a flow directory (posterior and analysis flows alike), by role.
    FLOW_FILES = {
        "model": "model.zip",
        "history": "history.csv",
        "validation": "validation.json",
        "fidelity": "fidelity.json",
    }

    # -- posteriors (the flow-fidelity study of built-in problems and external chains)
    def posterior(self, posterior: str) -> dict[str, str]:
        """``chain`` and ``parameters`` of a prepared posterior."""
        base = f"{self.results}/posteriors/{posterior}"
        return {"chain": f"{base}/chain.parquet", "parameters": f"{base}/parameters.yaml"}

    def posterior_flow(self, posterior: str) -> str:
        """Flow directory of a posterior."""
        return f"{self.results}/flows/{posterior}"

    def flow_samples(self, posterior: str) -> str:
        """Equally weighted samples of a posterior's flow (for its figure)."""
        return f"{self.posterior_flow(posterior)}/samples.parquet"

    def posterior_figure(self, posterior: str) -> str:
        return f"{self.results}/figures/flow_{posterior}.png"

    @property
    def flows_table(self) -> str:
        """One row per trained flow of the config (posterior and analysis flows)."""
        return f"{self.results}/tables/flows.csv"

    @property
    def study_summary(self) -> str:
        return f"{self.results}/summary.md"

    # -- analyses
    def stage1(self, analysis: str, dataset: str) -> str:
        """Run directory of a stage-1 posterior."""
        return f"{self.results}/{analysis}/stage1/{dataset}"

    def analysis_flow(self, analysis: str, stage: str) -> str:
        """Flow directory of an analysis stage."""
        return f"{self.results}/{analysis}/flows/{stage}"

    def sequential(self, analysis: str, stage: str, sampler: str) -> str:
        """Run directory of a sequential stage and sampler."""
        return f"{self.results}/{analysis}/sequential/{stage}/{sampler}"

    def joint(self, analysis: str, stage: str) -> str:
        """Run directory of a joint reference."""
        return f"{self.results}/{analysis}/joint/{stage}"

    def reference(self, analysis: str) -> str:
        """Run directory of an analysis' reference chain (a published joint posterior)."""
        return f"{self.results}/{analysis}/reference"

    def diagnostics(self, analysis: str, stage: str) -> str:
        return f"{self.results}/{analysis}/diagnostics/{stage}.json"

    def summary(self, analysis: str) -> str:
        return f"{self.results}/{analysis}/summary.json"

    def tables(self, analysis: str) -> dict[str, str]:
        """Tables of an analysis by name (CSV) and ``markdown`` (all of them on one page)."""
        base = f"{self.results}/{analysis}/tables"
        names = ["verdicts", "flow_fidelity", "agreement", "derived", "tension", "evidence", "cost"]
        return {**{n: f"{base}/{n}.csv" for n in names}, "markdown": f"{base}/tables.md"}

    def figure(self, analysis: str, name: str) -> str:
        """A figure of an analysis: ``flow_<stage>``, ``training_<stage>``,
        ``sequential_<stage>_<sampler>``, ``agreement`` or ``samplers``."""
        return f"{self.results}/{analysis}/figures/{name}.png"

    # -- training-strategy study
    @property
    def study(self) -> str:
        return f"{self.results}/training_study"

    def study_job(self, target: str, params: str) -> str:
        """Directory of one study job (``params``: the Paramspace instance pattern)."""
        return f"{self.study}/jobs/{target}/{params}"

    # -- logs and benchmarks: the same parts as the output they belong to
    def log(self, *parts: str) -> str:
        return f"{self.logs}/{'/'.join(parts)}.log"

    def benchmark(self, *parts: str) -> str:
        return f"{self.results}/benchmarks/{'/'.join(parts)}.tsv"

    # -- files of a directory
    def run_files(self, directory: str) -> dict[str, str]:
        return {role: f"{directory}/{name}" for role, name in self.RUN_FILES.items()}

    def flow_files(self, directory: str) -> dict[str, str]:
        return {role: f"{directory}/{name}" for role, name in self.FLOW_FILES.items()}


#: The workflow's layout (results/, logs/ in the directory Snakemake runs in).
LAYOUT = Layout()


# -------------------------------------------------------------------------- flow settings
def flow_settings(
    config: Mapping[str, Any],
    override: Mapping[str, Any],
    *,
    target: str | None,
) -> dict[str, Any]:
    """Flow settings of one flow: the top-level ``flow``, updated by the entry's own ``flow``.

    With ``select: auto`` they also name the training-study target whose winner to use and
    the keys the entry sets itself (``select_target``, ``select_explicit``, read by
    :func:`flowprior.study.apply_selection`); without it they are unchanged.
    """
    flow = {**_require(config, "flow", "config"), **override}
    if flow.get("select") != "auto":
        return flow
    return {**flow, "select_target": target, "select_explicit": sorted(override)}


def posterior_flow_settings(config: Mapping[str, Any], posterior: str) -> dict[str, Any]:
    """Flow settings of a posterior; its study target is its built-in problem (None for an
    external chain: the overall winner)."""
    entry = config["posteriors"][posterior]
    return flow_settings(config, entry.get("flow", {}), target=entry.get("problem"))


def flow_dirs(config: Mapping[str, Any], *, layout: Layout = LAYOUT) -> dict[str, str]:
    """Every trained flow of a config, by label: a posterior's name, or
    ``<analysis>/<stage>`` for an analysis flow; the value is the flow directory."""
    out = {p: layout.posterior_flow(p) for p in config.get("posteriors", {})}
    for name in config.get("analyses", {}):
        plan = AnalysisPlan.from_config(name, config, layout=layout)
        out.update({f"{name}/{s}": layout.analysis_flow(name, s) for s in plan.flows})
    return out


# ------------------------------------------------------------------------------ analyses
@dataclass(frozen=True)
class SequenceRuns:
    """Run directories (and fidelity records) that one sequence's diagnostics read.

    Attributes
    ----------
    stage1 : dict dataset -> run directory
        The stage-1 posterior of every dataset of the sequence.
    previous : str or None
        Posterior before the last update when the sequence has more than two datasets: its
        joint run where there is one, else the flow sampler's sequential run.
    sequential : dict sampler -> run directory
        The final sequential posterior of every sampler.
    joint : str or None
        The joint run of all the sequence's datasets (None without one).
    fidelity : dict flow stage -> fidelity.json
        The flows the sequence went through.
    """

    stage1: dict[str, str]
    previous: str | None
    sequential: dict[str, str]
    joint: str | None
    fidelity: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping (rule params)."""
        return {
            "stage1": dict(self.stage1),
            "previous": self.previous,
            "sequential": dict(self.sequential),
            "joint": self.joint,
            "fidelity": dict(self.fidelity),
        }

    def directories(self) -> list[str]:
        """Every run directory, each once."""
        dirs = [*self.stage1.values(), *self.sequential.values()]
        dirs += [d for d in (self.previous, self.joint) if d]
        return list(dict.fromkeys(dirs))


@dataclass(frozen=True)
class AnalysisPlan:
    """Every job and path of one analysis of a validated config.

    Build it with :meth:`from_config`. Job lists are in first-use order, each id once.

    Attributes
    ----------
    name : str
    entry : dict
        The analysis' config entry (schema defaults filled).
    seed : int
        Its own seed, else the config's top-level one.
    stage1 : tuple of str
        Datasets whose stage-1 run the flows and the summary use: each sequence's first
        dataset, and every chain dataset. The diagnostics also read the stage-1 run of every
        other dataset of a sequence (:meth:`stage1_jobs`).
    flows : tuple of str
        Stage ids with a flow prior: every proper prefix of a sequence, and each chain
        dataset absorbed later (a chain enters a sequence through its flow).
    sequential : tuple of str
        Stage ids of the sequential runs (every prefix of two datasets or more).
    joint : tuple of str
        Joint references (canonical ids, :func:`joint_id`) of every prefix whose datasets
        all have likelihoods, when ``joint`` is on.
    reference : str or None
        The joint id that the analysis' ``reference`` chain stands for (all its datasets),
        when it has one and no joint run of those datasets: the sequences of all the datasets
        are then compared with it.
    """

    name: str
    entry: Mapping[str, Any]
    seed: int
    top: Mapping[str, Any] = field(repr=False)
    stage1: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    sequential: tuple[str, ...] = ()
    joint: tuple[str, ...] = ()
    reference: str | None = None
    layout: Layout = LAYOUT

    @classmethod
    def from_config(
        cls, name: str, config: Mapping[str, Any], *, layout: Layout = LAYOUT
    ) -> AnalysisPlan:
        """Plan of the analysis ``name`` of ``config`` (checked: a clear error naming the key).

        Raises
        ------
        InputError
            Unknown analysis, reserved name, a sequence naming an undeclared dataset, an
            unknown sampler, or a key that schema validation would have filled.
        """
        analyses = config.get("analyses", {})
        where = f"config: analyses: {name}"
        if name not in analyses:
            raise InputError(f"{where}: no such analysis (known: {', '.join(analyses) or 'none'})")
        if name in RESERVED:
            raise InputError(f"{where}: the name is reserved ({', '.join(sorted(RESERVED))})")
        entry = analyses[name]
        datasets = _require(entry, "datasets", where)
        for i, seq in enumerate(_require(entry, "sequences", where)):
            unknown = [d for d in seq if d not in datasets]
            if unknown:
                raise InputError(
                    f"{where}: sequences[{i}]: unknown dataset(s) {', '.join(unknown)}; "
                    f"declared: {', '.join(datasets)}"
                )
        from .samplers import get_sampler

        for key in ("stage1_sampler", "joint_sampler"):
            get_sampler(_require(entry, key, where))
        for sampler in _require(entry, "samplers", where):
            get_sampler(sampler)
        seed = entry.get("seed", _require(config, "seed", "config"))
        plan = cls(name=name, entry=entry, seed=seed, top=config, layout=layout)
        return plan._with_jobs()

    def _with_jobs(self) -> AnalysisPlan:
        stage1: dict[str, None] = {}
        flows: dict[str, None] = {}
        sequential: dict[str, None] = {}
        joint: dict[str, None] = {}
        for seq in self.sequences:
            stage1[seq[0]] = None
            for k in range(1, len(seq)):
                flows[stage_id(seq[:k])] = None
                if not self.has_likelihood(seq[k]):  # a chain enters through its flow
                    stage1[seq[k]] = None
                    flows[seq[k]] = None
            for k in range(2, len(seq) + 1):
                sequential[stage_id(seq[:k])] = None
                if self.entry["joint"] and all(self.has_likelihood(d) for d in seq[:k]):
                    joint[joint_id(seq[:k], self.dataset_order)] = None
        reference = None
        if self.entry.get("reference"):
            reference = joint_id(self.dataset_order, self.dataset_order)
            if reference in joint:  # a likelihood joint of all the datasets wins
                reference = None
        return AnalysisPlan(
            name=self.name,
            entry=self.entry,
            seed=self.seed,
            top=self.top,
            stage1=tuple(stage1),
            flows=tuple(flows),
            sequential=tuple(sequential),
            joint=tuple(joint),
            reference=reference,
            layout=self.layout,
        )

    def stage1_jobs(self) -> tuple[str, ...]:
        """Every stage-1 run of the analysis: :attr:`stage1`, then the other datasets of the
        sequences (the tension diagnostics compare each update with its data alone)."""
        more = (d for seq in self.sequences for d in seq)
        return tuple(dict.fromkeys([*self.stage1, *more]))

    # -- config, as the jobs see it
    @property
    def datasets(self) -> dict[str, Any]:
        """Dataset entries by name, in config order."""
        return dict(self.entry["datasets"])

    @property
    def dataset_order(self) -> list[str]:
        return list(self.entry["datasets"])

    @property
    def sequences(self) -> list[list[str]]:
        return [list(s) for s in self.entry["sequences"]]

    @property
    def samplers(self) -> tuple[str, ...]:
        """Samplers of the sequential stages."""
        return tuple(self.entry["samplers"])

    @property
    def flow_sampler(self) -> str:
        """The sampler whose sequential posteriors later flows are trained on."""
        return self.samplers[0]

    @property
    def stage1_sampler(self) -> str:
        return self.entry["stage1_sampler"]

    @property
    def joint_sampler(self) -> str:
        return self.entry["joint_sampler"]

    @property
    def parameters(self) -> str:
        """Path of the parameter table."""
        return self.entry["parameters"]

    @property
    def threads(self) -> int:
        """Threads of each sampler job."""
        return int(self.entry["threads"])

    @property
    def derived(self) -> Any:
        """The ``derived`` setting (None: no derived quantities)."""
        return self.entry.get("derived")

    def derived_files(self) -> list[str]:
        """The derived function's source file (``path.py:function``; a rerun trigger)."""
        from .derived import derived_spec

        spec = derived_spec(self.derived)
        return [] if spec is None else _spec_source(spec[0])

    def chain_files(self, entry: Mapping[str, Any]) -> list[str]:
        """The files a chain entry reads: the file, or every file of a GetDist/Cobaya root
        (:func:`flowprior.chains.chain_input_files`)."""
        from .chains import chain_input_files

        return chain_input_files(entry["chain"], fmt=entry.get("format"))

    def reference_inputs(self) -> dict[str, Any]:
        """The parameter table, the reference chain's files and the derived function's."""
        return {
            "parameters": self.parameters,
            "chain": self.chain_files(self.entry["reference"]),
            "derived": self.derived_files(),
        }

    def has_likelihood(self, dataset: str) -> bool:
        """True for a likelihood plug-in, False for a chain dataset."""
        return "likelihood" in self.entry["datasets"][dataset]

    def sampler_settings(self, sampler: str) -> dict[str, Any]:
        """Settings of a sampler: the analysis' key named after it (default: none)."""
        return dict(self.entry.get(sampler) or {})

    def flow_settings(self, stage: str) -> dict[str, Any]:
        """Flow settings of a stage's flow; with ``select: auto``, a stage-1 posterior's study
        target is ``<analysis>/<dataset>``, later stages take the overall winner."""
        return flow_settings(
            self.top, self.entry.get("flow", {}), target=f"{self.name}/{stage}"
        )

    def diagnostics_settings(self) -> dict[str, Any]:
        """Top-level ``diagnostics``, updated by the analysis' own."""
        return {**self.top.get("diagnostics", {}), **self.entry.get("diagnostics", {})}

    def threshold(self, name: str) -> float | None:
        """A verdict threshold of the analysis: its diagnostics settings, else the library
        default (:func:`flowprior.diagnostics.default_thresholds`)."""
        settings = self.diagnostics_settings()
        if name in settings:
            return settings[name]
        from .diagnostics import default_thresholds

        return default_thresholds()[name]

    # -- inputs of jobs
    def plugin_files(self, datasets: Iterable[str]) -> list[str]:
        """Files of likelihood datasets: plug-in sources (``path.py:function``, rerun
        triggers) and the files each declares in ``inputs`` (data tables, built first)."""
        files: list[str] = []
        for d in datasets:
            entry = self.entry["datasets"][d]
            if "likelihood" not in entry:
                continue
            for f in _spec_source(entry["likelihood"]) + list(entry.get("inputs", [])):
                if f not in files:
                    files.append(f)
        return files

    def stage1_inputs(self, dataset: str) -> dict[str, Any]:
        """The parameter table, and the chain (chain dataset) or plug-in files."""
        out: dict[str, Any] = {"parameters": self.parameters, "derived": self.derived_files()}
        if self.has_likelihood(dataset):
            out["plugins"] = self.plugin_files([dataset])
        else:
            out["chain"] = self.chain_files(self.entry["datasets"][dataset])
        return out

    def flow_chain(self, stage: str) -> str:
        """Samples a stage's flow is trained on: stage 1, or the flow sampler's sequential run."""
        if len(parse_stage(stage)) == 1:
            return self.layout.run_files(self.layout.stage1(self.name, stage))["samples"]
        run = self.layout.sequential(self.name, stage, self.flow_sampler)
        return self.layout.run_files(run)["samples"]

    def sequential_inputs(self, stage: str) -> dict[str, Any]:
        """The flow prior of the previous stage and the new data (its flow for a chain)."""
        datasets = parse_stage(stage)
        prefix, last = datasets[:-1], datasets[-1]
        prior = self.layout.analysis_flow(self.name, stage_id(prefix))
        out = {
            "parameters": self.parameters,
            "prior": self.layout.flow_files(prior)["model"],
            "plugins": self.plugin_files([last]),
            "derived": self.derived_files(),
        }
        if not self.has_likelihood(last):
            flow = self.layout.analysis_flow(self.name, last)
            out["likelihood_flow"] = self.layout.flow_files(flow)["model"]
        return out

    def joint_inputs(self, stage: str) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "plugins": self.plugin_files(parse_stage(stage)),
            "derived": self.derived_files(),
        }

    # -- sequences and their diagnostics
    def sequence_ids(self) -> list[str]:
        """Stage ids of the full sequences."""
        return [stage_id(seq) for seq in self.sequences]

    def sequence_flows(self, sequence: Sequence[str]) -> list[str]:
        """Flow stages a sequence goes through: each prefix's prior, each chain's flow."""
        seq = list(sequence)
        flows = [stage_id(seq[:k]) for k in range(1, len(seq))]
        flows += [d for d in seq[1:] if not self.has_likelihood(d) and d not in flows]
        return flows

    def sequence_runs(self, stage: str) -> SequenceRuns:
        """Runs a sequence's diagnostics read (see :func:`flowprior.diagnostics`)."""
        seq, lay, a = parse_stage(stage), self.layout, self.name
        joint = joint_id(seq, self.dataset_order)
        previous = None
        if len(seq) > 2:
            pj = joint_id(seq[:-1], self.dataset_order)
            previous = (
                lay.joint(a, pj)
                if pj in self.joint
                else lay.sequential(a, stage_id(seq[:-1]), self.flow_sampler)
            )
        return SequenceRuns(
            stage1={d: lay.stage1(a, d) for d in dict.fromkeys(seq)},
            previous=previous,
            sequential={m: lay.sequential(a, stage, m) for m in self.samplers},
            joint=self._joint_dir(joint),
            fidelity={
                f: lay.flow_files(lay.analysis_flow(a, f))["fidelity"]
                for f in self.sequence_flows(seq)
            },
        )

    def _joint_dir(self, joint: str) -> str | None:
        """Run directory standing for the joint posterior ``joint``: its joint run, else the
        reference chain's (when it covers those datasets), else None."""
        if joint in self.joint:
            return self.layout.joint(self.name, joint)
        if joint == self.reference:
            return self.layout.reference(self.name)
        return None

    def joint_is_reference(self, stage: str) -> bool:
        """Whether a sequence's joint posterior is the analysis' reference chain."""
        return self.sequence_runs(stage).joint == self.layout.reference(self.name)

    def before_samples(self, stage: str) -> str:
        """Samples of the posterior before a sequence's last update."""
        runs = self.sequence_runs(stage)
        before = runs.previous or runs.stage1[parse_stage(stage)[0]]
        return self.layout.run_files(before)["samples"]

    def diagnose_inputs(self, stage: str) -> list[str]:
        """Every file a sequence's diagnostics read."""
        runs = self.sequence_runs(stage)
        files = [f for d in runs.directories() for f in self.layout.run_files(d).values()]
        return files + list(runs.fidelity.values())

    # -- outputs
    def outputs(self) -> dict[str, Any]:
        """Every per-job directory, by kind: ``stage1``, ``flows``, ``joint`` (id -> dir: the
        joint runs, and the reference chain under the id it stands for) and ``sequential``
        (stage -> sampler -> dir)."""
        lay, a = self.layout, self.name
        return {
            "stage1": {d: lay.stage1(a, d) for d in self.stage1},
            "flows": {s: lay.analysis_flow(a, s) for s in self.flows},
            "sequential": {
                s: {m: lay.sequential(a, s, m) for m in self.samplers} for s in self.sequential
            },
            "joint": {
                **{j: lay.joint(a, j) for j in self.joint},
                **({self.reference: lay.reference(a)} if self.reference else {}),
            },
        }

    def output_files(self) -> list[str]:
        """Every per-job file the analysis summary reads (runs, flows, diagnostics)."""
        o = self.outputs()
        runs = [*o["stage1"].values(), *o["joint"].values()]
        runs += [d for by in o["sequential"].values() for d in by.values()]
        files = [f for d in runs for f in self.layout.run_files(d).values()]
        files += [f for d in o["flows"].values() for f in self.layout.flow_files(d).values()]
        return files + list(self.diagnostics().values())

    def summary_inputs(self) -> dict[str, Any]:
        """The files :func:`flowprior.pipeline.summarise_analysis` reads, in its arguments'
        shape: ``stage1``, ``joint`` (id -> run files), ``sequential`` (stage -> sampler -> run
        files), ``flows`` (stage -> ``model``, ``validation``), ``fidelity`` (stage -> file)
        and ``diagnostics`` (sequence -> file)."""
        o, lay = self.outputs(), self.layout
        flows = {s: lay.flow_files(d) for s, d in o["flows"].items()}
        return {
            "stage1": {k: lay.run_files(d) for k, d in o["stage1"].items()},
            "flows": {s: {r: f[r] for r in ("model", "validation")} for s, f in flows.items()},
            "sequential": {
                s: {m: lay.run_files(d) for m, d in by.items()} for s, by in o["sequential"].items()
            },
            "joint": {k: lay.run_files(d) for k, d in o["joint"].items()},
            "fidelity": {s: f["fidelity"] for s, f in flows.items()},
            "diagnostics": self.diagnostics(),
        }

    def diagnostics(self) -> dict[str, str]:
        """``diagnostics/<sequence>.json`` of every sequence."""
        return {s: self.layout.diagnostics(self.name, s) for s in self.sequence_ids()}

    def benchmarks(self) -> dict[str, str]:
        """Benchmark file of every compute job, by job label (the cost table's rows)."""
        bench, a = self.layout.benchmark, self.name
        out = {f"stage1 {d}": bench(a, "stage1", d) for d in self.stage1}
        out.update({f"flow {s}": bench(a, "flows", s) for s in self.flows})
        for s in self.sequential:
            out.update({f"sequential {s} {m}": bench(a, "sequential", s, m) for m in self.samplers})
        out.update({f"joint {j}": bench(a, "joint", j) for j in self.joint})
        if self.reference:
            out[f"joint {self.reference}"] = bench(a, "reference")
        return out

    def figures(self) -> list[str]:
        """Every figure: flows, training curves, sequential-vs-joint (sequences with a joint
        reference, every sampler), the agreement chart (when any sequence has one) and the
        sampler comparison (``samplers``: every sampler run side by side)."""
        fig = lambda name: self.layout.figure(self.name, name)  # noqa: E731
        figs = [fig(f"flow_{s}") for s in self.flows] + [fig(f"training_{s}") for s in self.flows]
        with_joint = [s for s in self.sequence_ids() if self.sequence_runs(s).joint]
        figs += [fig(f"sequential_{s}_{m}") for s in with_joint for m in self.samplers]
        return figs + ([fig("agreement")] if with_joint else []) + [fig("samplers")]


# ------------------------------------------------------------------ training-strategy study
#: Columns of the study grid (one Paramspace row per configuration and seed), in order.
STUDY_COLUMNS = ("loss", "kind", "transforms", "hidden", "lr", "batch_size", "seed")


@dataclass(frozen=True)
class StudyPlan:
    """The training-strategy study of a validated config (``training_study``)."""

    study: Mapping[str, Any]
    top: Mapping[str, Any] = field(repr=False)
    layout: Layout = LAYOUT

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, layout: Layout = LAYOUT) -> StudyPlan:
        """Plan of the study (every target checked: a clear error naming it)."""
        plan = cls(study=_require(config, "training_study", "config"), top=config, layout=layout)
        for target in plan.targets:
            plan.target_source(target)
        return plan

    @property
    def targets(self) -> list[str]:
        return list(self.study["targets"])

    def grid_rows(self) -> list[tuple[Any, ...]]:
        """Every (configuration, seed) as a row of :data:`STUDY_COLUMNS` (hidden widths
        written ``"64x64"``)."""
        grid = self.study["grid"]
        hidden = ["x".join(str(h) for h in widths) for widths in grid["hidden"]]
        return list(
            itertools.product(
                grid["loss"],
                grid["kind"],
                grid["transforms"],
                hidden,
                [float(lr) for lr in grid["lr"]],
                grid["batch_size"],
                self.study["seeds"],
            )
        )

    def target_source(self, target: str) -> tuple[str, Any]:
        """``("problem", name)`` or ``("chain", (analysis, dataset))`` of a study target."""
        from .problems import PROBLEMS

        where = f"config: training_study: targets: {target}"
        if "/" not in target:
            if target not in PROBLEMS:
                raise InputError(
                    f"{where}: not a built-in problem ({', '.join(PROBLEMS)}) "
                    "nor '<analysis>/<dataset>'"
                )
            return "problem", target
        analysis, dataset = target.split("/")
        analyses = self.top.get("analyses", {})
        if analysis not in analyses or dataset not in analyses[analysis]["datasets"]:
            raise InputError(f"{where}: no analysis {analysis!r} with a dataset {dataset!r}")
        return "chain", (analysis, dataset)

    def job_inputs(self, target: str) -> dict[str, str]:
        """A stage-1 target's samples and parameter table; nothing for a built-in problem."""
        kind, source = self.target_source(target)
        if kind == "problem":
            return {}
        analysis, dataset = source
        run = self.layout.run_files(self.layout.stage1(analysis, dataset))
        return {"chain": run["samples"], "parameters": self.top["analyses"][analysis]["parameters"]}

    def problem(self, target: str) -> str | None:
        """The built-in problem of a target (None for a stage-1 posterior)."""
        kind, source = self.target_source(target)
        return source if kind == "problem" else None

    def settings(self, instance: Mapping[str, Any]) -> dict[str, Any]:
        """TrainConfig settings of one job: the top-level ``flow``, the study's step and time
        caps, and the job's grid values (``instance``: one row of the grid)."""
        return {
            **self.top["flow"],
            "max_steps": self.study["max_steps"],
            "max_time": self.study["max_time"],
            "loss": str(instance["loss"]),
            "kind": str(instance["kind"]),
            "transforms": int(instance["transforms"]),
            "hidden": [int(h) for h in str(instance["hidden"]).split("x")],
            "lr": float(instance["lr"]),
            "batch_size": int(instance["batch_size"]),
            "seed": int(instance["seed"]),
            "threads": 1,
        }

    @property
    def selection(self) -> str:
        return f"{self.layout.study}/selection.json"

    def selection_input(self, flow: Mapping[str, Any]) -> list[str]:
        """``selection.json`` when flow settings say ``select: auto``, else nothing."""
        if flow.get("select") != "auto":
            return []
        if not self.targets:
            raise InputError(
                "config: flow: select: auto needs a training study "
                "(training_study: targets: [...])"
            )
        return [self.selection]
