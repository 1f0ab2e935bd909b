"""The end-to-end study of the test suite, run by Snakemake once per test session.

One study covers every end-to-end check (tests/conftest.py runs it in the session fixture
``e2e_study``; the tests that use it all live in tests/test_workflow.py, which ``make test``'s
``--dist loadfile`` gives to one xdist worker): ``config/test.yaml`` as written, plus

- ``posteriors.ext``: an external chain entry (a CSV chain with weights and a parameter table
  in the run directory, with a per-entry ``flow.threads``), and
- ``analyses.mine``: the README's worked example, a likelihood in a standalone ``.py`` file
  outside the run directory, a stage-1 posterior that exists only as a CSV chain, a published
  joint chain (a GetDist root written by getdist, with a derived column) as the reference, and
  a derived quantity from a ``.py`` file;
- ``analyses.nested``: a 2-D linear-Gaussian analysis run with the nested sampler (nautilus)
  alone: stage 1 and the joint under the box prior, the sequential stage under the flow's
  prior transform.

To check something new end to end, add it to config/test.yaml (also run by the real-Slurm test)
or, if it needs files written at run time, to :func:`write_study`, and assert on the
:class:`Study` in a test of tests/test_workflow.py that takes the ``e2e_study`` fixture (a
test in another file would make a second worker run the whole study again).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TEST_CONFIG = REPO / "config" / "test.yaml"

# The README's worked example: stage A as a CSV chain of N(MU_A, SD_A), B a Gaussian measurement.
MU_A, SD_A = np.array([0.5, -0.5]), np.array([0.6, 0.8])
MU_B, SD_B = np.array([1.0, 0.0]), np.array([0.5, 0.5])
#: Dimension of the nested sampler's analysis ``nested`` (gaussian_linear with ``dim``).
NESTED_DIM = 2
LIKELIHOOD = textwrap.dedent(
    '''
    """A user's likelihood: a Gaussian measurement of both parameters."""
    import numpy as np

    def loglike(theta, *, mean, sd):
        mean, sd = np.asarray(mean), np.asarray(sd)
        z = (theta - mean) / sd
        return -0.5 * np.sum(z**2, axis=1) - np.sum(np.log(sd)) - np.log(2 * np.pi)
    '''
)


DERIVED = textwrap.dedent(
    '''
    """A user's derived quantities."""

    def quantities(theta):
        return {"total": theta[:, 0] + theta[:, 1]}
    '''
)
#: Samples of the published joint chain of ``mine`` (the exact A x B posterior), per file.
N_REFERENCE = (3000, 3000)


def exact_joint() -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of the exact posterior of ``mine``: the product of the two Gaussians."""
    prec = 1 / SD_A**2 + 1 / SD_B**2
    return (MU_A / SD_A**2 + MU_B / SD_B**2) / prec, np.sqrt(1 / prec)


def write_reference(root: Path) -> None:
    """The published joint chain of ``mine``: a GetDist root written by getdist (two chain
    files, ranges, a derived column ``sum_sq`` that flowprior keeps aside)."""
    from getdist import MCSamples

    mean, sd = exact_joint()
    rng = np.random.default_rng(11)
    parts = [mean + sd * rng.standard_normal((n, 2)) for n in N_REFERENCE]
    parts = [np.column_stack([x, (x**2).sum(axis=1)]) for x in parts]
    MCSamples(
        samples=parts,
        loglikes=[0.5 * ((x[:, :2] - mean) / sd) ** 2 @ np.ones(2) for x in parts],
        names=["mass", "width", "sum_sq*"],
        ranges={"mass": [-5, 5], "width": [-5, 5]},
    ).saveChainsAsText(str(root))


def snakemake_env() -> dict[str, str]:
    """This interpreter's bin directory first on PATH, and passive idle OpenMP threads."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def snakemake(*args: str, workdir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's workflow, writing into ``workdir``."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=snakemake_env(), cwd=workdir
    )


def copy_inputs(workdir: Path) -> None:
    """The parameter tables the configs name, relative to the directory Snakemake runs in."""
    shutil.copytree(REPO / "config" / "parameters", workdir / "config" / "parameters")


def job_blocks(output: str, rule: str) -> list[str]:
    """The job descriptions Snakemake printed for ``rule`` (``rule x:`` and its indented lines)."""
    lines = output.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line in (f"rule {rule}:", f"localrule {rule}:"):
            block = [line]
            for more in lines[i + 1 :]:
                if not more.startswith("    "):
                    break
                block.append(more)
            blocks.append("\n".join(block))
    return blocks


@dataclass(frozen=True)
class Study:
    """The end-to-end study: its files, and the finished Snakemake run.

    Attributes
    ----------
    workdir : Path
        The directory Snakemake ran in (results/, logs/, resources/, data/).
    user : Path
        The README example's files, outside ``workdir``: mylike.py, stage_a.csv, params.yaml.
    config : Path
        The study's config file (config/test.yaml plus ``posteriors.ext``, ``analyses.mine`` and ``analyses.nested``).
    ext_samples, ext_weights : ndarray, shapes (n, 2) and (n,)
        The values written to the ``ext`` chain (before rounding to the CSV's decimals).
    proc : CompletedProcess or None
        The Snakemake run of the whole study (None before :func:`run_study`).
    """

    workdir: Path
    user: Path
    config: Path
    ext_samples: np.ndarray
    ext_weights: np.ndarray
    proc: subprocess.CompletedProcess | None = None

    @property
    def args(self) -> list[str]:
        """The config options of every Snakemake call on this study."""
        return ["--configfile", str(self.config), "--replace-workflow-config"]

    @property
    def results(self) -> Path:
        return self.workdir / "results"

    @property
    def output(self) -> str:
        """What the Snakemake run printed (stdout and stderr)."""
        return self.proc.stdout + self.proc.stderr

    def failure_report(self, *, tail: int = 150) -> str:
        """The run's last lines and every job log that shows an error."""
        lines = [f"snakemake exited with {self.proc.returncode}; last {tail} lines:"]
        lines += self.output.splitlines()[-tail:]
        logs = self.workdir / "logs"
        for path in sorted(logs.rglob("*.log")) if logs.exists() else []:
            text = path.read_text(errors="replace")
            if "Traceback" in text or " ERROR " in text:
                lines += [f"--- {path.relative_to(self.workdir)}", text]
        return "\n".join(lines)


def write_study(base: Path) -> Study:
    """Write the study's inputs and config under ``base`` (the run directory is base/work)."""
    work, user = base / "work", base / "user"
    work.mkdir(parents=True)
    user.mkdir()
    copy_inputs(work)

    # posteriors.ext: a weighted CSV chain with its parameter table, inside the run directory
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    w = rng.uniform(1, 2, 300)
    data = work / "data"
    data.mkdir()
    lines = ["a,b,weight"] + [f"{u:.6f},{v:.6f},{wi:.3f}" for (u, v), wi in zip(x, w)]
    (data / "chain.csv").write_text("\n".join(lines) + "\n")
    (data / "params.yaml").write_text(
        yaml.safe_dump(
            {
                "parameters": [
                    {"name": "a", "lower": -10.0, "upper": 10.0, "label": r"\alpha"},
                    {"name": "b", "lower": -10.0, "upper": 10.0},
                ]
            }
        )
    )

    # analyses.mine: the README's worked example, files outside the run directory
    (user / "mylike.py").write_text(LIKELIHOOD)
    (user / "derived.py").write_text(DERIVED)
    write_reference(user / "joint")
    xa = MU_A + SD_A * np.random.default_rng(3).standard_normal((6000, 2))
    pd.DataFrame({"mass": xa[:, 0], "width": xa[:, 1]}).to_csv(user / "stage_a.csv", index=False)
    (user / "params.yaml").write_text(
        "parameters:\n"
        "  - {name: mass, lower: -5, upper: 5, label: 'm'}\n"
        "  - {name: width, lower: -5, upper: 5, label: '\\Gamma'}\n"
    )

    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["posteriors"]["ext"] = {
        "chain": "data/chain.csv",
        "parameters": "data/params.yaml",
        "flow": {"threads": 2},
    }
    config["analyses"]["mine"] = {
        "parameters": str(user / "params.yaml"),
        "datasets": {
            "A": {"chain": str(user / "stage_a.csv")},
            "B": {
                "likelihood": f"{user / 'mylike.py'}:loglike",
                "kwargs": {"mean": MU_B.tolist(), "sd": SD_B.tolist()},
            },
        },
        "sequences": [["A", "B"]],
        "samplers": ["pocomc"],
        "derived": f"{user / 'derived.py'}:quantities",
        "reference": {"chain": str(user / "joint")},
        # the library's flow defaults, not config/test.yaml's tiny flow: a user's settings
        "flow": {"hidden": [64, 64], "eval_every": 100, "max_steps": 1500, "patience": 500},
        "pocomc": {"n_effective": 512, "n_active": 256, "n_total": 2048},
        # the flow parameter shift is checked on gaussian_linear (config/test.yaml)
        "diagnostics": {"tension": {"method": "gaussian"}},
    }
    # analyses.nested: every stage with the nested sampler; the prior box written by the problem
    from flowprior.problems.analytic import get_analysis

    get_analysis("gaussian_linear", dim=NESTED_DIM).params.write(work / "nested_params.yaml")
    like = "flowprior.problems.analytic:gaussian_linear"
    config["analyses"]["nested"] = {
        "parameters": "nested_params.yaml",
        "datasets": {d: {"likelihood": like, "kwargs": {"dataset": d, "dim": NESTED_DIM}}
                     for d in ("A", "B")},
        "sequences": [["A", "B"]],
        "samplers": ["nautilus"],
        "stage1_sampler": "nautilus",
        "joint_sampler": "nautilus",
        "joint": True,
        "flow": {"max_steps": 300},
        "nautilus": {"n_live": 200, "n_eff": 1000, "n_networks": 1},
        "diagnostics": {"tension": {"method": "gaussian"}},
    }
    path = base / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Study(workdir=work, user=user, config=path, ext_samples=x, ext_weights=w)


def run_study(base: Path, *, cores: int = 2, timeout: float = 1200) -> Study:
    """Write the study under ``base`` and run the whole workflow on it once."""
    study = write_study(base)
    proc = snakemake("--cores", str(cores), *study.args, workdir=study.workdir, timeout=timeout)
    return Study(**{**study.__dict__, "proc": proc})
