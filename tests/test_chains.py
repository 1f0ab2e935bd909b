"""Tests for flowprior.chains: readers, validation, writer, hashing, Kish ESS."""

import logging
import os
import pickle

import numpy as np
import pandas as pd
import pytest

import flowprior.chains as chains_mod
from flowprior.chains import Chain, kish_ess, read_chain, write_chain
from flowprior.errors import InputError
from flowprior.params import ParameterSpace

from conftest import assert_one_line

NAMES = ("a", "b", "c")


@pytest.fixture
def params():
    return ParameterSpace(NAMES, [0.0, -1.0, 0.0], [1.0, 1.0, 10.0])


@pytest.fixture
def frame():
    rng = np.random.default_rng(42)
    n = 50
    return pd.DataFrame(
        {
            "a": rng.uniform(0, 1, n),
            "b": rng.uniform(-1, 1, n),
            "c": rng.uniform(0, 10, n),
            "weight": rng.uniform(0.1, 2.0, n),
            "log_likelihood": rng.normal(-10, 2, n),
            "log_prior": np.full(n, -np.log(20.0)),
            "log_posterior": rng.normal(-12, 2, n),
        }
    )


@pytest.fixture
def chain(params, frame):
    return Chain(
        params,
        frame[list(NAMES)].to_numpy(),
        frame["weight"].to_numpy(),
        log_likelihood=frame["log_likelihood"].to_numpy(),
        log_prior=frame["log_prior"].to_numpy(),
        log_posterior=frame["log_posterior"].to_numpy(),
    )


def assert_chain_equal(got, want):
    for name in ("samples", "weights", *chains_mod.LOG_COLUMNS):
        g, w = getattr(got, name), getattr(want, name)
        if w is None:
            assert g is None, name
            continue
        assert g.dtype == np.float64, name
        assert g.shape == w.shape, name
        # bit-identical, including -0.0 and -inf
        np.testing.assert_array_equal(g.view(np.int64), w.view(np.int64), err_msg=name)
    assert got.samples.flags.c_contiguous
    assert got.sha256() == want.sha256()


def save(df, path, **kwargs):
    """Write a DataFrame in the format implied by the suffix."""
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False, **kwargs)
    elif suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False, **kwargs)
    elif suffix == ".txt":
        df.to_csv(path, sep=" ", index=False, **kwargs)
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif suffix == ".npz":
        np.savez(path, **{k: df[k].to_numpy() for k in df.columns})
    else:
        raise AssertionError(suffix)
    return path


NAMED_SUFFIXES = [".csv", ".tsv", ".txt", ".parquet", ".npz"]


# --------------------------------------------------------------------------- Chain object


def test_chain_defaults(params):
    samples = np.array([[0.5, 0, 1], [0.25, 0.5, 2]], dtype=np.float32)
    c = Chain(params, samples)
    assert c.n == 2
    assert c.samples.dtype == np.float64 and c.samples.flags.c_contiguous
    np.testing.assert_array_equal(c.weights, [1.0, 1.0])
    assert c.weights.dtype == np.float64
    assert c.log_likelihood is None and c.log_prior is None and c.log_posterior is None
    assert c.log_target() is None
    assert c.source == "<memory>"


def test_chain_converts_ints_and_fortran_order(params):
    samples = np.asfortranarray(np.array([[0, 0, 1], [1, 1, 2], [0, -1, 3]]))
    c = Chain(params, samples, [1, 2, 3], log_prior=[0, 0, 0])
    assert c.samples.dtype == np.float64 and c.samples.flags.c_contiguous
    assert c.weights.dtype == np.float64 and c.log_prior.dtype == np.float64
    np.testing.assert_array_equal(c.samples, samples)


def test_normalized_weights_and_ess(params):
    c = Chain(params, np.zeros((4, 3)) + [0.5, 0, 1], [1.0, 1.0, 2.0, 0.0])
    np.testing.assert_allclose(c.normalized_weights, [0.25, 0.25, 0.5, 0.0])
    assert c.ess == pytest.approx(16 / 6)


def test_log_target(params):
    x = np.full((2, 3), 0.5)
    assert Chain(params, x, log_posterior=[1, 2]).log_target().tolist() == [1, 2]
    both = Chain(params, x, log_likelihood=[1, 2], log_prior=[10, 20])
    assert both.log_target().tolist() == [11, 22]
    assert Chain(params, x, log_likelihood=[1, 2]).log_target() is None
    pref = Chain(
        params, x, log_likelihood=[1, 2], log_prior=[1, 1], log_posterior=[5, 6]
    )
    assert pref.log_target().tolist() == [5, 6]


def test_subset(chain):
    mask = np.zeros(chain.n, dtype=bool)
    mask[[3, 7]] = True
    for idx in (mask, [3, 7], np.array([3, 7])):
        sub = chain.subset(idx)
        assert sub.n == 2
        np.testing.assert_array_equal(sub.samples, chain.samples[[3, 7]])
        np.testing.assert_array_equal(sub.log_prior, chain.log_prior[[3, 7]])
        assert sub.samples.flags.c_contiguous and sub.source == chain.source
    assert chain.subset(5).n == 1
    assert chain.subset(slice(0, 10, 2)).samples.flags.c_contiguous
    sub = chain.subset([0])
    sub.samples[0, 0] = 0.123
    assert chain.samples[0, 0] != 0.123  # a copy


def test_to_frame(chain):
    df = chain.to_frame()
    assert list(df.columns) == [
        *NAMES,
        "weight",
        "log_likelihood",
        "log_prior",
        "log_posterior",
    ]
    assert all(df[c].dtype == np.float64 for c in df.columns)
    np.testing.assert_array_equal(df[["a", "b", "c"]].to_numpy(), chain.samples)


def test_to_frame_without_logs(params):
    df = Chain(params, np.full((2, 3), 0.5)).to_frame()
    assert list(df.columns) == [*NAMES, "weight"]


def test_sha256_is_stable_and_sensitive(params):
    c = Chain(
        params,
        [[0.5, 0.0, 1.0], [0.25, -0.5, 2.0]],
        [1.0, 3.0],
        log_posterior=[-1.0, -2.0],
    )
    assert (
        c.sha256()
        == Chain(
            params,
            c.samples.copy(),
            c.weights.copy(),
            log_posterior=c.log_posterior.copy(),
        ).sha256()
    )
    changed = c.samples.copy()
    changed[1, 2] = np.nextafter(2.0, 3.0)
    assert (
        Chain(params, changed, c.weights, log_posterior=c.log_posterior).sha256()
        != c.sha256()
    )
    assert Chain(params, c.samples, c.weights).sha256() != c.sha256()
    assert (
        Chain(params, c.samples, c.weights, log_likelihood=[-1.0, -2.0]).sha256()
        != c.sha256()
    )


# Fixed digest: a change of the hashing scheme (or any platform dependence) shows here.
SHA_KNOWN = "4deface8015c8e18adb1c491c0acecca744ead61e7e04730763a2508c8a907b2"


def test_sha256_known_value(params):
    c = Chain(
        params,
        [[0.5, 0.0, 1.0], [0.25, -0.5, 2.0]],
        [1.0, 3.0],
        log_posterior=[-1.0, -2.0],
    )
    assert c.sha256() == SHA_KNOWN


def test_chain_constructor_validates(params):
    with pytest.raises(InputError, match="shape"):
        Chain(params, np.zeros((3, 2)))
    with pytest.raises(InputError, match="weight"):
        Chain(params, np.full((3, 3), 0.5), [1, 1])
    with pytest.raises(InputError, match="negative"):
        Chain(params, np.full((2, 3), 0.5), [1, -1])
    with pytest.raises(InputError, match="no samples"):
        Chain(params, np.zeros((0, 3)))
    with pytest.raises(TypeError):
        Chain(("a",), np.zeros((1, 1)))


# --------------------------------------------------------------------------- kish_ess


def test_kish_ess_closed_forms():
    assert kish_ess([1.0, 2.0, 3.0]) == pytest.approx(36.0 / 14.0)
    assert kish_ess([0.5, 0.5, 1.0, 2.0]) == pytest.approx(16.0 / 5.5)
    assert kish_ess(np.ones(7)) == pytest.approx(7.0)
    assert kish_ess(np.full(5, 1e300)) == pytest.approx(5.0)  # no overflow
    assert kish_ess([0.0, 0.0, 4.2, 0.0]) == pytest.approx(1.0)
    assert kish_ess([1, 1, 0, 0]) == pytest.approx(2.0)
    assert isinstance(kish_ess([1, 2]), float)


@pytest.mark.parametrize("bad", [[], [0.0, 0.0], [1.0, -1.0], [1.0, np.nan], [[1.0]]])
def test_kish_ess_rejects(bad):
    with pytest.raises(ValueError):
        kish_ess(bad)


# --------------------------------------------------------------------------- named formats


@pytest.mark.parametrize("suffix", NAMED_SUFFIXES)
def test_read_named_formats(tmp_path, params, frame, chain, suffix):
    path = save(frame, tmp_path / f"chain{suffix}")
    got = read_chain(path, params)
    assert got.source == str(path)
    np.testing.assert_array_equal(got.samples, chain.samples)
    np.testing.assert_array_equal(got.weights, chain.weights)
    np.testing.assert_array_equal(got.log_posterior, chain.log_posterior)
    assert got.sha256() == chain.sha256()


@pytest.mark.parametrize("suffix", NAMED_SUFFIXES)
def test_read_column_order_and_ints(tmp_path, params, suffix):
    df = pd.DataFrame(
        {"c": [1, 2, 3], "weight": [1, 1, 2], "b": [0, 1, -1], "a": [0, 1, 1]}
    )
    got = read_chain(save(df, tmp_path / f"x{suffix}"), params)
    assert got.samples.dtype == np.float64 and got.weights.dtype == np.float64
    assert got.samples.flags.c_contiguous
    np.testing.assert_array_equal(got.samples, [[0, 0, 1], [1, 1, 2], [1, -1, 3]])
    np.testing.assert_array_equal(got.weights, [1, 1, 2])
    assert got.log_target() is None


@pytest.mark.parametrize("suffix", NAMED_SUFFIXES)
def test_extra_columns_warn(tmp_path, params, frame, suffix, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.chains")
    df = frame.assign(derived=1.0, sigma8=2.0)
    read_chain(save(df, tmp_path / f"x{suffix}"), params)
    assert "derived" in caplog.text and "sigma8" in caplog.text
    assert f"x{suffix}" in caplog.text


@pytest.mark.parametrize("suffix", NAMED_SUFFIXES)
def test_missing_parameter_column(tmp_path, params, frame, suffix):
    path = save(frame.drop(columns=["b"]), tmp_path / f"x{suffix}")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, path.name, "'b'", "missing")


def test_tab_delimited_txt(tmp_path, params, frame):
    path = save(frame, tmp_path / "x.tsv")
    txt = path.rename(tmp_path / "x.txt")
    np.testing.assert_array_equal(read_chain(txt, params).samples, frame[list(NAMES)])


def test_fmt_overrides_suffix(tmp_path, params, frame):
    path = save(frame, tmp_path / "x.csv").rename(tmp_path / "x.dat")
    np.testing.assert_array_equal(
        read_chain(path, params, fmt="csv").samples, frame[list(NAMES)]
    )


def test_non_numeric_value(tmp_path, params):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n0.5,0,1\n0.5,oops,1\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.csv", "column 'b'", "oops", "row 1")


def test_empty_field_is_reported_as_nan(tmp_path, params):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n0.5,0,1\n0.5,,1\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.csv", "column 'b'", "nan", "row 1")


def test_npz_is_loaded_without_pickle(tmp_path, params, monkeypatch):
    calls = []
    real = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real(*args, **kwargs)

    monkeypatch.setattr(chains_mod.np, "load", spy)
    path = tmp_path / "x.npz"
    np.savez(path, a=[0.5], b=[0.0], c=[1.0])
    read_chain(path, params)
    assert calls == [False]


def test_npz_object_array_rejected(tmp_path, params):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.array([0.5, None], dtype=object), b=[0.0, 0], c=[1.0, 1])
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.npz", "key 'a'")


def test_npz_two_dimensional_rejected(tmp_path, params):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros((2, 2)), b=[0.0, 0], c=[1.0, 1])
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.npz", "key 'a'", "1-D")


def test_npz_length_mismatch(tmp_path, params):
    path = tmp_path / "x.npz"
    np.savez(path, a=[0.5, 0.5], b=[0.0], c=[1.0, 1.0])
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.npz", "different lengths")


def test_npy_content_in_npz(tmp_path, params):
    path = tmp_path / "x.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((3, 3)))
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.npz", "not an NPZ")


# --------------------------------------------------------------------------- pickle


def pocomc_dict(rng, n=20, key="samples"):
    x = np.column_stack(
        [rng.uniform(0, 1, n), rng.uniform(-1, 1, n), rng.uniform(0, 10, n)]
    )
    return {
        key: x,
        "weights": rng.uniform(0, 1, n),
        "logl": rng.normal(size=n),
        "logp": np.full(n, -np.log(20.0)),
    }


def dump(obj, path):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)
    return path


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_pickle_refused_by_default(tmp_path, params, suffix):
    path = dump(pocomc_dict(np.random.default_rng(0)), tmp_path / f"r{suffix}")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(
        exc,
        path.name,
        "arbitrary code",
        "allow_pickle=True",
        "allow_pickle: true",
        "--allow-pickle",
    )


def test_pickle_not_opened_without_opt_in(tmp_path, params, monkeypatch):
    monkeypatch.setattr(
        chains_mod.pickle, "load", lambda *a, **k: pytest.fail("unpickled")
    )
    path = dump({}, tmp_path / "r.pkl")
    with pytest.raises(InputError, match="allow_pickle"):
        read_chain(path, params)


@pytest.mark.parametrize("key", ["x", "samples"])
def test_pickle_pocomc_dict(tmp_path, params, key):
    d = pocomc_dict(np.random.default_rng(1), key=key)
    got = read_chain(dump(d, tmp_path / "r.pkl"), params, allow_pickle=True)
    np.testing.assert_array_equal(got.samples, d[key])
    np.testing.assert_array_equal(got.weights, d["weights"])
    np.testing.assert_array_equal(got.log_likelihood, d["logl"])
    np.testing.assert_array_equal(got.log_prior, d["logp"])
    assert got.log_posterior is None
    np.testing.assert_array_equal(got.log_target(), d["logl"] + d["logp"])
    assert got.samples.dtype == np.float64 and got.samples.flags.c_contiguous


def test_pickle_warns_on_extra_keys_and_missing_weights(tmp_path, params, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.chains")
    d = pocomc_dict(np.random.default_rng(2))
    del d["weights"]
    d["logz"] = 1.0
    got = read_chain(dump(d, tmp_path / "r.pkl"), params, allow_pickle=True)
    np.testing.assert_array_equal(got.weights, np.ones(got.n))
    assert "logz" in caplog.text and "weights" in caplog.text


def test_pickle_wrong_dim(tmp_path, params):
    d = pocomc_dict(np.random.default_rng(3))
    d["samples"] = d["samples"][:, :2]
    with pytest.raises(InputError) as exc:
        read_chain(dump(d, tmp_path / "r.pkl"), params, allow_pickle=True)
    assert_one_line(exc, "r.pkl", "key 'samples'", "(n, 3)", "a, b, c")


def test_pickle_missing_samples_key(tmp_path, params):
    with pytest.raises(InputError) as exc:
        read_chain(
            dump({"weights": [1.0]}, tmp_path / "r.pkl"), params, allow_pickle=True
        )
    assert_one_line(exc, "r.pkl", "'samples'", "missing")


def test_pickle_not_a_dict(tmp_path, params):
    with pytest.raises(InputError) as exc:
        read_chain(dump([1, 2], tmp_path / "r.pkl"), params, allow_pickle=True)
    assert_one_line(exc, "r.pkl", "dict")


def test_pickle_bad_weights_named_by_key(tmp_path, params):
    d = pocomc_dict(np.random.default_rng(4))
    d["weights"][3] = -1.0
    with pytest.raises(InputError) as exc:
        read_chain(dump(d, tmp_path / "r.pkl"), params, allow_pickle=True)
    assert_one_line(exc, "r.pkl", "key 'weights'", "negative", "row 3")


def test_corrupt_pickle(tmp_path, params):
    path = tmp_path / "r.pkl"
    path.write_bytes(b"\x80\x05garbage")
    with pytest.raises(InputError) as exc:
        read_chain(path, params, allow_pickle=True)
    assert_one_line(exc, "r.pkl", "cannot read")


# --------------------------------------------------------------------------- GetDist / Cobaya


def write_getdist(tmp_path, root, rows, paramnames):
    (tmp_path / f"{root}.paramnames").write_text(paramnames)
    path = tmp_path / f"{root}.txt"
    np.savetxt(path, rows, fmt="%.17g")
    return path


GETDIST_NAMES = "c   c_{\\rm label}\nsigma8*  \\sigma_8\na   \\alpha\nb\n"


def getdist_rows():
    # columns: weight, -log posterior, c, sigma8 (derived), a, b
    return np.array(
        [
            [1.0, 3.5, 5.0, 0.8, 0.1, -0.2],
            [2.0, 4.25, 6.0, 0.9, 0.3, 0.4],
            [0.0, 5.0, 7.0, 0.7, 0.5, 0.6],
        ]
    )


def test_getdist_chain(tmp_path, params, caplog):
    caplog.set_level(logging.INFO, logger="flowprior.chains")
    path = write_getdist(tmp_path, "root", getdist_rows(), GETDIST_NAMES)
    got = read_chain(path, params)
    rows = getdist_rows()
    np.testing.assert_array_equal(got.samples, rows[:, [4, 5, 2]])
    np.testing.assert_array_equal(got.weights, rows[:, 0])
    np.testing.assert_array_equal(got.log_posterior, -rows[:, 1])
    assert got.log_likelihood is None and got.log_prior is None
    # the derived parameter is kept aside (reported), never part of the parameters
    assert list(got.derived) == ["sigma8"]
    np.testing.assert_array_equal(got.derived["sigma8"], rows[:, 3])
    assert "derived parameter(s) kept aside, not modelled: sigma8" in caplog.text


def test_getdist_numbered_chain_finds_root_paramnames(tmp_path, params):
    path = write_getdist(tmp_path, "root", getdist_rows(), GETDIST_NAMES)
    numbered = path.rename(tmp_path / "root_2.txt")
    got = read_chain(numbered, params)
    np.testing.assert_array_equal(got.samples, getdist_rows()[:, [4, 5, 2]])


def test_getdist_column_count_mismatch(tmp_path, params):
    path = write_getdist(tmp_path, "root", getdist_rows()[:, :-1], GETDIST_NAMES)
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "root.txt", "columns", "root.paramnames", "4 parameters")


def test_getdist_negative_weight_names_column(tmp_path, params):
    rows = getdist_rows()
    rows[1, 0] = -1
    with pytest.raises(InputError) as exc:
        read_chain(write_getdist(tmp_path, "root", rows, GETDIST_NAMES), params)
    assert_one_line(exc, "root.txt", "weight", "row 1", "negative")


def test_getdist_missing_paramnames_with_fmt(tmp_path, params):
    path = tmp_path / "root.txt"
    np.savetxt(path, getdist_rows())
    with pytest.raises(InputError) as exc:
        read_chain(path, params, fmt="getdist")
    assert_one_line(exc, "root.txt", "paramnames")


COBAYA = """#       weight   minuslogpost          c          a          b  minuslogprior  minuslogprior__0       chi2  chi2__lik
1    10.5   5.0   0.1   -0.2    2.5    2.5   16.0   16.0
3    11.0   6.0   0.3    0.4    2.5    2.5   17.0   17.0
"""


def test_cobaya_chain(tmp_path, params, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.chains")
    path = tmp_path / "run.1.txt"
    path.write_text(COBAYA)
    got = read_chain(path, params)
    np.testing.assert_array_equal(got.samples, [[0.1, -0.2, 5.0], [0.3, 0.4, 6.0]])
    np.testing.assert_array_equal(got.weights, [1, 3])
    np.testing.assert_array_equal(got.log_posterior, [-10.5, -11.0])
    np.testing.assert_array_equal(got.log_prior, [-2.5, -2.5])
    np.testing.assert_array_equal(got.log_likelihood, [-8.0, -8.5])
    assert "minuslogprior__0" in caplog.text and "chi2__lik" in caplog.text


def test_hash_header_generic_txt(tmp_path, params):
    path = tmp_path / "g.txt"
    path.write_text("# a b c weight log_likelihood\n0.5 0 1 2 -3\n")
    got = read_chain(path, params)
    np.testing.assert_array_equal(got.log_likelihood, [-3.0])
    assert got.log_posterior is None


def test_cobaya_header_mismatch(tmp_path, params):
    path = tmp_path / "run.txt"
    path.write_text("# weight minuslogpost a b c\n1 2 0.5 0 1 99\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "run.txt", "header", "5 column names", "6 data columns")


def test_cobaya_nan_in_minuslogpost(tmp_path, params):
    path = tmp_path / "run.txt"
    path.write_text("# weight minuslogpost a b c\n1 2 0.5 0 1\n1 nan 0.5 0 1\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "run.txt", "minuslogpost", "NaN", "row 1")


# --------------------------------------------------------------------------- value checks


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameter(tmp_path, params, frame, bad):
    frame.loc[7, "b"] = bad
    frame.loc[9, "a"] = np.nan
    path = save(frame, tmp_path / "x.parquet")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.parquet", "column 'b'", "row 7", "non-finite")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weight(tmp_path, params, frame, bad):
    frame.loc[4, "weight"] = bad
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.csv"), params)
    assert_one_line(exc, "x.csv", "column 'weight'", "row 4", "non-finite")


def test_negative_weight(tmp_path, params, frame):
    frame.loc[[5, 8], "weight"] = -0.5
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.csv"), params)
    assert_one_line(exc, "x.csv", "column 'weight'", "row 5", "negative", "2 in all")


def test_all_zero_weights(tmp_path, params, frame):
    frame["weight"] = 0.0
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.npz"), params)
    assert_one_line(exc, "x.npz", "'weight'", "all weights are zero")


@pytest.mark.parametrize("col", ["log_likelihood", "log_prior", "log_posterior"])
def test_nan_in_log_column(tmp_path, params, frame, col):
    frame.loc[[6, 11], col] = np.nan
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.parquet"), params)
    assert_one_line(exc, "x.parquet", f"column {col!r}", "NaN", "row 6")


@pytest.mark.parametrize("col", ["log_likelihood", "log_prior", "log_posterior"])
def test_minus_inf_log_needs_zero_weight(tmp_path, params, frame, col):
    frame.loc[3, col] = -np.inf
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.csv"), params)
    assert_one_line(exc, "x.csv", f"column {col!r}", "-inf", "row 3", "zero-weight")
    frame.loc[3, "weight"] = 0.0
    got = read_chain(save(frame, tmp_path / "y.csv"), params)
    assert getattr(got, col)[3] == -np.inf


def test_plus_inf_log_rejected(tmp_path, params, frame):
    frame.loc[2, "log_likelihood"] = np.inf
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.csv"), params)
    assert_one_line(exc, "x.csv", "column 'log_likelihood'", "+inf", "row 2")


def test_bool_column_rejected(tmp_path, params, frame):
    frame["weight"] = True
    with pytest.raises(InputError) as exc:
        read_chain(save(frame, tmp_path / "x.parquet"), params)
    assert_one_line(exc, "x.parquet", "column 'weight'", "bool")


# --------------------------------------------------------------------------- prior box


@pytest.fixture
def outside_frame(frame):
    frame = frame.copy()
    frame.loc[10, "c"] = 10.5  # above upper
    frame.loc[20, "a"] = -0.1  # below lower
    frame.loc[21, "b"] = 1.0  # on the boundary: inside (closed box)
    return frame


def test_outside_error(tmp_path, params, outside_frame):
    path = save(outside_frame, tmp_path / "x.csv")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(
        exc,
        "x.csv",
        "column 'c'",
        "2 of 50",
        "row 10",
        "10.5 not in [0.0, 10.0]",
        "clip",
    )
    assert "np.float64" not in str(exc.value)


def test_outside_clip(tmp_path, params, outside_frame, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.chains")
    got = read_chain(save(outside_frame, tmp_path / "x.csv"), params, outside="clip")
    assert got.n == 50
    assert got.samples[10, 2] == 10.0 and got.samples[20, 0] == 0.0
    assert params.contains(got.samples).all()
    assert "2 of 50" in caplog.text and "clipped" in caplog.text


def test_outside_drop(tmp_path, params, outside_frame, caplog):
    caplog.set_level(logging.WARNING, logger="flowprior.chains")
    got = read_chain(save(outside_frame, tmp_path / "x.csv"), params, outside="drop")
    assert got.n == 48
    keep = np.setdiff1d(np.arange(50), [10, 20])
    np.testing.assert_array_equal(
        got.samples, outside_frame[list(NAMES)].to_numpy()[keep]
    )
    np.testing.assert_array_equal(
        got.log_prior, outside_frame["log_prior"].to_numpy()[keep]
    )
    assert "2 of 50" in caplog.text and "dropped" in caplog.text


def test_drop_leaving_zero_weight(tmp_path, params, outside_frame):
    outside_frame["weight"] = 0.0
    outside_frame.loc[[10, 20], "weight"] = 1.0
    with pytest.raises(InputError) as exc:
        read_chain(save(outside_frame, tmp_path / "x.csv"), params, outside="drop")
    assert_one_line(exc, "x.csv", "'weight'", "all weights are zero after dropping 2")


def test_min_samples(tmp_path, params, frame, outside_frame):
    path = save(frame, tmp_path / "ok.csv")
    assert read_chain(path, params, min_samples=50).n == 50
    with pytest.raises(InputError) as exc:
        read_chain(path, params, min_samples=51)
    assert_one_line(exc, "ok.csv", "rows", "only 50", "51")
    path = save(outside_frame, tmp_path / "out.csv")
    with pytest.raises(InputError) as exc:
        read_chain(path, params, outside="drop", min_samples=49)
    assert_one_line(exc, "out.csv", "only 48", "after dropping 2", "49")


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"outside": "ignore"}, "outside"),
        ({"min_samples": 0}, "min_samples"),
        ({"min_samples": 2.5}, "min_samples"),
        ({"fmt": "hdf5"}, "fmt"),
    ],
)
def test_bad_options(tmp_path, params, frame, kwargs, key):
    path = save(frame, tmp_path / "x.csv")
    with pytest.raises(InputError) as exc:
        read_chain(path, params, **kwargs)
    assert_one_line(exc, "x.csv", key)


# --------------------------------------------------------------------------- file problems


def test_unknown_file_type(tmp_path, params):
    path = tmp_path / "chain.fits"  # (.h5 is an emcee backend since the readers of issue 13)
    path.write_bytes(b"x")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "chain.fits", "suffix", "'.fits'", "unknown chain file type")


def test_missing_file(tmp_path, params):
    with pytest.raises(InputError) as exc:
        read_chain(tmp_path / "none.csv", params)
    assert_one_line(exc, "none.csv", "not found")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".parquet", ".npz", ".pkl"])
def test_empty_file(tmp_path, params, suffix):
    path = tmp_path / f"e{suffix}"
    path.write_bytes(b"")
    with pytest.raises(InputError) as exc:
        read_chain(path, params, allow_pickle=True)
    assert_one_line(exc, path.name, "empty")


def test_blank_csv(tmp_path, params):
    path = tmp_path / "e.csv"
    path.write_text("\n\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "e.csv", "empty")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_header_only(tmp_path, params, suffix):
    path = save(
        pd.DataFrame({"a": [], "b": [], "c": []}, dtype=float), tmp_path / f"h{suffix}"
    )
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, path.name, "no samples")


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_corrupt_binary(tmp_path, params, frame, suffix):
    good = save(frame, tmp_path / f"good{suffix}")
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, path.name, "cannot read")


def test_directory(tmp_path, params):
    path = tmp_path / "d.csv"
    path.mkdir()
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "d.csv", "directory")


def test_permission_denied_simulated(tmp_path, params, frame, monkeypatch):
    path = save(frame, tmp_path / "x.csv")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(chains_mod.pd, "read_csv", denied)
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.csv", "cannot read", "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_real(tmp_path, params, frame):
    path = save(frame, tmp_path / "x.parquet")
    path.chmod(0)
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "x.parquet", "cannot read")


# --------------------------------------------------------------------------- writing


def tricky_chain(params):
    samples = np.array(
        [
            [0.1, -0.0, 1 / 3],
            [5e-324, 1.0, 10.0],
            [0.30000000000000004, -1.0, 0.0],
            [1.0, 2.0**-1074, 9.999999999999998],
        ]
    )
    return Chain(
        params,
        samples,
        [1.0, 0.0, 2.5, 1e-300],
        log_likelihood=[-1e300, -np.inf, -0.0, 1.2345678901234567e-8],
        log_prior=[0, 0, 0, 0],
        log_posterior=[-1.0, -np.inf, 7e-310, 3.0],
    )


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".csv"])
def test_write_read_round_trip_exact(tmp_path, params, chain, suffix):
    for original in (chain, tricky_chain(params), Chain(params, chain.samples)):
        path = tmp_path / f"out{suffix}"
        write_chain(original, path)
        got = read_chain(path, params)
        assert_chain_equal(got, original)
    assert os.listdir(tmp_path) == [f"out{suffix}"]  # no temp files left


def test_write_fmt_override(tmp_path, params, chain):
    path = tmp_path / "out.dat"
    write_chain(chain, path, fmt="csv")
    assert path.read_text().startswith("a,b,c,weight,")
    assert_chain_equal(read_chain(path, params, fmt="csv"), chain)
    write_chain(chain, path, fmt="parquet")
    assert_chain_equal(read_chain(path, params, fmt="parquet"), chain)


@pytest.mark.parametrize(
    "name, kwargs", [("out.h5", {}), ("out", {}), ("out.csv", {"fmt": "npz"})]
)
def test_write_unknown_format(tmp_path, chain, name, kwargs):
    with pytest.raises(InputError) as exc:
        write_chain(chain, tmp_path / name, **kwargs)
    assert_one_line(exc, name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_failing_write_leaves_no_file(tmp_path, chain, monkeypatch, suffix):
    if suffix == ".csv":
        real = pd.DataFrame.to_csv

        def half_then_fail(self, target, *args, **kwargs):
            real(self.iloc[: len(self) // 2], target, *args, **kwargs)  # partial output
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    else:
        import pyarrow.parquet as pq

        real = pq.write_table

        def half_then_fail(table, target, *args, **kwargs):
            real(table.slice(0, table.num_rows // 2), target, *args, **kwargs)  # partial output
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pq, "write_table", half_then_fail)
    path = tmp_path / f"out{suffix}"
    with pytest.raises(OSError):
        write_chain(chain, path)
    assert os.listdir(tmp_path) == []

    path.write_text("previous")
    with pytest.raises(OSError):
        write_chain(chain, path)
    assert path.read_text() == "previous"
    assert os.listdir(tmp_path) == [path.name]


def test_sha256_survives_round_trip_and_runs(tmp_path, params, chain):
    digests = set()
    for suffix in (".csv", ".parquet"):
        write_chain(chain, tmp_path / f"c{suffix}")
        digests.add(read_chain(tmp_path / f"c{suffix}", params).sha256())
    assert digests == {chain.sha256()}


def test_duplicate_column_in_cobaya_header(tmp_path, params):
    path = tmp_path / "run.txt"
    path.write_text("# weight a b c a\n1 0.5 0 1 0.5\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "run.txt", "column 'a'", "duplicate")


def test_duplicate_name_in_paramnames(tmp_path, params):
    path = write_getdist(tmp_path, "root", getdist_rows(), "c\nc\na\nb\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, params)
    assert_one_line(exc, "root.txt", "root.paramnames line 2", "duplicate parameter name 'c'")
