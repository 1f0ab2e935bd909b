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


wildcard_constraints:
    posterior="|".join(re.escape(name) for name in POSTERIORS),


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
