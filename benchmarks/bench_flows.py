"""Benchmark: training time, exact held-out KL and evaluation throughput of flow priors.

Targets (2-core machine, see README): banana KL <= 0.005 nats in <= 60 s of training;
7-D mixture KL <= 0.03 nats in <= 180 s; logpdf >= 200 000 points/s in 7-D on large batches
and <= 1 ms per 16-point call (emcee evaluates the prior on half its walkers at every step).

Usage::

    python benchmarks/bench_flows.py                 # default settings, nsf
    python benchmarks/bench_flows.py --kinds nsf maf realnvp --threads 1

Prints one table row per (problem, kind) and writes benchmarks/results/flows.csv.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from flowprior.priors import FlowPrior  # noqa: E402
from flowprior.problems import get_problem  # noqa: E402
from flowprior.train import TrainConfig, train_flow  # noqa: E402

log = logging.getLogger("bench_flows")

#: Accuracy targets (exact KL, nats) from the flow-prior issue.
KL_TARGET = {"banana": 0.005, "mixture_7d": 0.03, "gaussian_7d": 0.01}


def _throughput(fn, n_points: int, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_points / best


def _latency_ms(prior: FlowPrior, x16: np.ndarray, calls: int = 300) -> float:
    prior.logpdf(x16)  # warm-up
    t = time.perf_counter()
    for _ in range(calls):
        prior.logpdf(x16)
    return (time.perf_counter() - t) / calls * 1e3


def run_one(problem: str, kind: str, *, n_train_total: int, seed: int, threads: int, overrides):
    prob = get_problem(problem)
    chain = prob.chain(n_train_total, seed=seed)  # 80 % train / 20 % validation
    cfg = TrainConfig(kind=kind, seed=seed, threads=threads, progress=False, **overrides)
    torch.set_num_threads(threads)
    res = train_flow(chain, cfg)
    prior = FlowPrior.from_result(res, seed=seed)
    test = prob.sample(100_000, seed=seed + 1000)  # fresh exact held-out samples
    kl = float(np.mean(prob.log_prob(test) - prior.logpdf(test)))
    hist = res.history
    target = KL_TARGET.get(problem, np.nan)
    reached = hist.loc[hist["val_kl"] <= target, "seconds"]
    row = {
        "problem": problem,
        "dim": prob.params.dim,
        "kind": kind,
        "steps": res.metrics["steps"],
        "stop": res.metrics["stop_reason"],
        "train_s": round(res.metrics["train_seconds"], 1),
        "heldout_kl": round(kl, 5),
        "kl_target": target,
        "s_to_target": round(float(reached.iloc[0]), 1) if len(reached) else None,
        "logpdf_pts_per_s": round(_throughput(lambda: prior.logpdf(test), len(test))),
        "rvs_pts_per_s": round(_throughput(lambda: prior.rvs(100_000), 100_000)),
        "logpdf16_ms": round(_latency_ms(prior, test[:16]), 3),
    }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=["banana", "mixture_7d"])
    ap.add_argument("--kinds", nargs="+", default=["nsf"])
    ap.add_argument("--n", type=int, default=100_000, help="chain size (80%% used for training)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=None, help="override the default")
    ap.add_argument("--max-time", type=float, default=None, help="override the default")
    ap.add_argument("--out", default="benchmarks/results/flows.csv")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.max_time is not None:
        overrides["max_time"] = args.max_time
    rows = []
    for problem in args.problems:
        for kind in args.kinds:
            row = run_one(problem, kind, n_train_total=args.n, seed=args.seed,
                          threads=args.threads, overrides=overrides)
            log.info("%s", row)
            rows.append(row)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    log.info("\n%s", table.to_markdown(index=False) if _has_tabulate() else table.to_string())


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
