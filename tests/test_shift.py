"""The flow-based parameter shift (flowprior.diagnostics.shift) and ``flowprior tension``.

Closed forms: Gaussian posteriors offset along a random direction (the exact shift is the
Gaussian one, ``norm.isf(chi2.sf(chi2, D) / 2)`` of the drawn samples), a banana-shaped
difference whose shift probability is computed by quadrature, and consistent posteriors.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import stats

from flowprior import cli
from flowprior.chains import Chain
from flowprior.diagnostics.shift import ShiftSettings, flow_parameter_shift, shift_sigma
from flowprior.errors import InputError
from flowprior.params import ParameterSpace

BOX = 60.0


def _space(names):
    d = len(names)
    return ParameterSpace(tuple(names), [-BOX] * d, [BOX] * d)


def _small(n_pairs=20000, steps=1000, n_flows=3):
    """Test-sized settings: small 2-transform MAFs, 20k pairs."""
    base = ShiftSettings()
    flow = dataclasses.replace(base.flow, transforms=2, hidden=(32, 32), batch_size=2048,
                               lr=1e-3, max_steps=steps)
    return ShiftSettings(n_pairs=n_pairs, n_flow_samples=60000, n_flows=n_flows, flow=flow)


def _gaussian_pair(k, *, dim=2, n=20000, seed=0):
    """A ~ N(k sqrt(2) e, I), B ~ N(0, I): the difference is k sigma from zero along e."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=dim)
    e /= np.linalg.norm(e)
    names = [f"p{i}" for i in range(dim)]
    a = Chain(_space(names), rng.normal(size=(n, dim)) + k * np.sqrt(2.0) * e, source="A.csv")
    b = Chain(_space(names), rng.normal(size=(n, dim)), source="B.csv")
    return a, b


def test_shift_sigma_is_exact_in_the_tails():
    assert shift_sigma(1.0) == 0.0
    assert shift_sigma(2 * stats.norm.sf(3.0)) == pytest.approx(3.0, abs=1e-12)
    # 1 - P = 1e-300: about 37 sigma, finite (computing P first would give inf)
    assert shift_sigma(1e-300) == pytest.approx(-stats.norm.ppf(0.5e-300), rel=1e-12)
    assert 36 < shift_sigma(1e-300) < 38


@pytest.fixture(scope="module")
def _trained_flows() -> dict:
    """Flows trained by the tests that use ``shared_training``, kept for the module."""
    return {}


@pytest.fixture()
def shared_training(_trained_flows, monkeypatch):
    """Serve a flow already trained on the same whitened pairs, seed and settings.

    ``flow_parameter_shift`` whitens the differences with their own mean and covariance, so
    for ``_gaussian_pair(k, seed=s)`` the training pairs ``u`` are the same for every offset
    ``k`` (the offset moves the mean only; ``u`` agrees to ~1e-14): only ``u_0``, the image of
    no shift, depends on ``k``. Training them again for each ``k`` would fit the same flows
    (seven times 3 flows, ~110 s). This memo of ``shift._train`` returns the flow trained on
    pairs equal to 1e-9, with the same box, seed, threads and settings; anything else is
    trained as usual. The rest of ``flow_parameter_shift`` (pairing, whitening, ``u_0``, the
    box, the importance-sampled tail, the test NLLs) runs in full for every ``k``. The memo is
    installed for the test that asks for it only (the determinism and CLI-equals-library tests
    must train twice).
    """
    from flowprior.diagnostics import shift

    train = shift._train
    done = _trained_flows

    def memo(pairs, half, cfg, *, seed, threads):
        key = (seed, threads, repr(cfg), pairs.shape)
        hit = done.get(key)
        if (
            hit is not None
            and np.allclose(hit[0], pairs, rtol=0, atol=1e-9)
            and np.allclose(hit[1], half, rtol=1e-12, atol=0)
        ):
            return hit[2], dict(hit[3])
        flow, metrics = train(pairs, half, cfg, seed=seed, threads=threads)
        done[key] = (pairs.copy(), half.copy(), flow, dict(metrics))
        return flow, metrics

    monkeypatch.setattr(shift, "_train", memo)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 6])
def test_gaussian_offsets_give_the_closed_form_shift(k, shared_training):
    # The same draws for every k (seed 0), offset by k sqrt(2) e: the flows (and their
    # calibration twins) are trained once and shared (the fixture's docstring says why that is
    # the same computation).
    a, b = _gaussian_pair(k, seed=0)
    r = flow_parameter_shift(a, b, seed=1, settings=_small(n_flows=2))
    # the exact shift of these two Gaussian posteriors (k sigma in 2-D is not k sigma of a
    # two-sided 1-D test: 3 sigma in 2-D is 2.54)
    exact = shift_sigma(float(stats.chi2.sf(k * k, 2)))
    assert r["gaussian_shift_sigma"] == pytest.approx(exact, abs=0.15)  # sampling of the chains
    # The criterion as written: within 0.1 sigma of the exact shift, or within the
    # reported error where that is larger. Beyond about 3 sigma the flows' density at Delta = 0
    # rests on a few hundred pairs or on extrapolation, and the error the flows share is
    # measured by their calibration twins. With these settings (but 3 flows) on base seeds 1
    # and 2 (not the seed here), k = 3-6: misses 0.006-0.14 sigma against errors 0.05-0.44; 7 of
    # 8 within 0.1 sigma or one reported error, all 8 within two (benchmarks/
    # bench_shift_gaussian.py --dim 2 --n 20000 --settings test, docs/results.md).
    assert r["shift_sigma_is_lower_bound"] is False
    assert abs(r["shift_sigma"] - exact) <= max(0.1, r["shift_sigma_err"]), r
    assert r["shift_sigma_err"] >= r["statistical_sigma_err"]
    assert r["calibration_sigma_rms"] is not None and r["calibration_sigma_rms"] >= 0
    assert 0 <= r["shift_probability"] <= 1 and r["shift_probability_err"] >= 0


def test_without_calibration_the_error_is_the_statistical_one():
    a, b = _gaussian_pair(1.0, n=500, seed=5)
    cfg = dataclasses.replace(_small(n_pairs=1000, steps=50, n_flows=2), calibrate=False)
    r = flow_parameter_shift(a, b, seed=4, settings=cfg)
    assert r["calibration_sigma_rms"] is None
    assert r["shift_sigma_err"] == r["statistical_sigma_err"]
    assert all(m["calibration_sigma_rms"] is None for m in r["members"])
    with pytest.raises(InputError, match="calibrate must be true or false"):
        ShiftSettings(calibrate="yes")


def _skew_pair(n, *, mu, s_b, seed):
    """1-D: A ~ Gamma(2) (skewed), B ~ N(mu, s_b^2); exact density of A - B by quadrature."""
    rng = np.random.default_rng(seed)
    space = _space(["x"])
    a = Chain(space, rng.gamma(2.0, size=(n, 1)), source="A.csv")
    b = Chain(space, mu + s_b * rng.normal(size=(n, 1)), source="B.csv")
    return a, b


@pytest.mark.slow
def test_one_parameter_skewed_difference_matches_quadrature():
    mu, s_b = 6.0, 0.5
    a, b = _skew_pair(20000, mu=mu, s_b=s_b, seed=8)
    # q(d) = int Gamma2(x) N(x - d; mu, s_b) dx on a fine grid in x; 1 - P = mass where
    # q <= q(0), on a fine grid in d
    x = np.linspace(0.0, 40.0, 8001)
    dx = x[1] - x[0]
    g = stats.gamma(2.0).pdf(x)

    def q(d):
        return np.sum(g * _npdf((x - np.asarray(d)[..., None] - mu) / s_b), axis=-1) * dx / s_b

    dd = np.linspace(-12.0, 40.0, 5201)
    qd = np.concatenate([q(c) for c in np.array_split(dd, 20)])
    assert np.sum(qd) * (dd[1] - dd[0]) == pytest.approx(1.0, abs=1e-4)
    exact = shift_sigma(float(np.sum(qd[qd <= q(0.0)]) * (dd[1] - dd[0])))
    # without the calibration twin (half the cost; the twins are checked on the Gaussian
    # offsets above): the criterion is then 0.1 sigma or the statistical error alone
    cfg = dataclasses.replace(_small(steps=500, n_flows=1), calibrate=False)
    r = flow_parameter_shift(a, b, seed=3, settings=cfg)
    assert abs(r["shift_sigma"] - exact) <= max(0.1, r["shift_sigma_err"]), (r, exact)
    # a skewed difference: the flows describe it better than a Gaussian
    assert r["flow_test_nll"] < r["gaussian_test_nll"]


def _banana_density(d1, d2, *, mu, b, s1, s2):
    """Exact density of Delta = theta_A - theta_B, by quadrature over x1.

    theta_A = (x1, b (x1^2 - 1) + e), x1 ~ N(0, 1), e ~ N(0, s2a^2);
    theta_B ~ N(mu, diag(s1^2, s2b^2)); s2^2 = s2a^2 + s2b^2. Given d1, x1 is Gaussian
    (mean m, variance v); the remaining integral over x1 = m + sqrt(v) t runs on a uniform
    grid in t fine enough for the narrow d2 factor (a Gauss-Hermite rule in x1 is not).
    """
    d1 = np.asarray(d1, dtype=float)[..., None]
    d2 = np.asarray(d2, dtype=float)[..., None]
    v = 1.0 / (1.0 + 1.0 / s1**2)
    m = v * (d1 + mu[0]) / s1**2
    t = np.linspace(-8.0, 8.0, 641)
    wt = _npdf(t) * (t[1] - t[0])
    x1 = m + np.sqrt(v) * t
    inner = np.sum(wt * _npdf((d2 - (b * (x1**2 - 1) - mu[1])) / s2), axis=-1) / s2
    sd1 = np.sqrt(1.0 + s1**2)
    return _npdf((d1[..., 0] + mu[0]) / sd1) / sd1 * inner


def _npdf(z):
    """The standard normal density (``scipy.stats.norm.pdf`` without its per-call overhead:
    the quadrature evaluates it 7e7 times; tested against it below)."""
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def _banana_chains(n, *, mu, b, s1, s2a, s2b, seed):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    a = np.column_stack([x1, b * (x1**2 - 1) + s2a * rng.normal(size=n)])
    bb = np.column_stack([mu[0] + s1 * rng.normal(size=n), mu[1] + s2b * rng.normal(size=n)])
    space = _space(["x", "y"])
    return Chain(space, a, source="A.csv"), Chain(space, bb, source="B.csv")


@pytest.mark.slow
def test_banana_difference_matches_quadrature():
    kw = {"mu": np.array([-0.5, -1.8]), "b": 1.0, "s1": 0.3}  # exact: 2.06 sigma
    s2a, s2b = 0.25, 0.2
    s2 = np.hypot(s2a, s2b)
    # exact 1 - P = mass where p(Delta) <= p(0), on a fine grid
    g1 = np.linspace(-6, 7, 261)
    g2 = np.linspace(-4, 16, 401)
    d1, d2 = np.meshgrid(g1, g2, indexing="ij")
    p = np.concatenate([_banana_density(r1, r2, s2=s2, **kw) for r1, r2 in zip(d1, d2)])
    p = p.reshape(d1.shape)
    p0 = float(_banana_density(0.0, 0.0, s2=s2, **kw))
    cell = (g1[1] - g1[0]) * (g2[1] - g2[0])
    z = np.linspace(-40.0, 40.0, 801)
    np.testing.assert_allclose(_npdf(z), stats.norm.pdf(z), rtol=1e-13, atol=0)
    assert np.sum(p) * cell == pytest.approx(1.0, abs=2e-3)
    exact = shift_sigma(float(np.sum(p[p <= p0]) * cell))
    a, b = _banana_chains(20000, s2a=s2a, s2b=s2b, seed=3, mu=kw["mu"], b=kw["b"], s1=kw["s1"])
    # without calibration twins (the criterion's 0.1 sigma exceeds the twins' error here,
    # 0.024 sigma, measured; the twins are checked on the Gaussian offsets above)
    cfg = dataclasses.replace(_small(n_pairs=40000, steps=1500, n_flows=2), calibrate=False)
    r = flow_parameter_shift(a, b, seed=2, settings=cfg)
    assert abs(r["shift_sigma"] - exact) <= max(0.1, r["shift_sigma_err"]), (r, exact)
    # the difference is far from Gaussian: the Gaussian shift (0.83 sigma) misses it, and says so
    assert abs(r["gaussian_shift_sigma"] - exact) > 1.0
    assert any("differ by more than 1 sigma" in w for w in r["warnings"])
    assert r["flow_test_nll"] < r["gaussian_test_nll"]


def test_consistent_posteriors_are_below_one_sigma():
    a, b = _gaussian_pair(0.0, dim=3, n=3000, seed=11)
    r = flow_parameter_shift(a, b, seed=0, settings=_small(n_pairs=5000, steps=300, n_flows=1))
    assert r["shift_sigma"] <= 1.0
    assert r["parameters"] == ["p0", "p1", "p2"] and r["n_pairs"] == 5000


def test_same_seed_same_numbers():
    a, b = _gaussian_pair(1.0, n=500, seed=5)
    cfg = _small(n_pairs=1000, steps=50, n_flows=1)
    r1 = flow_parameter_shift(a, b, seed=4, settings=cfg)
    r2 = flow_parameter_shift(a, b, seed=4, settings=cfg)
    assert r1["shift_probability"] == r2["shift_probability"]


def test_zero_outside_the_box_gives_a_lower_bound():
    a, b = _gaussian_pair(0.0, n=500, seed=6)
    a = Chain(a.params, 0.01 * a.samples + 50.0, source="A.csv")
    b = Chain(b.params, 0.01 * b.samples - 50.0, source="B.csv")
    r = flow_parameter_shift(a, b, seed=0, settings=_small(n_pairs=1000, steps=50, n_flows=1))
    assert r["shift_sigma_is_lower_bound"] is True
    assert r["shift_probability"] is None and r["shift_sigma_err"] is None
    assert r["shift_sigma"] == pytest.approx(shift_sigma(1.0 / 60000))
    assert np.isfinite(r["gaussian_shift_sigma"]) and r["gaussian_shift_sigma"] > 30


def test_parameter_subset_and_bad_input():
    rng = np.random.default_rng(0)
    a = Chain(_space(["x", "y", "z"]), rng.normal(size=(400, 3)), source="A.csv")
    b = Chain(_space(["y", "x"]), rng.normal(size=(400, 2)), source="B.csv")
    cfg = _small(n_pairs=1000, steps=20, n_flows=1)
    assert flow_parameter_shift(a, b, settings=cfg)["parameters"] == ["x", "y"]
    assert flow_parameter_shift(a, b, parameters=["y"], settings=cfg)["parameters"] == ["y"]
    with pytest.raises(InputError, match=r"^B\.csv: parameters: 'z' not in this chain"):
        flow_parameter_shift(a, b, parameters=["x", "z"], settings=cfg)
    c = Chain(_space(["u", "v"]), rng.normal(size=(400, 2)), source="C.csv")
    with pytest.raises(InputError, match=r"^A\.csv, C\.csv: parameters: the chains share no"):
        flow_parameter_shift(a, c, settings=cfg)
    flat = rng.normal(size=(400, 2))
    flat[:, 1] = 0.5
    d = Chain(_space(["x", "y"]), flat, source="D.csv")
    with pytest.raises(InputError, match=r"^D\.csv: column 'y': zero variance"):
        flow_parameter_shift(a, d, settings=cfg)
    with pytest.raises(InputError, match="n_pairs"):
        ShiftSettings(n_pairs=10)


# ------------------------------------------------------------------ flowprior tension
def _write(path, x, names):
    header = ",".join(names)
    np.savetxt(path, x, delimiter=",", header=header, comments="")
    return str(path)


@pytest.fixture()
def tension_files(tmp_path):
    rng = np.random.default_rng(1)
    params = tmp_path / "params.csv"
    params.write_text("name,lower,upper\nx,-60,60\ny,-60,60\nz,-60,60\n")
    a = _write(tmp_path / "a.csv", rng.normal(size=(600, 3)) + [2.0, 0, 0], ["x", "y", "z"])
    b = _write(tmp_path / "b.csv", rng.normal(size=(600, 3)), ["x", "y", "z"])
    return tmp_path, str(params), a, b


def test_tension_cli_gaussian_report(tension_files, capsys):
    tmp, params, a, b = tension_files
    out = tmp / "report.json"
    argv = ["tension", a, b, "--params", params, "--method", "gaussian", "--select", "x,y",
            "--out", str(out)]
    assert cli.main(argv) == 0
    r = json.loads(out.read_text())
    for key in ("parameters", "n_pairs", "shift_probability", "shift_probability_err",
                "shift_sigma", "shift_sigma_err", "gaussian_shift_sigma", "suspiciousness_sigma",
                "log_S", "bayesian_dimensionality", "method", "seconds", "seed", "versions"):
        assert key in r
    assert r["parameters"] == ["x", "y"] and r["method"] == "gaussian"
    assert r["shift_sigma"] is None and r["log_S"] is None and r["notes"]
    chi2 = r["gaussian_shift_chi2"]
    assert r["gaussian_shift_sigma"] == pytest.approx(shift_sigma(stats.chi2.sf(chi2, 2)))
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "Gaussian" in line
    # an existing report is replaced; something else is not
    assert cli.main(argv) == 0
    other = tmp / "notes.json"
    other.write_text('{"mine": 1}')
    assert cli.main(argv[:-1] + [str(other)]) == 2
    assert other.read_text() == '{"mine": 1}'


def test_tension_cli_flow_matches_library(tension_files, capsys):
    from flowprior.chains import read_chain
    from flowprior.params import load_parameters

    tmp, params, a, b = tension_files
    out = tmp / "r.json"
    argv = ["tension", a, b, "--params", params, "--n-pairs", "1000", "--seed", "3",
            "--n-flows", "2", "--max-steps", "40", "--select", "x,y", "--out", str(out)]
    assert cli.main(argv) == 0
    r = json.loads(out.read_text())
    assert r["method"] == "all" and r["n_pairs"] == 1000 and r["parameters"] == ["x", "y"]
    assert "flow" in capsys.readouterr().out
    space = load_parameters(params)
    base = ShiftSettings()
    settings = dataclasses.replace(base, n_pairs=1000, n_flows=2,
                                   flow=dataclasses.replace(base.flow, max_steps=40))
    lib = flow_parameter_shift(read_chain(a, space), read_chain(b, space), parameters=["x", "y"],
                               seed=3, settings=settings)
    for key in ("shift_probability", "shift_sigma", "gaussian_shift_sigma"):
        assert r[key] == lib[key]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--select", "x,w"], "'w' not in this chain"),
        (["--select", "x", "--out", "r.txt"], "--out: the report is JSON"),
    ],
)
def test_tension_cli_errors_are_one_line(tension_files, capsys, extra, message):
    tmp, params, a, b = tension_files
    argv = ["tension", a, b, "--params", params, "--method", "gaussian", "--out",
            str(tmp / "r.json"), *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def _likelihood_chains(tmp_path, *, n=20000, dim=2, seed=2):
    """Gaussian likelihoods N(theta; mu, I), wide flat prior: closed-form suspiciousness."""
    rng = np.random.default_rng(seed)
    mu_a, mu_b = np.array([1.0, -0.5]), np.array([-1.5, 1.0])

    def loglike(x, mu):
        return -0.5 * np.sum((x - mu) ** 2, axis=1)

    xa = rng.normal(size=(n, dim)) + mu_a
    xb = rng.normal(size=(n, dim)) + mu_b
    xab = rng.normal(size=(n, dim)) / np.sqrt(2.0) + 0.5 * (mu_a + mu_b)
    names = ["x", "y"]
    files = {}
    for tag, x, ll in (
        ("a", xa, loglike(xa, mu_a)),
        ("b", xb, loglike(xb, mu_b)),
        ("ab", xab, loglike(xab, mu_a) + loglike(xab, mu_b)),
    ):
        files[tag] = _write(tmp_path / f"{tag}.csv", np.column_stack([x, ll]),
                            [*names, "log_likelihood"])
    chi2 = float(np.sum((mu_a - mu_b) ** 2) / 2.0)  # dmu^T (C_A + C_B)^-1 dmu
    return files, chi2


def test_suspiciousness_from_chains_closed_form(tmp_path, capsys):
    from flowprior.chains import read_chain
    from flowprior.diagnostics.shift import suspiciousness_from_chains

    files, chi2 = _likelihood_chains(tmp_path)
    space = _space(["x", "y"])
    a, b, ab = (read_chain(files[t], space) for t in ("a", "b", "ab"))
    r = suspiciousness_from_chains(a, b, ab)
    # Gaussian likelihoods, wide prior: log S = d/2 - chi2/2, d = D = 2
    # (MC error of each <log L> ~ sqrt(D / 2 / n) = 0.007; of each d ~ 2 sqrt(2 D / n) = 0.03)
    assert r["log_S"] == pytest.approx(1.0 - chi2 / 2.0, abs=0.05)
    assert r["bayesian_dimensionality"] == pytest.approx(2.0, abs=0.15)
    exact = shift_sigma(float(stats.chi2.sf(chi2, 2)))
    assert r["suspiciousness_sigma"] == pytest.approx(exact, abs=0.1)
    with pytest.raises(InputError, match=r"^A\.csv: log_likelihood: suspiciousness needs"):
        suspiciousness_from_chains(Chain(space, a.samples, source="A.csv"), b, ab)
    # and through the command line
    params = tmp_path / "params.csv"
    params.write_text("name,lower,upper\nx,-60,60\ny,-60,60\n")
    out = tmp_path / "s.json"
    argv = ["tension", files["a"], files["b"], "--joint", files["ab"], "--params", str(params),
            "--method", "gaussian", "--out", str(out)]
    assert cli.main(argv) == 0
    rep = json.loads(out.read_text())
    assert rep["log_S"] == pytest.approx(r["log_S"], abs=1e-12)
    assert rep["gaussian_shift_sigma"] == pytest.approx(exact, abs=0.1)
    assert "suspiciousness" in capsys.readouterr().out
