"""The training-strategy study: losses x flow architectures x hyperparameters, scored held-out.

One *configuration* is a set of training settings (loss, kind, transforms, hidden, lr,
batch_size); one *job* trains it with one seed on one target and scores the flow on samples
that training never saw (:func:`score_configuration`). :func:`select_best` ranks the
configurations of each target by their mean held-out score over seeds (never a training-data
metric), :func:`loss_comparison` tabulates the losses like the reference study (Roch & Shen,
arXiv:2509.14911), and :func:`selected_settings` hands the winner to an analysis that says
``flow: {select: auto}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .chains import Chain
from .diagnostics import c2st, moment_scores, sliced_wasserstein
from .errors import InputError
from .stats import kish_ess
from .train import TrainConfig, train_flow

__all__ = [
    "GRID_KEYS",
    "LOWER_IS_BETTER",
    "apply_selection",
    "hidden_label",
    "loss_comparison",
    "overall_best",
    "parse_hidden",
    "score_configuration",
    "select_best",
    "selected_settings",
    "selection",
    "split_held_out",
    "to_markdown",
]

log = logging.getLogger(__name__)

#: The training settings a study configuration varies (columns of scores.csv).
GRID_KEYS = ("loss", "kind", "transforms", "hidden", "lr", "batch_size")
#: Scores where smaller is better (the ones :func:`select_best` accepts).
LOWER_IS_BETTER = ("held_out_nll", "exact_kl", "max_moment_score", "sliced_wasserstein", "c2st")
#: Scores of the loss-comparison table, in order.
COMPARED = ("held_out_nll", "exact_kl", "max_moment_score", "c2st", "sliced_wasserstein")


def hidden_label(hidden: Sequence[int]) -> str:
    """``[64, 64] -> "64x64"`` (a path- and CSV-safe spelling of the hidden widths)."""
    return "x".join(str(int(h)) for h in hidden)


def parse_hidden(label: str | int | Sequence[int]) -> list[int]:
    """Inverse of :func:`hidden_label`; lists and single integers pass through."""
    if isinstance(label, (int, np.integer)):
        return [int(label)]
    if isinstance(label, str):
        try:
            return [int(h) for h in label.split("x")]
        except ValueError:
            raise InputError(f"hidden: {label!r}: expected widths like '64x64'") from None
    return [int(h) for h in label]


def split_held_out(chain: Chain, *, fraction: float, seed: int) -> tuple[Chain, Chain]:
    """Split a chain, by sample and before anything else, into (training, held-out).

    The training part goes to :func:`flowprior.train.train_flow` (which splits it again for
    early stopping); the held-out part is never seen by training or early stopping.
    """
    if not 0 < fraction < 1:
        raise InputError(f"held_out: fraction {fraction} must be strictly between 0 and 1")
    if np.any(chain.weights == 0):
        chain = chain.subset(chain.weights > 0)
    rng = np.random.default_rng([seed, 7])
    held = np.zeros(chain.n, dtype=bool)
    held[rng.permutation(chain.n)[: int(round(fraction * chain.n))]] = True
    return chain.subset(~held), chain.subset(held)


def score_configuration(
    *,
    chain: Chain,
    train_config: TrainConfig,
    exact: Any = None,
    held_out: Chain | float = 0.2,
    seed: int = 0,
    n_flow_samples: int = 5000,
    n_boot: int = 50,
    c2st_max_n: int = 2000,
    sw_max_n: int = 5000,
) -> dict[str, Any]:
    """Train one flow and score it on samples that training never saw.

    Parameters
    ----------
    chain : Chain
        Training samples (all of them go to :func:`flowprior.train.train_flow`, which holds out
        its own validation split for early stopping), unless ``held_out`` is a fraction.
    train_config : TrainConfig
        The configuration (its ``seed`` drives training).
    exact : flowprior.problems.Problem, optional
        Target with an exact density: adds the exact KL ``E_p[log p - log q]`` on the held-out
        samples.
    held_out : Chain or float
        Independent held-out samples (an exact sample of an analytic problem), or the fraction
        of ``chain`` to split off first (:func:`split_held_out`; for posterior chains).
    seed : int
        Drives the split, the flow samples and the sample-based metrics.
    n_flow_samples : int
        Flow samples compared with the held-out samples.
    n_boot, c2st_max_n, sw_max_n : int
        Bootstrap resamples of the moment scores; points per set in the C2ST and in the
        sliced Wasserstein distance (subsampled without replacement beyond that).

    Returns
    -------
    dict
        One flat row of ``scores.csv``: the grid settings, ``seed``, ``held_out_nll``,
        ``exact_kl`` (NaN without ``exact``), ``max_moment_score``, ``c2st``,
        ``sliced_wasserstein``, ``train_seconds``, ``steps``, ``best_step``, ``stop_reason``,
        ``n_train``, ``n_held_out``, ``ess_held_out``, ``score_seconds``.
    """
    from .priors import FlowPrior

    if isinstance(held_out, Chain):
        train_chain, held = chain, held_out
    else:
        train_chain, held = split_held_out(chain, fraction=float(held_out), seed=seed)
    if held.params.names != train_chain.params.names:
        raise InputError("held_out: parameter names differ from the training chain's")

    result = train_flow(train_chain, train_config)
    t0 = time.perf_counter()
    prior = FlowPrior.from_result(result, seed=seed)
    x, w = held.samples, held.weights / held.weights.sum()
    log_q = np.asarray(prior.logpdf(x), dtype=np.float64)
    y = np.asarray(prior.rvs(n_flow_samples, seed=seed), dtype=np.float64)
    names = list(held.params.names)
    rng = np.random.default_rng([seed, 11])

    def sub(a, wa, n):
        if a.shape[0] <= n:
            return a, wa
        idx = rng.choice(a.shape[0], size=n, replace=False)
        return a[idx], wa[idx]

    xs, ws = sub(x, w, sw_max_n)
    ys, _ = sub(y, np.ones(len(y)), sw_max_n)
    scores = moment_scores(x, y, wa=w, names=names, n_boot=n_boot, seed=seed)
    cfg = train_config
    row: dict[str, Any] = {
        "loss": cfg.loss,
        "kind": cfg.kind,
        "transforms": cfg.transforms,
        "hidden": hidden_label(cfg.hidden),
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "held_out_nll": float(-np.sum(w * log_q)),
        "exact_kl": float("nan"),
        "max_moment_score": float(scores["score"].max()),
        "c2st": float(c2st(x, y, w_p=w, seed=seed, max_n=c2st_max_n)),
        "sliced_wasserstein": float(sliced_wasserstein(xs, ys, wa=ws, seed=seed)),
        "train_seconds": float(result.metrics["train_seconds"]),
        "steps": int(result.metrics["steps"]),
        "best_step": int(result.metrics["best_step"]),
        "stop_reason": str(result.metrics["stop_reason"]),
        "n_train": int(train_chain.n),
        "n_held_out": int(held.n),
        "ess_held_out": float(kish_ess(held.weights)),
    }
    if exact is not None:
        log_p = np.asarray(exact.log_prob(x), dtype=np.float64)
        row["exact_kl"] = float(np.sum(w * (log_p - log_q)))
    row["score_seconds"] = time.perf_counter() - t0
    return row


def _check_metric(scores: pd.DataFrame, metric: str) -> None:
    if metric not in LOWER_IS_BETTER:
        raise InputError(f"metric {metric!r}: choose one of {', '.join(LOWER_IS_BETTER)}")
    missing = [c for c in ("target", *GRID_KEYS, "seed", metric) if c not in scores.columns]
    if missing:
        raise InputError(f"scores: missing column(s) {', '.join(missing)}")


def select_best(
    scores: pd.DataFrame, *, metric: str = "held_out_nll"
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Rank the configurations of every target by their mean held-out ``metric`` over seeds.

    Parameters
    ----------
    scores : DataFrame
        Rows of :func:`score_configuration` with a ``target`` column (``scores.csv``).
    metric : str
        A held-out score where smaller is better (:data:`LOWER_IS_BETTER`); ``c2st`` is ranked
        by its distance from 0.5. Rows where it is NaN are left out.

    Returns
    -------
    ranking : DataFrame
        One row per (target, configuration): the grid settings, ``mean``, ``sd`` (ddof 1; NaN
        for one seed), ``min``, ``max``, ``n_seeds``, ``train_seconds`` (mean) and ``rank``
        (1 = best within the target), sorted by target and rank.
    winners : dict
        ``target -> {loss, kind, transforms, hidden (list), lr, batch_size}`` of rank 1.
    """
    _check_metric(scores, metric)
    df = scores.dropna(subset=[metric]).copy()
    if df.empty:
        raise InputError(f"scores: no finite {metric!r} values")
    df["_value"] = (df[metric] - 0.5).abs() if metric == "c2st" else df[metric]
    df["hidden"] = df["hidden"].astype(str)
    keys = ["target", *GRID_KEYS]
    g = df.groupby(keys, sort=False)
    ranking = g[metric].agg(mean="mean", sd="std", min="min", max="max", n_seeds="count")
    ranking["_value"] = g["_value"].mean()
    ranking["train_seconds"] = g["train_seconds"].mean() if "train_seconds" in df else np.nan
    ranking = ranking.reset_index()
    ranking["rank"] = (
        ranking.groupby("target")["_value"].rank(method="first", ascending=True).astype(int)
    )
    ranking = ranking.sort_values(["target", "rank"]).drop(columns="_value").reset_index(drop=True)
    ranking.insert(1, "metric", metric)
    winners = {
        str(row["target"]): _settings(row) for _, row in ranking[ranking["rank"] == 1].iterrows()
    }
    return ranking, winners


def _settings(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "loss": str(row["loss"]),
        "kind": str(row["kind"]),
        "transforms": int(row["transforms"]),
        "hidden": parse_hidden(row["hidden"]),
        "lr": float(row["lr"]),
        "batch_size": int(row["batch_size"]),
    }


def overall_best(ranking: pd.DataFrame) -> dict[str, Any]:
    """The configuration with the best mean rank over the targets that tried it.

    Configurations tried on fewer targets than the most-tried ones are left out (a mean rank
    over one easy target would otherwise win); ties go to the first in the ranking.
    """
    g = ranking.groupby(list(GRID_KEYS), sort=False)["rank"].agg(mean_rank="mean", n="count")
    g = g[g["n"] == g["n"].max()].reset_index()
    best = g.sort_values("mean_rank", kind="stable").iloc[0]
    return {**_settings(best), "mean_rank": float(best["mean_rank"]), "n_targets": int(best["n"])}


def selection(scores: pd.DataFrame, *, metric: str = "held_out_nll") -> dict[str, Any]:
    """The content of ``selection.json``: winner per target and overall (mean rank)."""
    ranking, winners = select_best(scores, metric=metric)
    best = ranking[ranking["rank"] == 1].set_index("target")
    by_target = {
        t: {
            **s,
            "mean": float(best.loc[t, "mean"]),
            "sd": None if pd.isna(best.loc[t, "sd"]) else float(best.loc[t, "sd"]),
            "n_seeds": int(best.loc[t, "n_seeds"]),
        }
        for t, s in winners.items()
    }
    return {"metric": metric, "by_target": by_target, "overall": overall_best(ranking)}


def selected_settings(selection: Mapping[str, Any], *, target: str | None) -> dict[str, Any]:
    """Training settings an analysis with ``flow: {select: auto}`` uses.

    Parameters
    ----------
    selection : mapping
        The content of ``selection.json`` (:func:`selection`).
    target : str or None
        The study target of the posterior (``"<analysis>/<dataset>"`` for a stage-1
        posterior); when it is not one of the study's targets, the overall winner (best mean
        rank over all targets) is used.

    Returns
    -------
    dict
        ``loss``, ``kind``, ``transforms``, ``hidden``, ``lr``, ``batch_size`` (keys of
        :class:`flowprior.train.TrainConfig`).
    """
    by_target = selection.get("by_target", {})
    source = by_target.get(target) if target is not None else None
    if source is None:
        source = selection.get("overall")
    if not source:
        raise InputError("selection: neither the target nor an overall winner is recorded")
    return {k: (list(source[k]) if k == "hidden" else source[k]) for k in GRID_KEYS}


def apply_selection(
    flow: Mapping[str, Any],
    selection: Mapping[str, Any],
    *,
    target: str | None,
    explicit: Sequence[str] = (),
) -> dict[str, Any]:
    """Flow settings of a ``flow: {select: auto, ...}`` mapping with the study's winner filled in.

    Parameters
    ----------
    flow : mapping
        The merged flow settings (top-level ``flow`` updated by the entry's own), with
        ``select: auto``.
    selection : mapping
        ``selection.json`` of the study.
    target : str or None
        The study target of this posterior (see :func:`selected_settings`).
    explicit : sequence of str
        Keys the entry sets itself: they win over the winner's (``{select: auto, kind: maf}``
        keeps MAF and takes the rest from the winner).

    Returns
    -------
    dict
        Settings for :meth:`flowprior.train.TrainConfig.from_dict` (without ``select``).
    """
    out = {k: v for k, v in flow.items() if k != "select"}
    if flow.get("select") != "auto":
        return out
    for k, v in selected_settings(selection, target=target).items():
        if k not in explicit:
            out[k] = v
    return out


def loss_comparison(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds (and the other hyperparameters) of each score, per loss.

    Returns
    -------
    DataFrame
        One row per (target, kind, loss) with ``n`` (jobs) and ``<score>_mean`` /
        ``<score>_sd`` for the scores of :data:`COMPARED` and ``train_seconds``.
    """
    cols = [c for c in (*COMPARED, "train_seconds") if c in scores.columns]
    g = scores.groupby(["target", "kind", "loss"], sort=True)
    out = g[cols].agg(["mean", "std"])
    out.columns = [f"{c}_{'sd' if s == 'std' else s}" for c, s in out.columns]
    out.insert(0, "n", g.size())
    return out.reset_index()


def _pm(mean: float, sd: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    if pd.isna(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def to_markdown(table: pd.DataFrame, *, kind: str) -> str:
    """Markdown of a ranking (``kind="ranking"``) or loss comparison (``"losses"``)."""
    if kind == "ranking":
        header = "| target | rank | loss | kind | transforms | hidden | lr | batch | mean ± sd | min | max | seeds | train s |"
        lines = [header, "|" + "---|" * 13]
        for _, r in table.iterrows():
            lines.append(
                f"| {r['target']} | {r['rank']} | {r['loss']} | {r['kind']} | {r['transforms']} "
                f"| {r['hidden']} | {r['lr']:g} | {r['batch_size']} | {_pm(r['mean'], r['sd'], 4)} "
                f"| {r['min']:.4f} | {r['max']:.4f} | {r['n_seeds']} | {r['train_seconds']:.1f} |"
            )
        metric = table["metric"].iloc[0] if len(table) else "held_out_nll"
        return (
            f"Configurations ranked per target by the mean held-out `{metric}` over seeds "
            "(smaller is better).\n\n" + "\n".join(lines) + "\n"
        )
    if kind == "losses":
        names = [c for c in COMPARED if f"{c}_mean" in table.columns]
        digits = {"held_out_nll": 4, "exact_kl": 4, "max_moment_score": 2, "c2st": 3}
        header = "| target | kind | loss | n | " + " | ".join(names) + " | train s |"
        lines = [header, "|" + "---|" * (len(names) + 5)]
        for _, r in table.iterrows():
            cells = [_pm(r[f"{c}_mean"], r[f"{c}_sd"], digits.get(c, 3)) for c in names]
            lines.append(
                f"| {r['target']} | {r['kind']} | {r['loss']} | {r['n']} | "
                + " | ".join(cells)
                + f" | {_pm(r['train_seconds_mean'], r['train_seconds_sd'], 1)} |"
            )
        return (
            "Scores per loss (mean ± sd over seeds and hyperparameters; held-out samples).\n\n"
            + "\n".join(lines)
            + "\n"
        )
    raise ValueError(f"unknown table kind {kind!r}")
