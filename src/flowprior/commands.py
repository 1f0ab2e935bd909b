"""The ``train``, ``sample``, ``logpdf`` and ``info`` subcommands of the ``flowprior`` CLI.

Outputs are checked before any work starts (:func:`flowprior._atomic.check_output_path`): an
output must not be, contain or lie inside an input or another output of the command (real
paths and inodes compared), its directory must exist and be writable, and an existing output
is replaced only when it is flowprior's own of the same kind: a model recognised by its
manifest (:func:`flowprior.io.is_model`), a training history (header ``step,...,val_nll,...``),
samples of this model (its parameter names, ``weight``, ``log_prior``) or log-densities of
this model (its parameter names, ``logpdf``). Everything else is an
:class:`~flowprior.errors.OutputError` (exit status 2) and is left untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import shutil
import typing
import zipfile
from pathlib import Path
from typing import Any, Callable

from ._atomic import check_output_path
from .errors import InputError

__all__ = [
    "add_chain_options",
    "add_train_config_options",
    "chain_options",
    "register",
    "train_config_from_args",
    "train_option",
    "train_options_markdown",
]

log = logging.getLogger(__name__)

#: Largest ``flowprior sample -n``: 10 million draws (80 MB per parameter in float64).
MAX_SAMPLES = 10_000_000
#: Seeds are non-negative and fit in 63 bits (numpy and torch generators both take them).
MAX_SEED = 2**63 - 1
#: Per-field bounds of integer ``flowprior train`` options checked while parsing.
_INT_BOUNDS = {"seed": (0, MAX_SEED)}
#: Largest manifest read while deciding whether an existing output is a model.
_MANIFEST_PEEK = 16 * 2**20
#: Bytes read from an existing CSV output to see its header.
_HEADER_PEEK = 2**20
#: File suffixes of ``flowprior sample --out`` and ``flowprior logpdf --out``.
_SAMPLE_SUFFIXES = (".parquet", ".pq", ".csv")
_LOGPDF_SUFFIXES = (".parquet", ".csv")


def _hidden(text: str) -> tuple[int, ...]:
    """``64`` -> (64, 64); ``128,128,64`` -> (128, 128, 64)."""
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or N,N,...") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths * 2 if len(widths) == 1 else widths


def _finite_float(text: str) -> float:
    """A float option: finite (``inf``/``nan`` are refused while parsing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _bounded_int(lo: int, hi: int, *, what: str = "") -> Callable[[str], int]:
    """An integer option in ``[lo, hi]`` (``-1`` or ``2**70`` for a seed are refused)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"must be between {lo} and {hi}{what}, got {text!r}"
            )
        return value

    return convert


def _burn_in(text: str) -> float | int:
    """``--burn-in``: an integer is a count of samples, anything else a fraction."""
    try:
        return int(text)
    except ValueError:
        pass
    value = _finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"a fraction must be in [0, 1) (or give an integer count), got {text!r}"
        )
    return value


def _names(text: str) -> tuple[str, ...]:
    """``--select a,b,c`` -> ("a", "b", "c")."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...], got {text!r}")
    return names


def add_chain_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--burn-in``, ``--select``: how a chain is read.

    Their defaults are None, which means the defaults of
    :func:`flowprior.chains.read_chain` (format from the suffix or the root's files, no
    burn-in, every parameter); the keyword arguments come from :func:`chain_options`.
    """
    from .chains import FORMATS

    group = parser.add_argument_group("reading the chain (flowprior.chains.read_chain)")
    group.add_argument("--format", dest="fmt", choices=FORMATS, default=None,
                       help="chain format (default: from the suffix, or a GetDist/Cobaya root "
                       "from its root.paramnames / root.updated.yaml and chain files)")
    group.add_argument("--burn-in", dest="burn_in", type=_burn_in, default=None, metavar="X",
                       help="discard the first samples of each chain file: a fraction in "
                       "[0, 1) or an integer count (default: none)")
    group.add_argument("--select", dest="select", type=_names, default=None,
                       metavar="NAME[,NAME...]",
                       help="model only these parameters (default: all of PARAMS, or of the "
                       "chain)")


def chain_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~flowprior.chains.read_chain` keyword arguments of the chain options."""
    return {"fmt": args.fmt, "burn_in": args.burn_in, "select": args.select}


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
        metavar = None if f.metadata["choices"] else {int: "N", float: "X"}.get(kind)
        if typing.get_origin(kind) is tuple:
            convert, metavar = _hidden, "N[,N...]"
        elif kind is float:
            convert = _finite_float
        elif f.name in _INT_BOUNDS:
            convert = _bounded_int(*_INT_BOUNDS[f.name])
        else:
            convert = kind
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
        description="Train a flow on CHAIN (csv/tsv/parquet/npz, a GetDist or Cobaya chain "
        "file or root; pocoMC pickle with --allow-pickle) inside the prior box of PARAMS and "
        "write the model to MODEL (a directory, or one file when it ends in .zip).",
    )
    p.add_argument("chain", metavar="CHAIN")
    p.add_argument("--params", default=None, metavar="PARAMS",
                   help="parameter table (default: the names and ranges a GetDist/Cobaya "
                   "chain carries in root.paramnames + root.ranges or root.updated.yaml)")
    p.add_argument("--out", required=True, metavar="MODEL", help="model directory or .zip")
    add_chain_options(p)
    add_train_config_options(p)
    p.add_argument("--outside", choices=("error", "clip", "drop"), default="error",
                   help="samples outside the prior box")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow loading a pocoMC pickle (only for files you trust)")
    p.add_argument("--history", metavar="CSV", help="also write the training history here")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("sample", help="draw samples from a flow prior")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("-n", type=int, required=True,
                   help=f"number of samples (1 to {MAX_SAMPLES} per call)")
    p.add_argument("--out", required=True, metavar="FILE", help=".parquet or .csv")
    p.add_argument("--seed", type=_bounded_int(0, MAX_SEED), default=None,
                   help=f"seed of the draw (0 to {MAX_SEED}; default: the model's own stream)")
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
    p.add_argument("--fingerprint", action="store_true",
                   help="print a digest of what determines the density (flowprior.io."
                   "model_fingerprint)")
    p.set_defaults(func=_info)

    _register_tension(subparsers)


# ------------------------------------------------------------------ existing outputs
def _read_json_manifest(data: bytes) -> str | None:
    """None when ``data`` is a flowprior manifest, else why not."""
    from .io import FORMAT

    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        return "its manifest.json is not valid JSON"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"its manifest.json is not a {FORMAT} manifest"
    return None


def model_output_reason(path: Path) -> str | None:
    """None when the existing ``path`` is a flowprior model (so ``train --out`` may replace it).

    The decision is :func:`flowprior.io.is_model` (the rule ``save_model`` applies too): a
    model directory holds only model files and a ``manifest.json`` of the flowprior model
    format; a ``.zip`` is such an archive. Otherwise the reason why not, for the message.
    """
    from . import io as model_io

    if model_io.is_model(path):
        return None
    return _why_not_a_model(path) or "not recognised as a flowprior model by its manifest"


def _why_not_a_model(path: Path) -> str | None:
    """Why an existing ``path`` is not a flowprior model (None when no reason is found)."""
    from .io import ENTRIES, MANIFEST

    if path.is_dir():
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        if not entries:
            return "an empty directory"
        odd = [e.name for e in entries if e.is_symlink() or not e.is_file(follow_symlinks=False)]
        if odd:
            return f"it holds {', '.join(odd)}, which is not a model file"
        names = {e.name for e in entries}
        if MANIFEST not in names:
            return f"no {MANIFEST}"
        extra = sorted(names - set(ENTRIES))
        if extra:
            return f"it holds {', '.join(extra)}, which is not part of a flowprior model"
        manifest = path / MANIFEST
        if manifest.stat().st_size > _MANIFEST_PEEK:
            return f"its {MANIFEST} is too large"
        return _read_json_manifest(manifest.read_bytes())
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(MANIFEST)
            if info.file_size > _MANIFEST_PEEK:
                return f"its {MANIFEST} is too large"
            with zf.open(info) as fh:
                data = fh.read(_MANIFEST_PEEK + 1)
    except KeyError:
        return f"a zip without {MANIFEST}"
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, ValueError):
        return "not a readable zip archive"
    return _read_json_manifest(data)


def _columns(path: Path) -> list[str] | None:
    """The column names of an existing CSV or Parquet output; None when it is neither."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (OSError, ValueError):  # ArrowInvalid is a ValueError: not a Parquet file
            return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_PEEK)
        line = head.decode("utf-8").splitlines()[0] if head else ""
        return next(csv.reader(io.StringIO(line)))
    except (OSError, UnicodeDecodeError, csv.Error, StopIteration, IndexError):
        return None


def _table_reason(columns_ok: Callable[[list[str]], bool], what: str):
    """An ``ours`` callback: the existing file's header must be that of ``what``."""

    def reason(path: Path) -> str | None:
        cols = _columns(path)
        if cols is None:
            return "unreadable header"
        if not columns_ok(cols):
            shown = ",".join(cols[:8]) + (",..." if len(cols) > 8 else "")
            return f"its columns {shown!r} are not those of {what}"
        return None

    return reason


def _judged_after_loading(path: Path) -> None:
    """``ours`` of the early check: an existing file is judged once the model is read."""
    return None


def _is_history(cols: list[str]) -> bool:
    return len(cols) >= 2 and cols[0] == "step" and "val_nll" in cols


def _check_suffix(path: str, option: str, suffixes: tuple[str, ...]) -> None:
    if Path(path).suffix.lower() not in suffixes:
        raise InputError(
            f"{path}: {option}: unknown file type; use {' or '.join(suffixes)}"
        )


@contextlib.contextmanager
def _removed_on_error(path: Path, existed: bool):
    """Remove a newly written ``path`` when the block fails (an older output is kept as is)."""
    try:
        yield
    except BaseException:
        if not existed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        raise


# ------------------------------------------------------------------ the subcommands
def _train(args: argparse.Namespace) -> None:
    from ._atomic import atomic_output_path
    from .chains import read_chain
    from .params import load_parameters
    from .train import min_samples, train_flow

    cfg = train_config_from_args(args)  # bad settings fail before any file is read
    inputs = {"CHAIN": args.chain, "--params": args.params}
    out = check_output_path(
        args.out, option="--out", avoid={**inputs, "--history": args.history},
        directory=Path(args.out).suffix != ".zip", ours=model_output_reason,
        kind="flowprior model",
    )
    if args.history:
        check_output_path(
            args.history, option="--history", avoid={**inputs, "--out": args.out},
            ours=_table_reason(_is_history, "a flowprior training history"),
            kind="flowprior training history",
        )
    params = None if args.params is None else load_parameters(args.params)
    options = chain_options(args)
    dim = len(options["select"] or ()) or (None if params is None else params.dim)
    chain = read_chain(
        args.chain,
        params,
        allow_pickle=args.allow_pickle,
        outside=args.outside,
        min_samples=1 if dim is None else min_samples(dim),
        **options,
    )
    # (without PARAMS or --select the dimension is known once read: train_flow checks then)
    result = train_flow(chain, cfg)
    existed = os.path.lexists(out)
    with contextlib.ExitStack() as stack:
        # a new model is removed again if the history cannot be completed; the history is
        # written to a temporary file and renamed into place only after the model
        stack.enter_context(_removed_on_error(out, existed))
        if args.history:
            tmp = stack.enter_context(atomic_output_path(args.history))
            result.history.to_csv(tmp, index=False)
        result.save(out, timing=False)  # byte-identical for the same chain, settings, seed
    m = result.metrics
    log.info(
        "wrote %s (%d steps, best validation NLL %.4f, %s, %.1f s)",
        args.out, m["steps"], m["best_val_nll"], m["stop_reason"], m["train_seconds"],
    )


def _sample(args: argparse.Namespace) -> None:
    import numpy as np

    from .chains import Chain, write_chain
    from .priors import FlowPrior

    if not 1 <= args.n <= MAX_SAMPLES:
        raise InputError(
            f"-n: must be between 1 and {MAX_SAMPLES} samples per call, got {args.n}"
            + (" (draw several files with different --seed)" if args.n > MAX_SAMPLES else "")
        )
    _check_suffix(args.out, "--out", _SAMPLE_SUFFIXES)
    check_output_path(args.out, option="--out", avoid={"MODEL": args.model},
                      ours=_judged_after_loading, kind="sample file")
    prior = FlowPrior.load(args.model)
    columns = [*prior.names, "weight", "log_prior"]
    check_output_path(
        args.out, option="--out", avoid={"MODEL": args.model}, kind="flowprior sample file",
        ours=_table_reason(lambda cols: cols == columns, "flowprior samples of this model"),
    )
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

    _check_suffix(args.out, "--out", _LOGPDF_SUFFIXES)
    inputs = {"MODEL": args.model, "POINTS": args.points}
    check_output_path(args.out, option="--out", avoid=inputs, ours=_judged_after_loading,
                      kind="log-density file")
    prior = FlowPrior.load(args.model)
    columns = [*prior.names, "logpdf"]
    check_output_path(
        args.out, option="--out", avoid=inputs, kind="flowprior log-density file",
        ours=_table_reason(lambda cols: cols == columns, "flowprior log-densities of this model"),
    )
    points = read_chain(args.points, prior.params, allow_pickle=args.allow_pickle, outside="keep")
    frame = pd.DataFrame(points.samples, columns=list(prior.names))
    frame["logpdf"] = prior.logpdf(points.samples)
    with atomic_output_path(args.out) as tmp:
        if Path(args.out).suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False, float_format="%.17g")
        else:
            frame.to_parquet(tmp, index=False)
    log.info("wrote %d log-densities to %s", len(frame), args.out)


def _info(args: argparse.Namespace) -> None:
    from .io import read_manifest

    if args.fingerprint:
        from .io import model_fingerprint

        print(model_fingerprint(args.model))
        return
    m = read_manifest(args.model)
    if args.json:
        try:
            text = json.dumps(m, indent=2, sort_keys=True, allow_nan=False)
        except ValueError:
            raise InputError(
                f"{args.model}: manifest.json: holds a NaN or infinite number, which JSON cannot "
                "represent; retrain the model"
            ) from None
        print(text)
        return
    print(_summary(m))


def _summary(m: dict[str, Any]) -> str:
    flow, train, met, data = m["flow"], m["training"], m["metrics"], m["data"]
    lines = [
        f"flowprior model (format {m['format_version']}, flowprior {m['versions']['flowprior']})",
        f"  flow        {flow['kind']}, {flow['transforms']} transforms, hidden "
        f"{flow['hidden']}, dim {flow['dim']}, core {flow['dtype']}",
        f"  training    loss {train['loss']}, seed {m['seed']}, {met['steps']} steps "
        f"({met['stop_reason']}), "
        + (f"{met['train_seconds']:.1f} s" if "train_seconds" in met else "wall time not recorded"),
        f"  validation  best NLL {met['best_val_nll']:.5g} at step {met['best_step']}"
        + (f", KL {met['val_kl']:.4g}" if "val_kl" in met else ""),
        f"  data        {data['source']} (n={data['n']}, ESS={data['ess']:.1f}, "
        f"sha256 {data['sha256'][:12]}...)",
        "  parameters",
    ]
    for p in m["parameters"]:
        lines.append(f"    {p['name']:<16} [{p['lower']:.6g}, {p['upper']:.6g}]  {p['label']}")
    return "\n".join(lines)


# ------------------------------------------------------------------ flowprior tension
#: ``flowprior tension --method`` choices.
TENSION_METHODS = ("flow", "gaussian", "all")
#: Keys every ``flowprior tension`` report carries (an existing ``--out`` is replaced only when
#: it is such a report).
TENSION_KEYS = (
    "parameters", "n_pairs", "shift_probability", "shift_probability_err", "shift_sigma",
    "shift_sigma_err", "gaussian_shift_sigma", "suspiciousness_sigma", "log_S",
    "bayesian_dimensionality", "method", "seconds",
)


def _register_tension(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tension",
        help="parameter-shift tension between two independent posterior chains",
        description="Parameter-shift tension between the posteriors of chains A and B "
        "(flowprior.diagnostics.flow_parameter_shift): a flow trained on the differences "
        "theta_A - theta_B (method flow), the Gaussian approximation (method gaussian) or both "
        "(all); writes a JSON report and prints a one-line summary.",
    )
    p.add_argument("chain_a", metavar="A", help="chain file or GetDist/Cobaya root")
    p.add_argument("chain_b", metavar="B", help="chain file or GetDist/Cobaya root")
    p.add_argument("--out", required=True, metavar="REPORT.json", help="the JSON report")
    p.add_argument("--select", type=_names, default=None, metavar="NAME[,NAME...]",
                   help="compare only these parameters (default: every parameter both share)")
    p.add_argument("--method", choices=TENSION_METHODS, default="all",
                   help="flow, gaussian or all (default all: both)")
    p.add_argument("--seed", type=_bounded_int(0, MAX_SEED), default=0,
                   help="drives the pairing, the flow and its draws (default 0)")
    p.add_argument("--threads", type=_bounded_int(1, 256), default=1,
                   help="torch threads (default 1)")
    p.add_argument("--params", default=None, metavar="PARAMS",
                   help="parameter table of both chains (default: the names and ranges a "
                   "GetDist/Cobaya chain carries)")
    p.add_argument("--burn-in", dest="burn_in", type=_burn_in, default=None, metavar="X",
                   help="discard the first samples of each chain file: a fraction in [0, 1) "
                   "or an integer count (default: none)")
    p.add_argument("--n-pairs", dest="n_pairs", type=_bounded_int(200, 10_000_000),
                   default=None, metavar="N",
                   help="pairs of samples the flow is trained on (default: ShiftSettings)")
    p.add_argument("--n-flows", dest="n_flows", type=_bounded_int(1, 20), default=None,
                   metavar="N", help="flows trained with different seeds; their spread enters "
                   "the error (default: ShiftSettings)")
    p.add_argument("--max-steps", dest="max_steps", type=_bounded_int(1, 10_000_000),
                   default=None, metavar="N",
                   help="training steps of each flow at most (default: ShiftSettings.flow)")
    p.add_argument("--no-calibration", dest="calibrate", action="store_false",
                   help="skip the calibration twins (half the training; shift_sigma_err is "
                   "then the statistical error only and misses the error the flows share)")
    p.add_argument("--joint", default=None, metavar="AB",
                   help="chain of the joint posterior of A and B: with log-likelihood columns "
                   "in all three, gives log_S, suspiciousness_sigma and bayesian_dimensionality")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow loading pocoMC pickles (only for files you trust)")
    p.set_defaults(func=_tension)


def _tension_reason(path: Path) -> str | None:
    """None when the existing ``path`` is a ``flowprior tension`` report."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_HEADER_PEEK))
    except (OSError, ValueError, RecursionError):
        return "not a JSON file"
    if not isinstance(data, dict) or not set(TENSION_KEYS) <= set(data):
        return "not a flowprior tension report"
    return None


def _tension(args: argparse.Namespace) -> None:
    import time

    from ._atomic import atomic_write_json
    from .chains import read_chain
    from .diagnostics.shift import (
        flow_parameter_shift,
        select_parameters,
        suspiciousness_from_chains,
    )
    from .diagnostics.tension import parameter_shift
    from .io import package_versions
    from .params import load_parameters

    start = time.perf_counter()
    if Path(args.out).suffix.lower() != ".json":
        raise InputError(f"{args.out}: --out: the report is JSON; name it *.json")
    inputs = {"A": args.chain_a, "B": args.chain_b}
    for option, value in (("--params", args.params), ("--joint", args.joint)):
        if value:
            inputs[option] = value
    check_output_path(args.out, option="--out", avoid=inputs, ours=_tension_reason,
                      kind="flowprior tension report")
    settings = _shift_settings(args)
    params = load_parameters(args.params) if args.params else None
    a, b = (
        read_chain(path, params, allow_pickle=args.allow_pickle, burn_in=args.burn_in)
        for path in (args.chain_a, args.chain_b)
    )
    names = select_parameters(a, b, args.select)
    stats: dict[str, Any] = {
        "suspiciousness_sigma": None, "log_S": None, "bayesian_dimensionality": None,
    }
    notes = []
    if args.joint:
        ab = read_chain(args.joint, params, allow_pickle=args.allow_pickle, burn_in=args.burn_in)
        stats = suspiciousness_from_chains(a, b, ab)
    else:
        notes.append(
            "suspiciousness_sigma, log_S and bayesian_dimensionality need the joint posterior "
            "(--joint AB; log S = <log L_AB>_AB - <log L_A>_A - <log L_B>_B); two chains alone "
            "do not give them"
        )
    report: dict[str, Any] = {
        "chains": [a.source, b.source],
        "parameters": names,
        "n_pairs": None,
        "shift_probability": None,
        "shift_probability_err": None,
        "shift_sigma": None,
        "shift_sigma_err": None,
        "shift_sigma_is_lower_bound": None,
    }
    if args.method in ("flow", "all"):
        res = flow_parameter_shift(a, b, parameters=names, seed=args.seed,
                                   threads=args.threads, settings=settings)
        report.update({k: v for k, v in res.items() if k not in ("seconds", "warnings")})
        notes += res["warnings"]
    if args.method == "gaussian":
        cols = {c: [c.params.names.index(p) for p in names] for c in (a, b)}
        g = parameter_shift(a.samples[:, cols[a]], b.samples[:, cols[b]],
                            wa=a.weights, wb=b.weights)
        report["gaussian_shift_sigma"] = g["sigma"]
        report["gaussian_shift_chi2"] = g["chi2"]
    report.update(stats)
    report.update({
        "notes": notes,
        "method": args.method,
        "seed": args.seed,
        "threads": args.threads,
        "seconds": time.perf_counter() - start,
        "versions": package_versions(),
    })
    atomic_write_json(args.out, report)
    print(_tension_summary(report))
    log.info("wrote %s", args.out)


def _shift_settings(args: argparse.Namespace) -> Any:
    """:class:`~flowprior.diagnostics.shift.ShiftSettings` with the options given replaced."""
    from .diagnostics.shift import ShiftSettings

    base = ShiftSettings()
    changes = {k: getattr(args, k) for k in ("n_pairs", "n_flows") if getattr(args, k) is not None}
    changes["calibrate"] = args.calibrate
    if args.max_steps is not None:
        changes["flow"] = dataclasses.replace(base.flow, max_steps=args.max_steps)
    return dataclasses.replace(base, **changes)


def _tension_summary(r: dict[str, Any]) -> str:
    """The one-line stdout summary of ``flowprior tension``."""
    parts = [f"parameter shift over {len(r['parameters'])} parameters:"]
    if r["shift_sigma"] is not None:
        if r["shift_sigma_is_lower_bound"]:
            parts.append(f"flow > {r['shift_sigma']:.2f} sigma (lower bound),")
        else:
            parts.append(
                f"flow {r['shift_sigma']:.2f} +- {r['shift_sigma_err']:.2f} sigma "
                f"(P = {r['shift_probability']:.6g}),"
            )
    parts.append(f"Gaussian {r['gaussian_shift_sigma']:.2f} sigma;")
    if r["suspiciousness_sigma"] is not None:
        parts.append(f"suspiciousness {r['suspiciousness_sigma']:.2f} sigma "
                     f"(log S {r['log_S']:.2f}, d {r['bayesian_dimensionality']:.2f});")
    parts.append(f"{r['seconds']:.1f} s")
    return " ".join(parts)
