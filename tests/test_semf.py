"""Tests for flowprior.problems.semf: nuclides from mendeleev, cuts, splits, the SEMF likelihood."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowprior.errors import InputError
from flowprior.likelihoods import Likelihood, load_likelihood
from flowprior.params import load_parameters
from flowprior.problems import semf

REPO = Path(__file__).resolve().parents[1]
#: A plausible parameter vector (a_V, a_S, a_C, a_A, a_P, sigma_th), MeV.
THETA = np.array([15.7, 17.8, 0.71, 23.2, 11.4, 2.9])


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The real table, extracted once from the installed mendeleev: (path, sidecar, frame)."""
    path = tmp_path_factory.mktemp("semf") / "nuclides.parquet"
    table = semf.extract_nuclides(path)
    return path, Path(f"{path}.json"), table


@pytest.fixture(scope="module")
def cut(extracted):
    return semf.load_nuclides(extracted[0])


def one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def tiny_table(path, rows, **extra):
    """Write a hand-made table: rows of (Z, A, B MeV, sigma_B MeV[, year])."""
    df = pd.DataFrame(
        {
            "Z": [r[0] for r in rows],
            "A": [r[1] for r in rows],
            "binding_energy_mev": [r[2] for r in rows],
            "binding_energy_uncertainty_mev": [r[3] for r in rows],
            **extra,
        }
    )
    df.to_parquet(path, index=False)
    return path


# ----------------------------------------------------------------------------- extraction
def test_extract_columns_and_counts(extracted):
    path, _, table = extracted
    back = pd.read_parquet(path)
    assert tuple(back.columns) == semf.COLUMNS
    assert len(back) == len(table) == 3557  # every ground state of mendeleev 1.3.0 has a mass
    pd.testing.assert_frame_equal(back, table)
    assert str(back["discovery_year"].dtype) == "Int64"
    assert back["discovery_year"].isna().sum() == 218
    assert (back["N"] == back["A"] - back["Z"]).all()
    assert not back.duplicated(["Z", "A"]).any()
    assert back[["Z", "A"]].apply(tuple, axis=1).is_monotonic_increasing


@pytest.mark.parametrize(
    "symbol, z, a, b_per_a",
    [("Fe", 26, 56, 8.790), ("Ni", 28, 62, 8.795), ("Pb", 82, 208, 7.868)],
)
def test_sanity_binding_energy_per_nucleon(extracted, symbol, z, a, b_per_a):
    table = extracted[2]
    row = table[(table["Z"] == z) & (table["A"] == a)]
    assert len(row) == 1 and row["symbol"].iloc[0] == symbol
    got = float(row["binding_energy_per_nucleon_mev"].iloc[0])
    assert abs(got - b_per_a) < 1e-3  # 1 keV
    b = float(row["binding_energy_mev"].iloc[0])
    assert b == pytest.approx(a * got, rel=1e-15)
    mass = float(row["mass_u"].iloc[0])
    assert b == pytest.approx((z * semf.M_H1_U + (a - z) * semf.M_N_U - mass) * semf.U_MEV)


def test_nickel62_is_the_most_bound(extracted):
    table = extracted[2]
    best = table.loc[table["binding_energy_per_nucleon_mev"].idxmax()]
    assert (best["symbol"], best["A"]) == ("Ni", 62)


def test_provenance(extracted):
    path, sidecar, table = extracted
    record = json.loads(sidecar.read_text())
    assert record["table"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["table"]["rows"] == len(table)
    assert record["table"]["file"] == path.name
    assert record["table"]["columns"] == list(semf.COLUMNS)
    from mendeleev import db as mdb

    src = record["source"]
    assert src["package"] == "mendeleev" and src["version"] == "1.3.0"
    db = Path(mdb.get_package_dbpath())
    assert src["database_sha256"] == hashlib.sha256(db.read_bytes()).hexdigest()
    assert src["rows_read"] == 3557
    assert src["citation_keys"]["mass"]
    assert record["constants"] == {
        "u_MeV": semf.U_MEV,
        "M_1H_u": semf.M_H1_U,
        "m_n_u": semf.M_N_U,
    }
    import pyarrow.parquet as pq

    embedded = json.loads(pq.read_schema(path).metadata[b"flowprior.semf"])
    assert embedded["source"] == src and embedded["constants"] == record["constants"]


def test_extraction_is_reproducible(extracted, tmp_path):
    other = tmp_path / "again.parquet"
    semf.extract_nuclides(other, provenance=tmp_path / "prov.json")
    assert other.read_bytes() == extracted[0].read_bytes()
    assert not (tmp_path / "again.parquet.json").exists()
    first = json.loads(extracted[1].read_text())
    second = json.loads((tmp_path / "prov.json").read_text())
    second["table"]["file"] = first["table"]["file"]
    assert first == second


# ----------------------------------------------------------------------------- cuts
def test_default_cuts(cut):
    assert len(cut) == 2383
    assert (cut["A"] >= 16).all()
    assert (cut["binding_energy_uncertainty_mev"] <= 0.1).all()


def test_cuts_are_logged(extracted, caplog):
    with caplog.at_level("INFO", logger="flowprior.problems.semf"):
        semf.load_nuclides(extracted[0])
    assert "2383 kept" in caplog.text and "3557 nuclides" in caplog.text


def test_raising_the_threshold_never_reduces_the_count(extracted):
    counts = [
        len(semf.load_nuclides(extracted[0], max_mass_uncertainty_kev=kev))
        for kev in (1.0, 10.0, 50.0, 100.0, 500.0, 1e4)
    ]
    assert counts == sorted(counts)
    assert counts[-1] == 3557 - 70  # only A < 16 removed
    assert len(semf.load_nuclides(extracted[0], min_a=1, max_mass_uncertainty_kev=1e4)) == 3557


@pytest.mark.parametrize(
    "kwargs, where",
    [
        ({"max_mass_uncertainty_kev": 0.0}, "max_mass_uncertainty_kev"),
        ({"max_mass_uncertainty_kev": "100"}, "max_mass_uncertainty_kev"),
        ({"min_a": 0}, "min_a"),
        ({"min_a": 16.5}, "min_a"),
    ],
)
def test_bad_cut_values(extracted, kwargs, where):
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(extracted[0], **kwargs)
    one_line(exc_info, str(extracted[0]), where)


# ----------------------------------------------------------------------------- splits
def test_split_all(cut):
    pd.testing.assert_frame_equal(semf.split_nuclides(cut, split="all", part="all"), cut)


def test_historical_split(cut):
    early = semf.split_nuclides(cut, split="historical", part="early")
    late = semf.split_nuclides(cut, split="historical", part="late")
    years = cut["discovery_year"].dropna().astype(int)
    median = float(np.median(years))
    assert median == 1961.0
    assert (early["discovery_year"] < median).all() and (late["discovery_year"] >= median).all()
    no_year = int(cut["discovery_year"].isna().sum())
    assert no_year == 1
    assert len(early) + len(late) + no_year == len(cut)
    assert (len(early), len(late)) == (1182, 1200)
    keys = lambda df: set(zip(df["Z"], df["A"]))  # noqa: E731
    assert not keys(early) & keys(late)
    assert keys(early) | keys(late) == keys(cut[cut["discovery_year"].notna()])


def test_historical_split_explicit_year(cut):
    early = semf.split_nuclides(cut, split="historical", part="early", cut_year=1950)
    assert len(early) == int((cut["discovery_year"].dropna() < 1950).sum())


def test_regional_split(cut):
    light = semf.split_nuclides(cut, split="regional", part="light")
    heavy = semf.split_nuclides(cut, split="regional", part="heavy")
    assert (light["A"] < semf.DEFAULT_CUT_A).all() and (heavy["A"] >= semf.DEFAULT_CUT_A).all()
    assert (len(light), len(heavy)) == (706, 1677)
    pd.testing.assert_frame_equal(
        pd.concat([light, heavy]).sort_values(["Z", "A"]).reset_index(drop=True), cut
    )
    assert len(semf.split_nuclides(cut, split="regional", part="light", cut_a=50)) == int(
        (cut["A"] < 50).sum()
    )


@pytest.mark.parametrize(
    "kwargs, where",
    [
        ({"split": "random", "part": "all"}, "split"),
        ({"split": "historical", "part": "light"}, "part"),
        ({"split": "regional", "part": "heavy", "cut_a": float("nan")}, "cut_a"),
        ({"split": "historical", "part": "early", "cut_year": "soon"}, "cut_year"),
    ],
)
def test_bad_split(cut, kwargs, where):
    with pytest.raises(InputError) as exc_info:
        semf.split_nuclides(cut, **kwargs)
    one_line(exc_info, where)


# ----------------------------------------------------------------------------- the model
def test_design_matrix_and_pairing():
    # 56Fe even-even, 27Al odd-even, 14N odd-odd (the model is applied to any A)
    x = semf.design_matrix([56, 27, 14], [26, 13, 7])
    assert x.shape == (3, 5)
    assert x[:, 4] == pytest.approx([56**-0.5, 0.0, -(14**-0.5)])
    assert x[0, :4] == pytest.approx([56, -(56 ** (2 / 3)), -26 * 25 / 56 ** (1 / 3), -16 / 56])


def test_binding_energy_shapes():
    a, z = np.array([56, 208]), np.array([26, 82])
    one = semf.binding_energy(THETA, a, z)
    assert one.shape == (2,) and one.dtype == np.float64
    many = semf.binding_energy(np.stack([THETA, THETA * 1.01]), a, z)
    assert many.shape == (2, 2)
    np.testing.assert_allclose(many[0], one)
    np.testing.assert_allclose(semf.binding_energy(THETA[:5], a, z), one)
    # textbook coefficients give B/A of 56Fe within 1 % of the measured 8.790 MeV
    assert one[0] / 56 == pytest.approx(8.790, rel=0.01)


# ----------------------------------------------------------------------------- likelihood
def _hand_loglike(theta, rows):
    """Plain-Python SEMF log-likelihood of (Z, A, B, sigma) rows."""
    a_v, a_s, a_c, a_a, a_p, s_th = theta
    total = 0.0
    for z, a, b, s in rows:
        n = a - z
        if z % 2 == 0 and n % 2 == 0:
            delta = a_p / math.sqrt(a)
        elif z % 2 == 1 and n % 2 == 1:
            delta = -a_p / math.sqrt(a)
        else:
            delta = 0.0
        model = (
            a_v * a
            - a_s * a ** (2.0 / 3.0)
            - a_c * z * (z - 1) / a ** (1.0 / 3.0)
            - a_a * (a - 2 * z) ** 2 / a
            + delta
        )
        var = s * s + s_th * s_th
        total += -0.5 * (b - model) ** 2 / var - 0.5 * math.log(2 * math.pi * var)
    return total


# Two made-up nuclides (Z, A, B, sigma_B in MeV; not measurements): an even-even one (Z = 26,
# N = 30) and an odd-odd one (Z = 27, N = 31); sigma_B large enough to matter next to sigma_th.
TWO = [(26, 56, 492.0, 0.5), (27, 58, 507.0, 1.2)]
#: No cuts, the whole table: for the hand-made tables.
LOOSE = dict(split="all", part="all", min_a=1, max_mass_uncertainty_kev=2000.0)


def test_loglike_by_hand(tmp_path):
    path = tiny_table(tmp_path / "two.parquet", TWO)
    theta = np.array([THETA, [16.0, 18.0, 0.7, 23.0, 12.0, 1.5]])
    got = semf.loglike(theta, data=str(path), **LOOSE)
    assert got.shape == (2,) and got.dtype == np.float64
    for i in range(2):
        assert got[i] == pytest.approx(_hand_loglike(theta[i], TWO), rel=1e-12, abs=1e-12)


def test_loglike_relative_path_resolves_against_cwd(tmp_path, monkeypatch):
    tiny_table(tmp_path / "two.parquet", TWO)
    monkeypatch.chdir(tmp_path)
    got = semf.loglike(THETA[None], data="two.parquet", **LOOSE)
    assert got[0] == pytest.approx(_hand_loglike(THETA, TWO), rel=1e-12)


def test_loglike_rereads_a_rewritten_file(tmp_path):
    path = tiny_table(tmp_path / "two.parquet", TWO)
    first = semf.loglike(THETA[None], data=path, **LOOSE)
    one = TWO[:1]
    tiny_table(path, one)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse file-system clocks
    second = semf.loglike(THETA[None], data=path, **LOOSE)
    assert second[0] == pytest.approx(_hand_loglike(THETA, one), rel=1e-12)
    assert second[0] != first[0]


def test_loglike_sigma_th_nonpositive_is_minus_inf(tmp_path):
    path = tiny_table(tmp_path / "two.parquet", TWO)
    theta = np.array([THETA, THETA, THETA])
    theta[0, 5], theta[1, 5] = 0.0, -1.0
    got = semf.loglike(theta, data=path, **LOOSE)
    assert got[0] == got[1] == -np.inf and np.isfinite(got[2])


def test_loglike_vectorised_equals_row_by_row(extracted, monkeypatch):
    rng = np.random.default_rng(1)
    space = load_parameters(REPO / "config" / "parameters" / "semf.yaml")
    theta = space.lower + (space.upper - space.lower) * rng.random((37, 6))
    kw = dict(data=extracted[0], split="historical", part="late")
    whole = semf.loglike(theta, **kw)
    rows = np.array([semf.loglike(t[None], **kw)[0] for t in theta])
    np.testing.assert_allclose(whole, rows, rtol=1e-13)
    monkeypatch.setattr(semf, "_CHUNK_BYTES", 8 * 4 * 1200 * 5)  # chunks of 5 points
    np.testing.assert_allclose(semf.loglike(theta, **kw), whole, rtol=1e-13)
    assert semf.loglike(np.empty((0, 6)), **kw).shape == (0,)


def test_loglike_bad_theta_shape(extracted):
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        semf.loglike(THETA, data=extracted[0], split="all", part="all")


def test_loglike_empty_part(tmp_path):
    path = tiny_table(tmp_path / "two.parquet", TWO)
    with pytest.raises(InputError) as exc_info:
        semf.loglike(THETA[None], data=path, **{**LOOSE, "split": "regional", "part": "heavy"})
    one_line(exc_info, "two.parquet", "part", "no nuclides")


# ----------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    missing = tmp_path / "none.parquet"
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(missing)
    one_line(exc_info, str(missing), "not found")
    with pytest.raises(InputError) as exc_info:
        semf.loglike(THETA[None], data=missing, split="all", part="all")
    one_line(exc_info, str(missing), "not found")


def test_not_parquet(tmp_path):
    path = tmp_path / "text.parquet"
    path.write_text("Z,A\n1,2\n")
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(path)
    one_line(exc_info, str(path), "Parquet")


def test_missing_column(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"Z": [26], "A": [56], "binding_energy_mev": [492.0]}).to_parquet(path)
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(path)
    one_line(exc_info, str(path), "binding_energy_uncertainty_mev", "missing")


@pytest.mark.parametrize(
    "column, rows",
    [
        ("binding_energy_mev", [(26, 56, float("nan"), 0.001)]),
        ("binding_energy_uncertainty_mev", [(26, 56, 492.0, float("nan"))]),
        ("binding_energy_uncertainty_mev", [(26, 56, 492.0, -0.001)]),
        ("Z", [(30, 28, 492.0, 0.001)]),
        ("A", [(26, 56.5, 492.0, 0.001)]),
        ("Z, A", [(26, 56, 492.0, 0.001), (26, 56, 492.1, 0.001)]),
    ],
)
def test_bad_values_name_file_and_column(tmp_path, column, rows):
    path = tiny_table(tmp_path / "bad.parquet", rows)
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(path, min_a=1)
    one_line(exc_info, f"{path}: {column}:")


def test_nan_in_z_names_the_column(tmp_path):
    path = tmp_path / "bad.parquet"
    tiny_table(path, [(26.0, 56, 492.0, 0.001), (float("nan"), 58, 506.0, 0.001)])
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(path, min_a=1)
    one_line(exc_info, f"{path}: Z:", "row 1")


def test_inconsistent_n(tmp_path):
    path = tiny_table(tmp_path / "bad.parquet", [(26, 56, 492.0, 0.001)], N=[29])
    with pytest.raises(InputError) as exc_info:
        semf.load_nuclides(path, min_a=1)
    one_line(exc_info, f"{path}: N:")


def test_historical_split_needs_discovery_year(tmp_path):
    path = tiny_table(tmp_path / "two.parquet", TWO)
    with pytest.raises(InputError) as exc_info:
        semf.loglike(THETA[None], data=path, **{**LOOSE, "split": "historical", "part": "early"})
    one_line(exc_info, "discovery_year")


# ----------------------------------------------------------------------------- plug-in
def test_load_through_load_likelihood(extracted):
    fn = load_likelihood("flowprior.problems.semf:loglike")
    assert fn is semf.loglike
    lk = Likelihood.from_config(
        {
            "likelihood": "flowprior.problems.semf:loglike",
            "kwargs": {"data": str(extracted[0]), "split": "regional", "part": "light"},
        },
        dataset="light",
        dim=6,
    )
    value = lk(THETA)
    assert isinstance(value, float) and np.isfinite(value)
    assert lk(np.stack([THETA, THETA])).shape == (2,)


def test_load_likelihood_rejects_unknown_kwargs(extracted):
    with pytest.raises(InputError) as exc_info:
        Likelihood.from_config(
            {
                "likelihood": "flowprior.problems.semf:loglike",
                "kwargs": {"data": str(extracted[0]), "split": "all", "part": "all", "cut": 1},
            },
            dataset="all",
            dim=6,
        )
    one_line(exc_info, "cut")


# ----------------------------------------------------------------------------- least squares
def test_least_squares_is_the_likelihood_maximum(extracted, cut):
    fit = semf.fit_least_squares(cut)
    assert fit.n == 2383
    lo, hi = [15.5, 17.0, 0.65, 22.0, 10.0], [16.2, 18.6, 0.75, 24.0, 13.0]
    assert np.all((fit.coefficients > lo) & (fit.coefficients < hi)), fit.summary()
    assert 2.0 < fit.sigma_th < 3.5 and fit.rms_residual == pytest.approx(fit.sigma_th, rel=0.01)
    kw = dict(data=extracted[0], split="all", part="all")
    best = semf.loglike(fit.theta[None], **kw)[0]
    assert best == pytest.approx(fit.loglike, rel=1e-12)
    steps = np.diag(np.append(fit.errors, 0.05)) * 0.1
    around = semf.loglike(np.concatenate([fit.theta + steps, fit.theta - steps]), **kw)
    assert (around < best).all()


def test_parameter_box_contains_every_fit(cut):
    space = load_parameters(REPO / "config" / "parameters" / "semf.yaml")
    assert space.names == semf.PARAMETER_NAMES
    for split, parts in semf.SPLITS.items():
        for part in parts:
            fit = semf.fit_least_squares(semf.split_nuclides(cut, split=split, part=part))
            sd = np.append(fit.errors, fit.sigma_th / math.sqrt(2 * fit.n))
            margin = np.minimum(fit.theta - space.lower, space.upper - fit.theta) / sd
            assert (margin > 8).all(), (split, part, margin)


# ----------------------------------------------------------------- mendeleev is optional
def test_mendeleev_is_the_optional_extra_semf_at_the_locked_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.lower().startswith("mendeleev") for d in project["dependencies"])
    (extra,) = project["optional-dependencies"]["semf"]
    lock = re.search(r"^mendeleev==(\S+)$", (REPO / "requirements.lock").read_text(), re.M)
    assert lock and extra == f"mendeleev>={lock[1]}"


def test_module_and_likelihood_work_without_mendeleev(tmp_path):
    """mendeleev blocked: the module imports, the likelihood runs, extraction names the extra."""
    frame = pd.DataFrame({
        "Z": [20, 28, 50], "A": [40, 62, 120], "binding_energy_mev": [342.05, 545.26, 1020.55],
        "binding_energy_uncertainty_mev": [0.001, 0.001, 0.002],
    })
    frame.to_parquet(tmp_path / "t.parquet")
    code = f"""
import sys
sys.modules["mendeleev"] = None  # any import of mendeleev now fails
import numpy as np
from flowprior.errors import FlowpriorError
from flowprior.likelihoods import load_likelihood
fn = load_likelihood("flowprior.problems.semf:loglike")
out = fn(np.array([{THETA.tolist()}]), data={str(tmp_path / "t.parquet")!r},
         split="all", part="all")
assert out.shape == (1,) and np.isfinite(out).all(), out
from flowprior.problems import semf
try:
    semf.extract_nuclides({str(tmp_path / "x.parquet")!r})
except FlowpriorError as err:
    assert "flowprior[semf]" in str(err), err
else:
    raise AssertionError("extract_nuclides ran without mendeleev")
assert "mendeleev" not in {{m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}}
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
