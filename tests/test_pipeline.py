"""flowprior.pipeline: seeds, the joint likelihood, samplers from the registry, the summary."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from flowprior.errors import InputError
from flowprior.pipeline import ProductLikelihood, derive_seed
from flowprior.plan import joint_id, parse_stage, stage_id


def test_stage_ids_round_trip_and_joint_ids_are_canonical():
    assert stage_id(["A", "B", "C"]) == "A__B__C"
    assert parse_stage("A__B__C") == ["A", "B", "C"]
    assert joint_id(["B", "A"], ["A", "B", "C"]) == "A__B"
    with pytest.raises(InputError, match="may not contain"):
        stage_id(["A__x", "B"])


def test_derived_seeds_are_stable_and_distinct():
    a = derive_seed(1, "sequential", "A__B", "pocomc")
    assert a == derive_seed(1, "sequential", "A__B", "pocomc")
    others = {derive_seed(1, "sequential", "A__B", "emcee"), derive_seed(2, "sequential", "A__B", "pocomc"),
              derive_seed(1, "stage1", "A")}
    assert a not in others and len(others) == 3
    assert 0 <= a < 2**32


def test_product_likelihood_sums_and_skips_dead_points():
    calls = []

    def first(x):
        return np.where(x[:, 0] > 0, -x[:, 0], -np.inf)

    def second(x):
        calls.append(len(x))
        return -2.0 * x[:, 1]

    x = np.array([[1.0, 1.0], [-1.0, 5.0], [2.0, 0.5]])
    out = ProductLikelihood([first, second])(x)
    np.testing.assert_allclose(out, [-3.0, -np.inf, -3.0])
    assert calls == [2]  # the second factor never sees the point the first one rejected


def _log_normal(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi))


def test_flow_correction_recovers_the_joint_evidence_from_a_wrong_prior():
    """1-D closed form: p_A = N(0, 1) on a wide box, the 'flow' q = N(0.3, 1.2^2), L_B = N(1, 1).

    The stage samples L_B q exactly; log Z_(B|q) + log E[L_A pi / q] must equal log Z_AB.
    """
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    vol = 40.0
    mq, sq, mb, sb = 0.3, 1.2, 1.0, 1.0
    post_var = 1 / (1 / sq**2 + 1 / sb**2)
    post_mean = post_var * (mq / sq**2 + mb / sb**2)
    rng = np.random.default_rng(3)
    x = rng.normal(post_mean, np.sqrt(post_var), size=(200_000, 1))
    chain = Chain(space, x, log_prior=_log_normal(x[:, 0], mq, sq))

    def loglike_a(t):  # L_A with Z_A = 1/vol: p_A = N(0, 1)
        return _log_normal(t[:, 0], 0.0, 1.0)

    corr = flow_correction(chain, previous=[loglike_a])
    log_z_b_given_q = _log_normal(mb, mq, np.hypot(sq, sb))
    log_z_ab = _log_normal(mb, 0.0, np.hypot(1.0, sb)) - np.log(vol)
    total = log_z_b_given_q + corr["log_mean_ratio"]
    assert abs(total - log_z_ab) < 4 * corr["log_mean_ratio_err"]
    assert 0 < corr["log_mean_ratio_err"] < 0.01
    # the uncorrected chain log Z_A + log Z_(B|q) is off by a known amount the check detects
    assert abs(np.log(1 / vol) + log_z_b_given_q - log_z_ab) > 20 * corr["log_mean_ratio_err"]
    assert 0.5 < corr["ess_fraction"] < 1.0
    assert corr["n_likelihood_calls"] == 200_000


def test_flow_correction_of_an_exact_prior_is_the_previous_evidence():
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    x = np.random.default_rng(1).normal(0.5, 0.7, size=(1000, 1))
    chain = Chain(space, x, weights=np.linspace(1, 2, 1000), log_prior=_log_normal(x[:, 0], 0, 1))
    corr = flow_correction(chain, previous=[lambda t: _log_normal(t[:, 0], 0.0, 1.0)])
    assert corr["log_mean_ratio"] == pytest.approx(np.log(1 / 40.0), abs=1e-12)
    assert corr["log_mean_ratio_err"] == pytest.approx(0.0, abs=1e-12)
    assert corr["ess_fraction"] == pytest.approx(1.0)


def test_flow_correction_names_a_non_finite_ratio():
    from flowprior.chains import Chain
    from flowprior.params import ParameterSpace
    from flowprior.pipeline import flow_correction

    space = ParameterSpace(("x",), [-20.0], [20.0])
    x = np.zeros((3, 1))
    chain = Chain(space, x, log_prior=np.zeros(3))
    with pytest.raises(InputError, match="sample 1"):
        flow_correction(chain, previous=[lambda t: np.array([0.0, np.nan, 0.0])])


# ------------------------------------------------------------------ samplers from the registry
def _space():
    from flowprior.params import ParameterSpace

    return ParameterSpace(("a", "b"), [-5.0, -5.0], [5.0, 5.0])


def _gauss(x):
    return -0.5 * np.sum((x - 0.5) ** 2, axis=1)


def test_run_stage1_runs_the_named_sampler_with_the_derived_seed():
    from flowprior.pipeline import run_stage1
    from flowprior.priors import BoxPrior
    from flowprior.samplers import EmceeSettings, run_emcee

    params = _space()
    settings = {"walkers": 8, "steps": 200}
    entry = {"likelihood": "flowprior.problems.analytic:gaussian_linear",
             "kwargs": {"dataset": "A", "dim": 2}}
    run = run_stage1(dataset="A", entry=entry, params=params, sampler="emcee",
                     settings=settings, seed=11)
    job_seed = derive_seed(11, "stage1", "A")
    from flowprior.problems.analytic import gaussian_linear

    direct = run_emcee(
        prior=BoxPrior(params, seed=job_seed),
        loglike=lambda x: gaussian_linear(x, dataset="A", dim=2),
        settings=EmceeSettings.from_dict(settings, source="emcee"),
        seed=job_seed,
    )
    assert run.info["sampler"] == "emcee" and run.info["seed"] == job_seed
    np.testing.assert_array_equal(run.chain.samples, direct.chain.samples)


def test_run_stage1_of_a_chain_dataset_applies_its_burn_in(tmp_path):
    from flowprior.chains import Chain, write_chain
    from flowprior.pipeline import run_stage1

    params = _space()
    x = np.random.default_rng(3).uniform(-1.0, 1.0, size=(40, 2))
    path = tmp_path / "earlier.csv"
    write_chain(Chain(params, x, source="earlier"), path)
    for burn_in, kept in ((None, x), (10, x[10:]), (0.25, x[10:])):
        entry = {"chain": str(path), "burn_in": burn_in}
        run = run_stage1(dataset="A", entry=entry, params=params, sampler="chain",
                         settings=None, seed=1)
        np.testing.assert_array_equal(run.chain.samples, kept)
        assert run.info["n_samples"] == len(kept)
    with pytest.raises(InputError, match=r"earlier\.csv: burn_in: "):
        run_stage1(dataset="A", entry={"chain": str(path), "burn_in": 40}, params=params,
                   sampler="chain", settings=None, seed=1)


def test_run_stage1_and_joint_name_an_unknown_sampler():
    from flowprior.pipeline import run_joint, run_stage1

    entry = {"likelihood": "flowprior.problems.analytic:gaussian_linear",
             "kwargs": {"dataset": "A", "dim": 2}}
    with pytest.raises(InputError, match="samplers: nested: unknown sampler; known: pocomc"):
        run_stage1(dataset="A", entry=entry, params=_space(), sampler="nested", settings={},
                   seed=1)
    with pytest.raises(InputError, match="samplers: nested: unknown sampler"):
        run_joint(stage="A", datasets={"A": entry}, params=_space(), sampler="nested",
                  settings={}, seed=1)


def test_run_stage1_reports_invalid_settings_under_the_sampler_name():
    from flowprior.pipeline import run_stage1

    entry = {"likelihood": "flowprior.problems.analytic:gaussian_linear",
             "kwargs": {"dataset": "A", "dim": 2}}
    with pytest.raises(InputError, match="^emcee: walkrs: unknown key"):
        run_stage1(dataset="A", entry=entry, params=_space(), sampler="emcee",
                   settings={"walkrs": 8}, seed=1)


@pytest.fixture
def transform_sampler():
    """A registered sampler that needs a prior transform (removed afterwards)."""
    import dataclasses

    from flowprior.samplers import get_sampler, register_sampler, unregister_sampler

    spec = dataclasses.replace(
        get_sampler("emcee"), name="cube_only", needs_prior_transform=True, label="cube"
    )
    register_sampler(spec)
    yield spec
    unregister_sampler("cube_only")


class DensityOnlyPrior:
    """A user's prior with a density and samples but no unit-cube transform."""

    def __init__(self, space):
        from flowprior.priors import BoxPrior

        self._box = BoxPrior(space)
        self.dim, self.bounds = self._box.dim, self._box.bounds

    def logpdf(self, x):
        return self._box.logpdf(x)

    def rvs(self, size):
        return self._box.rvs(size)


def test_a_sampler_needing_a_prior_transform_is_refused_a_prior_without_one(transform_sampler):
    from flowprior.pipeline import run_sampler

    with pytest.raises(InputError, match="^stage1: A: cube_only: this sampler needs a prior "
                                         "transform .* which DensityOnlyPrior does not provide"):
        run_sampler("cube_only", prior=DensityOnlyPrior(_space()), loglike=_gauss, settings={},
                    seed=1, where="stage1: A")


def test_box_and_flow_priors_provide_the_prior_transform():
    from flowprior.priors import BoxPrior, FlowPrior

    assert callable(BoxPrior.prior_transform) and callable(FlowPrior.prior_transform)


# ------------------------------------------------------------------ evidence bookkeeping
def _write_run(tmp_path, name, *, sampler, log_z, err, shift=0.0, extra=None):
    from flowprior.chains import Chain
    from flowprior.samplers import SamplerRun

    x = np.random.default_rng(zlib.crc32(name.encode())).normal(shift, 1.0, size=(400, 2))
    run = SamplerRun(
        chain=Chain(_space(), x),
        info={"sampler": sampler, "log_evidence": log_z, "log_evidence_err": err,
              **(extra or {})},
    )
    files = {"samples": str(tmp_path / f"{name}.parquet"), "run": str(tmp_path / f"{name}.json")}
    run.write(samples=files["samples"], run_json=files["run"])
    return files


def _summary(tmp_path, sequential_runs, *, stage1_sampler="pocomc", stage1_err=0.3,
             joint_err=0.1, correction=None):
    """An A -> B analysis: stage-1 runs with log Z_A = -3 +- 0.3, joint log Z = -4.2 +- 0.1.

    ``correction``: a ``flow_correction`` record put into every sequential run.
    """
    from flowprior.pipeline import summarise_analysis

    stage1 = {d: _write_run(tmp_path, f"s1_{d}", sampler=stage1_sampler, log_z=-3.0,
                            err=stage1_err) for d in ("A", "B")}
    joint = {"A__B": _write_run(tmp_path, "joint", sampler="pocomc", log_z=-4.2, err=joint_err)}
    extra = {"flow_correction": correction} if correction else None
    sequential = {"A__B": {
        s: _write_run(tmp_path, f"seq_{s}", sampler=s, log_z=z, err=e, extra=extra)
        for s, (z, e) in sequential_runs.items()
    }}
    return summarise_analysis(
        analysis="toy", names=["a", "b"], stage1=stage1, flows={}, sequential=sequential,
        joint=joint, sequences=[["A", "B"]], dataset_order=["A", "B"],
    )


def test_evidence_bookkeeping_of_the_default_samplers(tmp_path):
    out = _summary(tmp_path, {"pocomc": (-1.0, 0.4), "emcee": (None, None)})
    (entry,) = out["sequences"]
    chain = entry["sequential_evidence"]
    assert chain["terms"] == [{"stage": "A", "log_evidence": -3.0},
                              {"stage": "A__B", "log_evidence": -1.0}]
    assert "err_unknown" not in chain
    assert chain["log_evidence"] == pytest.approx(-4.0)
    assert chain["log_evidence_err"] == pytest.approx(0.5)
    check = entry["evidence_check"]
    assert check["sequential_log_evidence"] == pytest.approx(-4.0)
    assert check["joint_log_evidence"] == -4.2
    assert check["difference"] == pytest.approx(0.2)
    assert check["n_sigma"] == pytest.approx(0.2 / np.hypot(0.5, 0.1))
    assert check["skipped"] is None
    # one evidence-giving sampler: no per-sampler entries (summary.json keys as before)
    assert "sequential_evidence_by_sampler" not in entry
    assert "evidence_check_by_sampler" not in entry
    assert set(entry["vs_joint"]) == {"pocomc", "emcee"}


def test_evidence_bookkeeping_uses_every_sampler_that_reports_an_evidence(tmp_path):
    runs = {"emcee": (None, None), "toy": (-1.3, 0.2), "pocomc": (-1.0, 0.4)}
    out = _summary(tmp_path, runs, stage1_sampler="toy")
    (entry,) = out["sequences"]
    by = entry["sequential_evidence_by_sampler"]
    assert list(by) == ["toy", "pocomc"]  # config order; emcee gives none
    assert by["toy"]["log_evidence"] == pytest.approx(-4.3)
    assert by["toy"]["log_evidence_err"] == pytest.approx(np.hypot(0.3, 0.2))
    assert by["pocomc"]["log_evidence"] == pytest.approx(-4.0)
    assert entry["sequential_evidence"] == by["toy"]  # the first one is the headline
    checks = entry["evidence_check_by_sampler"]
    assert list(checks) == ["toy", "pocomc"]
    assert checks["toy"]["difference"] == pytest.approx(-0.1)
    assert checks["pocomc"]["difference"] == pytest.approx(0.2)
    assert entry["evidence_check"] == checks["toy"]


def test_no_evidence_chain_without_a_sequential_evidence(tmp_path):
    out = _summary(tmp_path, {"emcee": (None, None)})
    (entry,) = out["sequences"]
    assert "sequential_evidence" not in entry and "evidence_check" not in entry


# An importance check of the flow: log E[r] = -2.9 +- 0.05 (log Z_A = -3: the flow's bias on
# the raw chain is log Z_A - log E[r] = -0.1, i.e. the raw chain is 0.1 nats too low).
_CORRECTION = {"log_mean_ratio": -2.9, "log_mean_ratio_err": 0.05, "ess_fraction": 1.048,
               "n_points": 400, "n_likelihood_calls": 400}


def test_flow_corrected_evidence_and_the_sign_of_flow_bias(tmp_path):
    out = _summary(tmp_path, {"pocomc": (-1.0, 0.4)}, correction=_CORRECTION)
    (entry,) = out["sequences"]
    chain = entry["sequential_evidence"]
    fc = chain["flow_corrected"]
    assert fc["log_evidence"] == pytest.approx(-1.0 - 2.9)
    assert fc["log_evidence_err"] == pytest.approx(np.hypot(0.4, 0.05))
    # documented sign (docs/workflow.md): raw chain minus corrected total, log Z_A - log E[r]
    assert fc["flow_bias"] == pytest.approx(-3.0 - (-2.9))
    assert chain["log_evidence"] - fc["flow_bias"] == pytest.approx(fc["log_evidence"])
    assert fc["ess_fraction"] == 1.048  # passed through, not capped at 1
    check = entry["evidence_check"]["flow_corrected"]
    assert check["difference"] == pytest.approx(-3.9 + 4.2)
    assert check["n_sigma"] == pytest.approx(0.3 / np.hypot(np.hypot(0.4, 0.05), 0.1))
    assert check["skipped"] is None


# Which run reports no log Z error (pocoMC with precondition: false): the sequential one, the
# stage-1 one, the joint one, or all; with and without a flow correction.
_UNKNOWN = {
    "sequential": dict(seq_err=None, stage1_err=0.3, joint_err=0.1,
                       chain_unknown=["A__B"], chain_err_known=False, fc_err_known=False,
                       who="A__B"),
    "stage1": dict(seq_err=0.4, stage1_err=None, joint_err=0.1,
                   chain_unknown=["A"], chain_err_known=False, fc_err_known=True,
                   who="A"),
    "joint": dict(seq_err=0.4, stage1_err=0.3, joint_err=None,
                  chain_unknown=None, chain_err_known=True, fc_err_known=True,
                  who="joint A__B"),
    "all": dict(seq_err=None, stage1_err=None, joint_err=None,
                chain_unknown=["A", "A__B"], chain_err_known=False, fc_err_known=False,
                who="A, A__B, joint A__B"),
}


@pytest.mark.parametrize("corrected", [False, True], ids=["raw", "flow_corrected"])
@pytest.mark.parametrize("case", list(_UNKNOWN))
def test_unknown_evidence_error_stays_unknown(tmp_path, case, corrected):
    import json

    c = _UNKNOWN[case]
    out = _summary(tmp_path, {"pocomc": (-1.0, c["seq_err"])}, stage1_err=c["stage1_err"],
                   joint_err=c["joint_err"], correction=_CORRECTION if corrected else None)
    (entry,) = out["sequences"]
    chain = entry["sequential_evidence"]
    assert chain["log_evidence"] == pytest.approx(-4.0)  # the value is known either way
    if c["chain_err_known"]:
        assert chain["log_evidence_err"] == pytest.approx(0.5)
        assert "err_unknown" not in chain
    else:
        assert chain["log_evidence_err"] is None  # never 0.0
        assert chain["err_unknown"] == c["chain_unknown"]
    check = entry["evidence_check"]
    assert check["difference"] == pytest.approx(0.2)
    assert check["n_sigma"] is None and check["combined_error"] is None
    assert check["skipped"] == (
        f"no log Z error reported by {c['who']} (e.g. pocoMC with precondition: false)")
    if corrected:
        fc, fcheck = chain["flow_corrected"], check["flow_corrected"]
        assert fc["log_evidence"] == pytest.approx(-3.9)
        if c["fc_err_known"]:
            # the corrected total uses only the last run's error and the ratio's
            assert fc["log_evidence_err"] == pytest.approx(np.hypot(0.4, 0.05))
        else:
            assert fc["log_evidence_err"] is None
        if c["fc_err_known"] and c["joint_err"] is not None:
            assert fcheck["n_sigma"] == pytest.approx(
                (-3.9 + 4.2) / np.hypot(np.hypot(0.4, 0.05), 0.1))
            assert fcheck["skipped"] is None
        else:
            assert fcheck["n_sigma"] is None and fcheck["combined_error"] is None
            assert "no log Z error" in fcheck["skipped"]
    else:
        assert "flow_corrected" not in chain and "flow_corrected" not in check
    # JSON: null, never a made-up 0 (and valid JSON: no NaN)
    text = json.dumps(out, allow_nan=False)
    back = json.loads(text)["sequences"][0]["evidence_check"]
    assert back["n_sigma"] is None and back["combined_error"] is None


def test_zero_combined_error_is_a_skipped_check_not_a_division(tmp_path):
    out = _summary(tmp_path, {"pocomc": (-1.0, 0.0)}, stage1_err=0.0, joint_err=0.0)
    check = out["sequences"][0]["evidence_check"]
    assert out["sequences"][0]["sequential_evidence"]["log_evidence_err"] == 0.0  # reported 0
    assert check["combined_error"] == 0.0 and check["n_sigma"] is None
    assert check["skipped"] == "combined log Z error is 0"
