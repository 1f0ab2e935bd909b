"""Tests for flowprior.params (parameter tables and the prior box)."""

import logging
import math
import os

import numpy as np
import pytest

from flowprior.errors import InputError
from flowprior.params import RESERVED_NAMES, ParameterSpace, load_parameters

from conftest import assert_one_line


@pytest.fixture
def space():
    return ParameterSpace(
        ("a", "b", "c"), [0, -1.5, 1e-3], [1, 2.5, 10.0], ("$a$", r"$\beta_{1,2}$", "c")
    )


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- basics


def test_basic_properties(space):
    assert space.dim == 3
    assert space.lower.dtype == np.float64 and space.upper.dtype == np.float64
    b = space.bounds
    assert b.shape == (3, 2) and b.dtype == np.float64
    np.testing.assert_array_equal(b, [[0, 1], [-1.5, 2.5], [1e-3, 10.0]])
    b[0, 0] = 99.0  # a copy
    assert space.lower[0] == 0.0
    assert space.log_volume == pytest.approx(math.log(1 * 4 * (10 - 1e-3)))


def test_arrays_are_read_only_and_copied():
    lo = np.array([0.0, 0.0])
    space = ParameterSpace(("x", "y"), lo, [1, 1])
    lo[0] = -5
    assert space.lower[0] == 0.0
    with pytest.raises(ValueError):
        space.lower[0] = 3.0


def test_labels_default_to_names():
    space = ParameterSpace(("x", "y"), [0, 0], [1, 1])
    assert space.labels == ("x", "y")


def test_contains_closed_box(space):
    x = np.array(
        [
            [0.0, -1.5, 1e-3],  # on the lower corner: inside
            [1.0, 2.5, 10.0],  # on the upper corner: inside
            [0.5, 0.0, 5.0],
            [1.0000001, 0.0, 5.0],
            [0.5, np.nan, 5.0],
        ]
    )
    np.testing.assert_array_equal(space.contains(x), [True, True, True, False, False])
    assert space.contains(x[2]).shape == ()
    with pytest.raises(ValueError, match="shape"):
        space.contains(np.zeros((2, 2)))


def test_equality_and_hash(space):
    other = ParameterSpace.from_dict(space.to_dict())
    assert other == space and hash(other) == hash(space)
    assert space != ParameterSpace(("a", "b", "c"), [0, -1.5, 1e-3], [1, 2.5, 11.0])


def test_to_dict_is_plain(space):
    d = space.to_dict()
    entry = d["parameters"][1]
    assert entry == {
        "name": "b",
        "lower": -1.5,
        "upper": 2.5,
        "label": r"$\beta_{1,2}$",
    }
    assert type(entry["lower"]) is float


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".tsv", ".csv"])
def test_write_load_round_trip(tmp_path, suffix):
    space = ParameterSpace(
        ("a", "b"),
        [0.1, -1 / 3],
        [0.30000000000000004, 1e300],
        (r"$\alpha, \mathrm{x}$", "b\tlabel"),
    )
    path = tmp_path / f"params{suffix}"
    space.write(path)
    assert load_parameters(path) == space
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_write_unknown_suffix(tmp_path, space):
    with pytest.raises(InputError) as exc:
        space.write(tmp_path / "p.json")
    assert_one_line(exc, "p.json", ".json")
    assert not (tmp_path / "p.json").exists()


def test_yaml_list_form(tmp_path):
    path = write(
        tmp_path,
        "p.yaml",
        """
parameters:
  - {name: alpha, lower: 0, upper: 1, label: '$\\alpha$'}
  - name: beta
    lower: -5.0
    upper: 1e-3   # YAML 1.1 reads this as a string; accepted
""",
    )
    space = load_parameters(path)
    assert space.names == ("alpha", "beta")
    assert space.labels == (r"$\alpha$", "beta")
    np.testing.assert_array_equal(space.upper, [1.0, 1e-3])
    assert space.lower.dtype == np.float64


@pytest.mark.parametrize(
    "text",
    [
        "alpha: {lower: 0, upper: 1, label: A}\nbeta: {lower: -1, upper: 1}\n",
        "parameters:\n  alpha: {lower: 0, upper: 1, label: A}\n  beta: {lower: -1, upper: 1}\n",
    ],
)
def test_yaml_mapping_form(tmp_path, text):
    space = load_parameters(write(tmp_path, "p.yml", text))
    assert space == ParameterSpace(("alpha", "beta"), [0, -1], [1, 1], ("A", "beta"))


def test_tsv_and_csv_forms(tmp_path):
    tsv = write(
        tmp_path, "p.tsv", "name\tlower\tupper\tlabel\nx\t0\t1\t$x$\ny\t-2\t2\t\n"
    )
    csv = write(tmp_path, "p.csv", "name,lower,upper,label\nx,0,1,$x$\ny,-2,2,\n")
    for path in (tsv, csv):
        space = load_parameters(path)
        assert space == ParameterSpace(("x", "y"), [0, -2], [1, 2], ("$x$", "y"))


def test_tsv_without_label_column(tmp_path):
    space = load_parameters(write(tmp_path, "p.tsv", "name\tlower\tupper\nx\t0\t1\n"))
    assert space.labels == ("x",)


def test_extra_columns_and_keys_warn(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.params")
    load_parameters(
        write(tmp_path, "p.tsv", "name\tlower\tupper\tunit\nx\t0\t1\tGeV\n")
    )
    load_parameters(
        write(
            tmp_path,
            "p.yaml",
            "parameters:\n  - {name: x, lower: 0, upper: 1, lable: X}\n",
        )
    )
    text = caplog.text
    assert "unit" in text and "lable" in text and "p.tsv" in text and "p.yaml" in text


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, problem",
    [
        ("2x", "identifier"),
        ("a-b", "identifier"),
        ("lambda", "keyword"),
        ("class", "keyword"),
        ("", "identifier"),
        *[(n, "reserved") for n in sorted(RESERVED_NAMES)],
    ],
)
def test_invalid_names(tmp_path, name, problem):
    path = write(tmp_path, "p.tsv", f"name\tlower\tupper\nok\t0\t1\n{name}\t0\t1\n")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.tsv", "row 1", problem)


def test_non_string_name_in_yaml(tmp_path):
    path = write(
        tmp_path, "p.yaml", "parameters:\n  - {name: 12, lower: 0, upper: 1}\n"
    )
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", "parameters[0]", "string")


def test_duplicate_names(tmp_path):
    path = write(
        tmp_path,
        "p.yaml",
        """parameters:
  - {name: x, lower: 0, upper: 1}
  - {name: y, lower: 0, upper: 1}
  - {name: x, lower: 0, upper: 2}
""",
    )
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", "parameters[2]", "'x'", "duplicate", "parameters[0]")


@pytest.mark.parametrize(
    "lower, upper, problem",
    [
        ("1", "1", "must be <"),
        ("2", "1", "must be <"),
        ("-inf", "1", "finite"),
        ("0", "inf", "finite"),
        ("nan", "1", "finite"),
        ("0", "abc", "expected a number"),
    ],
)
def test_bad_bounds_tsv(tmp_path, lower, upper, problem):
    path = write(
        tmp_path, "p.tsv", f"name\tlower\tupper\nx\t0\t1\ny\t{lower}\t{upper}\n"
    )
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.tsv", "row 1", "'y'", problem)


@pytest.mark.parametrize(
    "entry, key, problem",
    [
        ("{name: y, lower: 3, upper: 1}", "parameters[1]", "must be <"),
        ("{name: y, lower: .nan, upper: 1}", "parameters[1]", "finite"),
        ("{name: y, lower: 0, upper: .inf}", "parameters[1]", "finite"),
        ("{name: y, lower: true, upper: 1}", "lower", "expected a number"),
        ("{name: y, upper: 1}", "parameters[1]", "missing key(s) lower"),
        ("[y, 0, 1]", "parameters[1]", "expected a mapping"),
    ],
)
def test_bad_entries_yaml(tmp_path, entry, key, problem):
    path = write(
        tmp_path,
        "p.yaml",
        f"parameters:\n  - {{name: x, lower: 0, upper: 1}}\n" f"  - {entry}\n",
    )
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", key, problem)


def test_missing_column(tmp_path):
    path = write(tmp_path, "p.csv", "name,lower\nx,0\n")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.csv", "header", "upper")


def test_wrong_field_count(tmp_path):
    path = write(tmp_path, "p.csv", "name,lower,upper\nx,0,1\ny,0\n")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.csv", "row 1", "fields")


@pytest.mark.parametrize(
    "name, text",
    [
        ("p.yaml", ""),
        ("p.yaml", "\n  \n"),
        ("p.tsv", ""),
        ("p.csv", "\n"),
    ],
)
def test_empty_file(tmp_path, name, text):
    with pytest.raises(InputError) as exc:
        load_parameters(write(tmp_path, name, text))
    assert_one_line(exc, name, "empty")


@pytest.mark.parametrize(
    "name, text",
    [
        ("p.yaml", "parameters: []\n"),
        ("p.tsv", "name\tlower\tupper\n"),
    ],
)
def test_no_parameters(tmp_path, name, text):
    with pytest.raises(InputError) as exc:
        load_parameters(write(tmp_path, name, text))
    assert_one_line(exc, name, "no parameters")


def test_yaml_syntax_error(tmp_path):
    path = write(tmp_path, "p.yaml", "parameters:\n  - {name: x, lower: 0\n")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", "line", "invalid YAML")


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "parameters: 3\n", "just a string\n"])
def test_yaml_wrong_shape(tmp_path, text):
    with pytest.raises(InputError) as exc:
        load_parameters(write(tmp_path, "p.yaml", text))
    assert_one_line(exc, "p.yaml")


def test_unknown_suffix(tmp_path):
    path = write(tmp_path, "p.json", "{}")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.json", "suffix", ".json")


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        load_parameters(tmp_path / "nope.yaml")
    assert_one_line(exc, "nope.yaml", "not found")


def test_unreadable_file(tmp_path):
    path = tmp_path / "dir.yaml"
    path.mkdir()  # reading a directory fails even as root
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "dir.yaml", "cannot read")


def test_undecodable_file(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(b"name\tlower\tupper\n\xff\xfe\x00\t0\t1\n")
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.tsv", "cannot read")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied(tmp_path):
    path = write(tmp_path, "p.yaml", "x: {lower: 0, upper: 1}\n")
    path.chmod(0)
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", "cannot read")


def test_direct_construction_validates():
    with pytest.raises(InputError, match="lower"):
        ParameterSpace(("x",), [1.0], [0.0])
    with pytest.raises(InputError, match="duplicate"):
        ParameterSpace(("x", "x"), [0, 0], [1, 1])
    with pytest.raises(InputError, match="shape|labels|names"):
        ParameterSpace(("x", "y"), [0], [1])
    with pytest.raises(InputError, match="no parameters"):
        ParameterSpace((), [], [])


def test_permission_denied_simulated(tmp_path, monkeypatch):
    import flowprior.params as params_mod

    path = write(tmp_path, "p.yaml", "x: {lower: 0, upper: 1}\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(params_mod, "open", denied, raising=False)
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert_one_line(exc, "p.yaml", "cannot read", "Permission denied")
