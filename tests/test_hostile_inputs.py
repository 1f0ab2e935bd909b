"""Hostile chains, parameter tables, configs and likelihood plug-ins (issue #16).

Every case builds its bad input here, then asserts the exception class, a one-line message
naming the file (or dataset) and the column/key, that nothing was written, and that the files
already in the directory are byte-identical afterwards.
"""

from __future__ import annotations

import io
import math
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from flowprior.chains import read_chain
from flowprior.config import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_NODES,
    check_config_size,
    check_workflow_config,
    load_yaml,
)
from flowprior.errors import InputError
from flowprior.likelihoods import Likelihood, LikelihoodError
from flowprior.params import ParameterSpace, load_parameters

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PARAMS = ParameterSpace(("a", "b"), [0.0, 0.0], [1.0, 1.0])


# ----------------------------------------------------------------------------- helpers
def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory``, relative path -> bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def one_line(exc_info, *needles) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    for needle in needles:
        assert str(needle) in msg, (needle, msg)
    return msg


def npy(values) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values, dtype=np.float64))
    return buf.getvalue()


def zip_bytes(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in entries:
            zf.writestr(name, data)
        zf.writestr("pad.npy", npy([0.5]))  # one unique name, so the warning is always seen
    return buf.getvalue()


def parquet_bytes(names: list[str]) -> bytes:
    table = pa.table([pa.array([0.25 + 0.1 * i]) for i in range(len(names))], names=names)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def bomb_yaml(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """A billion-laughs document: ``width**levels`` leaves from ``levels*width`` aliases."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- chains
GETDIST_ROWS = "1 2.0 0.1 0.2 0.3\n1 2.5 0.4 0.5 0.6\n"

# (case id, {file name: content}, the file to read, needles of the message)
CHAIN_CASES = [
    ("csv-weight-twice", {"c.csv": "a,b,weight,weight\n0.1,0.2,1,2\n0.3,0.4,1,3\n"},
     "c.csv", ["column 'weight'", "positions 2, 3"]),
    ("csv-param-twice", {"c.csv": "a,b,a\n0.1,0.2,0.5\n"}, "c.csv",
     ["column 'a'", "positions 0, 2"]),
    ("csv-padded-name", {"c.csv": "a,b, a\n0.1,0.2,0.5\n"}, "c.csv", ["column 'a'"]),
    ("csv-quoted-names", {"c.csv": '"a","b","b"\n0.1,0.2,0.5\n'}, "c.csv", ["column 'b'"]),
    ("csv-log-column-twice", {"c.csv": "a,b,log_posterior,log_posterior\n0.1,0.2,-1,-2\n"},
     "c.csv", ["column 'log_posterior'"]),
    ("csv-ignored-column-twice", {"c.csv": "a,b,note,note\n0.1,0.2,1,2\n"}, "c.csv",
     ["column 'note'"]),
    ("csv-two-names-twice", {"c.csv": "a,b,a,b\n0.1,0.2,0.3,0.4\n"}, "c.csv",
     ["columns 'a', 'b'"]),
    ("csv-bom-header", {"c.csv": "\ufeffa,b,a\n0.1,0.2,0.5\n"}, "c.csv", ["column 'a'"]),
    ("tsv-param-twice", {"c.tsv": "a\tb\tb\n0.1\t0.2\t0.5\n"}, "c.tsv", ["column 'b'"]),
    ("txt-weight-twice", {"c.txt": "a b weight weight\n0.1 0.2 1 2\n"}, "c.txt",
     ["column 'weight'"]),
    ("txt-param-twice", {"c.txt": "a b a\n0.1 0.2 0.3\n"}, "c.txt", ["column 'a'"]),
    ("csv-row-longer-than-header", {"c.csv": "a,b\n0.1,0.2,0.3\n0.4,0.5,0.6\n"}, "c.csv",
     ["rows", "more fields than the header"]),
    ("parquet-weight-twice", {"c.parquet": parquet_bytes(["a", "b", "weight", "weight"])},
     "c.parquet", ["column 'weight'"]),
    ("parquet-param-twice", {"c.parquet": parquet_bytes(["a", "b", "a"])}, "c.parquet",
     ["column 'a'"]),
    ("npz-entry-twice",
     {"c.npz": zip_bytes([("a.npy", npy([0.1])), ("b.npy", npy([0.2])),
                          ("weight.npy", npy([1.0])), ("weight.npy", npy([2.0]))])},
     "c.npz", ["key 'weight'"]),
    ("npz-name-with-and-without-suffix",
     {"c.npz": zip_bytes([("a.npy", npy([0.1])), ("b.npy", npy([0.2])), ("a", npy([0.3])),
                          ("b.npy", npy([0.9]))])},
     "c.npz", ["key"]),
    ("getdist-paramnames-twice", {"r.txt": GETDIST_ROWS, "r.paramnames": "a\nb\na\n"},
     "r.txt", ["r.paramnames line 3", "duplicate parameter name 'a'"]),
    ("getdist-paramname-is-weight", {"r.txt": GETDIST_ROWS, "r.paramnames": "a\nb\nweight\n"},
     "r.txt", ["column 'weight'"]),
    ("cobaya-param-twice", {"c.txt": "# weight minuslogpost a b a\n1 2 0.1 0.2 0.3\n"},
     "c.txt", ["column 'a'"]),
    ("cobaya-minuslogprior-twice",
     {"c.txt": "# weight minuslogprior minuslogprior a b\n1 2 3 0.1 0.2\n"},
     "c.txt", ["column 'minuslogprior'"]),
]


@pytest.mark.parametrize(
    "files, target, needles", [c[1:] for c in CHAIN_CASES], ids=[c[0] for c in CHAIN_CASES]
)
def test_duplicate_or_shifted_chain_columns_are_errors(tmp_path, files, target, needles):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (tmp_path / "notes.txt.bak").write_text("the user's notes\n")
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as exc:
        read_chain(tmp_path / target, PARAMS)
    one_line(exc, target, "duplicate" if "rows" not in needles else "rows", *needles)
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


def test_a_column_literally_named_like_a_pandas_rename_is_not_a_duplicate(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,b,weight,weight.1\n0.1,0.2,2,5\n0.3,0.4,1,7\n")
    chain = read_chain(path, PARAMS)
    np.testing.assert_array_equal(chain.weights, [2.0, 1.0])  # the real `weight` column


# ----------------------------------------------------------------------------- parameter tables
TABLE_CASES = [
    ("yaml-mapping-name-twice", "p.yaml",
     "alpha: {lower: 0, upper: 1}\nbeta: {lower: 0, upper: 1}\nalpha: {lower: 5, upper: 9}\n",
     ["line 3", "duplicate key 'alpha'", "first at line 1"]),
    ("yaml-list-name-twice", "p.yaml",
     "parameters:\n  - {name: x, lower: 0, upper: 1}\n  - {name: x, lower: 0, upper: 2}\n",
     ["parameters[1]", "duplicate parameter name"]),
    ("yaml-bound-twice", "p.yaml", "x:\n  lower: 0\n  upper: 1\n  lower: -5\n",
     ["line 4", "duplicate key 'lower'"]),
    ("yaml-flow-mapping-key-twice", "p.yaml", "x: {lower: 0, upper: 1, upper: 2}\n",
     ["line 1", "duplicate key 'upper'"]),
    ("tsv-name-twice", "p.tsv", "name\tlower\tupper\nx\t0\t1\nx\t0\t2\n",
     ["row 1", "duplicate parameter name"]),
    ("csv-header-column-twice", "p.csv", "name,lower,upper,lower\nx,0,1,5\n",
     ["header", "duplicate column name(s) 'lower'"]),
    ("csv-no-header-row", "p.csv", ",,,\n , ,\n", ["no header row"]),
    ("yaml-alias-bomb", "p.yaml", bomb_yaml(), ["l5", f"more than {MAX_NODES} nodes"]),
    ("yaml-recursive-alias", "p.yaml", "x: &x {lower: 0, upper: 1, again: *x}\n",
     ["x.again", "contains itself"]),
    ("yaml-too-deep", "p.yaml", "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
     ["line 1", f"more than {MAX_DEPTH} levels"]),
    ("yaml-too-many-aliases", "p.yaml",
     "s: &s 1\nx: [" + ", ".join(["*s"] * (MAX_ALIASES + 1)) + "]\n",
     ["line 2", f"more than {MAX_ALIASES} YAML alias"]),
    ("yaml-two-documents", "p.yaml", "x: {lower: 0, upper: 1}\n---\ny: {lower: 0, upper: 1}\n",
     ["line 2", "another document"]),
]


@pytest.mark.parametrize(
    "name, text, needles", [c[1:] for c in TABLE_CASES], ids=[c[0] for c in TABLE_CASES]
)
def test_hostile_parameter_tables(tmp_path, name, text, needles):
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "chain.csv").write_text("x\n0.5\n")
    before = snapshot(tmp_path)
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        load_parameters(path)
    assert time.monotonic() - start < 5  # bounded: no expansion is ever materialised
    one_line(exc, name, *needles)
    assert snapshot(tmp_path) == before


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("base: &b {lower: 0, upper: 1}\nx:\n  <<: *b\n  upper: 2\n")
    assert load_yaml(path)["x"] == {"lower": 0, "upper": 2}


# ----------------------------------------------------------------------------- loaded configs
def _shared_bomb(levels: int = 9, width: int = 9) -> list:
    node: list = ["lol"] * width
    for _ in range(levels - 1):
        node = [node] * width
    return node


def _recursive() -> dict:
    d: dict = {"flow": {}}
    d["flow"]["again"] = d
    return d


def _deep() -> dict:
    d: dict = {}
    cur = d
    for _ in range(MAX_DEPTH + 3):
        cur["x"] = {}
        cur = cur["x"]
    return d


@pytest.mark.parametrize(
    "config, needles",
    [
        ({"seed": 1, "bomb": _shared_bomb()}, ["cfg.yaml", "bomb:", f"{MAX_NODES} nodes"]),
        (
            {"analyses": {"x": {"datasets": {"A": {"kwargs": {"data": _shared_bomb()}}}}}},
            ["analyses.x.datasets.A.kwargs.data:", "alias bomb"],
        ),
        (_recursive(), ["flow.again", "contains itself"]),
        (_deep(), [f"more than {MAX_DEPTH} levels"]),
        ({"wide": [[0] * 1000] * (MAX_NODES // 1000 + 1)}, ["wide:", "nodes"]),
    ],
    ids=["bomb-under-unknown-key", "bomb-in-kwargs", "recursive", "too-deep", "wide-shared"],
)
def test_loaded_config_is_bounded_without_expanding(config, needles):
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        check_config_size(config, source="cfg.yaml")
    assert time.monotonic() - start < 2
    one_line(exc, "cfg.yaml", *needles)


def test_config_file_with_duplicate_key_is_named_with_its_line(tmp_path):
    config_file = tmp_path / "my.yaml"
    config_file.write_text("seed: 1\nflow:\n  kind: maf\n  kind: nsf\n")
    before = snapshot(tmp_path)
    with pytest.raises(InputError) as exc:
        check_workflow_config(
            {"seed": 1, "flow": {"kind": "nsf"}}, SCHEMA, configfiles=[config_file]
        )
    one_line(exc, str(config_file), "line 4", "duplicate key 'kind'")
    assert snapshot(tmp_path) == before


def test_schema_error_names_the_file_that_holds_the_key(tmp_path):
    default, mine = tmp_path / "default.yaml", tmp_path / "mine.yaml"
    default.write_text("seed: 1\n")
    mine.write_text("figures: {levels: 2sigma}\n")
    with pytest.raises(InputError) as exc:
        check_workflow_config(
            {"seed": 1, "figures": {"levels": "2sigma"}}, SCHEMA, configfiles=[default, mine]
        )
    msg = one_line(exc, f"{mine}: figures.levels: ", "'2sigma' is not one of")
    assert str(default) not in msg


SNAKEMAKE_CASES = [
    ("bomb-under-unknown-key", "seed: 1\nbomb:\n" + bomb_yaml(indent="  "), ["bomb.l5:", "nodes"]),
    (
        "bomb-in-kwargs",
        bomb_yaml()
        + "analyses:\n  x:\n    parameters: p.yaml\n    sequences: [[A, B]]\n"
        "    datasets:\n      B: {chain: b.csv}\n"
        "      A: {likelihood: 'm:f', kwargs: {data: *l8}}\n",
        ["l5:", "nodes"],
    ),
    ("duplicate-key", "seed: 1\nseed: 2\n", ["line 2", "duplicate key 'seed'"]),
    ("schema-error", "flow: {transforms: 0}\n", ["flow.transforms:", "less than the minimum"]),
    # A recursive alias is not here: Snakemake's own config merge recurses without end
    # (RecursionError) before the Snakefile runs; flowprior's loaders refuse it (above).
]


@pytest.mark.parametrize(
    "text, needles", [c[1:] for c in SNAKEMAKE_CASES], ids=[c[0] for c in SNAKEMAKE_CASES]
)
def test_snakemake_dry_run_refuses_hostile_config_in_one_line(tmp_path, text, needles):
    config_file = tmp_path / "hostile.yaml"
    config_file.write_text(text)
    (tmp_path / "my_chain.csv").write_text("a,b\n0.1,0.2\n")
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1",
         "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config_file), "--replace-workflow-config"],
        capture_output=True, text=True, timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith(f"{config_file}: ")]
    assert len(lines) == 1, out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "results").exists()
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".snakemake")}
    assert after == before


# ----------------------------------------------------------------------------- plug-ins
PLUGIN = textwrap.dedent("""
    import sys
    import time
    import numpy as np

    class Escape(BaseException):
        pass

    def exits_zero(theta):
        sys.exit(0)

    def exits_three(theta):
        sys.exit(3)

    def exits_message(theta):
        raise SystemExit("bye")

    def raises_base_exception(theta):
        raise Escape("escaped")

    def raises_generator_exit(theta):
        raise GeneratorExit("closed")

    def sleeps(theta):
        time.sleep(30)
        return np.zeros(len(theta))

    def swallows(theta):
        try:
            time.sleep(30)
        except BaseException:
            pass
        return np.zeros(len(theta))

    def spins(theta):
        while True:
            theta = theta + 0.0

    def interrupts(theta):
        raise KeyboardInterrupt

    def fine(theta):
        return -0.5 * np.sum(theta**2, axis=1)
    """)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "hostile_plugin.py"
    path.write_text(PLUGIN)
    return path


def _likelihood(plugin, fn, **entry):
    return Likelihood.from_config(
        {"likelihood": f"{plugin}:{fn}", **entry}, dataset="SEMF", dim=2
    )


@pytest.mark.parametrize(
    "fn, needles",
    [
        ("exits_zero", ["SystemExit: 0"]),
        ("exits_three", ["SystemExit: 3"]),
        ("exits_message", ["SystemExit: bye"]),
        ("raises_base_exception", ["Escape: escaped"]),
        ("raises_generator_exit", ["GeneratorExit: closed"]),
    ],
)
def test_plugin_base_exceptions_become_errors_naming_the_dataset(plugin, fn, needles):
    before = snapshot(plugin.parent)
    with pytest.raises(LikelihoodError) as exc:
        _likelihood(plugin, fn)(np.zeros((3, 2)))
    one_line(exc, "dataset SEMF", "theta=[0.0, 0.0]", *needles)
    assert snapshot(plugin.parent) == before


@pytest.mark.parametrize(
    "body, needles",
    [
        ("import sys\nsys.exit(0)\n", ["SystemExit"]),
        ("raise SystemExit('no data')\n", ["SystemExit: no data"]),
        ("class E(BaseException):\n    pass\nraise E('boom')\n", ["E: boom"]),
    ],
    ids=["exit-0", "exit-message", "base-exception"],
)
def test_plugin_that_exits_while_loading_is_an_input_error(tmp_path, body, needles):
    path = tmp_path / "exits_on_import.py"
    path.write_text(body)
    with pytest.raises(InputError) as exc:
        Likelihood.from_config({"likelihood": f"{path}:f"}, dataset="SEMF", dim=2)
    one_line(exc, "dataset SEMF", "exits_on_import.py", *needles)


def test_module_plugin_that_exits_on_import_is_an_input_error(tmp_path, monkeypatch):
    (tmp_path / "exiting_module_xyz.py").write_text("raise SystemExit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError) as exc:
        Likelihood.from_config({"likelihood": "exiting_module_xyz:f"}, dataset="SEMF", dim=2)
    one_line(exc, "dataset SEMF", "exiting_module_xyz", "SystemExit: 4")


@pytest.mark.parametrize("fn", ["sleeps", "swallows", "spins"])
def test_plugin_timeout_stops_the_call_and_names_the_dataset(plugin, fn):
    lk = _likelihood(plugin, fn, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(LikelihoodError) as exc:
        lk(np.zeros((4, 2)))
    assert time.monotonic() - start < 5
    one_line(exc, "dataset SEMF", "timeout of 0.3 s", "4 point(s)")
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_plugin_timeout_restores_the_callers_alarm(plugin):
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        with pytest.raises(LikelihoodError):
            _likelihood(plugin, "sleeps", timeout=0.2)(np.zeros((1, 2)))
        assert 3.0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 4.8
        assert _likelihood(plugin, "fine", timeout=1)(np.ones(2)) == -1.0
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_plugin_timeout_off_the_main_thread(plugin):
    lk = _likelihood(plugin, "sleeps", timeout=0.3)
    errors = []

    def call():
        try:
            lk(np.zeros((2, 2)))
        except LikelihoodError as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert len(errors) == 1 and "dataset SEMF" in errors[0] and "background thread" in errors[0]
    assert _likelihood(plugin, "fine", timeout=5)(np.ones((1, 2)))[0] == -1.0


def test_keyboard_interrupt_from_a_plugin_is_not_swallowed(plugin):
    with pytest.raises(KeyboardInterrupt):
        _likelihood(plugin, "interrupts", timeout=5)(np.zeros((1, 2)))


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "10", True, [1]])
def test_bad_timeout_values(plugin, timeout):
    with pytest.raises(InputError) as exc:
        _likelihood(plugin, "fine", timeout=timeout)
    one_line(exc, "dataset SEMF", "timeout", "seconds")


def test_kwargs_alias_bomb_is_refused_before_copying(plugin):
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        Likelihood.from_config(
            {"likelihood": f"{plugin}:fine", "kwargs": {"data": _shared_bomb()}},
            dataset="SEMF",
            dim=2,
        )
    assert time.monotonic() - start < 2
    one_line(exc, "dataset SEMF: kwargs", "data", "nodes")


def test_timeout_survives_pickling(plugin):
    import pickle

    lk = pickle.loads(pickle.dumps(_likelihood(plugin, "sleeps", timeout=0.25)))
    assert lk.timeout == 0.25
    with pytest.raises(LikelihoodError, match="timeout of 0.25 s"):
        lk(np.zeros((1, 2)))


def test_a_chain_read_after_hostile_inputs_is_unaffected(tmp_path):
    path = tmp_path / "ok.csv"
    pd.DataFrame({"a": [0.1, 0.2], "b": [0.3, 0.4], "weight": [1.0, 3.0]}).to_csv(
        path, index=False
    )
    chain = read_chain(path, PARAMS)
    np.testing.assert_array_equal(chain.weights, [1.0, 3.0])
    assert yaml.safe_load("a: 1") == {"a": 1}  # the global yaml module is untouched
