"""Tests for flowprior.likelihoods: loading plug-ins and the checked Likelihood wrapper."""

from __future__ import annotations

import pickle
import sys
import textwrap

import numpy as np
import pytest

from flowprior.problems import analytic
from flowprior.errors import FlowpriorError, InputError
from flowprior.likelihoods import Likelihood, LikelihoodError, load_likelihood

PLUGIN = textwrap.dedent("""
    import dataclasses
    import numpy as np

    @dataclasses.dataclass
    class Scale:
        value: float = 1.0

    CALLS = []

    def loglike(theta, *, scale=1.0, shift=0.0):
        CALLS.append(theta.shape[0])
        return -0.5 * Scale(scale).value * np.sum((theta - shift) ** 2, axis=1)

    NOT_CALLABLE = 3
    """)


@pytest.fixture
def plugin_file(tmp_path):
    """A plug-in in a standalone .py file outside the repository."""
    path = tmp_path / "outside" / "my_likelihood.py"
    path.parent.mkdir()
    path.write_text(PLUGIN)
    return path


def one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ----------------------------------------------------------------- loading
def test_load_by_module_path():
    fn = load_likelihood("flowprior.problems.analytic:gaussian_linear")
    assert fn is analytic.gaussian_linear


def test_load_by_absolute_file_path(plugin_file):
    fn = load_likelihood(f"{plugin_file}:loglike")
    theta = np.array([[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(fn(theta, scale=2.0), [-5.0, 0.0])
    assert fn.__module__ in sys.modules  # registered: dataclasses and pickling work


def test_load_by_relative_file_path(plugin_file, tmp_path, monkeypatch):
    rel = "outside/my_likelihood.py:loglike"
    fn = load_likelihood(rel, base_dir=tmp_path)
    assert fn(np.ones((1, 3)))[0] == -1.5
    monkeypatch.chdir(tmp_path)  # default base: the current directory
    assert load_likelihood(rel)(np.ones((1, 2)))[0] == -1.0
    monkeypatch.chdir(plugin_file.parent)
    assert load_likelihood("my_likelihood.py:loglike")(np.ones((1, 1)))[0] == -0.5


def test_same_file_twice_gives_independent_consistent_modules(plugin_file):
    f1 = load_likelihood(f"{plugin_file}:loglike")
    f2 = load_likelihood(f"{plugin_file}:loglike")
    assert f1.__module__ == f2.__module__
    x = np.ones((2, 2))
    np.testing.assert_array_equal(f1(x), f2(x))


@pytest.mark.parametrize(
    "spec, needles",
    [
        ("flowprior.problems.analytic.gaussian_linear", ["expected 'package.module:function'"]),
        ("flowprior.problems.analytic:", ["expected 'package.module:function'"]),
        (":loglike", ["expected 'package.module:function'"]),
        ("no_such_module_xyz:f", ["module 'no_such_module_xyz' not found"]),
        ("flowprior.no_such_sub:f", ["module 'flowprior.no_such_sub' not found"]),
        ("flowprior.problems.analytic:no_such_function", ["has no attribute 'no_such_function'"]),
        ("flowprior.problems.analytic:ANALYSES", ["is not callable", "dict"]),
        ("not a module:f", ["neither a dotted module name nor a path"]),
        ("missing/dir/file.py:f", ["file not found", "file.py"]),
    ],
)
def test_load_errors(spec, needles):
    with pytest.raises(InputError) as info:
        load_likelihood(spec)
    one_line(info, repr(spec), *needles)


def test_load_errors_in_files(plugin_file, tmp_path):
    with pytest.raises(InputError) as info:
        load_likelihood(f"{plugin_file}:nope")
    one_line(info, "has no attribute 'nope'")
    with pytest.raises(InputError) as info:
        load_likelihood(f"{plugin_file}:NOT_CALLABLE")
    one_line(info, "is not callable", "int")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(theta:\n    pass\n")
    with pytest.raises(InputError) as info:
        load_likelihood(f"{broken}:f")
    one_line(info, "SyntaxError", "broken.py")
    needs = tmp_path / "needs_dep.py"
    needs.write_text("import no_such_dependency_xyz\ndef f(theta):\n    return theta[:, 0]\n")
    with pytest.raises(InputError) as info:
        load_likelihood(f"{needs}:f")
    one_line(info, "ModuleNotFoundError", "no_such_dependency_xyz")
    with pytest.raises(InputError):
        load_likelihood(None)


def test_module_with_a_missing_dependency_is_not_reported_as_missing(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg_with_dep_xyz"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import another_missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError) as info:
        load_likelihood("pkg_with_dep_xyz:f")
    msg = one_line(info, "importing module 'pkg_with_dep_xyz' failed", "another_missing_dep_xyz")
    assert "not found (is it installed" not in msg


# ----------------------------------------------------------------- the wrapper
def make(fn, **kw):
    kw.setdefault("dataset", "A")
    kw.setdefault("dim", 2)
    return Likelihood(fn, **kw)


def test_call_returns_float64_and_passes_a_c_contiguous_float64_copy():
    seen = {}

    def fn(theta, *, k):
        seen["dtype"], seen["c"], seen["shape"] = theta.dtype, theta.flags.c_contiguous, theta.shape
        out = k * theta.sum(axis=1).astype(np.float32)
        theta[:] = 99.0  # must not reach the caller
        return out

    lk = make(fn, kwargs={"k": 2})
    theta = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2))
    out = lk(theta)
    assert out.dtype == np.float64 and out.shape == (3,)
    np.testing.assert_array_equal(out, [2.0, 10.0, 18.0])
    assert seen == {"dtype": np.float64, "c": True, "shape": (3, 2)}
    np.testing.assert_array_equal(theta, np.arange(6).reshape(3, 2))
    single = lk(np.array([1.0, 2.0]))
    assert isinstance(single, float) and single == 6.0


def test_empty_batch_does_not_call_the_plugin():
    def fn(theta):
        raise AssertionError("called")

    lk = make(fn)
    out = lk(np.empty((0, 2)))
    assert out.shape == (0,) and out.dtype == np.float64
    assert lk.n_calls == 0


def test_n_calls_counts_points():
    lk = make(lambda theta: -np.sum(theta**2, axis=1))
    lk(np.zeros((5, 2)))
    lk(np.zeros((7, 2)))
    lk(np.zeros(2))
    lk(np.zeros((0, 2)))
    assert lk.n_calls == 13
    assert isinstance(lk.n_calls, int)


def test_plugin_that_raises():
    def fn(theta):
        return 1.0 / 0.0

    lk = make(fn, dataset="gamma_p")
    with pytest.raises(LikelihoodError) as info:
        lk(np.array([[0.25, -1.5], [3.0, 4.0]]))
    one_line(info, "dataset gamma_p", "ZeroDivisionError", "division by zero", "[0.25, -1.5]")
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert isinstance(info.value, FlowpriorError)
    assert lk.n_calls == 2  # the points were passed to the plug-in


@pytest.mark.parametrize(
    "ret, shape",
    [
        (lambda n: np.zeros((n, 1)), "(4, 1)"),
        (lambda n: np.zeros(n + 1), "(5,)"),
        (lambda n: 0.0, "()"),
        (lambda n: np.zeros((1, n)), "(1, 4)"),
    ],
)
def test_wrong_shape(ret, shape):
    lk = make(lambda theta: ret(theta.shape[0]), dataset="B")
    with pytest.raises(LikelihoodError) as info:
        lk(np.zeros((4, 2)))
    one_line(info, "dataset B", f"shape {shape}", "expected (4,)")


@pytest.mark.parametrize("ret", [None, "abc", [1 + 2j, 0, 0], {"a": 1}, [True, False, True]])
def test_non_numeric_results(ret):
    lk = make(lambda theta: ret, dataset="C")
    with pytest.raises(LikelihoodError) as info:
        lk(np.zeros((3, 2)))
    one_line(info, "dataset C", "expected float64 of shape (3,)")


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "+inf")])
def test_nan_and_plus_inf_name_the_first_bad_point(bad, word):
    def fn(theta):
        out = -theta[:, 0].copy()
        out[[3, 5]] = bad
        return out

    lk = make(fn, dataset="A")
    theta = np.column_stack([np.arange(8.0), np.arange(8.0) / 8])
    with pytest.raises(LikelihoodError) as info:
        lk(theta)
    one_line(info, "dataset A", word, "row 3", "[3.0, 0.375]", "2 bad of 8")


def test_minus_inf_is_allowed():
    lk = make(lambda theta: np.where(theta[:, 0] > 0, -np.inf, 0.0))
    out = lk(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert out[0] == -np.inf and out[1] == 0.0


def test_wrong_theta_dimension_is_a_value_error():
    lk = make(lambda theta: theta[:, 0], dim=3)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        lk(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        lk(np.zeros((2, 3, 1)))


def test_kwargs_are_checked_against_the_signature_and_copied():
    def fn(theta, *, scale):
        return scale["v"] * theta[:, 0]

    with pytest.raises(InputError) as info:
        make(fn, kwargs={"scael": {"v": 1}}, dataset="A")
    one_line(info, "dataset A: kwargs", "scael")
    with pytest.raises(InputError):
        make(fn)  # missing required keyword
    kw = {"scale": {"v": 2.0}}
    lk = make(fn, kwargs=kw)
    kw["scale"]["v"] = 100.0
    assert lk(np.ones(2)) == 2.0
    assert make(lambda theta, **kw: theta[:, 0], kwargs={"anything": 1})(np.ones(2)) == 1.0


def test_attributes_and_spec():
    lk = make(analytic.bimodal, dim=3, kwargs={"dataset": "A"}, dataset="A")
    assert (lk.dataset, lk.dim, lk.kwargs) == ("A", 3, {"dataset": "A"})
    assert lk.spec == "flowprior.problems.analytic:bimodal"
    assert "bimodal" in repr(lk)


# ----------------------------------------------------------------- from_config
def test_from_config_module_plugin_equals_the_analytic_problem():
    problem = analytic.get_analysis("tension", dim=4, offset=2.0)
    theta = problem.sample_posterior(("A", "B"), 6, seed=0)
    for k in problem.datasets:
        lk = Likelihood.from_config(problem.likelihood_entry(k), dataset=k, dim=4)
        assert lk.spec == "flowprior.problems.analytic:tension"
        np.testing.assert_array_equal(lk(theta), problem.loglike(k)(theta))


def test_from_config_file_plugin_outside_the_repo(plugin_file, tmp_path):
    entry = {"likelihood": "outside/my_likelihood.py:loglike", "kwargs": {"shift": 1.0}}
    lk = Likelihood.from_config(entry, dataset="A", dim=2, base_dir=tmp_path)
    assert lk.spec == "outside/my_likelihood.py:loglike"
    assert lk(np.array([1.0, 3.0])) == -2.0
    assert (
        Likelihood.from_config(
            {"likelihood": entry["likelihood"], "kwargs": None},
            dataset="A",
            dim=2,
            base_dir=tmp_path,
        )(np.zeros(2))
        == 0.0
    )


def test_from_config_errors(tmp_path):
    with pytest.raises(InputError) as info:
        Likelihood.from_config({"kwargs": {}}, dataset="A", dim=2)
    one_line(info, "dataset A: likelihood: missing key")
    with pytest.raises(InputError) as info:
        Likelihood.from_config({"likelihood": "m:f", "kwarg": {}}, dataset="A", dim=2)
    one_line(info, "dataset A: kwarg: unknown key")
    with pytest.raises(InputError) as info:
        Likelihood.from_config(
            {"likelihood": "nowhere.py:f"}, dataset="B", dim=2, base_dir=tmp_path
        )
    one_line(info, "dataset B: likelihood 'nowhere.py:f'", "file not found", str(tmp_path))
    with pytest.raises(InputError) as info:
        Likelihood.from_config("flowprior.problems.analytic:bimodal", dataset="B", dim=2)
    one_line(info, "dataset B", "expected a mapping")
    with pytest.raises(InputError) as info:
        Likelihood.from_config(
            {"likelihood": "flowprior.problems.analytic:bimodal", "kwargs": [1]}, dataset="B", dim=2
        )
    one_line(info, "dataset B: kwargs")
    with pytest.raises(InputError) as info:
        Likelihood.from_config(
            {"likelihood": "flowprior.problems.analytic:bimodal", "kwargs": {"datset": "A"}},
            dataset="B",
            dim=3,
        )
    one_line(info, "dataset B: kwargs", "datset")


def test_pickle_round_trip(plugin_file, tmp_path):
    for entry, dim in [
        ({"likelihood": f"{plugin_file}:loglike", "kwargs": {"scale": 3.0}}, 2),
        (analytic.get_analysis("bimodal").likelihood_entry("B"), 3),
    ]:
        lk = Likelihood.from_config(entry, dataset="A", dim=dim, base_dir=tmp_path)
        x = np.linspace(-1, 1, 3 * dim).reshape(3, dim)
        expected = lk(x)
        clone = pickle.loads(pickle.dumps(lk))
        np.testing.assert_array_equal(clone(x), expected)
        assert (clone.n_calls, clone.spec, clone.kwargs) == (6, lk.spec, lk.kwargs)
