"""The degeneracy guard: training refuses a chain in which a parameter is a function of others."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import PolynomialFeatures

import flowprior.train as train_module
from flowprior.chains import Chain
from flowprior.degeneracy import (
    check_degeneracy,
    near_exact_relations,
    polynomial_degree,
    residual_fractions,
)
from flowprior.errors import InputError
from flowprior.problems.analytic import get_analysis
from flowprior.problems.targets import PROBLEMS, get_problem
from flowprior.train import TrainConfig, train_flow

from conftest import make_space

TOL = TrainConfig().degeneracy_tolerance
FAST = dict(kind="maf", transforms=1, hidden=(8,), max_steps=2, eval_every=1, progress=False)


def _chain(columns: dict[str, np.ndarray], *, weights=None, source="chain.csv") -> Chain:
    x = np.column_stack(list(columns.values()))
    pad = 0.1 * (x.max(0) - x.min(0)) + 1e-3
    space = make_space(list(zip(x.min(0) - pad, x.max(0) + pad)), names=list(columns))
    return Chain(space, x, weights, source=source)


def _cosmology(n: int, *, seed: int, derived: bool) -> dict[str, np.ndarray]:
    """Sampled parameters of a DES-Y1-like posterior, with omegam = (ob + oc + onu) / h^2.

    Written to 7 significant digits, as GetDist chains are (the relation then holds to ~1e-7).
    """
    rng = np.random.default_rng(seed)
    cols = {
        "omegabh2": rng.uniform(0.019, 0.026, n),
        "omegach2": rng.normal(0.13, 0.02, n),
        "H0": rng.uniform(55.0, 90.0, n),
        "ns": rng.normal(0.96, 0.05, n),
    }
    if derived:
        h = cols["H0"] / 100
        cols["omegam"] = (cols["omegabh2"] + cols["omegach2"] + 0.00064) / h**2
    return {k: np.array([float(f"{v:.6e}") for v in c]) for k, c in cols.items()}


def _no_training(monkeypatch):
    def fail(*args, **kwargs):  # pragma: no cover - reached only if the guard is bypassed
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "_init_flow", fail)
    monkeypatch.setattr(train_module, "_optimise", fail)


# ------------------------------------------------------------------------------ train_flow
def test_exact_product_relation_stops_training_before_any_optimisation(monkeypatch):
    rng = np.random.default_rng(0)
    a, b, e = rng.uniform(1, 2, 600), rng.normal(0, 1, 600), rng.normal(0, 1, 600)
    chain = _chain({"a": a, "b": b, "c": a * b, "e": e})
    _no_training(monkeypatch)
    with pytest.raises(InputError) as info:
        train_flow(chain, TrainConfig(**FAST))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("chain.csv: parameters: near-exact relation: ")
    first = message.split("near-exact relation: ")[1].split(" to 1 - R^2")[0]
    # whichever of the three is named first, the other two carry it; e never does
    named, carriers = first.split(" is determined by ")
    assert {named, *carriers.split(", ")} == {"a", "b", "c"}
    assert f"(< degeneracy_tolerance {TOL:g})" in message
    assert "drop derived parameters" in message and "degeneracy_tolerance 0" in message


def test_the_cosmological_derived_relation_is_caught_and_the_sampled_chain_trains():
    derived = _chain(_cosmology(3000, seed=1, derived=True))
    with pytest.raises(InputError, match=r"near-exact relation: .*omegam"):
        train_flow(derived, TrainConfig(**FAST))
    r = residual_fractions(derived.samples, None, derived.params.names)
    assert max(r["omegabh2"], r["omegach2"]) < 1e-9  # rounding to 7 digits, no worse
    sampled = _chain(_cosmology(3000, seed=1, derived=False))
    assert train_flow(sampled, TrainConfig(**FAST)).metrics["steps"] == 2


def test_a_near_relation_with_noise_above_the_tolerance_trains():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(1, 2, 800), rng.normal(0, 1, 800)
    c = a * b + rng.normal(0, 0.03, 800)  # 1 - R^2 of c about 1e-3
    chain = _chain({"a": a, "b": b, "c": c})
    r = residual_fractions(chain.samples, None, chain.params.names)
    assert 1e-4 < r["c"] < 1e-2
    assert near_exact_relations(chain.samples, None, chain.params.names, tolerance=TOL) == []
    assert train_flow(chain, TrainConfig(**FAST)).metrics["steps"] == 2


def test_tolerance_zero_disables_the_check():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(1, 2, 600), rng.normal(0, 1, 600)
    chain = _chain({"a": a, "b": b, "c": (a + b) / a**2})
    with pytest.raises(InputError, match="near-exact relation"):
        train_flow(chain, TrainConfig(**FAST))
    assert train_flow(chain, TrainConfig(**FAST, degeneracy_tolerance=0.0)).metrics["steps"] == 2


@pytest.mark.parametrize("value", [-1e-6, 1.0, 2.0])
def test_tolerance_outside_zero_one_is_a_settings_error(value):
    with pytest.raises(
        InputError, match=r"flow settings: degeneracy_tolerance must be in \[0, 1\)"
    ):
        TrainConfig(degeneracy_tolerance=value)


# ------------------------------------------------------------------------------ the detector
def test_linear_relation_is_caught_with_its_carriers():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1000, 5))
    x[:, 4] = 2 * x[:, 0] - 3 * x[:, 2] + 1
    names = ["a", "b", "c", "d", "e"]
    found = near_exact_relations(x, None, names, tolerance=TOL)
    assert {r.parameter for r in found} == {"a", "c", "e"}
    for r in found:
        assert {r.parameter, *r.carriers} == {"a", "c", "e"} and r.residual < 1e-20


def test_rational_relation_is_caught_and_its_carriers_named():
    rng = np.random.default_rng(5)
    a, b, d, e = rng.uniform(1, 2, (4, 1500))
    x = np.column_stack([a, b, d, (a + b) / d**2, e])
    found = near_exact_relations(x, None, ["a", "b", "d", "c", "e"], tolerance=TOL)
    assert found and found[0].parameter in {"a", "b", "c"}  # c = (a + b) / d^2: cubic in a, b
    assert all("e" not in r.carriers and r.parameter != "e" for r in found)


def test_constant_column_is_reported_first():
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.normal(size=300), np.full(300, 0.3), rng.normal(size=300)])
    found = near_exact_relations(x, None, ["a", "k", "b"], tolerance=TOL)
    assert [(r.parameter, r.carriers, r.residual) for r in found] == [("k", (), 0.0)]
    assert found[0].describe() == "k is constant"


def test_residual_fractions_equal_scikit_learn_weighted_polynomial_regression():
    rng = np.random.default_rng(7)
    n = 2000
    x = rng.normal(size=(n, 4))
    x[:, 3] = x[:, 0] * x[:, 1] + 0.1 * x[:, 2] ** 3 + rng.normal(0, 0.05, n)
    w = rng.exponential(size=n)
    ours = residual_fractions(x, w, ["a", "b", "c", "d"])
    assert polynomial_degree(4) == 3
    for j, name in enumerate(["a", "b", "c", "d"]):
        others = np.delete(x, j, axis=1)
        feats = PolynomialFeatures(degree=3, include_bias=False).fit_transform(others)
        y = x[:, j]
        fit = LinearRegression().fit(feats, y, sample_weight=w)
        resid = np.average((y - fit.predict(feats)) ** 2, weights=w)
        ref = resid / np.average((y - np.average(y, weights=w)) ** 2, weights=w)
        assert ours[name] == pytest.approx(ref, rel=1e-6), name
    assert ours["d"] < 0.05 and min(ours["a"], ours["b"], ours["c"]) > 0.3


def test_weights_decide_and_zero_weight_rows_are_ignored():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 1000))
    c = a + b
    c[:100] += rng.normal(0, 1, 100)  # these rows break the relation ...
    w = np.ones(1000)
    assert near_exact_relations(np.column_stack([a, b, c]), w, "abc", tolerance=TOL) == []
    w[:100] = 0.0  # ... and carry no weight
    found = near_exact_relations(np.column_stack([a, b, c]), w, "abc", tolerance=TOL)
    assert {r.parameter for r in found} == {"a", "b", "c"}


def test_subsample_is_seeded_and_bounded():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3000, 3))
    one = residual_fractions(x, None, "abc", max_rows=500, seed=1)
    assert one == residual_fractions(x, None, "abc", max_rows=500, seed=1)
    assert one != residual_fractions(x, None, "abc", max_rows=500, seed=2)
    assert one != residual_fractions(x, None, "abc")


def test_polynomial_degree_follows_the_feature_budget():
    assert [polynomial_degree(d) for d in (1, 12, 13, 30, 31, 256)] == [3, 3, 2, 2, 1, 1]
    # and the effective sample size: at least 10 per monomial (9 parameters: 219, 54, 9)
    assert [polynomial_degree(9, ess=e) for e in (2190, 2189, 540, 90, 89)] == [3, 2, 2, 1, 0]


def test_a_few_heavy_rows_do_not_pass_for_a_relation():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2000, 7))
    w = np.full(2000, 1e-12)
    w[:30] = 1.0  # Kish ESS 30: a cubic (83 monomials per fit) would pass through them
    assert min(residual_fractions(x, w, "abcdefg", degree=3).values()) < 1e-6
    assert near_exact_relations(x, w, "abcdefg", tolerance=TOL) == []
    assert all(np.isnan(v) for v in residual_fractions(x, w, "abcdefg").values())
    w[:300] = 1.0  # Kish ESS 300: linear terms only
    assert min(residual_fractions(x, w, "abcdefg").values()) > 0.5


def test_bad_arrays_are_value_errors():
    with pytest.raises(ValueError, match="must be"):
        residual_fractions(np.ones((10, 2)), None, ["a"])
    with pytest.raises(ValueError, match="finite"):
        residual_fractions(np.full((10, 2), np.nan), None, ["a", "b"])
    with pytest.raises(ValueError, match="positive weight"):
        residual_fractions(np.ones((10, 2)), np.zeros(10), ["a", "b"])


# ------------------------------------------------------------------------------ built-in problems
def _builtin_chains():
    for name in PROBLEMS:
        yield f"target {name}", get_problem(name).chain(2000, seed=1)
    for name in ("gaussian_linear", "tension", "bimodal"):
        problem = get_analysis(name)
        for k in range(1, len(problem.datasets) + 1):
            for ds in itertools.combinations(problem.datasets, k):
                x = problem.sample_posterior(ds, 2000, seed=1)
                yield f"{name} {'+'.join(ds)}", Chain(problem.params, x, source=name)


def test_built_in_problems_pass_with_a_wide_margin():
    """Smallest 1 - R^2 measured: 1e-2 (banana); the SEMF posteriors (data not in the tests):
    5e-5."""
    for label, chain in _builtin_chains():
        r = residual_fractions(chain.samples, chain.weights, chain.params.names)
        assert min(r.values()) > 1000 * TOL, label
    check_degeneracy(chain, tolerance=TOL)  # the last one, through the guard itself
