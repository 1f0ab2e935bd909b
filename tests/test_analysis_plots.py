"""flowprior.plots: figures of sequential analyses (sequential vs joint corner plots, training
curves, agreement dot charts).

Tiny samples and low dpi keep these fast; the readability checks (text >= 8 pt, nothing
clipped, no two texts overlapping) run on the figures the public functions write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from flowprior import plots
from flowprior.chains import Chain
from flowprior.errors import InputError
from flowprior.params import ParameterSpace
from flowprior.plots import (
    CONTOUR_LEVELS,
    OKABE_ITO,
    PALETTE,
    plot_agreement,
    plot_ranges,
    plot_sequential_vs_joint,
    plot_training_curves,
)

DPI = 30


def _space(dim, lower=-6.0, upper=6.0):
    return ParameterSpace(
        names=tuple(f"p{i}" for i in range(dim)),
        lower=np.full(dim, lower),
        upper=np.full(dim, upper),
        labels=tuple([r"\alpha", r"\Omega_m h^2", "b_1", r"\sigma_8", "n_s", "x"][:dim]),
    )


def _three_sets(dim, n=400, seed=0):
    """Joint (narrow), stage 1 (wide, offset) and sequential (joint, shifted) samples."""
    rng = np.random.default_rng(seed)
    joint = rng.normal(0.0, 0.5, size=(n, dim))
    stage1 = rng.normal(0.5, 1.5, size=(n, dim))
    sequential = rng.normal(0.1, 0.5, size=(n, dim))
    return joint, stage1, sequential


def _history(n=12, kl=True, lr=True):
    step = np.arange(1, n + 1) * 100
    val = 2.9 + 0.3 * np.exp(-np.arange(n) / 2.0) + 0.01 * np.sin(np.arange(n))
    frame = {
        "step": step,
        "train_loss": val - 0.05 + 0.5 * (np.arange(n) == 0),
        "val_nll": val,
        "best_val_nll": np.minimum.accumulate(val),
    }
    if kl:
        frame["val_kl"] = -21.0 + 0.1 * np.exp(-np.arange(n) / 3.0)
    if lr:
        frame["lr"] = 1e-3 * 0.5 ** (np.arange(n) // 4)
    frame["seconds"] = np.linspace(1.0, 30.0, n)
    return pd.DataFrame(frame)


def _agreement_table(names=("p0", "p1", "p2"), metric_column=True):
    rng = np.random.default_rng(4)
    rows = []
    for seq in ("A→B", "B→A"):
        for sampler in ("pocoMC", "emcee"):
            for name in names:
                rows.append(
                    {
                        "sequence": seq,
                        "sampler": sampler,
                        "parameter": name,
                        "metric": "mean_shift_in_ref_sd",
                        "value": rng.normal(0.0, 0.1),
                    }
                )
                rows.append(
                    {
                        "sequence": seq,
                        "sampler": sampler,
                        "parameter": name,
                        "metric": "sd_ratio",
                        "value": 1.0 + rng.normal(0.0, 0.05),
                    }
                )
    table = pd.DataFrame(rows)
    if not metric_column:
        table = table[table["metric"] == "mean_shift_in_ref_sd"].drop(columns="metric")
    return table


def _png_size(path):
    with Image.open(path) as image:
        image.load()  # decodes the whole image
        return image.size


def _drawn_texts(fig):
    """Every text the figure draws: tick labels inside the view, axis labels, offset texts,
    axes texts, legend entries and titles, suptitle."""
    fig.draw_without_rendering()
    texts = []
    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = sorted((lo, hi))
            for tick in axis.get_major_ticks():
                if lo <= tick.get_loc() <= hi:
                    texts += [t for t in (tick.label1, tick.label2) if t.get_visible()]
            texts += [axis.label, axis.get_offset_text()]
        texts += list(ax.texts)
        texts += [ax.title, ax._left_title, ax._right_title]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    for legend in legends:
        texts += [*legend.get_texts(), legend.get_title()]
    if getattr(fig, "_suptitle", None) is not None:
        texts.append(fig._suptitle)
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def assert_readable(fig, *, min_pt=8.0):
    """Text >= ``min_pt`` points at the final size, inside the figure, never overlapping."""
    renderer = plots._agg_canvas(fig)
    texts = _drawn_texts(fig)
    assert texts
    width, height = fig.get_size_inches() * fig.dpi
    boxes = []
    for text in texts:
        assert text.get_fontsize() >= min_pt, (text.get_text(), text.get_fontsize())
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1, f"{text.get_text()!r} clipped: {box}"
        assert box.x1 <= width + 1 and box.y1 <= height + 1, f"{text.get_text()!r} clipped: {box}"
        boxes.append((text.get_text(), box.shrunk(0.98, 0.9)))
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def _legend_clear_of_panels(fig, dim):
    """The corner legend sits in the empty triangle: it overlaps no occupied panel."""
    renderer = plots._agg_canvas(fig)
    legend = fig.legends[0] if fig.legends else fig.axes[0].get_legend()
    box = legend.get_window_extent(renderer)
    axes = np.asarray(fig.axes).reshape(dim, dim)
    for i in range(dim):
        for j in range(i + 1):
            if dim > 1:
                assert not box.overlaps(axes[i, j].get_window_extent(renderer)), (i, j)


# --------------------------------------------------------------------------- palette, ranges
def test_palette_is_okabe_ito_everywhere():
    assert set(PALETTE) == set(OKABE_ITO.values())
    assert plots.FLOW_COLOR in OKABE_ITO.values() and plots.TARGET_COLOR in OKABE_ITO.values()
    for style in plots.SEQUENTIAL_STYLES:
        assert style["color"] in OKABE_ITO.values()
    # solid, dotted, dashed: three distinct line styles
    assert len({str(style["linestyle"]) for style in plots.SEQUENTIAL_STYLES}) == 3


def test_plot_ranges_honour_weights_and_the_prior_box():
    space = _space(2, lower=-1.0, upper=1.0)
    x = np.column_stack([np.linspace(0.0, 1.0, 1001), np.linspace(-0.5, 0.5, 1001)])
    # Unweighted: 0.1-99.9 % of [0, 1] padded by 10 % and clipped at the upper bound 1.
    (lo, hi), (lo2, hi2) = plot_ranges([x], space)
    assert lo == pytest.approx(-0.0998, abs=2e-3) and hi == 1.0
    assert (lo2, hi2) == pytest.approx((-0.5998, 0.5998), abs=2e-3)
    # All weight on x < 0.25: the range follows the weights, not the raw extent.
    w = (x[:, 0] < 0.25).astype(float)
    (lo, hi), _ = plot_ranges([x], space, weights=[w])
    assert (lo, hi) == pytest.approx((-0.025, 0.275), abs=3e-3)
    # Several sets: the union; a Chain's own weights are used.
    chain = Chain(params=space, samples=x, weights=w, source="c")
    far = np.full((10, 2), -0.9) + np.linspace(0, 0.01, 10)[:, None]
    (lo, hi), _ = plot_ranges([chain, far], space, quantiles=(0.0, 1.0), pad=0.0)
    assert lo == pytest.approx(-0.9) and hi == pytest.approx(0.25, abs=2e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": [np.ones(3)]}, r"weights\[0\]: expected shape \(1001,\)"),
        ({"weights": [-np.ones(1001)]}, r"weights\[0\]: weights must be finite, >= 0"),
        ({"weights": [None, None]}, "weights: 2 entries for 1 sample sets"),
        ({"quantiles": (0.9, 0.1)}, "quantiles"),
        ({"pad": -1.0}, "pad"),
    ],
)
def test_plot_ranges_bad_input(kwargs, match):
    x = np.random.default_rng(0).normal(size=(1001, 2))
    with pytest.raises(InputError, match=match):
        plot_ranges([x], _space(2), **kwargs)


def test_chain_with_separate_weights_is_refused():
    space = _space(2)
    chain = Chain(params=space, samples=np.zeros((5, 2)) + np.arange(5)[:, None], source="c")
    with pytest.raises(InputError, match=r"weights\[0\]: samples\[0\] is a Chain"):
        plot_ranges([chain], space, weights=[np.ones(5)])


# ------------------------------------------------------------------- sequential vs joint
@pytest.mark.parametrize("dim", [1, 3])
def test_sequential_vs_joint_png(tmp_path, dim):
    joint, stage1, sequential = _three_sets(dim)
    w = np.random.default_rng(1).uniform(0.2, 1.8, size=joint.shape[0])
    path = tmp_path / "seq.png"
    plot_sequential_vs_joint(
        params=_space(dim),
        joint=Chain(params=_space(dim), samples=joint, weights=w, source="joint"),
        stage1=stage1,
        sequential=sequential,
        sequential_weights=w,
        path=path,
        title="A then B" if dim == 3 else None,
        truths=[0.0] * dim,
        figsize=(4.0, 4.3),
        dpi=DPI,
    )
    assert _png_size(path) == (round(4.0 * DPI), round(4.3 * DPI))
    assert os.listdir(tmp_path) == ["seq.png"]  # no temporary files left


@pytest.mark.parametrize("dim, title", [(2, None), (3, "pocoMC: A then B"), (6, None)])
def test_sequential_vs_joint_is_readable(dim, title):
    joint, stage1, sequential = _three_sets(dim, n=300)
    fig = plots._sequential_figure(
        params=_space(dim), joint=joint, stage1=stage1, sequential=sequential, title=title
    )
    assert_readable(fig)
    _legend_clear_of_panels(fig, dim)
    axes = np.asarray(fig.axes).reshape(dim, dim)
    # One common range per parameter covering all three sets, inside the prior box.
    ranges = plot_ranges([joint, stage1, sequential], _space(dim))
    for j in range(dim):
        assert axes[dim - 1, j].get_xlim() == pytest.approx(ranges[j])
    # Joint black solid, stage 1 vermillion dotted, sequential blue dashed, on the diagonal
    # and in the contours (three levels each).
    colours = [OKABE_ITO[c] for c in ("black", "vermillion", "blue")]
    assert [line.get_color() for line in axes[0, 0].get_lines()][:3] == colours
    if dim > 1:
        contours = [c for c in axes[1, 0].collections if len(c.get_paths())]
        assert len(contours) == 3
        assert [len(c.get_paths()) for c in contours] == [3, 3, 3]
        dashes = [c.get_linestyle()[0][1] for c in contours]
        assert dashes[0] is None  # solid
        assert dashes[1] is not None and dashes[2] is not None
        assert max(dashes[1]) < min(dashes[2][::2])  # dots are shorter than the dashes' gaps+


def test_sequential_long_labels_move_the_legend_above():
    joint, stage1, sequential = _three_sets(2, n=300)
    fig = plots._sequential_figure(
        params=_space(2),
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        labels=("joint analysis of A and B", "stage 1 (dataset A only)", "sequential A then B"),
        figsize=(3.4, 3.4),
        title="Long labels",
    )
    assert_readable(fig)
    _legend_clear_of_panels(fig, 2)


def test_sequential_levels_and_pdf(tmp_path):
    joint, stage1, sequential = _three_sets(2, n=300)
    path = tmp_path / "seq.pdf"
    plot_sequential_vs_joint(
        params=_space(2),
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        path=path,
        levels="mass",
        sampler_name="emcee",
    )
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and b"CreationDate" not in data
    fig = plots._sequential_figure(
        params=_space(2),
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        levels="mass",
        sampler_name="emcee",
    )
    title = fig.legends[0].get_title().get_text()
    assert "emcee" in title and "68.3, 95.4, 99.7 %" in title.replace("\n", " ")
    assert CONTOUR_LEVELS["sigma"] != CONTOUR_LEVELS["mass"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"path": "fig.jpgx"}, "path: .*unsupported figure suffix '.jpgx'"),
        ({"path": "missing/fig.png"}, "path: .*directory .*missing does not exist"),
        ({"sequential": np.zeros((50, 3))}, r"sequential: samples: expected shape \(n, 2\)"),
        ({"stage1_weights": np.ones(7)}, r"stage1_weights: expected shape \(300,\)"),
        ({"labels": ("joint", "stage 1")}, "labels: .*need 3 entries"),
        ({"truths": [0.0]}, "truths: 1 values for 2 parameters"),
        ({"levels": "2sigma"}, "levels"),
        ({"dpi": 0}, "dpi"),
        ({"figsize": (1.0, 1.0)}, "figsize: .*too small"),
        ({"joint": np.full((300, 2), np.nan)}, "joint: samples: 300 rows hold NaN"),
    ],
)
def test_sequential_bad_input_writes_nothing(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)
    joint, stage1, sequential = _three_sets(2, n=300)
    args = dict(
        params=_space(2),
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        path="fig.png",
        dpi=DPI,
    )
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        plot_sequential_vs_joint(**args)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "curves.png"
    path.write_bytes(b"old figure")

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_training_curves(_history(), path=path, dpi=DPI)
    assert path.read_bytes() == b"old figure"
    assert os.listdir(tmp_path) == ["curves.png"]


# ----------------------------------------------------------------------- training curves
def test_training_curves_png(tmp_path):
    path = tmp_path / "history.png"
    plot_training_curves(_history(), path=path, title="flow A", figsize=(3.4, 4.0), dpi=DPI)
    assert _png_size(path) == (round(3.4 * DPI), round(4.0 * DPI))


@pytest.mark.parametrize(
    "kl, lr, n_axes", [(True, True, 3), (False, True, 2), (True, False, 2), (False, False, 1)]
)
def test_training_curves_panels(kl, lr, n_axes):
    history = _history(kl=kl, lr=lr)
    if kl and not lr:
        history["lr"] = 1e-3  # a constant learning rate gets no panel
    fig = plots._training_figure(history, title="flow A")
    assert len(fig.axes) == n_axes
    assert_readable(fig)
    top = fig.axes[0]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels[:2] == ["training loss", "validation NLL"]
    best = int(np.argmin(history["val_nll"]))
    assert labels[2] == f"best: step {history['step'][best]}"
    if lr:
        assert fig.axes[-1].get_yscale() == "log"


def test_training_curves_nan_kl_and_csv_round_trip(tmp_path):
    history = _history()
    history["val_kl"] = np.nan  # no log-posterior in the chain
    csv = tmp_path / "history.csv"
    history.sample(frac=1.0, random_state=0).to_csv(csv, index=False)  # unsorted rows
    fig = plots._training_figure(pd.read_csv(csv))
    assert len(fig.axes) == 2  # loss and learning rate, no KL panel
    steps = fig.axes[0].get_lines()[0].get_xdata()
    assert np.all(np.diff(steps) > 0)


@pytest.mark.parametrize(
    "history, match",
    [
        (pd.DataFrame({"step": [1], "train_loss": [1.0]}), r"history: columns \['val_nll'\]"),
        (_history().iloc[:0], "history: no rows"),
        (_history().assign(val_nll="x"), "history: column 'val_nll': not numeric"),
    ],
)
def test_training_curves_bad_history(tmp_path, history, match):
    with pytest.raises(InputError, match=match):
        plot_training_curves(history, path=tmp_path / "h.png")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- agreement
def test_agreement_png(tmp_path):
    path = tmp_path / "agreement.png"
    plot_agreement(
        _agreement_table(), path=path, threshold=0.2, figsize=(3.4, 2.5), dpi=DPI, title="shifts"
    )
    assert _png_size(path) == (round(3.4 * DPI), round(2.5 * DPI))


@pytest.mark.parametrize("metric, reference", [("mean_shift_in_ref_sd", 0.0), ("sd_ratio", 1.0)])
def test_agreement_reference_threshold_and_rows(metric, reference):
    space = _space(3)
    fig = plots._agreement_figure(
        _agreement_table(), metric=metric, threshold=0.1, params=space, title="Sequential vs joint"
    )
    assert_readable(fig)
    (ax,) = fig.axes
    vertical = sorted(
        line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1
    )
    assert vertical == pytest.approx([reference - 0.1, reference, reference + 0.1])
    # One row per parameter, top to bottom in the ParameterSpace's order, LaTeX labels.
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        plots.tex_label(label) for label in space.labels
    ]
    # 2 sequences x 2 samplers: four marker series, colours by sequence, markers by sampler.
    series = [line for line in ax.get_lines() if line.get_marker() not in ("None", None, "")]
    assert len(series) == 4
    assert len({line.get_color() for line in series}) == 2
    assert len({line.get_marker() for line in series}) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["A→B", "B→A", "pocoMC", "emcee", "±0.1"]
    values = _agreement_table().query("metric == @metric")["value"]
    drawn = np.sort(np.concatenate([line.get_xdata() for line in series]))
    assert drawn == pytest.approx(np.sort(values.to_numpy()))


def test_agreement_without_metric_column_and_many_parameters():
    names = tuple(f"p{i}" for i in range(6))
    table = _agreement_table(names, metric_column=False)
    table = table[table["sampler"] == "pocoMC"]
    fig = plots._agreement_figure(table)
    assert_readable(fig)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == list(names)
    assert fig.get_size_inches()[1] > 2.0  # grows with the number of parameters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": "c2st"}, r"metric: 'c2st' not in the table's metrics"),
        ({"threshold": -1.0}, "threshold"),
        ({"params": _space(2)}, r"table: column 'parameter': \['p2'\] not among"),
        ({"path": "a.gif"}, "path: .*unsupported figure suffix"),
    ],
)
def test_agreement_bad_input(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)
    args = {"path": "agreement.png", **kwargs}
    with pytest.raises(InputError, match=match):
        plot_agreement(_agreement_table(), **args)
    assert os.listdir(tmp_path) == []


def test_agreement_bad_tables(tmp_path):
    table = _agreement_table()
    with pytest.raises(InputError, match=r"table: columns \['sampler'\] missing"):
        plot_agreement(table.drop(columns="sampler"), path=tmp_path / "a.png")
    empty = pd.DataFrame(columns=["sequence", "sampler", "parameter", "value"])
    with pytest.raises(InputError, match="table: no rows"):
        plot_agreement(empty, path=tmp_path / "a.png")
    with pytest.raises(InputError, match="table: 1 duplicate rows"):
        plot_agreement(pd.concat([table, table.iloc[:1]]), path=tmp_path / "a.png")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------- no global state
def test_no_pyplot_import_and_no_rcparams_change(tmp_path):
    """In a fresh interpreter: importing the module and drawing the non-corner figures never
    imports pyplot nor changes rcParams."""
    script = textwrap.dedent(f"""
        import json, sys
        import matplotlib
        import numpy as np, pandas as pd
        def rc():  # reading rcParams["backend"] could resolve it, importing pyplot
            return {{k: matplotlib.rcParams[k] for k in matplotlib.rcParams if k != "backend"}}
        before = rc()
        import flowprior.plots as plots
        imported = "matplotlib.pyplot" in sys.modules
        history = pd.DataFrame({{"step": [100, 200, 300], "train_loss": [3.0, 2.9, 2.8],
                                "val_nll": [3.1, 3.0, 3.05], "lr": [1e-3, 1e-3, 5e-4]}})
        plots.plot_training_curves(history, path={str(tmp_path / "h.png")!r}, dpi=20)
        table = pd.DataFrame({{"sequence": ["A→B"] * 2, "sampler": ["emcee"] * 2,
                              "parameter": ["a", "b"], "value": [0.1, -0.2]}})
        plots.plot_agreement(table, path={str(tmp_path / "a.pdf")!r})
        after = rc()
        print(json.dumps({{"import": imported, "call": "matplotlib.pyplot" in sys.modules,
                          "rc_same": before == after}}))
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"import": False, "call": False, "rc_same": True}
    assert sorted(os.listdir(tmp_path)) == ["a.pdf", "h.png"]


def test_corner_figure_leaves_pyplot_state_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()

    def rc():
        return {k: matplotlib.rcParams[k] for k in matplotlib.rcParams if k != "backend"}

    before = rc()
    joint, stage1, sequential = _three_sets(2, n=200)
    plot_sequential_vs_joint(
        params=_space(2),
        joint=joint,
        stage1=stage1,
        sequential=sequential,
        path=tmp_path / "s.png",
        dpi=DPI,
    )
    assert matplotlib.get_backend() == backend
    assert rc() == before
    import matplotlib.pyplot as plt  # corner imports it; no figure may be registered there

    assert plt.get_fignums() == []


def test_readability_check_catches_small_clipped_and_overlapping_text():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 3.0))
    fig.subplots_adjust(left=0.2, bottom=0.2)
    ax = fig.add_subplot()
    ax.set_xlim(0.0, 1.0)
    ax.set_xticks([0.5, 0.52], ["a tick label", "another one"], fontsize=8)
    with pytest.raises(AssertionError, match="overlaps"):
        assert_readable(fig)
    ax.set_xticks([0.0, 1.0], ["0", "1"], fontsize=6)
    with pytest.raises(AssertionError, match="6"):
        assert_readable(fig)
    ax.set_xticks([0.0, 1.0], ["0", "1"], fontsize=8)
    ax.set_ylabel("a label far too long to fit in the height of this figure", fontsize=10)
    with pytest.raises(AssertionError, match="clipped"):
        assert_readable(fig)
    ax.set_ylabel("fits", fontsize=10)
    assert_readable(fig)
