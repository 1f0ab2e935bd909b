"""Where the time and memory of a workflow run go: Snakemake's per-job benchmark files.

Every compute job writes a Snakemake benchmark file (``benchmark:`` directive: wall seconds
``s``, peak resident memory ``max_rss`` in MB, CPU time) under ``results/benchmarks/``: a
posterior's jobs as ``<rule>/<posterior>.tsv``, an analysis' jobs as
``<analysis>/<stage path>.tsv``, study-wide jobs as ``<rule>.tsv``. The ``group`` of a job is
that first path component (a rule or an analysis).
This script reads them all and prints the most expensive jobs, the time per rule or analysis and the
largest peak memory, so the figures in docs/results.md come from a run and not from memory.

Usage::

    python benchmarks/study_cost.py results [--top 5] [--rss-limit-mb 2048] [--markdown]
    python benchmarks/study_cost.py results --record --venv-s 110 --run-s 1150   # bench_study.sh

``--record`` writes the run's wall time (measured by the caller, ``benchmarks/bench_study.sh``),
the job count, the top jobs and the peak RSS to ``benchmarks/figures.json`` (the README's quick
reference, ``benchmarks/quickref.py``).

Exit status 1 when a job's peak RSS exceeds ``--rss-limit-mb`` (the default study's 2 GB budget).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def read_benchmarks(results: Path) -> pd.DataFrame:
    """One row per job: ``group``, ``job`` (its wildcards), ``seconds``, ``max_rss_mb``, ``cpu_time``."""
    root = results / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        if frame.empty:
            continue
        rel = path.relative_to(root)
        last = frame.iloc[-1]  # a rerun appends nothing: Snakemake rewrites the file
        stem = rel.with_suffix("")
        rows.append(
            {
                "group": stem.parts[0],
                "job": "/".join(stem.parts[1:]) or stem.parts[0],
                "seconds": float(last["s"]),
                "max_rss_mb": pd.to_numeric(last.get("max_rss"), errors="coerce"),
                "cpu_time": pd.to_numeric(last.get("cpu_time"), errors="coerce"),
            }
        )
    if not rows:
        raise SystemExit(f"{root}: no benchmark files (run the workflow first)")
    return pd.DataFrame(rows)


def _record(jobs: pd.DataFrame, peak, *, top: int, venv_s: float, run_s: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import quickref

    quickref.record(
        "make_run",
        {
            "venv_s": round(venv_s),
            "run_s": round(run_s),
            "jobs": int(len(jobs)),
            "job_seconds": round(float(jobs["seconds"].sum())),
            "peak_rss_mb": None if peak is None else round(float(peak["max_rss_mb"])),
            "peak_job": None if peak is None else f"{peak['group']}/{peak['job']}",
            "top": [
                {"job": f"{r.group}/{r.job}", "seconds": round(r.seconds, 1)}
                for r in jobs.nlargest(top, "seconds").itertuples()
            ],
            "command": "benchmarks/bench_study.sh (BENCH_RECORD=1)",
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the workflow's results directory")
    parser.add_argument("--top", type=int, default=5, help="most expensive jobs to list")
    parser.add_argument("--rss-limit-mb", type=float, default=2048.0)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--record", action="store_true", help="record in benchmarks/figures.json")
    parser.add_argument("--venv-s", type=float, help="venv set-up seconds (with --record)")
    parser.add_argument("--run-s", type=float, help="wall seconds of the run (with --record)")
    args = parser.parse_args(argv)
    if args.record and (args.venv_s is None or args.run_s is None):
        parser.error("--record needs --venv-s and --run-s")

    jobs = read_benchmarks(args.results)
    fmt = (lambda f: f.to_markdown(index=False, floatfmt=".1f")) if args.markdown else (
        lambda f: f.to_string(index=False, float_format=lambda v: f"{v:.1f}")
    )
    print(f"{len(jobs)} jobs, {jobs['seconds'].sum():.0f} job-seconds in all "
          f"(wall time of the run is less: jobs run in parallel)\n")
    print(f"The {args.top} most expensive jobs:")
    print(fmt(jobs.nlargest(args.top, "seconds")[["group", "job", "seconds", "max_rss_mb"]]))
    per_rule = (
        jobs.groupby("group")
        .agg(jobs=("job", "size"), seconds=("seconds", "sum"), max_rss_mb=("max_rss_mb", "max"))
        .sort_values("seconds", ascending=False)
        .reset_index()
    )
    print("\nPer group (rule or analysis):")
    print(fmt(per_rule))
    peak = jobs.loc[jobs["max_rss_mb"].idxmax()] if jobs["max_rss_mb"].notna().any() else None
    if args.record:
        _record(jobs, peak, top=args.top, venv_s=args.venv_s, run_s=args.run_s)
    if peak is None:
        print("\npeak RSS: unknown (no max_rss in the benchmark files)")
        return 0
    print(f"\npeak RSS: {peak['max_rss_mb']:.0f} MB ({peak['group']} {peak['job']}); "
          f"limit {args.rss_limit_mb:.0f} MB")
    over = jobs[jobs["max_rss_mb"] > args.rss_limit_mb]
    if len(over):
        print(fmt(over[["group", "job", "max_rss_mb"]]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
