"""Benchmark: cost of FlowPrior.logpdf, torch path (before) and numpy fast path (after).

Goals (issue #17; 1 thread): a 16-point call <= 0.3 ms for every kind in 2-D and 7-D;
>= 2M points/s for maf and realnvp and >= 500k points/s for nsf on 7-D batches of 4096.

Both paths are timed in the same run on the same flows: the default architecture of
``FlowSettings`` (3 transforms, hidden (64, 64), 8 bins, float32 core), zuko's initial weights
(the cost does not depend on the values), a diagonal standardisation, points uniform in the box.
Latency is the median over many 16-point calls; throughput is 4096 divided by the median time of
a 4096-point call. torch and the BLAS both run on one thread.

Usage::

    python benchmarks/bench_prior.py                  # table, then a README: line per goal
    python benchmarks/bench_prior.py --markdown       # the table as markdown
    python benchmarks/bench_prior.py --record         # also record it for the README (quickref.py)
    python benchmarks/bench_prior.py --kinds nsf --dims 7 --calls 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from flowprior.flows import BoundedFlow, build_flow  # noqa: E402
from flowprior.params import ParameterSpace  # noqa: E402
from flowprior.priors import FlowPrior  # noqa: E402

#: Goals of issue #17: 16-point latency (ms), 7-D throughput (points/s) per kind.
LATENCY_GOAL_MS = 0.3
THROUGHPUT_GOAL = {"nsf": 500_000, "maf": 2_000_000, "realnvp": 2_000_000}
BATCH = 4096


def _prior(kind: str, dim: int, *, fast: bool) -> FlowPrior:
    torch.manual_seed(0)
    core = build_flow(kind=kind, dim=dim, transforms=3, hidden=(64, 64), bins=8)
    zeros = torch.zeros(dim, dtype=torch.float64)
    flow = BoundedFlow(core, lower=zeros - 3, upper=zeros + 3, shift=zeros, scale=zeros + 1)
    space = ParameterSpace.from_dict(
        {"parameters": [{"name": f"p{i}", "lower": -3.0, "upper": 3.0} for i in range(dim)]}
    )
    return FlowPrior(flow, space, seed=0, fast=fast)


def _median_seconds(fns, x, calls: int, *, rounds: int = 10) -> list[float]:
    """Median wall time of each function on ``x``. The paths take turns in ``rounds`` runs of
    consecutive calls, so that a change of the machine's load affects them alike while each
    run keeps its own data in cache."""
    for fn in fns:
        fn(x)  # warm-up (builds the fast path)
    per_round = max(calls // rounds, 1)
    times = np.empty((rounds * per_round, len(fns)))
    for r in range(rounds):
        for j, fn in enumerate(fns):
            for i in range(r * per_round, (r + 1) * per_round):
                t0 = time.perf_counter()
                fn(x)
                times[i, j] = time.perf_counter() - t0
    return [float(t) for t in np.median(times, axis=0)]


def measure(kind: str, dim: int, *, calls: int) -> dict:
    """Latency (ms) and throughput (points/s) of both paths for one kind and dimension."""
    rng = np.random.default_rng(1)
    small, batch = rng.uniform(-3, 3, (16, dim)), rng.uniform(-3, 3, (BATCH, dim))
    fns = [_prior(kind, dim, fast=False).logpdf, _prior(kind, dim, fast=True).logpdf]
    torch_ms, fast_ms = (1e3 * t for t in _median_seconds(fns, small, calls))
    torch_pts, fast_pts = (BATCH / t for t in _median_seconds(fns, batch, max(calls // 20, 20)))
    return {
        "kind": kind,
        "dim": dim,
        "torch_ms": torch_ms,
        "fast_ms": fast_ms,
        "torch_pts": torch_pts,
        "fast_pts": fast_pts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["nsf", "maf", "realnvp"])
    ap.add_argument("--dims", nargs="+", type=int, default=[2, 7])
    ap.add_argument("--calls", type=int, default=1000, help="16-point calls per median")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument(
        "--record",
        action="store_true",
        help="write the fast path's figures to benchmarks/figures.json (the README's quick reference)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    with threadpool_limits(1):
        rows = [measure(k, d, calls=args.calls) for d in args.dims for k in args.kinds]
    print(
        f"# 1 thread, {os.cpu_count()} CPUs; 1-min load average {load:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (figures from a busy machine are slower)"
    )
    head = ("kind", "D", "16-pt torch ms", "16-pt fast ms", "4096 torch pts/s", "4096 fast pts/s")
    cells = [
        (
            r["kind"],
            str(r["dim"]),
            f"{r['torch_ms']:.3f}",
            f"{r['fast_ms']:.3f}",
            f"{r['torch_pts']:,.0f}",
            f"{r['fast_pts']:,.0f}",
        )
        for r in rows
    ]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for c in cells:
            print("| " + " | ".join(c) + " |")
    else:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for c in cells:
            print("  ".join(v.rjust(w) for v, w in zip(c, widths)))
    for r in rows:
        lat_ok = r["fast_ms"] <= LATENCY_GOAL_MS
        line = (
            f"README: FlowPrior.logpdf {r['kind']} {r['dim']}-D: 16-point call "
            f"{r['torch_ms']:.2f} -> {r['fast_ms']:.2f} ms (goal <= {LATENCY_GOAL_MS} ms: "
            f"{'met' if lat_ok else 'missed'})"
        )
        if r["dim"] == 7:
            tp_ok = r["fast_pts"] >= THROUGHPUT_GOAL[r["kind"]]
            line += (
                f"; 4096-batch {r['torch_pts'] / 1e3:.0f}k -> {r['fast_pts'] / 1e3:.0f}k points/s "
                f"(goal >= {THROUGHPUT_GOAL[r['kind']] / 1e3:.0f}k: {'met' if tp_ok else 'missed'})"
            )
        print(line)
    if args.record:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import quickref

        quickref.record(
            "prior_logpdf",
            {
                "rows": [
                    {
                        "kind": r["kind"],
                        "dim": r["dim"],
                        "latency_ms": round(r["fast_ms"], 4),
                        "points_per_s": round(r["fast_pts"]),
                        "torch_latency_ms": round(r["torch_ms"], 4),
                        "torch_points_per_s": round(r["torch_pts"]),
                    }
                    for r in rows
                ],
                "command": "python benchmarks/bench_prior.py --record",
            },
        )


if __name__ == "__main__":
    main()
