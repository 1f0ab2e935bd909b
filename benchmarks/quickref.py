"""The README's quick-reference numbers: recorded by the benchmark scripts, rendered from the record.

Every figure the README quotes (how long ``make test`` and ``make run`` take, the peak memory of a
study job, the cost of a flow prior, how fast training converges on a real chain) is written by
the benchmark that measured it into ``benchmarks/figures.json`` together with its provenance
(date, commit, cores, load average). This script turns that file into the README's quick-reference
block, between the markers ``<!-- quickref:start -->`` and ``<!-- quickref:end -->``;
``tests/test_quickref.py`` fails when the README and the record differ, so no number in that block
is typed by hand. A figure that was never measured is shown as "not measured".

Usage::

    python benchmarks/quickref.py render            # print the block
    python benchmarks/quickref.py write             # rewrite the README's block
    python benchmarks/quickref.py check             # exit 1 if the README's block is stale
    python benchmarks/quickref.py record KEY k=v... # what the shell benchmarks call

Python benchmarks call :func:`record` directly (``bench_prior.py --record``,
``bench_train_real.py --record``); ``bench_tests.sh`` and ``bench_study.sh`` call
``record`` on the command line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "benchmarks" / "figures.json"
README = ROOT / "README.md"
START, END = "<!-- quickref:start -->", "<!-- quickref:end -->"


def _commit() -> str | None:
    """The measured commit: ``BENCH_COMMIT`` (set by bench_tests.sh and bench_study.sh to their
    clone's commit: this checkout's HEAD may move during a long run), else this HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def provenance() -> dict[str, Any]:
    """Date, commit, cores and the 1-minute load average at the time of recording."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "date": _dt.date.today().isoformat(),
        "commit": _commit(),
        "cores": os.cpu_count(),
        "load_1min": load,
    }


def load(path: Path = FIGURES) -> dict[str, Any]:
    """The recorded figures (an empty record when the file does not exist)."""
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def record(key: str, figures: dict[str, Any], *, path: Path = FIGURES) -> None:
    """Replace the figures under ``key`` (with provenance), written atomically."""
    data = load(path)
    data[key] = {**figures, "provenance": provenance()}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".figures.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- rendering

NOT_MEASURED = "not measured"


def _when(entry: dict[str, Any]) -> str:
    p = entry.get("provenance", {})
    bits = [p.get("date") or "?"]
    if p.get("commit"):
        bits.append(f"commit {p['commit']}")
    if p.get("cores"):
        bits.append(f"{p['cores']} cores")
    if p.get("load_1min") is not None:
        bits.append(f"load {p['load_1min']}")
    return ", ".join(bits)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _row_make_test(data: dict) -> tuple[str, str, str]:
    what = "`make test` from a fresh clone (venv set-up + pytest)"
    e = data.get("make_test")
    if not e:
        return what, NOT_MEASURED, ""
    value = (
        f"{_minutes(e['venv_s'] + e['pytest_s'])} "
        f"({e['venv_s']:.0f} s + {e['pytest_s']:.0f} s); goal 8 min"
    )
    return what, value, _when(e)


def _row_make_run(data: dict) -> list[tuple[str, str, str]]:
    e = data.get("make_run")
    what = "`make run` (the default study) from a fresh clone"
    rss = "peak memory of a default-study job"
    if not e:
        return [(what, NOT_MEASURED, ""), (rss, NOT_MEASURED, "")]
    value = (
        f"{_minutes(e['venv_s'] + e['run_s'])} ({e['venv_s']:.0f} s + {e['run_s']:.0f} s, "
        f"{e['jobs']} benchmarked jobs); goal 20 min"
    )
    peak = e.get("peak_rss_mb")
    rss_value = NOT_MEASURED if peak is None else f"{peak:.0f} MB ({e['peak_job']}); limit 2 GB"
    return [(what, value, _when(e)), (rss, rss_value, _when(e))]


def _row_prior(data: dict) -> list[tuple[str, str, str]]:
    e = data.get("prior_logpdf")
    lat = "`FlowPrior.logpdf`, 16 points, 7-D, 1 thread (nsf / maf / realnvp)"
    thr = "`FlowPrior.logpdf` throughput, 7-D batches of 4096 (nsf / maf / realnvp)"
    if not e:
        return [(lat, NOT_MEASURED, ""), (thr, NOT_MEASURED, "")]
    kinds = ("nsf", "maf", "realnvp")
    rows = e["rows"]

    def get(kind, col):
        for r in rows:
            if r["kind"] == kind and r["dim"] == 7:
                return r[col]
        return None

    def fmt(v, f):
        return "?" if v is None else f(v)

    lat_v = " / ".join(fmt(get(k, "latency_ms"), lambda v: f"{v:.2f}") for k in kinds)
    thr_v = " / ".join(fmt(get(k, "points_per_s"), lambda v: f"{v / 1e6:.2f}M") for k in kinds)
    return [
        (lat, f"{lat_v} ms; goal 0.3 ms", _when(e)),
        (thr, f"{thr_v} points/s; goal 0.5M / 2M / 2M", _when(e)),
    ]


def _row_train(data: dict) -> list[tuple[str, str, str]]:
    e = data.get("train_real")
    what = "training with defaults on a real chain vs a 20-minute run (test NLL gap)"
    if not e:
        return [(what, NOT_MEASURED, "")]
    out = []
    for r in e["rows"]:
        gap = r.get("gap_nats")
        gap_s = "?" if gap is None else f"{gap:+.3f} nats"
        cpu = r.get("cpu_s")
        cpu_s = "" if cpu is None else f" ({cpu:.0f} s CPU)"
        out.append(
            (
                f"training on {r['chain']} ({r['dim']}-D, {r['n']:,} samples), defaults",
                f"{r['seconds']:.0f} s wall{cpu_s}, test NLL {gap_s} from the reference; "
                "goal 60 s, 0.01 nats",
                _when(e),
            )
        )
    return out or [(what, NOT_MEASURED, "")]


def render(data: dict[str, Any]) -> str:
    """The Markdown block (markers included) for ``data``."""
    rows: list[tuple[str, str, str]] = [_row_make_test(data)]
    rows += _row_make_run(data)
    rows += _row_prior(data)
    rows += _row_train(data)
    lines = [
        START,
        "<!-- generated by benchmarks/quickref.py from benchmarks/figures.json: do not edit -->",
        "| figure | measured | when |",
        "|---|---|---|",
    ]
    lines += [f"| {w} | {v} | {p} |" for w, v, p in rows]
    lines.append(END)
    return "\n".join(lines)


def replace_block(text: str, block: str, *, source: str) -> str:
    """``text`` with the block between the markers replaced (both markers must be present once)."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"{source}: expected one {START} and one {END} marker")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("render", help="print the block")
    sub.add_parser("write", help="rewrite the README's block")
    sub.add_parser("check", help="exit 1 if the README's block differs from the record")
    rec = sub.add_parser("record", help="record figures: KEY name=value ...")
    rec.add_argument("key")
    rec.add_argument("values", nargs="+", help="name=value (numbers parsed as JSON)")
    args = ap.parse_args(argv)

    if args.cmd == "record":
        figures = {}
        for item in args.values:
            name, sep, value = item.partition("=")
            if not sep:
                ap.error(f"record: {item!r} is not name=value")
            try:
                figures[name] = json.loads(value)
            except json.JSONDecodeError:
                figures[name] = value
        record(args.key, figures)
        return 0
    block = render(load())
    if args.cmd == "render":
        print(block)
        return 0
    text = README.read_text(encoding="utf-8")
    new = replace_block(text, block, source=str(README))
    if args.cmd == "check":
        if new != text:
            print(f"{README}: quick-reference block is stale; run benchmarks/quickref.py write",
                  file=sys.stderr)
            return 1
        return 0
    fd, tmp = tempfile.mkstemp(dir=README.parent, prefix=".README.", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new)
    os.replace(tmp, README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
