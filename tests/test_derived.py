"""Derived quantities (flowprior.derived) and reference chains (flowprior.pipeline.run_reference):
exact values on every run, checked plug-ins, one-line errors, and the chain files a job reads."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from flowprior.chains import Chain, chain_input_files, read_chain, write_chain
from flowprior.derived import DerivedQuantities, with_derived_columns
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.pipeline import derived_quantities, run_reference, run_stage1

SPACE = ParameterSpace(("omegam", "sigma8"), np.array([0.1, 0.4]), np.array([0.6, 1.2]))
PLUGIN = textwrap.dedent(
    '''
    import numpy as np

    def s8(theta, *, pivot=0.3):
        return {"S8": theta[:, 1] * np.sqrt(theta[:, 0] / pivot)}

    def frame(theta):
        import pandas as pd
        return pd.DataFrame({"S8": theta[:, 1], "om_h": theta[:, 0] / 2})

    def short(theta):
        return {"S8": theta[:-1, 1]}

    def nan_at_high_omegam(theta):
        return {"S8": np.where(theta[:, 0] > 0.55, np.nan, theta[:, 1])}

    def nan_above_0p3(theta):
        return {"S8": np.where(theta[:, 0] > 0.3, np.nan, theta[:, 1])}

    def clash(theta):
        return {"sigma8": theta[:, 1]}

    def weight(theta):
        return {"weight": theta[:, 1]}

    def bad_name(theta):
        return {"S 8": theta[:, 1]}

    def empty(theta):
        return {}

    def not_a_mapping(theta):
        return theta[:, 1]

    def raises(theta):
        raise ValueError("no S8 today")
    '''
)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "derived.py"
    path.write_text(PLUGIN)
    return path


def _chain(n=500, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(0.2, 0.5, n), rng.uniform(0.6, 1.0, n)])
    return Chain(SPACE, x, rng.uniform(0.5, 1.5, n), source="mem")


def test_values_are_the_function_of_every_sample_and_round_trip(tmp_path, plugin):
    fn = DerivedQuantities.from_config(
        {"function": f"{plugin}:s8", "kwargs": {"pivot": 0.25}}, names=SPACE.names,
        source="config: analyses: a: derived",
    )  # fmt: skip
    chain = fn.apply(_chain())
    expected = chain.samples[:, 1] * np.sqrt(chain.samples[:, 0] / 0.25)
    np.testing.assert_array_equal(chain.derived["S8"], expected)
    path = tmp_path / "s.parquet"
    write_chain(chain, path)
    back = read_chain(path, SPACE)
    np.testing.assert_array_equal(back.derived["S8"], expected)
    assert back.sha256() == chain.sha256()
    # a DataFrame works too, and its column order is kept
    assert list(DerivedQuantities.from_config(f"{plugin}:frame", names=SPACE.names,
                                              source="d")(chain.samples)) == ["S8", "om_h"]


@pytest.mark.parametrize(
    "name, key, message",
    [
        ("short", "'S8'", "returned shape (499,) for 500 samples"),
        ("nan_at_high_omegam", "'S8'", "nan at sample"),
        ("clash", "'sigma8'", "is a parameter of the analysis"),
        ("weight", "'weight'", "is reserved"),
        ("bad_name", "'S 8'", "must be a Python identifier"),
        ("empty", None, "non-empty mapping"),
        ("not_a_mapping", None, "non-empty mapping"),
        ("raises", None, "raised ValueError: no S8 today"),
    ],
)
def test_a_bad_function_is_a_one_line_error_naming_derived(plugin, name, key, message):
    fn = DerivedQuantities.from_config(
        f"{plugin}:{name}", names=SPACE.names, source="config: analyses: a: derived"
    )
    x = np.array([[0.3, 0.8]] * 250 + [[0.58, 0.8]] * 250)
    with pytest.raises(InputError) as exc:
        fn(x)
    text = str(exc.value)
    assert "\n" not in text and text.startswith("config: analyses: a: derived (")
    assert message in text and (key is None or key in text), text
    if name == "nan_at_high_omegam":  # the first bad sample, named by its parameters
        assert "at sample 250 (omegam=0.58, sigma8=0.8); 250 non-finite" in text


def test_the_probe_stops_a_job_before_its_sampler_runs(tmp_path, plugin):
    """`derived_quantities` evaluates at three points of the box: a job fails at once."""
    with pytest.raises(InputError, match="returned shape"):
        derived_quantities(f"{plugin}:short", SPACE)
    with pytest.raises(InputError, match="derived.*no attribute 'missing'"):
        derived_quantities(f"{plugin}:missing", SPACE)
    assert derived_quantities(None, SPACE) is None
    # a quantity undefined where the posterior may never go passes the probe (NaN at two of
    # the three probe points); the samples are checked instead
    fn = derived_quantities(f"{plugin}:nan_above_0p3", SPACE)
    assert fn(np.array([[0.25, 0.8]]))["S8"].tolist() == [0.8]
    with pytest.raises(InputError, match="nan at sample 0"):
        fn(np.array([[0.35, 0.8]]))


def test_stage1_chain_dataset_and_reference_carry_the_derived_quantities(tmp_path, plugin):
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.uniform(0.2, 0.5, 300), rng.uniform(0.6, 1.0, 300)])
    pd.DataFrame({"omegam": x[:, 0], "sigma8": x[:, 1], "h": 0.7 + 0 * x[:, 0]}).to_csv(
        tmp_path / "ref.csv", index=False
    )
    run = run_reference(entry={"chain": str(tmp_path / "ref.csv"), "burn_in": 100},
                        params=SPACE, stage="A__B", derived=f"{plugin}:s8")  # fmt: skip
    assert run.info["sampler"] == "reference" and run.info["stage"] == "A__B"
    assert run.info["log_evidence"] is None and run.info["derived"]["names"] == ["S8"]
    np.testing.assert_array_equal(run.chain.samples, x[100:])
    np.testing.assert_array_equal(run.chain.derived["S8"], x[100:, 1] * np.sqrt(x[100:, 0] / 0.3))
    stage1 = run_stage1(dataset="A", entry={"chain": str(tmp_path / "ref.csv")}, params=SPACE,
                        sampler="pocomc", settings=None, seed=0,
                        derived=f"{plugin}:s8")  # fmt: skip
    assert stage1.info["sampler"] == "chain" and list(stage1.chain.derived) == ["S8"]


def test_a_reference_lacking_a_parameter_names_the_file_and_column(tmp_path):
    pd.DataFrame({"omegam": [0.3, 0.31]}).to_csv(tmp_path / "ref.csv", index=False)
    with pytest.raises(InputError) as exc:
        run_reference(entry={"chain": str(tmp_path / "ref.csv")}, params=SPACE, stage="A__B")
    text = str(exc.value)
    assert "\n" not in text and "ref.csv" in text and "'sigma8'" in text, text


def test_derived_columns_become_axes_common_to_all_chains():
    a, b = _chain(seed=1), _chain(seed=2)
    a = Chain(a.params, a.samples, a.weights, derived={"S8": a.samples[:, 1], "x": a.samples[:, 0]})
    b = Chain(b.params, b.samples, b.weights, derived={"S8": b.samples[:, 1] + 1})
    ga, gb = with_derived_columns([a, b])
    assert ga.params.names == ("omegam", "sigma8", "S8") and list(ga.derived) == ["x"]
    np.testing.assert_array_equal(gb.samples[:, 2], b.samples[:, 1] + 1)
    lo, hi = ga.params.lower[2], ga.params.upper[2]
    assert lo < min(a.samples[:, 1].min(), b.samples[:, 1].min() + 1)
    assert hi > gb.samples[:, 2].max()
    assert with_derived_columns([_chain(), _chain(seed=3)])[0].params is SPACE


def test_chain_input_files_of_a_getdist_root_and_a_file(tmp_path):
    from getdist import MCSamples

    rng = np.random.default_rng(0)
    MCSamples(samples=[rng.uniform(0.2, 0.5, (5, 2)) for _ in range(3)],
              loglikes=[np.ones(5)] * 3, names=["omegam", "sigma8"],
              ranges={"omegam": [0.1, 0.6], "sigma8": [0.4, 1.2]}).saveChainsAsText(
        str(tmp_path / "root"))  # fmt: skip
    files = [f.replace(str(tmp_path) + "/", "") for f in chain_input_files(tmp_path / "root")]
    assert files == ["root_1.txt", "root_2.txt", "root_3.txt", "root.paramnames", "root.ranges"]
    one = chain_input_files(tmp_path / "root_2.txt")
    assert [f.replace(str(tmp_path) + "/", "") for f in one] == [
        "root_2.txt", "root.paramnames", "root.ranges"]  # fmt: skip
    assert chain_input_files(tmp_path / "nothing") == [str(tmp_path / "nothing")]


@pytest.mark.parametrize("name", ["weight", "log_posterior", "omegam"])
def test_a_chain_refuses_a_derived_column_named_like_a_column_of_its_own(name):
    """A derived column named `weight`, a log column or a parameter would be mislabelled on a
    round trip through the chain file: refused, naming it."""
    c = _chain(n=5)
    with pytest.raises(InputError, match=f"derived '{name}'"):
        Chain(c.params, c.samples, c.weights, derived={name: c.samples[:, 0]})
