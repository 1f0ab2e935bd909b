"""One source for every default: the library dataclasses.

Flow and training defaults live in :class:`flowprior.train.TrainConfig`, sampler defaults in
the settings dataclasses of the sampler registry. Every copy a reader sees (the schema's
``default:`` values, ``config/config.yaml``'s ``flow`` block, whose comment says it shows the
defaults, and the tables of ``config/README.md``) must agree with them, field by field; the
allowed values (schema enums) must be the dataclass' choices; and ``docs/cli.md`` must hold
the options table rendered from ``TrainConfig``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowprior.commands import train_option, train_options_markdown
from flowprior.samplers import EmceeSettings, NautilusSettings, PocoMCSettings
from flowprior.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG = REPO / "config" / "config.yaml"
CONFIG_README = REPO / "config" / "README.md"
CLI_DOC = REPO / "docs" / "cli.md"

#: TrainConfig fields that are not study settings: the seed is the config's global `seed`, and
#: the workflow never shows a progress bar.
NOT_IN_CONFIG = {"seed", "progress"}
#: Each settings dataclass and where it is configured (schema $defs name, config/README heading).
SAMPLER_SETTINGS = {
    "pocomc": PocoMCSettings,
    "emcee": EmceeSettings,
    "nautilus": NautilusSettings,
}


def _defaults(cls: type, *, skip: set[str] = frozenset()) -> dict[str, Any]:
    """Field name -> default, tuples as lists (as YAML writes them)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as configuration values: 600 == 600.0, but True is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _disagreements(library: dict[str, Any], copy: dict[str, Any]) -> list[str]:
    """Every key missing from, extra in, or different in ``copy``; empty when they agree."""
    problems = [f"{k}: missing (library default {library[k]!r})" for k in library if k not in copy]
    problems += [f"{k}: not a library field" for k in copy if k not in library]
    problems += [
        f"{k}: {copy[k]!r} != library default {library[k]!r}"
        for k in library
        if k in copy and not _same(library[k], copy[k])
    ]
    return problems


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _readme_table(heading: str) -> dict[str, Any]:
    """``key -> default`` of the first table under ``heading`` in config/README.md.

    The default cell's first backticked value is read as YAML (``nsf``, ``[64, 64]``,
    ``null``, ``true``).
    """
    text = CONFIG_README.read_text()
    match = re.search(rf"^#+ {re.escape(heading)}\s*$", text, flags=re.MULTILINE)
    assert match, f"config/README.md: no heading {heading!r}"
    rows: dict[str, Any] = {}
    in_table = False
    for line in text[match.end():].splitlines():
        if line.startswith("#") or (in_table and not line.startswith("|")):
            break  # the next section, or the end of the first table
        in_table = line.startswith("|")
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table or not cells[0].startswith("`"):
            continue  # prose, the header or the separator row
        key = cells[0].strip("`")
        value = re.match(r"`([^`]*)`", cells[1])
        assert value, f"config/README.md, {heading}: {key}: default cell {cells[1]!r} has no `value`"
        rows[key] = yaml.safe_load(value.group(1))
    assert rows, f"config/README.md: no table under {heading!r}"
    return rows


# ------------------------------------------------------------------------------ flow / TrainConfig
def test_schema_flow_defaults_are_the_train_config_defaults():
    flow = _schema()["properties"]["flow"]["properties"]
    copy = {name: sub["default"] for name, sub in flow.items() if "default" in sub}
    assert set(copy) == set(flow), "every flow key of the schema has a default"
    assert _disagreements(_defaults(TrainConfig, skip=NOT_IN_CONFIG), copy) == []


def test_schema_enums_are_the_train_config_choices():
    schema = _schema()
    flow = schema["properties"]["flow"]["properties"]
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_IN_CONFIG or not f.metadata["choices"]:
            continue
        ref = flow[f.name]["$ref"].rsplit("/", 1)[-1]
        assert set(schema["$defs"][ref]["enum"]) == set(f.metadata["choices"]), f.name


def test_config_yaml_flow_block_shows_the_train_config_defaults():
    text = CONFIG.read_text()
    assert "every value here is the default" in text  # the comment that makes it a copy
    flow = yaml.safe_load(text)["flow"]
    assert _disagreements(_defaults(TrainConfig, skip=NOT_IN_CONFIG), flow) == []


def test_config_readme_flow_table_shows_the_train_config_defaults():
    table = _readme_table("`flow`")
    assert _disagreements(_defaults(TrainConfig, skip=NOT_IN_CONFIG), table) == []


# ------------------------------------------------------------------------------ samplers
@pytest.mark.parametrize("sampler", sorted(SAMPLER_SETTINGS))
def test_schema_sampler_keys_are_the_settings_fields_and_carry_no_other_defaults(sampler):
    cls = SAMPLER_SETTINGS[sampler]
    props = _schema()["$defs"][sampler]["properties"]
    library = _defaults(cls)
    assert set(props) == set(library)
    # The schema holds no copy of the sampler defaults (keys left out take the dataclass
    # defaults); should one be added, it must agree.
    copy = {name: sub["default"] for name, sub in props.items() if "default" in sub}
    assert [p for p in _disagreements(library, copy) if "missing" not in p] == []


@pytest.mark.parametrize("sampler", sorted(SAMPLER_SETTINGS))
def test_config_readme_sampler_table_shows_the_settings_defaults(sampler):
    table = _readme_table(f"`{sampler}`")
    assert _disagreements(_defaults(SAMPLER_SETTINGS[sampler]), table) == []


def test_sampler_settings_in_config_yaml_are_known_fields():
    """Values the study sets explicitly (not defaults): only the keys must be real fields."""
    for name, analysis in yaml.safe_load(CONFIG.read_text())["analyses"].items():
        for sampler, cls in SAMPLER_SETTINGS.items():
            settings = analysis.get(sampler) or {}
            unknown = set(settings) - {f.name for f in dataclasses.fields(cls)}
            assert not unknown, f"analyses.{name}.{sampler}: {sorted(unknown)}"
            cls.from_dict(settings, source=f"analyses.{name}.{sampler}")


# ------------------------------------------------------------------------------ the checks bite
def test_a_drifted_copy_is_reported_by_key():
    library = _defaults(TrainConfig, skip=NOT_IN_CONFIG)
    drifted = dict(library, lr=0.01, hidden=[64, 64, 64], whiten="full")
    drifted.pop("bins")
    drifted["bnis"] = 8
    problems = _disagreements(library, drifted)
    assert len(problems) == 5
    for key in ("lr", "hidden", "whiten", "bins", "bnis"):
        assert any(p.startswith(f"{key}:") for p in problems), key
    assert _disagreements({"flag": True}, {"flag": 1}) and _disagreements({"n": 1}, {"n": "1"})
    assert not _disagreements({"t": 600.0}, {"t": 600})


def test_readme_table_parser_reads_every_row():
    table = _readme_table("`flow`")
    assert table["hidden"] == [64, 64] and table["lr"] == 0.004 and table["kind"] == "nsf"
    assert _readme_table("`pocomc`")["n_prior"] is None


# ------------------------------------------------------------------------------ CLI reference
def test_cli_doc_holds_the_rendered_train_options_table():
    text = CLI_DOC.read_text()
    assert train_options_markdown() in text, (
        "docs/cli.md: the training-options table differs from "
        "flowprior.commands.train_options_markdown(); paste its output"
    )
    for f in dataclasses.fields(TrainConfig):
        assert f"`{train_option(f)}" in text and f"`{f.name}`" in text, f.name
