"""Sampler runners: accuracy against closed forms, hygiene, counting, I/O, settings."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flowprior.chains import Chain
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.priors import BoxPrior
from flowprior.samplers import (
    EmceeSettings,
    PocoMCSettings,
    SamplerError,
    SamplerRun,
    get_sampler,
    register_sampler,
    run_emcee,
    run_pocomc,
    sampler_names,
    unregister_sampler,
)

# --------------------------------------------------------------------------- test problem
# L(theta) = exp(OFFSET) * exp(-1/2 (theta - MEAN)^T COV^-1 (theta - MEAN)), uniform prior on
# BOX: the posterior is N(MEAN, COV) (truncation < 1e-9) and
# log Z = OFFSET + log(2 pi) + 1/2 log det COV - log V.

MEAN = np.array([0.5, -1.0])
SD = np.array([0.4, 0.6])
RHO = 0.6
COV = np.array([[SD[0] ** 2, RHO * SD[0] * SD[1]], [RHO * SD[0] * SD[1], SD[1] ** 2]])
PREC = np.linalg.inv(COV)
OFFSET = -3.0
SPACE = ParameterSpace(("a", "b"), [-5.0, -4.0], [5.0, 3.0])
LOG_Z = OFFSET + np.log(2 * np.pi) + 0.5 * np.log(np.linalg.det(COV)) - SPACE.log_volume

SMALL_POCO = dict(n_effective=256, n_active=128, n_total=1024, n_evidence=1024)
TINY_POCO = dict(n_effective=64, n_active=32, n_total=128, n_evidence=256, train_epochs=100)


def gauss_loglike(x: np.ndarray) -> np.ndarray:
    d = x - MEAN
    return OFFSET - 0.5 * np.einsum("ni,ij,nj->n", d, PREC, d)


class Recorder:
    """A vectorised likelihood that remembers every point it was asked about."""

    def __init__(self, fn=gauss_loglike):
        self.fn = fn
        self.batches: list[np.ndarray] = []

    def __call__(self, x):
        self.batches.append(np.array(x, copy=True))
        return self.fn(x)

    @property
    def points(self) -> np.ndarray:
        return np.concatenate(self.batches) if self.batches else np.empty((0, 2))


def weighted_moments(chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    w = chain.normalized_weights
    m = w @ chain.samples
    return m, np.sqrt(w @ (chain.samples - m) ** 2)


def _global_state():
    return torch.get_num_threads(), torch.get_rng_state().clone(), np.random.get_state()


@pytest.fixture(scope="module")
def poco_run():
    """One small pocoMC run on the test problem (~6 s), with the global state around it."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # != the threads pocoMC is given, so a leak would show
    try:
        before = _global_state()
        rec = Recorder()
        run = run_pocomc(
            prior=BoxPrior(SPACE, seed=0),
            loglike=rec,
            settings=PocoMCSettings(**SMALL_POCO),
            seed=11,
            threads=1,
        )
        after = _global_state()
    finally:
        torch.set_num_threads(old_threads)
    return run, rec, before, after


# --------------------------------------------------------------------------- pocoMC


def test_pocomc_posterior_matches_closed_form(poco_run):
    run, *_ = poco_run
    mean, sd = weighted_moments(run.chain)
    assert run.chain.ess > 500
    np.testing.assert_array_less(np.abs(mean - MEAN), 0.15 * SD)
    np.testing.assert_array_less(np.abs(sd / SD - 1), 0.1)
    w = run.chain.normalized_weights
    cov = (run.chain.samples - mean).T @ ((run.chain.samples - mean) * w[:, None])
    assert abs(cov[0, 1] / np.prod(sd) - RHO) < 0.1


def test_pocomc_evidence_matches_closed_form(poco_run):
    run, *_ = poco_run
    err = run.info["log_evidence_err"]
    assert err is not None and err > 0
    # 4 of pocoMC's own standard errors, nothing added (was 3 err + 0.1 nats)
    assert abs(run.log_evidence - LOG_Z) < 4 * err, (run.log_evidence - LOG_Z, err)


def test_pocomc_leaves_global_state_alone(poco_run):
    _, _, before, after = poco_run
    assert after[0] == before[0] == 2
    assert torch.equal(after[1], before[1])
    for a, b in zip(after[2], before[2]):
        assert np.array_equal(a, b)


def test_pocomc_counts_and_columns(poco_run):
    run, rec, *_ = poco_run
    assert run.info["n_likelihood_calls"] == len(rec.points) > 0
    assert run.info["diagnostics"]["pocomc_calls"] == len(rec.points)
    assert np.all(SPACE.contains(rec.points))  # pocoMC only asks inside the prior box
    chain = run.chain
    assert chain.params == SPACE
    np.testing.assert_allclose(chain.log_likelihood, gauss_loglike(chain.samples), atol=1e-12)
    np.testing.assert_allclose(chain.log_prior, -SPACE.log_volume)
    assert chain.weights.max() == 1.0 and chain.weights.std() > 0  # importance weights kept
    assert run.info["diagnostics"]["ess"] == pytest.approx(chain.ess)
    info = run.info
    assert info["sampler"] == "pocomc" and info["seed"] == 11
    assert info["settings"] == PocoMCSettings(**SMALL_POCO).to_dict()
    assert set(info["versions"]) == {"pocomc", "numpy", "torch"}
    assert info["wall_seconds"] > 0
    assert info["diagnostics"]["beta_final"] == 1.0
    assert info["diagnostics"]["n_iterations"] > info["diagnostics"]["n_warmup_iterations"]


def test_pocomc_reproducible_and_independent_of_prior_stream():
    prior = BoxPrior(SPACE, seed=0)
    kwargs = dict(loglike=gauss_loglike, settings=PocoMCSettings(**TINY_POCO), seed=5)
    first = run_pocomc(prior=prior, **kwargs)
    second = run_pocomc(prior=prior, **kwargs)  # the prior's own stream has moved on
    assert first.chain.sha256() == second.chain.sha256()
    assert first.log_evidence == second.log_evidence


def test_pocomc_rejects_bad_likelihood_output():
    prior = BoxPrior(SPACE, seed=0)
    settings = PocoMCSettings(**TINY_POCO)
    with pytest.raises(SamplerError, match="NaN|nan"):
        run_pocomc(
            prior=prior, loglike=lambda x: np.full(len(x), np.nan), settings=settings, seed=1
        )
    with pytest.raises(SamplerError, match="shape"):
        run_pocomc(prior=prior, loglike=lambda x: np.zeros((len(x), 1)), settings=settings, seed=1)


def test_pocomc_restores_state_after_error():
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # != the threads pocoMC is given, so a leak would show
    try:
        before = _global_state()

        def boom(x):
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            run_pocomc(
                prior=BoxPrior(SPACE),
                loglike=boom,
                settings=PocoMCSettings(**TINY_POCO),
                seed=1,
                threads=1,
            )
        after = _global_state()
    finally:
        torch.set_num_threads(old_threads)
    assert before[0] == 2
    assert after[0] == before[0]
    assert torch.equal(after[1], before[1])
    assert all(np.array_equal(a, b) for a, b in zip(after[2], before[2]))


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True])
def test_invalid_seed(bad):
    with pytest.raises(InputError, match="seed"):
        run_pocomc(
            prior=BoxPrior(SPACE), loglike=gauss_loglike, settings=PocoMCSettings(), seed=bad
        )
    with pytest.raises(InputError, match="seed"):
        run_emcee(prior=BoxPrior(SPACE), loglike=gauss_loglike, settings=EmceeSettings(), seed=bad)


# --------------------------------------------------------------------------- emcee


def test_emcee_posterior_matches_closed_form():
    run = run_emcee(
        prior=BoxPrior(SPACE, seed=0),
        loglike=gauss_loglike,
        settings=EmceeSettings(steps=2000),
        seed=3,
    )
    mean, sd = weighted_moments(run.chain)
    np.testing.assert_array_less(np.abs(mean - MEAN), 0.15 * SD)
    np.testing.assert_array_less(np.abs(sd / SD - 1), 0.1)
    d = run.info["diagnostics"]
    assert d["converged"] is True
    assert 0.2 < d["acceptance_fraction"] < 0.9
    assert run.chain.n == d["n_samples"] == 32 * ((2000 - d["burn_in"]) // d["thin"])
    assert run.log_evidence is None and run.info["log_evidence_err"] is None
    assert np.all(run.chain.weights == 1.0)
    # What burn-in and thinning are for, checked on the samples (not re-derived from tau).
    # emcee's flat chain is step-major: (kept steps, walkers, dim).
    x = run.chain.samples.reshape(-1, 32, 2)
    # Burn-in: the walkers start spread over the prior box; at the first kept step they are
    # already distributed as the posterior: mean within 4 SE (SD / sqrt(32)) and sd within
    # 4 SE (SD / sqrt(2 * 31)) (measured 1.4 and 0.8 SE). Without burn-in they are not.
    _assert_stationary(x[0])
    raw = run_emcee(prior=BoxPrior(SPACE, seed=0), loglike=gauss_loglike,
                    settings=EmceeSettings(steps=2000, burn_in=0, thin=1), seed=3)
    first = raw.chain.samples.reshape(-1, 32, 2)
    with pytest.raises(AssertionError):
        _assert_stationary(first[0])
    # Thinning by about half the autocorrelation time leaves kept samples correlated by about
    # e^-1 = 0.37 at lag 1 (an AR(1) chain with integrated time tau has rho(k) ~ e^(-2k/tau));
    # floor() thins a little less, and the estimate has SE ~0.025, so [0.25, 0.6] (measured
    # 0.44). Unthinned, successive steps are correlated by > 0.9 (measured 0.93).
    assert 0.25 < _lag1(x) < 0.6, _lag1(x)
    assert _lag1(first[200:]) > 0.9


def _assert_stationary(step: np.ndarray) -> None:
    n = step.shape[0]
    np.testing.assert_array_less(np.abs(step.mean(0) - MEAN), 4 * SD / np.sqrt(n))
    np.testing.assert_array_less(np.abs(step.std(0, ddof=1) / SD - 1), 4 / np.sqrt(2 * (n - 1)))


def _lag1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation along the steps, pooled over walkers and parameters."""
    z = (x - MEAN) / SD
    return float(np.mean([np.corrcoef(z[:-1, :, j].ravel(), z[1:, :, j].ravel())[0, 1]
                          for j in range(z.shape[2])]))


def test_emcee_never_calls_likelihood_outside_box():
    # posterior centred on the corner of a small box: about 3/4 of the proposals leave it
    space = ParameterSpace(("a", "b"), [0.0, 0.0], [1.0, 1.0])
    rec = Recorder(lambda x: -0.5 * np.sum((x / 0.3) ** 2, axis=1))
    prior = BoxPrior(space, seed=0)
    n_prior_calls = []
    logpdf = prior.logpdf
    prior.logpdf = lambda x: (n_prior_calls.append(len(x)), logpdf(x))[1]
    run = run_emcee(prior=prior, loglike=rec, settings=EmceeSettings(walkers=8, steps=300), seed=2)
    assert np.all(space.contains(rec.points))
    assert run.info["n_likelihood_calls"] == len(rec.points)
    assert len(rec.points) < sum(n_prior_calls)  # some proposals were outside and skipped
    # blobs: the stored log-likelihood and log-prior are those of the stored points
    np.testing.assert_allclose(
        run.chain.log_likelihood, rec.fn(run.chain.samples), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(run.chain.log_prior, 0.0)


def test_emcee_warns_when_chain_too_short(caplog):
    with caplog.at_level(logging.WARNING, logger="flowprior.samplers"):
        run = run_emcee(
            prior=BoxPrior(SPACE), loglike=gauss_loglike, settings=EmceeSettings(steps=60), seed=1
        )
    assert "too short" in caplog.text
    assert run.info["diagnostics"]["converged"] is False
    assert run.chain.n >= 32


def test_emcee_fixed_burn_in_thin_reproducible_and_no_global_rng():
    settings = EmceeSettings(walkers=6, steps=200, burn_in=50, thin=10, min_tau_multiple=1.0)
    state = np.random.get_state()
    a = run_emcee(prior=BoxPrior(SPACE), loglike=gauss_loglike, settings=settings, seed=9)
    b = run_emcee(prior=BoxPrior(SPACE, seed=123), loglike=gauss_loglike, settings=settings, seed=9)
    c = run_emcee(prior=BoxPrior(SPACE), loglike=gauss_loglike, settings=settings, seed=10)
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), state))
    assert a.chain.n == 6 * 15
    assert a.chain.sha256() == b.chain.sha256() != c.chain.sha256()


def test_emcee_prior_without_params_and_walker_check():
    class Plain:  # bare pocoMC protocol, rvs without a seed argument
        dim = 2
        bounds = np.array([[-5.0, 5.0], [-4.0, 3.0]])

        def logpdf(self, x):
            return BoxPrior(SPACE).logpdf(x)

        def rvs(self, size):
            return BoxPrior(SPACE, seed=1).rvs(size)

    run = run_emcee(
        prior=Plain(), loglike=gauss_loglike, settings=EmceeSettings(walkers=4, steps=50), seed=0
    )
    assert run.chain.params.names == ("theta1", "theta2")
    np.testing.assert_array_equal(run.chain.params.bounds, Plain.bounds)
    with pytest.raises(InputError, match="walkers: must be at least 2 \\* dim = 4"):
        run_emcee(prior=Plain(), loglike=gauss_loglike, settings=EmceeSettings(walkers=2), seed=0)


def test_emcee_rejects_plus_inf_likelihood():
    with pytest.raises(SamplerError, match="inf"):
        run_emcee(
            prior=BoxPrior(SPACE),
            loglike=lambda x: np.full(len(x), np.inf),
            settings=EmceeSettings(walkers=4, steps=10),
            seed=0,
        )


# --------------------------------------------------------------------------- I/O


def test_write_read_round_trip(tmp_path, poco_run):
    run, *_ = poco_run
    samples, run_json = tmp_path / "samples.parquet", tmp_path / "run.json"
    run.write(samples=samples, run_json=run_json)
    back = SamplerRun.read(samples=samples, run_json=run_json, params=SPACE)
    assert back.chain.sha256() == run.chain.sha256()
    assert back.info == run.info
    assert back.log_evidence == run.log_evidence
    doc = json.loads(run_json.read_text())
    assert set(doc) == {
        "sampler",
        "settings",
        "seed",
        "log_evidence",
        "log_evidence_err",
        "n_likelihood_calls",
        "wall_seconds",
        "diagnostics",
        "versions",
    }
    import pandas as pd

    cols = list(pd.read_parquet(samples).columns)
    assert cols == ["a", "b", "weight", "log_likelihood", "log_prior"]


def test_write_non_finite_info_as_null(tmp_path):
    chain = Chain(SPACE, np.zeros((3, 2)), log_likelihood=np.zeros(3), log_prior=np.zeros(3))
    run = SamplerRun(
        chain, {"sampler": "emcee", "diagnostics": {"tau": [np.nan, 2.0], "n_tau": np.inf}}
    )
    run.write(samples=tmp_path / "s.parquet", run_json=tmp_path / "r.json")
    back = SamplerRun.read(
        samples=tmp_path / "s.parquet", run_json=tmp_path / "r.json", params=SPACE
    )
    assert back.info["diagnostics"] == {"tau": [None, 2.0], "n_tau": None}


def test_read_errors(tmp_path):
    chain = Chain(SPACE, np.zeros((3, 2)))
    SamplerRun(chain, {}).write(samples=tmp_path / "s.parquet", run_json=tmp_path / "r.json")
    with pytest.raises(InputError, match="missing.json: file not found"):
        SamplerRun.read(
            samples=tmp_path / "s.parquet", run_json=tmp_path / "missing.json", params=SPACE
        )
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InputError, match="bad.json: line 1: invalid JSON"):
        SamplerRun.read(
            samples=tmp_path / "s.parquet", run_json=tmp_path / "bad.json", params=SPACE
        )
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(InputError, match="expected a JSON object"):
        SamplerRun.read(
            samples=tmp_path / "s.parquet", run_json=tmp_path / "list.json", params=SPACE
        )


# --------------------------------------------------------------------------- settings


def test_settings_defaults():
    assert PocoMCSettings().to_dict() == {
        "n_effective": 512,
        "n_active": 256,
        "n_prior": None,
        "n_total": 4096,
        "n_evidence": 4096,
        "flow": "maf3",
        "sample": "tpcn",
        "precondition": True,
        "dynamic": True,
        "n_steps": None,
        "n_max_steps": None,
        "train_epochs": None,
    }
    assert EmceeSettings().to_dict() == {
        "walkers": 32,
        "steps": 5000,
        "burn_in": "auto",
        "thin": "auto",
        "min_tau_multiple": 50.0,
    }


@pytest.mark.parametrize("cls", [PocoMCSettings, EmceeSettings])
def test_settings_round_trip_and_unknown_keys(cls):
    obj = cls.from_dict({}, source="cfg")
    assert cls.from_dict(obj.to_dict(), source="cfg") == obj == cls()
    assert cls.from_dict(None, source="cfg") == cls()
    with pytest.raises(InputError, match=r"^config.yaml: sampling: bogus: unknown key; known: "):
        cls.from_dict({"bogus": 1}, source="config.yaml: sampling")
    with pytest.raises(InputError, match="cfg: bogus, extra: unknown keys"):
        cls.from_dict({"bogus": 1, "extra": 2}, source="cfg")
    with pytest.raises(InputError, match="cfg: expected a mapping"):
        cls.from_dict([1, 2], source="cfg")


@pytest.mark.parametrize(
    ("cls", "d", "key"),
    [
        (PocoMCSettings, {"n_effective": 0}, "n_effective"),
        (PocoMCSettings, {"n_effective": 100, "n_active": 200}, "n_active"),
        (PocoMCSettings, {"n_active": 2.5}, "n_active"),
        (PocoMCSettings, {"n_prior": 10}, "n_prior"),
        (PocoMCSettings, {"n_evidence": -1}, "n_evidence"),
        (PocoMCSettings, {"flow": "realnvp"}, "flow"),
        (PocoMCSettings, {"sample": "hmc"}, "sample"),
        (PocoMCSettings, {"dynamic": "yes"}, "dynamic"),
        (PocoMCSettings, {"train_epochs": 0}, "train_epochs"),
        (PocoMCSettings, {"n_total": True}, "n_total"),
        (EmceeSettings, {"walkers": 7}, "walkers"),
        (EmceeSettings, {"steps": 1}, "steps"),
        (EmceeSettings, {"burn_in": "sometimes"}, "burn_in"),
        (EmceeSettings, {"burn_in": 5000}, "burn_in"),
        (EmceeSettings, {"thin": 0}, "thin"),
        (EmceeSettings, {"min_tau_multiple": float("nan")}, "min_tau_multiple"),
    ],
)
def test_settings_invalid_values(cls, d, key):
    with pytest.raises(InputError, match=rf"^cfg: {key}: must"):
        cls.from_dict(d, source="cfg")


def test_settings_direct_construction_validates():
    with pytest.raises(InputError, match="^pocomc settings: flow: must be one of"):
        PocoMCSettings(flow="nope")
    with pytest.raises(InputError, match="^emcee settings: walkers: must be even"):
        EmceeSettings(walkers=5)
    assert EmceeSettings(burn_in=10, thin=2).to_dict()["burn_in"] == 10


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_built_ins_in_order_with_their_capabilities():
    assert sampler_names()[:2] == ("pocomc", "emcee")
    poco, emc = get_sampler("pocomc"), get_sampler("emcee")
    assert (poco.settings, poco.run, poco.label) == (PocoMCSettings, run_pocomc, "pocoMC")
    assert (emc.settings, emc.run, emc.label) == (EmceeSettings, run_emcee, "emcee")
    assert poco.gives_evidence and not emc.gives_evidence
    assert not poco.needs_prior_transform and not emc.needs_prior_transform


@pytest.mark.parametrize("name", ["pocomc", "emcee"])
def test_built_in_runners_have_the_common_signature(name):
    params = inspect.signature(get_sampler(name).run).parameters
    for arg in ("prior", "loglike", "settings", "seed", "threads", "progress"):
        assert params[arg].kind is inspect.Parameter.KEYWORD_ONLY, arg
    assert params["threads"].default == 1 and params["progress"].default is False


def test_get_sampler_names_the_unknown_and_the_known():
    known = "known: pocomc, emcee"
    with pytest.raises(InputError, match=rf"^samplers: dynesty: unknown sampler; {known}"):
        get_sampler("dynesty")


def test_register_refuses_duplicates_and_invalid_specs_and_replaces_in_place():
    poco = get_sampler("pocomc")
    with pytest.raises(InputError, match="already registered"):
        register_sampler(poco)
    with pytest.raises(InputError, match="name"):
        register_sampler(dataclasses.replace(poco, name="Bad Name"))
    with pytest.raises(InputError, match="settings: .* has no from_dict"):
        register_sampler(dataclasses.replace(poco, name="broken", settings=dict))
    with pytest.raises(InputError, match="gives_evidence"):
        register_sampler(dataclasses.replace(poco, name="broken", gives_evidence="yes"))
    assert "broken" not in sampler_names()
    relabelled = dataclasses.replace(poco, label="pocoMC 1.2")
    try:
        register_sampler(relabelled, replace=True)
        assert get_sampler("pocomc").label == "pocoMC 1.2"
        assert sampler_names()[:2] == ("pocomc", "emcee")  # kept its place
    finally:
        register_sampler(poco, replace=True)
    assert get_sampler("pocomc") is poco


def test_unregister_returns_the_spec_and_forgets_the_name():
    spec = dataclasses.replace(get_sampler("emcee"), name="emcee_copy", label="emcee (copy)")
    register_sampler(spec)
    assert sampler_names()[-1] == "emcee_copy"
    assert unregister_sampler("emcee_copy") is spec
    assert "emcee_copy" not in sampler_names()
    with pytest.raises(InputError, match="emcee_copy: unknown sampler"):
        unregister_sampler("emcee_copy")


def test_schema_sampler_enums_follow_the_registry():
    schema = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    )
    analysis = schema["$defs"]["analysis"]["properties"]
    registered = list(sampler_names())  # tests register toys only inside fixtures
    assert analysis["samplers"]["items"]["enum"] == registered
    for key in ("stage1_sampler", "joint_sampler"):
        assert analysis[key]["enum"] == registered, key
        assert analysis[key]["default"] == "pocomc", key
        assert analysis[key]["description"].strip(), key
    for name in registered:  # each sampler's settings live under the key named after it
        assert name in analysis, name


def test_run_emcee_checks_threads():
    with pytest.raises(InputError, match="^run_emcee: threads: must be an integer >= 1"):
        run_emcee(
            prior=BoxPrior(SPACE),
            loglike=gauss_loglike,
            settings=EmceeSettings(walkers=8, steps=10),
            seed=1,
            threads=0,
        )
