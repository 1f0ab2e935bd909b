"""GetDist and Cobaya roots, burn-in and parameter selection (``flowprior.chains.read_chain``).

The GetDist roots are written by getdist's own writer (``MCSamples.saveChainsAsText``); getdist
cannot write Cobaya output, so the Cobaya root is written in Cobaya's layout (``# weight
minuslogpost ...`` headers, ``root.updated.yaml``) and cross-checked against getdist's own
reader (``getdist.loadMCSamples``). Values are rounded to 6 decimals (|x| < 10), so getdist's
``%.8e`` text holds them exactly and every comparison is exact.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import yaml

from flowprior.chains import read_chain
from flowprior.cli import main
from flowprior.errors import InputError
from flowprior.params import ParameterSpace

from conftest import assert_one_line

getdist = pytest.importorskip("getdist")

NAMES = ["a", "b", "c", "S8*"]
LABELS = [r"\alpha", r"\beta", "c", "S_8"]
RANGES = {"a": [-5.0, 5.0], "b": [-6.0, 6.0], "c": [-7.0, 7.5], "S8": [0.0, None]}
LENGTHS = (40, 55, 47)


def _parts(seed=0):
    """Per chain: samples (n, 4: a, b, c, S8), weights, -log posterior."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in LENGTHS:
        x = np.round(rng.normal(size=(n, 3)), 6)
        s8 = np.round(np.abs(x[:, 0] * x[:, 1]) + 0.1, 6)
        parts.append(
            (
                np.column_stack([x, s8]),
                rng.integers(1, 5, size=n).astype(float),
                np.round(0.5 * (x**2).sum(axis=1) + 3.0, 6),
            )
        )
    return parts


def write_getdist_root(tmp_path, *, ranges=RANGES, name="run"):
    from getdist import MCSamples

    parts = _parts()
    samples = MCSamples(
        samples=[p[0] for p in parts],
        weights=[p[1] for p in parts],
        loglikes=[p[2] for p in parts],
        names=NAMES,
        labels=LABELS,
        ranges=ranges,
    )
    root = str(tmp_path / name)
    samples.saveChainsAsText(root)
    return root, parts


@pytest.fixture
def root(tmp_path):
    return write_getdist_root(tmp_path)


def _cat(parts, k, burn=0):
    return np.concatenate([p[k][(int(burn * len(p[k])) if isinstance(burn, float) else burn):]
                           for p in parts])


def test_getdist_root_round_trips_exactly(root, caplog):
    caplog.set_level(logging.INFO, logger="flowprior.chains")
    path, parts = root
    chain = read_chain(path)
    assert chain.params.names == ("a", "b", "c")
    assert chain.params.labels == (r"\alpha", r"\beta", "c")
    np.testing.assert_array_equal(chain.params.lower, [-5.0, -6.0, -7.0])
    np.testing.assert_array_equal(chain.params.upper, [5.0, 6.0, 7.5])
    np.testing.assert_array_equal(chain.samples, _cat(parts, 0)[:, :3])
    np.testing.assert_array_equal(chain.weights, _cat(parts, 1))
    np.testing.assert_array_equal(chain.log_posterior, -_cat(parts, 2))
    assert chain.log_likelihood is None and chain.log_prior is None
    # the derived parameter is kept aside, never a parameter
    assert list(chain.derived) == ["S8"]
    np.testing.assert_array_equal(chain.derived["S8"], _cat(parts, 0)[:, 3])
    assert "kept aside, not modelled: S8" in caplog.text
    assert chain.source == path
    # the same through fmt=, and through a table that equals the ranges
    assert read_chain(path, fmt="getdist").sha256() == chain.sha256()
    assert read_chain(path, chain.params).sha256() == chain.sha256()


def test_getdist_root_agrees_with_getdists_own_reader(root):
    from getdist import loadMCSamples

    path, _ = root
    ref = loadMCSamples(path, no_cache=True)
    chain = read_chain(path)
    np.testing.assert_array_equal(chain.samples, ref.samples[:, :3])
    np.testing.assert_array_equal(chain.derived["S8"], ref.samples[:, 3])
    np.testing.assert_array_equal(chain.weights, ref.weights)
    np.testing.assert_array_equal(chain.log_posterior, -ref.loglikes)


def test_chain_files_are_read_in_chain_number_order(tmp_path):
    from getdist import MCSamples

    # 11 chains: root_10.txt sorts before root_2.txt by name
    rng = np.random.default_rng(3)
    chains = [np.round(rng.uniform(-1, 1, size=(3, 2)), 6) for _ in range(11)]
    MCSamples(samples=chains, loglikes=[np.ones(3)] * 11, names=["x", "y"],
              ranges={"x": [-1, 1], "y": [-1, 1]}).saveChainsAsText(str(tmp_path / "many"))
    got = read_chain(tmp_path / "many")
    np.testing.assert_array_equal(got.samples, np.concatenate(chains))


@pytest.mark.parametrize("burn", [2, 0.3, 0.5])
def test_burn_in_applies_to_each_chain_file(root, burn):
    path, parts = root
    chain = read_chain(path, burn_in=burn)
    np.testing.assert_array_equal(chain.samples, _cat(parts, 0, burn)[:, :3])
    np.testing.assert_array_equal(chain.weights, _cat(parts, 1, burn))
    np.testing.assert_array_equal(chain.log_posterior, -_cat(parts, 2, burn))
    np.testing.assert_array_equal(chain.derived["S8"], _cat(parts, 0, burn)[:, 3])


def test_burn_in_of_a_single_file_applies_to_the_whole_chain(tmp_path):
    path = tmp_path / "c.csv"
    x = np.arange(10.0) / 10
    path.write_text("a,weight\n" + "".join(f"{v},1\n" for v in x))
    params = ParameterSpace(("a",), [0.0], [1.0])
    np.testing.assert_array_equal(read_chain(path, params, burn_in=3).samples[:, 0], x[3:])
    np.testing.assert_array_equal(read_chain(path, params, burn_in=0.25).samples[:, 0], x[2:])
    with pytest.raises(InputError) as exc:
        read_chain(path, params, burn_in=10)
    assert_one_line(exc, "c.csv", "burn_in", "10 of the 10 samples")


def test_select_keeps_the_named_parameters_in_that_order(root):
    path, parts = root
    chain = read_chain(path, select=["c", "a"])
    assert chain.params.names == ("c", "a") and chain.params.labels == ("c", r"\alpha")
    np.testing.assert_array_equal(chain.params.lower, [-7.0, -5.0])
    np.testing.assert_array_equal(chain.samples, _cat(parts, 0)[:, [2, 0]])
    table = ParameterSpace(("a", "b", "c"), [-1.0, -9.0, -8.0], [9.0, 9.0, 9.0])
    chain = read_chain(path, table, select=["b"])
    assert chain.params.names == ("b",) and chain.params.upper[0] == 9.0


def test_open_range_is_an_error_unless_a_table_gives_the_bound(tmp_path):
    ranges = {**RANGES, "b": [-6.0, None]}
    path, parts = write_getdist_root(tmp_path, ranges=ranges)
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "run.ranges", "parameter 'b'", "open range", "--params")
    # not used: no error; a table: its bounds
    assert read_chain(path, select=["a", "c"]).params.names == ("a", "c")
    table = ParameterSpace(("a", "b", "c"), [-5.0, -6.0, -7.0], [5.0, 6.0, 7.5])
    np.testing.assert_array_equal(read_chain(path, table).samples, _cat(parts, 0)[:, :3])


def test_missing_ranges_file_is_an_error_naming_the_parameter(root):
    import os

    path, _ = root
    os.remove(path + ".ranges")
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "parameter 'a'", "no ranges file", "--params")


def test_missing_chain_file_is_an_error(root):
    import os

    path, _ = root
    os.remove(path + "_2.txt")
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "chain files", "run_2.txt", "missing")


def test_root_without_chain_files(root):
    import glob
    import os

    path, _ = root
    for f in glob.glob(path + "_*.txt"):
        os.remove(f)
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "run", "chain files", "no chain files")


def test_paramnames_column_count_mismatch_names_the_chain_file(root):
    path, _ = root
    data = np.loadtxt(path + "_3.txt")
    np.savetxt(path + "_3.txt", data[:, :-1])
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "run_3.txt", "columns", "5 data columns", "run.paramnames lists 4")


def test_bad_value_names_the_chain_file_and_its_row(root):
    path, _ = root
    data = np.loadtxt(path + "_2.txt")
    data[7, 0] = -1.0
    np.savetxt(path + "_2.txt", data)
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "run_2.txt", "weight", "row 7", "negative")


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        ({"burn_in": 40}, ("run_1.txt", "burn_in", "40 of the 40 samples")),
        ({"burn_in": 1.0}, ("burn_in", "fraction must be in [0, 1)")),
        ({"burn_in": -1}, ("burn_in", ">= 0")),
        ({"burn_in": True}, ("burn_in", "expected a fraction")),
        ({"select": ["a", "zz"]}, ("select 'zz'", "unknown parameter", "a, b, c")),
        ({"select": ["S8"]}, ("select 'S8'", "derived parameter")),
        ({"select": ["a", "a"]}, ("selected 'a'", "duplicate")),
        ({"select": []}, ("select", "empty")),
        ({"select": "a"}, ("select", "a list of names")),
    ],
)
def test_bad_burn_in_or_select_is_one_line(root, kwargs, needles):
    path, _ = root
    with pytest.raises(InputError) as exc:
        read_chain(path, **kwargs)
    assert_one_line(exc, *needles)


def test_table_naming_a_derived_parameter_is_an_error(root):
    path, _ = root
    table = ParameterSpace(("a", "S8"), [-5.0, 0.0], [5.0, 9.0])
    with pytest.raises(InputError) as exc:
        read_chain(path, table)
    assert_one_line(exc, "parameter 'S8'", "derived parameter", "never modelled")


def test_formats_without_ranges_need_a_table(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,weight\n0.5,1\n")
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "c.csv", "params", "parameter table")


def test_unknown_path_names_the_root_layouts(tmp_path):
    with pytest.raises(InputError) as exc:
        read_chain(tmp_path / "nothing")
    assert_one_line(exc, "nothing", "suffix", "GetDist/Cobaya root")


# ------------------------------------------------------------------------------ Cobaya
COBAYA_INFO = {
    "likelihood": {"gauss": None},
    "params": {
        "a": {"prior": {"min": -5.0, "max": 5.0}, "latex": r"\alpha"},
        "b": {"prior": [-6.0, 6.0]},
        "c": {"prior": {"dist": "norm", "loc": 0.0, "scale": 1.0}},
        "S8": {"derived": True, "latex": "S_8"},
        "fixed": 3.0,
    },
}
COBAYA_COLUMNS = ["weight", "minuslogpost", "a", "b", "c", "S8",
                  "minuslogprior", "minuslogprior__0", "chi2", "chi2__gauss"]


def write_cobaya_root(tmp_path):
    rng = np.random.default_rng(7)
    (tmp_path / "cob.updated.yaml").write_text(yaml.safe_dump(COBAYA_INFO))
    blocks = []
    for k, n in enumerate((30, 26), start=1):
        x = np.round(rng.normal(size=(n, 3)), 6)
        chi2 = np.round((x**2).sum(axis=1), 6)
        logprior = np.full(n, 4.830711)
        block = np.column_stack([
            rng.integers(1, 4, size=n).astype(float), logprior + chi2 / 2, x,
            np.round(np.abs(x[:, 0]) + 0.5, 6), logprior, logprior, chi2, chi2,
        ])
        header = " ".join(f"{c:>15}" for c in COBAYA_COLUMNS)
        np.savetxt(tmp_path / f"cob.{k}.txt", block, fmt="%24.17g", header=header[2:])
        blocks.append(block)
    return str(tmp_path / "cob"), np.concatenate(blocks)


def test_cobaya_root_reads_names_ranges_and_derived_from_updated_yaml(tmp_path):
    path, data = write_cobaya_root(tmp_path)
    with pytest.raises(InputError) as exc:  # c has a Gaussian prior: no box
        read_chain(path)
    assert_one_line(exc, "cob.updated.yaml", "parameter 'c'", "--params")
    chain = read_chain(path, select=["a", "b"])
    assert chain.params.names == ("a", "b") and chain.params.labels == (r"\alpha", "b")
    np.testing.assert_array_equal(chain.params.lower, [-5.0, -6.0])
    np.testing.assert_array_equal(chain.params.upper, [5.0, 6.0])
    np.testing.assert_array_equal(chain.samples, data[:, 2:4])
    np.testing.assert_array_equal(chain.weights, data[:, 0])
    np.testing.assert_array_equal(chain.log_posterior, -data[:, 1])
    np.testing.assert_array_equal(chain.log_prior, -data[:, 6])
    np.testing.assert_array_equal(chain.log_likelihood, -0.5 * data[:, 8])
    assert list(chain.derived) == ["S8", "minuslogprior__0", "chi2__gauss"]
    np.testing.assert_array_equal(chain.derived["S8"], data[:, 5])
    table = ParameterSpace(("a", "b", "c"), [-5.0, -6.0, -9.0], [5.0, 6.0, 9.0])
    np.testing.assert_array_equal(read_chain(path, table).samples, data[:, 2:5])
    # per-file burn-in
    burnt = read_chain(path, table, burn_in=5)
    np.testing.assert_array_equal(burnt.samples, np.concatenate([data[5:30, 2:5], data[35:, 2:5]]))


def test_cobaya_root_agrees_with_getdists_own_reader(tmp_path):
    from getdist import loadMCSamples

    path, _ = write_cobaya_root(tmp_path)
    ref = loadMCSamples(path, no_cache=True)
    table = ParameterSpace(("a", "b", "c"), [-5.0, -6.0, -9.0], [5.0, 6.0, 9.0])
    chain = read_chain(path, table)
    idx = [ref.index[n] for n in ("a", "b", "c")]
    np.testing.assert_array_equal(chain.samples, ref.samples[:, idx])
    np.testing.assert_array_equal(chain.weights, ref.weights)
    np.testing.assert_array_equal(chain.log_posterior, -ref.loglikes)


def test_cobaya_sampled_parameter_without_a_column(tmp_path):
    path, _ = write_cobaya_root(tmp_path)
    info = {**COBAYA_INFO, "params": {**COBAYA_INFO["params"], "d": {"prior": [0, 1]}}}
    (tmp_path / "cob.updated.yaml").write_text(yaml.safe_dump(info))
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "cob.1.txt", "header", "d", "no column")


# --------------------------------------------------------------------------------- CLI
FAST = ["--flow", "maf", "--transforms", "2", "--hidden", "8", "--max-steps", "20",
        "--seed", "1", "--quiet"]


def test_cli_trains_on_a_root_without_a_parameter_table(root, tmp_path):
    from flowprior.priors import FlowPrior

    path, _ = root
    out = tmp_path / "m.zip"
    argv = ["train", path, "--out", str(out), "--format", "getdist", "--burn-in", "0.3",
            "--select", "c,a", *FAST]
    assert main(argv) == 0
    prior = FlowPrior.load(out)
    assert prior.names == ("c", "a")
    np.testing.assert_array_equal(prior.params.lower, [-7.0, -5.0])
    chain = read_chain(path, burn_in=0.3, select=["c", "a"])
    assert prior.manifest["data"]["sha256"] == chain.sha256()


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--select", "a,zz"], ("select 'zz'", "unknown parameter")),
        (["--burn-in", "40"], ("run_1.txt", "burn_in")),
        (["--format", "cobaya"], ("run", "chain files")),
    ],
)
def test_cli_bad_chain_options_exit_2_with_one_line(root, tmp_path, capsys, extra, needles):
    path, _ = root
    out = tmp_path / "m.zip"
    assert main(["train", path, "--out", str(out), *extra, *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flowprior: error:"), err
    assert all(n in err[0] for n in needles), err
    assert not out.exists()


def test_cli_csv_without_params_asks_for_a_table(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("a,weight\n0.5,1\n")
    assert main(["train", str(path), "--out", str(tmp_path / "m.zip"), *FAST]) == 2
    assert "give a parameter table (--params)" in capsys.readouterr().err


# ------------------------------------------------------------------------------- emcee
EMCEE_PARAMS = ParameterSpace(("x", "y"), [-10.0, -10.0], [10.0, 10.0])


@pytest.fixture(scope="module")
def emcee_backend(tmp_path_factory):
    emcee = pytest.importorskip("emcee")
    path = tmp_path_factory.mktemp("emcee") / "run.h5"
    backend = emcee.backends.HDFBackend(str(path))
    backend.reset(6, 2)
    rng = np.random.default_rng(11)
    sampler = emcee.EnsembleSampler(6, 2, lambda p: -0.5 * float(p @ p), backend=backend)
    sampler.random_state = np.random.RandomState(11).get_state()  # emcee's own generator
    sampler.run_mcmc(rng.normal(size=(6, 2)), 40, progress=False)
    return path, emcee.backends.HDFBackend(str(path), read_only=True)


def _walker_major(a):
    return np.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:])


@pytest.mark.parametrize("burn_in, thin", [(None, 1), (10, 1), (10, 3), (0.25, 2)])
def test_emcee_backend_round_trips_with_discard_and_thin(emcee_backend, burn_in, thin):
    path, backend = emcee_backend
    chain = read_chain(path, EMCEE_PARAMS, burn_in=burn_in, thin=thin)
    discard = 0 if burn_in is None else burn_in if isinstance(burn_in, int) else int(40 * burn_in)
    np.testing.assert_array_equal(
        chain.samples, _walker_major(backend.get_chain(discard=discard, thin=thin))
    )
    np.testing.assert_array_equal(
        chain.log_posterior, _walker_major(backend.get_log_prob(discard=discard, thin=thin))
    )
    np.testing.assert_array_equal(chain.weights, np.ones(chain.n))


def test_emcee_backend_bad_input(emcee_backend, tmp_path):
    import h5py

    path, _ = emcee_backend
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "run.h5", "params", "parameter table")
    with pytest.raises(InputError) as exc:
        read_chain(path, ParameterSpace(("x",), [-1.0], [1.0]))
    assert_one_line(exc, "run.h5", "mcmc/chain", "2 parameters per sample", "has 1")
    with pytest.raises(InputError) as exc:
        read_chain(path, EMCEE_PARAMS, burn_in=40)
    assert_one_line(exc, "run.h5 walker 0", "burn_in", "leaving none")
    empty = tmp_path / "other.h5"
    with h5py.File(empty, "w") as fh:
        fh.create_group("results").create_dataset("x", data=np.zeros(3))
    with pytest.raises(InputError) as exc:
        read_chain(empty, EMCEE_PARAMS)
    assert_one_line(exc, "other.h5", "group 'mcmc'", "no emcee chain", "results")


def test_thin_must_be_a_positive_integer(root):
    path, _ = root
    for bad in (0, 1.5, True):
        with pytest.raises(InputError) as exc:
            read_chain(path, thin=bad)
        assert_one_line(exc, "thin", "integer >= 1")
