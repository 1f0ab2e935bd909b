"""Every rule's conda environment holds every third-party package its script imports.

The check parses the rules of the workflow (``rule`` and ``use rule ... with:`` blocks of the
.smk files, as snakefmt writes them), follows each script's imports through the flowprior modules
it uses (``ast``, transitively, imports inside functions included: they run when the rule calls
that code), maps import names to distribution names and looks them up in the rule's
``envs/*.yaml``. Imports guarded by ``try: ... except ImportError`` or ``if TYPE_CHECKING:`` are
optional and skipped.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
LIBRARY = "flowprior"

#: Import names whose distribution is named differently, where the installed metadata cannot
#: tell (a package missing from this environment).
IMPORT_TO_DIST = {
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
    "PIL": "pillow",
    "dateutil": "python-dateutil",
    "google": "protobuf",
}
#: conda-forge package name -> distribution name, where they differ.
CONDA_TO_DIST = {"matplotlib-base": "matplotlib", "pytorch": "torch", "python-tzdata": "tzdata"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------------------ rules
@dataclass(frozen=True)
class Rule:
    name: str
    conda: str | None  # path relative to the rule file's directory
    script: str | None
    base: str | None  # `use rule <base> as <name>`
    where: Path


_HEADER = re.compile(r"^(?:rule (\w+)|use rule (\w+) as (\w+)(?: with)?):\s*$")
_DIRECTIVE = re.compile(r"^    (conda|script):\s*(.*)$")


def parse_rules(path: Path) -> list[Rule]:
    """The rules of one Snakefile or .smk file (name, conda, script, use-rule base)."""
    lines = path.read_text().splitlines()
    rules: list[Rule] = []
    i = 0
    while i < len(lines):
        header = _HEADER.match(lines[i])
        if not header:
            i += 1
            continue
        name = header[1] or header[3]
        base = header[2]
        values: dict[str, str] = {}
        i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            directive = _DIRECTIVE.match(lines[i])
            if directive:
                text = directive[2].strip()
                if not text:  # the value is on the next line
                    i += 1
                    text = lines[i].strip()
                values[directive[1]] = ast.literal_eval(text.rstrip(","))
            i += 1
        rules.append(Rule(name, values.get("conda"), values.get("script"), base, path))
    return rules


def workflow_rules(files: list[Path]) -> dict[str, Rule]:
    """Every rule by name, a `use rule` inheriting its base's conda and script."""
    rules = {r.name: r for f in files for r in parse_rules(f)}
    resolved = {}
    for name, rule in rules.items():
        r = rule
        while r.base is not None and (r.conda is None or r.script is None):
            base = rules[r.base]
            r = Rule(name, r.conda or base.conda, r.script or base.script, base.base, base.where)
        resolved[name] = r
    return resolved


# ---------------------------------------------------------------------------- imports
def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True inside ``if TYPE_CHECKING:`` or a ``try`` that catches ImportError."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return True
        if isinstance(parent, ast.Try) and node in parent.body:
            caught = " ".join(ast.unparse(h.type) for h in parent.handlers if h.type is not None)
            if "ImportError" in caught or "ModuleNotFoundError" in caught:
                return True
        node = parent
    return False


@functools.cache  # every rule's script reaches mostly the same library modules
def module_imports(path: Path, module: str) -> frozenset[str]:
    """Absolute names of the modules ``path`` (the module ``module``) imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or _optional(node, parents):
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        out.add(base)
        out.update(f"{base}.{alias.name}" for alias in node.names)  # may be submodules
    return frozenset(out)


def module_file(name: str, src: Path) -> Path | None:
    """Source file of a library module under ``src`` (None: not a module of it)."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script: Path, *, src: Path, library: str = LIBRARY) -> dict[str, str]:
    """Top-level third-party import names used by ``script``, directly or through the library
    modules it imports (transitively), each with the file that imports it first."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    todo = [(script, "__main__")]
    while todo:
        path, module = todo.pop()
        for name in sorted(module_imports(path, module)):
            top = name.split(".")[0]
            if top == library:
                parts = name.split(".")
                for k in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b, a.b.c
                    sub = ".".join(parts[:k])
                    file = module_file(sub, src)
                    if file is not None and sub not in seen:
                        seen.add(sub)
                        todo.append((file, sub))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, str(path.relative_to(path.parents[1])))
    return found


@functools.cache
def _installed() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distribution(import_name: str) -> str:
    """Distribution (PyPI) name of a top-level import name."""
    if import_name in IMPORT_TO_DIST:
        return IMPORT_TO_DIST[import_name]
    dists = _installed().get(import_name)
    return dists[0] if dists else import_name


def env_packages(path: Path) -> set[str]:
    """Normalised distribution names of a conda environment file (conda and pip parts)."""
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env.get("dependencies", []):
        lines = dep.get("pip", []) if isinstance(dep, dict) else [dep]
        for line in lines:
            if line.startswith("-"):
                continue  # pip options such as --extra-index-url
            name = re.split(r"[=<>!~ \[]", line, maxsplit=1)[0]
            names.add(_norm(CONDA_TO_DIST.get(name, name)))
    return names


def missing_packages(files: list[Path], *, src: Path) -> list[str]:
    """One line per (rule, package) a rule's script imports but its conda env lacks."""
    problems = []
    for rule in workflow_rules(files).values():
        if rule.conda is None or rule.script is None:
            continue
        here = rule.where.parent
        env = (here / rule.conda).resolve()
        script = (here / rule.script).resolve()
        have = env_packages(env)
        for name, via in sorted(third_party_imports(script, src=src).items()):
            dist = distribution(name)
            if _norm(dist) not in have:
                problems.append(
                    f"rule {rule.name}: {env.name} lacks {dist} (import {name} in {via})"
                )
    return problems


# ------------------------------------------------------------------------------ tests
def test_every_rule_env_has_what_its_script_imports():
    rules = workflow_rules(RULES)
    assert len([r for r in rules.values() if r.script]) >= 20
    assert missing_packages(RULES, src=REPO / "src") == []


def test_use_rule_inherits_conda_and_script():
    rules = workflow_rules(RULES)
    assert rules["train_stage_flow"].script == rules["train_flow"].script
    assert rules["train_stage_flow"].conda == rules["train_flow"].conda


def _fake_project(tmp_path: Path, *, env_deps: list) -> Path:
    """A tiny workflow: one rule whose script uses a library module that imports scipy and
    sklearn lazily, and matplotlib only when available."""
    lib = tmp_path / "src" / LIBRARY
    (lib / "sub").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "sub" / "__init__.py").write_text("from .deep import f\n")
    (lib / "sub" / "deep.py").write_text(
        "import json\nimport numpy as np\n\n"
        "def f():\n    from sklearn.neighbors import NearestNeighbors\n    return 1\n"
    )
    (lib / "top.py").write_text(
        "from typing import TYPE_CHECKING\nfrom .sub import f\nfrom scipy import stats\n"
        "try:\n    import matplotlib\nexcept ImportError:\n    matplotlib = None\n"
        "if TYPE_CHECKING:\n    import torch\n"
    )
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "job.py").write_text(
        "import yaml\nfrom flowprior.top import f\n\nf()\n"
    )
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "env.yaml").write_text(
        yaml.safe_dump({"name": "x", "dependencies": env_deps})
    )
    rules = tmp_path / "workflow" / "rules"
    rules.mkdir(parents=True)
    (rules / "a.smk").write_text(
        'rule job:\n    """Doc."""\n    output:\n        "out.txt",\n    conda:\n'
        '        "../../envs/env.yaml"\n    script:\n        "../../scripts/job.py"\n\n\n'
        "use rule job as job2 with:\n    output:\n        \"out2.txt\",\n"
    )
    return rules / "a.smk"


def test_checker_follows_library_imports_transitively(tmp_path):
    smk = _fake_project(tmp_path, env_deps=[])
    found = third_party_imports(tmp_path / "scripts" / "job.py", src=tmp_path / "src")
    # sklearn through top -> sub/__init__ -> sub/deep (inside a function); the optional
    # matplotlib and the TYPE_CHECKING torch are not requirements
    assert set(found) == {"yaml", "scipy", "numpy", "sklearn"}
    assert [r.name for r in parse_rules(smk)] == ["job", "job2"]


def test_checker_passes_a_complete_env(tmp_path):
    deps = ["python=3.11", "numpy==2.4.6", "scipy==1.17.1", "pyyaml==6.0.4",
            {"pip": ["--extra-index-url https://example.org", "scikit-learn==1.9.1"]}]
    smk = _fake_project(tmp_path, env_deps=deps)
    assert missing_packages([smk], src=tmp_path / "src") == []


@pytest.mark.parametrize("drop", ["scikit-learn==1.9.1", "pyyaml==6.0.4", "numpy==2.4.6"])
def test_checker_fails_on_a_broken_env(tmp_path, drop):
    deps = ["numpy==2.4.6", "scipy==1.17.1", "pyyaml==6.0.4", "scikit-learn==1.9.1"]
    smk = _fake_project(tmp_path, env_deps=[d for d in deps if d != drop])
    problems = missing_packages([smk], src=tmp_path / "src")
    lacking = {"scikit-learn==1.9.1": "scikit-learn", "pyyaml==6.0.4": "PyYAML",
               "numpy==2.4.6": "numpy"}[drop]
    # both the rule and the `use rule` copy of it are reported
    assert [p.split(":")[0] for p in problems] == ["rule job", "rule job2"]
    assert all(f"env.yaml lacks {lacking}" in p for p in problems), problems
