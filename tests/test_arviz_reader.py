"""The ArviZ InferenceData reader (``.nc``, fmt ``arviz``) of flowprior.chains.read_chain.

Files are written with ArviZ's own writer (arviz_base.from_dict, DataTree.to_netcdf); the
expected columns are rebuilt here from the arrays given to it, chain by chain, with plain
indexing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

az = pytest.importorskip("arviz_base")

from flowprior.chains import read_chain  # noqa: E402
from flowprior.errors import InputError  # noqa: E402
from flowprior.params import ParameterSpace  # noqa: E402

from conftest import assert_one_line  # noqa: E402

CHAINS, DRAWS, K, OBS = 3, 40, 3, 5
ALL = ("a", "theta_0", "theta_1", "theta_2")


def space(names=ALL) -> ParameterSpace:
    return ParameterSpace(tuple(names), np.full(len(names), -20.0), np.full(len(names), 20.0))


def arrays(seed=5):
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=(CHAINS, DRAWS)),
        "theta": rng.normal(size=(CHAINS, DRAWS, K)),
        "ll_y": -0.5 * rng.normal(size=(CHAINS, DRAWS, OBS)) ** 2,
        "ll_z": -rng.exponential(size=(CHAINS, DRAWS)),
        "lp": -rng.exponential(size=(CHAINS, DRAWS)) - 3.0,
        "y": rng.normal(size=OBS),
    }


def write(path, groups):
    az.from_dict(groups).to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def idata(tmp_path_factory):
    """A 3-chain InferenceData: scalar ``a``, vector ``theta`` (k = 3), a log_likelihood group
    with an observation dimension (``y``) and a scalar term (``z``), sample_stats ``lp``."""
    x = arrays()
    path = write(
        tmp_path_factory.mktemp("arviz") / "fit.nc",
        {
            "posterior": {"a": x["a"], "theta": x["theta"]},
            "log_likelihood": {"y": x["ll_y"], "z": x["ll_z"]},
            "sample_stats": {"lp": x["lp"]},
            "observed_data": {"y": x["y"]},
        },
    )
    return path, x


def expected(x, names=ALL, *, keep=slice(None)):
    """Rows chain by chain, ``keep`` applied to each chain's draws; columns by name."""
    column = {"a": lambda c: x["a"][c]} | {
        f"theta_{i}": (lambda c, i=i: x["theta"][c, :, i]) for i in range(K)
    }
    samples = np.concatenate(
        [np.column_stack([column[n](c) for n in names])[keep] for c in range(CHAINS)]
    )
    ll = np.concatenate([(x["ll_y"][c].sum(axis=-1) + x["ll_z"][c])[keep] for c in range(CHAINS)])
    lp = np.concatenate([x["lp"][c][keep] for c in range(CHAINS)])
    return samples, ll, lp


def test_reads_every_chain_exactly_in_chain_order(idata):
    path, x = idata
    chain = read_chain(path, space())
    samples, ll, lp = expected(x)
    assert chain.n == CHAINS * DRAWS
    assert np.array_equal(chain.samples, samples)
    assert np.array_equal(chain.log_likelihood, ll)
    # sample_stats/lp is an unconstrained-space density (Jacobians included): not read
    assert chain.log_posterior is None and chain.log_prior is None
    assert np.array_equal(chain.weights, np.ones(CHAINS * DRAWS))
    assert list(chain.to_frame().columns) == [*ALL, "weight", "log_likelihood"]


def test_parameters_are_taken_by_name_and_the_rest_ignored(idata, caplog):
    path, x = idata
    names = ("theta_2", "a")
    chain = read_chain(path, space(names))
    assert np.array_equal(chain.samples, expected(x, names)[0])
    assert "ignoring 2 column(s) not in the parameter table: theta_0, theta_1" in caplog.text
    picked = read_chain(path, space(), select=["theta_1", "a"])
    assert picked.params.names == ("theta_1", "a")
    assert np.array_equal(picked.samples, expected(x, ("theta_1", "a"))[0])


@pytest.mark.parametrize(
    "burn_in, thin, keep",
    [
        (10, 1, slice(10, None)),
        (0.25, 1, slice(10, None)),
        (7, 3, slice(9, None, 3)),
        (0.3, 4, slice(15, None, 4)),
        (None, 5, slice(4, None, 5)),
    ],
)
def test_burn_in_and_thin_act_on_each_chain(idata, burn_in, thin, keep):
    path, x = idata
    chain = read_chain(path, space(), burn_in=burn_in, thin=thin)
    samples, ll, lp = expected(x, keep=keep)
    assert chain.n == CHAINS * len(range(DRAWS)[keep])
    assert np.array_equal(chain.samples, samples)
    assert np.array_equal(chain.log_likelihood, ll)
    assert chain.log_posterior is None


def test_burn_in_leaving_a_chain_empty_names_the_chain(idata):
    path, _ = idata
    with pytest.raises(InputError) as exc:
        read_chain(path, space(), burn_in=DRAWS)
    assert_one_line(exc, "fit.nc chain 0", "burn_in", "leaving none")


def test_fmt_arviz_overrides_the_suffix_and_matrix_variables(tmp_path):
    x = arrays(7)
    m = x["theta"][..., :2].reshape(CHAINS, DRAWS, 1, 2)
    path = write(tmp_path / "fit.h5", {"posterior": {"m": m}})
    chain = read_chain(path, space(("m_0_1", "m_0_0")), fmt="arviz")
    want = np.concatenate([np.column_stack([m[c, :, 0, 1], m[c, :, 0, 0]]) for c in range(3)])
    assert np.array_equal(chain.samples, want)
    assert chain.logs() == {}


def test_without_a_parameter_table_the_error_lists_the_columns(idata):
    path, _ = idata
    with pytest.raises(InputError) as exc:
        read_chain(path)
    assert_one_line(exc, "fit.nc", "params", "a, theta_0, theta_1, theta_2")


def test_not_a_netcdf4_file(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("chain,draw\n0,1\n")
    with pytest.raises(InputError) as exc:
        read_chain(path, space())
    assert_one_line(exc, "notes.nc", "not a netCDF4/HDF5 file")


def test_no_posterior_group(tmp_path):
    path = write(tmp_path / "obs.nc", {"observed_data": {"y": arrays()["y"]}})
    with pytest.raises(InputError) as exc:
        read_chain(path, space())
    assert_one_line(exc, "obs.nc", "group 'posterior'", "missing", "observed_data")


@pytest.mark.parametrize(
    "values", [np.full((CHAINS, DRAWS), "abc"), np.ones((CHAINS, DRAWS), bool)]
)
def test_non_numeric_posterior_variable(tmp_path, values):
    x = arrays()
    path = write(tmp_path / "text.nc", {"posterior": {"a": x["a"], "flag": values}})
    with pytest.raises(InputError) as exc:
        read_chain(path, space(("a", "flag")))
    assert_one_line(exc, "text.nc", "posterior/flag", "expected real numbers")
    # not asked for: ignored like any other column outside the parameter table
    assert np.array_equal(read_chain(path, space(("a",))).samples[:, 0], x["a"].reshape(-1))


def test_nan_is_caught_by_the_chain_validation(tmp_path):
    x = arrays()
    x["theta"][1, 6, 2] = np.nan
    path = write(tmp_path / "nan.nc", {"posterior": {"a": x["a"], "theta": x["theta"]}})
    with pytest.raises(InputError) as exc:
        read_chain(path, space())
    assert_one_line(exc, "nan.nc", "posterior/theta_2", f"at row {DRAWS + 6} (0-based)")
    x = arrays()
    x["ll_y"][2, 0, 3] = np.nan
    path = write(
        tmp_path / "nan_ll.nc", {"posterior": {"a": x["a"]}, "log_likelihood": {"y": x["ll_y"]}}
    )
    with pytest.raises(InputError) as exc:
        read_chain(path, space(("a",)))
    assert_one_line(exc, "nan_ll.nc", "group 'log_likelihood'", f"NaN at row {2 * DRAWS}")


def test_log_likelihood_with_other_draws_is_an_error(tmp_path):
    x = arrays()
    path = write(
        tmp_path / "short.nc",
        {"posterior": {"a": x["a"]}, "log_likelihood": {"y": x["ll_y"][:, :10]}},
    )
    with pytest.raises(InputError) as exc:
        read_chain(path, space(("a",)))
    assert_one_line(exc, "short.nc", "log_likelihood/y", "(3, 10)", "(3, 40)")


def test_import_flowprior_does_not_import_arviz_or_xarray():
    code = (
        "import sys, flowprior, flowprior.chains, flowprior.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'arviz_base', 'xarray', "
        "'h5netcdf', 'arviz'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
