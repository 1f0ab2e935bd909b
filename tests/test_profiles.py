"""The execution profiles: workflow/profiles/default (local) and workflow/profiles/slurm.

The real-Slurm run of the cluster profile is tests/cluster/run_slurm_test.sh (make test-slurm);
these checks need no Slurm.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "workflow" / "profiles"
SLURM = PROFILES / "slurm" / "config.yaml"
STUDY = ["--configfile", str(REPO / "config" / "test.yaml"), "--replace-workflow-config"]


def snakemake(*args: str, workdir: Path) -> subprocess.CompletedProcess:
    """Snakemake of this interpreter on the repository's workflow, writing into ``workdir``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), *args]
    # the parameter tables the configs name, relative to the directory Snakemake runs in
    if (REPO / "config" / "parameters").is_dir() and not (workdir / "config").exists():
        shutil.copytree(REPO / "config" / "parameters", workdir / "config" / "parameters")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=workdir)


def _profile(name: str) -> dict:
    data = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    assert isinstance(data, dict), f"profiles/{name}/config.yaml is not a mapping"
    return data


def _rules() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    pattern = r"^(?:rule (\w+)|use rule \w+ as (\w+)(?: with)?):"  # `use rule` names too
    return {a or b for a, b in re.findall(pattern, text, flags=re.M)}


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _job_section(out: str, rule: str) -> str:
    return out[out.index(f"rule {rule}:") :].split("\n\n")[0]


def test_default_profile_is_local():
    profile = _profile("default")
    assert "executor" not in profile, "the default profile runs jobs locally"
    assert "cores" not in profile, "cores come from the command line"


def test_slurm_profile_uses_the_pinned_slurm_executor():
    profile = _profile("slurm")
    assert profile["executor"] == "slurm"
    assert isinstance(profile["jobs"], int) and profile["jobs"] >= 1
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    pins = _lock()
    assert "snakemake-executor-plugin-slurm" in pins
    assert "snakemake-executor-plugin-slurm-jobstep" in pins


def test_slurm_profile_sizes_the_heavy_rules():
    resources = _profile("slurm")["set-resources"]
    for rule in ("train_flow", "train_stage_flow", "stage1", "sequential", "joint"):
        assert {"mem_mb", "runtime"} <= set(resources.get(rule) or {}), rule
    # Snakemake ignores unknown rule names in set-resources without a word.
    unknown = set(resources) - _rules()
    assert not unknown, f"set-resources names rules the workflow does not have: {unknown}"


def test_slurm_profile_keeps_the_configs_threads():
    """Threads are torch threads and change the results; they come from the config, which
    records them, so that a cluster run reproduces a local run of the same config."""
    profile = _profile("slurm")
    assert "set-threads" not in profile and "max-threads" not in profile
    assert "cores" not in profile


def test_slurm_profile_leaves_account_and_partition_to_the_user():
    resources = {
        **_profile("slurm")["default-resources"],
        **{k: v for r in _profile("slurm")["set-resources"].values() for k, v in r.items()},
    }
    assert "slurm_account" not in resources and "slurm_partition" not in resources
    text = SLURM.read_text()
    assert "# slurm_account:" in text and "# slurm_partition:" in text


def test_slurm_profile_gpu_snippet_is_accepted_by_the_plugin():
    """The commented GPU request of train_flow becomes --gres; the slurm_extra way is refused."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra
    from snakemake_interface_common.exceptions import WorkflowError

    class Resources(dict):
        __getattr__ = dict.__getitem__

    match = re.search(r"^\s*# (gres: .*?)\s*#", SLURM.read_text(), flags=re.M)
    assert match, "the slurm profile documents a gres line for train_flow"
    gpu = yaml.safe_load(match[1])
    assert set_gres_string(SimpleNamespace(resources=Resources(gpu))) == " --gres=gpu:1"
    with pytest.raises(WorkflowError, match="not allowed in the 'slurm_extra'"):
        validate_slurm_extra(SimpleNamespace(resources=Resources(slurm_extra="'--gres=gpu:1'")))


def test_slurm_profile_dry_run(tmp_path):
    """A dry run needs no Slurm: no job is submitted and no Slurm command is required."""
    proc = snakemake("-n", "--workflow-profile", str(PROFILES / "slurm"), *STUDY, workdir=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"Using workflow specific profile {PROFILES / 'slurm'}" in out
    train = _job_section(out, "train_flow")
    assert "mem_mb=4000" in train and "runtime=1440" in train, train
    assert "mem_mb=2000" in _job_section(out, "prepare_posterior")
    stage1 = _job_section(out, "stage1")
    assert "mem_mb=8000" in stage1 and "runtime=1440" in stage1, stage1


def test_default_profile_dry_run(tmp_path):
    proc = snakemake(
        "-n",
        "--cores",
        "2",
        "--workflow-profile",
        str(PROFILES / "default"),
        *STUDY,
        workdir=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "runtime=" not in out  # no cluster resources in local runs


def test_slurm_test_script_is_valid_bash():
    script = REPO / "tests" / "cluster" / "run_slurm_test.sh"
    assert script.stat().st_mode & 0o111, "run_slurm_test.sh must be executable"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
