"""flowprior.plots: corner plots of flow samples against a target chain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowprior.chains import Chain
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.plots import (
    CONTOUR_LEVELS,
    contour_levels,
    plot_flow_vs_target,
    tex_label,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _space(dim, labels=None):
    return ParameterSpace(
        names=tuple(f"p{i}" for i in range(dim)),
        lower=np.full(dim, -6.0),
        upper=np.full(dim, 6.0),
        labels=tuple(labels) if labels else (),
    )


def test_sigma_levels_are_2d_gaussian_masses():
    assert CONTOUR_LEVELS["sigma"] == pytest.approx((0.3935, 0.8647, 0.9889), abs=1e-4)
    for k, level in zip((1, 2, 3), contour_levels("sigma")):
        # mass of a 2-D standard Gaussian within radius k
        assert level == pytest.approx(1 - math.exp(-(k**2) / 2))
    assert contour_levels("mass") == (0.683, 0.954, 0.997)
    assert contour_levels([0.9, 0.5]) == (0.5, 0.9)


@pytest.mark.parametrize("bad", ["2sigma", [0.5, 1.0], [], [0.0]])
def test_bad_levels(bad):
    with pytest.raises(InputError, match="levels"):
        contour_levels(bad)


@pytest.mark.parametrize(
    "label, expected",
    [
        (r"\Omega_m", r"$\Omega_m$"),
        ("x_1", "$x_1$"),
        (r"$\sigma_8$", r"$\sigma_8$"),
        (r"mass $m$ [GeV]", r"mass $m$ [GeV]"),
        (r"\frac{1}{", r"\frac{1}{"),  # not valid mathtext: kept as plain text
    ],
)
def test_tex_label(label, expected):
    assert tex_label(label) == expected


def test_plot_chains_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    space = _space(3, labels=[r"\alpha", "b_1", r"$\gamma$"])
    target = Chain(
        params=space,
        samples=rng.normal(size=(3000, 3)),
        weights=rng.uniform(0.5, 1.5, size=3000),
        source="target",
    )
    flow = Chain(params=space, samples=rng.normal(size=(2000, 3)), source="flow")
    path = tmp_path / "sub" / "corner.png"
    path.parent.mkdir()
    plot_flow_vs_target(target=target, flow=flow, params=space, levels="sigma", path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == ["corner.png"]  # no temp files left


def test_plot_arrays_1d_and_pdf(tmp_path):
    rng = np.random.default_rng(1)
    space = _space(1)
    path = tmp_path / "corner.pdf"
    plot_flow_vs_target(
        target=rng.normal(size=(1000, 1)),
        flow=rng.normal(size=800),
        params=space,
        levels="mass",
        path=path,
    )
    assert path.read_bytes()[:5] == b"%PDF-"


def test_plot_rejects_mismatched_inputs(tmp_path):
    rng = np.random.default_rng(2)
    space = _space(2)
    with pytest.raises(InputError, match="flow: samples"):
        plot_flow_vs_target(
            target=rng.normal(size=(100, 2)),
            flow=rng.normal(size=(100, 3)),
            params=space,
            path=tmp_path / "x.png",
        )
    other = Chain(params=_space(3), samples=rng.normal(size=(100, 3)), source="other")
    with pytest.raises(InputError, match="target: parameters"):
        plot_flow_vs_target(
            target=other, flow=rng.normal(size=(100, 2)), params=space, path=tmp_path / "x.png"
        )
    assert not (tmp_path / "x.png").exists()


def test_plotting_leaves_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    rng = np.random.default_rng(3)
    plot_flow_vs_target(
        target=rng.normal(size=(500, 2)),
        flow=rng.normal(size=(500, 2)),
        params=_space(2),
        path=tmp_path / "x.png",
    )
    assert matplotlib.get_backend() == backend
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
