"""The ``train``, ``sample``, ``logpdf`` and ``info`` subcommands of the ``flowprior`` CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import typing
from typing import Any

from .errors import InputError

__all__ = [
    "add_train_config_options",
    "register",
    "train_config_from_args",
    "train_option",
    "train_options_markdown",
]

log = logging.getLogger(__name__)


def _hidden(text: str) -> tuple[int, ...]:
    """``64`` -> (64, 64); ``128,128,64`` -> (128, 128, 64)."""
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or N,N,...") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths * 2 if len(widths) == 1 else widths


def _show(value: Any) -> str:
    """A default as it is typed on the command line."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def train_option(f: dataclasses.Field) -> str:
    """The ``flowprior train`` option of a :class:`~flowprior.train.TrainConfig` field."""
    return f.metadata["cli"] or "--" + f.name.replace("_", "-")


def add_train_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`~flowprior.train.TrainConfig` field (name, type, default, help).

    Each option stores into the field's name, so ``TrainConfig(**{f.name: getattr(args,
    f.name)})`` rebuilds the configuration. A boolean field whose default is true (``progress``)
    becomes a switch that turns it off (``--quiet``); a tuple field takes ``N`` or ``N,N,...``.
    """
    from .train import TrainConfig

    types = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("flow and training (flowprior.train.TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        option, kind, help_text = train_option(f), types[f.name], f.metadata["help"]
        if kind is bool:
            action = "store_false" if f.default else "store_true"
            group.add_argument(
                option,
                dest=f.name,
                action=action,
                default=f.default,
                help=f"sets {f.name} to {not f.default}; {f.name}: {help_text}",
            )
            continue
        if typing.get_origin(kind) is tuple:
            convert, metavar = _hidden, "N[,N...]"
        else:
            convert = kind
            metavar = None if f.metadata["choices"] else {int: "N", float: "X"}.get(kind)
        group.add_argument(
            option,
            dest=f.name,
            type=convert,
            choices=f.metadata["choices"],
            default=f.default,
            metavar=metavar,
            help=f"{help_text} (default {_show(f.default)})".replace("%", "%%"),
        )


def train_options_markdown() -> str:
    """The Markdown table of the ``flowprior train`` options built from ``TrainConfig``.

    ``docs/cli.md`` contains exactly this text (``tests/test_defaults.py``); regenerate it with
    ``python -c "from flowprior.commands import train_options_markdown as t; print(t())"``.
    """
    from .train import TrainConfig

    rows = ["| option | field | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(TrainConfig):
        option = train_option(f)
        if f.metadata["choices"]:
            option += " " + "\\|".join(f.metadata["choices"])
        default = f"`{_show(f.default)}`"
        if isinstance(f.default, bool):
            default = f"`{f.default}` (option sets `{not f.default}`)"
        rows.append(f"| `{option}` | `{f.name}` | {default} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"


def train_config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~flowprior.train.TrainConfig` of parsed ``flowprior train`` options."""
    from .train import TrainConfig

    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the subcommands to the CLI's subparsers object."""
    p = subparsers.add_parser(
        "train",
        help="train a bounded flow prior on a posterior chain",
        description="Train a flow on CHAIN (csv/tsv/parquet/npz/GetDist/Cobaya; pocoMC pickle "
        "with --allow-pickle) inside the prior box of PARAMS and write the model to MODEL "
        "(a directory, or one file when it ends in .zip).",
    )
    p.add_argument("chain", metavar="CHAIN")
    p.add_argument("--params", required=True, metavar="PARAMS", help="parameter table")
    p.add_argument("--out", required=True, metavar="MODEL", help="model directory or .zip")
    add_train_config_options(p)
    p.add_argument("--outside", choices=("error", "clip", "drop"), default="error",
                   help="samples outside the prior box")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow loading a pocoMC pickle (only for files you trust)")
    p.add_argument("--history", metavar="CSV", help="also write the training history here")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("sample", help="draw samples from a flow prior")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", type=int, required=True, help="number of samples")
    p.add_argument("--out", required=True, metavar="FILE", help=".parquet or .csv")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_sample)

    p = subparsers.add_parser("logpdf", help="evaluate a flow prior's log-density at points")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("points", metavar="POINTS", help="chain-format file with parameter columns")
    p.add_argument("--out", required=True, metavar="FILE", help=".parquet or .csv")
    p.add_argument("--allow-pickle", action="store_true")
    p.set_defaults(func=_logpdf)

    p = subparsers.add_parser("info", help="print a model's manifest summary")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(func=_info)


def _train(args: argparse.Namespace) -> None:
    from ._atomic import atomic_write_text
    from .chains import read_chain
    from .params import load_parameters
    from .train import min_samples, train_flow

    cfg = train_config_from_args(args)  # bad settings fail before any file is read
    params = load_parameters(args.params)
    chain = read_chain(
        args.chain,
        params,
        allow_pickle=args.allow_pickle,
        outside=args.outside,
        min_samples=min_samples(params.dim),
    )
    result = train_flow(chain, cfg)
    result.save(args.out)
    if args.history:
        atomic_write_text(args.history, result.history.to_csv(index=False))
    m = result.metrics
    log.info(
        "wrote %s (%d steps, best validation NLL %.4f, %s)",
        args.out, m["steps"], m["best_val_nll"], m["stop_reason"],
    )


def _sample(args: argparse.Namespace) -> None:
    import numpy as np

    from .chains import Chain, write_chain
    from .priors import FlowPrior

    if args.n < 1:
        raise InputError(f"-n: must be >= 1, got {args.n}")
    prior = FlowPrior.load(args.model)
    x = prior.rvs(args.n, seed=args.seed)
    chain = Chain(prior.params, x, np.ones(args.n), log_prior=prior.logpdf(x),
                  source=f"flowprior sample {args.model}")
    write_chain(chain, args.out)
    log.info("wrote %d samples to %s", args.n, args.out)


def _logpdf(args: argparse.Namespace) -> None:
    import pandas as pd

    from ._atomic import atomic_output_path
    from .chains import read_chain
    from .priors import FlowPrior

    prior = FlowPrior.load(args.model)
    points = read_chain(args.points, prior.params, allow_pickle=args.allow_pickle, outside="keep")
    frame = pd.DataFrame(points.samples, columns=list(prior.names))
    frame["logpdf"] = prior.logpdf(points.samples)
    suffix = str(args.out).lower().rsplit(".", 1)[-1]
    if suffix not in ("parquet", "csv"):
        raise InputError(f"{args.out}: --out: unknown file type; use .parquet or .csv")
    with atomic_output_path(args.out) as tmp:
        if suffix == "csv":
            frame.to_csv(tmp, index=False, float_format="%.17g")
        else:
            frame.to_parquet(tmp, index=False)
    log.info("wrote %d log-densities to %s", len(frame), args.out)


def _info(args: argparse.Namespace) -> None:
    from .io import read_manifest

    m = read_manifest(args.model)
    if args.json:
        print(json.dumps(m, indent=2, sort_keys=True))
        return
    print(_summary(m))


def _summary(m: dict[str, Any]) -> str:
    flow, train, met, data = m["flow"], m["training"], m["metrics"], m["data"]
    lines = [
        f"flowprior model (format {m['format_version']}, flowprior {m['versions']['flowprior']})",
        f"  flow        {flow['kind']}, {flow['transforms']} transforms, hidden "
        f"{flow['hidden']}, dim {flow['dim']}, core {flow['dtype']}",
        f"  training    loss {train['loss']}, seed {m['seed']}, {met['steps']} steps "
        f"({met['stop_reason']}), {met['train_seconds']:.1f} s",
        f"  validation  best NLL {met['best_val_nll']:.5g} at step {met['best_step']}"
        + (f", KL {met['val_kl']:.4g}" if "val_kl" in met else ""),
        f"  data        {data['source']} (n={data['n']}, ESS={data['ess']:.1f}, "
        f"sha256 {data['sha256'][:12]}...)",
        "  parameters",
    ]
    for p in m["parameters"]:
        lines.append(f"    {p['name']:<16} [{p['lower']:.6g}, {p['upper']:.6g}]  {p['label']}")
    return "\n".join(lines)
