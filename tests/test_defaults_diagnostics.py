"""One source for the diagnostic defaults: the rules registry and ``DIAGNOSTIC_SETTINGS``.

The schema's ``diagnostics`` defaults, ``config/config.yaml``'s ``diagnostics`` block (its
comment says it shows the library defaults) and the table of ``config/README.md`` must agree
with :func:`flowprior.diagnostics.default_thresholds` and
:data:`flowprior.diagnostics.DIAGNOSTIC_SETTINGS`, key by key and value by value.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from flowprior.diagnostics import DIAGNOSTIC_SETTINGS, default_thresholds, rules, split_settings
from flowprior.diagnostics.settings import NESTED_KEYS, TENSION_METHODS, TENSION_SETTINGS
from flowprior.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG = REPO / "config" / "config.yaml"
CONFIG_README = REPO / "config" / "README.md"


def _library() -> dict:
    return {**default_thresholds(), **DIAGNOSTIC_SETTINGS}


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    return float(a) == float(b)


def _diff(copy: dict) -> list[str]:
    lib = _library()
    out = [f"{k}: missing (library {lib[k]!r})" for k in lib if k not in copy]
    out += [f"{k}: not a library default" for k in copy if k not in lib]
    out += [f"{k}: {copy[k]!r} != library {lib[k]!r}" for k in lib if k in copy
            and not _same(copy[k], lib[k])]  # fmt: skip
    return out


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def test_schema_defaults_are_the_library_defaults():
    props = _schema()["properties"]["diagnostics"]["properties"]
    assert _diff({k: v.get("default") for k, v in props.items()}) == []


def test_schema_override_lists_every_key_and_accepts_plugin_thresholds():
    schema = _schema()
    override = schema["$defs"]["diagnostics_override"]["properties"]
    assert set(override) == set(_library()) | set(NESTED_KEYS)
    validator = jsonschema.Draft202012Validator(schema)
    config = yaml.safe_load(CONFIG.read_text())
    config["diagnostics"]["my_rule"] = 0.3  # a plug-in rule's threshold passes the schema ...
    assert list(validator.iter_errors(config)) == []
    config["diagnostics"]["my_rule"] = "high"  # ... if it is a number
    assert list(validator.iter_errors(config))


def test_config_yaml_shows_the_library_defaults():
    assert _diff(yaml.safe_load(CONFIG.read_text())["diagnostics"]) == []


def test_config_readme_table_shows_the_library_defaults():
    text = CONFIG_README.read_text()
    section = text.split("## `diagnostics`", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", section, flags=re.MULTILINE)
    assert _diff({k: yaml.safe_load(v) for k, v in rows}) == []


def test_readme_names_each_rule_severity():
    """The meaning column says whether crossing the threshold warns or fails, as the rule does."""
    section = CONFIG_README.read_text().split("## `diagnostics`", 1)[1].split("\n## ", 1)[0]
    for rule in rules():
        row = re.search(rf"^\| `{rule.threshold}` \|.*$", section, flags=re.MULTILINE)
        assert row is not None, rule.threshold
        word = "**fails**" if rule.severity == "fail" else "**warns**"
        assert word in row.group(0), f"{rule.threshold}: README does not say {word}"


def test_unknown_settings_key_is_named():
    with pytest.raises(InputError, match=r"diagnostics: c2s: unknown key"):
        split_settings({"c2s": 0.5})
    with pytest.raises(InputError, match=r"diagnostics: n_boot: expected an integer"):
        split_settings({"n_boot": "many"})
    sizes, thresholds = split_settings({"c2st": 0.6, "n_boot": 10})
    assert sizes == {**DIAGNOSTIC_SETTINGS, "n_boot": 10} and thresholds == {"c2st": 0.6}


def test_schema_tension_defaults_are_the_library_defaults():
    """``diagnostics.tension`` (per analysis): keys, defaults and methods from the library."""
    tension = _schema()["$defs"]["diagnostics_override"]["properties"]["tension"]["properties"]
    assert {k: v.get("default") for k, v in tension.items()} == TENSION_SETTINGS
    assert tuple(tension["method"]["enum"]) == TENSION_METHODS
    # the workflow's calibration default is the library's
    from flowprior.diagnostics.shift import ShiftSettings

    assert TENSION_SETTINGS["calibrate"] is ShiftSettings().calibrate


def test_config_readme_documents_the_tension_keys_with_their_defaults():
    section = CONFIG_README.read_text().split("## `diagnostics`", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `tension\.(\w+)` \| `([^`]*)` \|", section, flags=re.MULTILINE))
    assert {k: yaml.safe_load(v) for k, v in rows.items()} == TENSION_SETTINGS
