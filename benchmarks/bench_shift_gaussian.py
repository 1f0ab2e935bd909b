"""Benchmark: accuracy and error coverage of the flow parameter shift on Gaussian closed forms.

Two Gaussian posteriors ``A ~ N(k sqrt(2) e, I)`` and ``B ~ N(0, I)`` (``e`` a random unit
vector) have the exact shift ``norm.isf(chi2.sf(k^2, D) / 2)``. For each seed and offset ``k``
this prints the flow shift, its reported error (statistical part and calibration twins), the
miss ``flow - exact`` in units of the reported error, and the wall time; then how many misses
lie within one and two reported errors (or within 0.1 sigma, issue #14's criterion).

    python benchmarks/bench_shift_gaussian.py --dim 6 --n 4096 --settings workflow --k 0,2,4
    python benchmarks/bench_shift_gaussian.py --dim 2 --n 20000 --settings test --k 3,4,5,6

``--settings``: ``workflow`` (``ShiftSettings.workflow()``), ``defaults`` (``ShiftSettings()``)
or ``test`` (the small flows of tests/test_shift.py: 2-transform MAFs, 20 000 pairs).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from flowprior.chains import Chain  # noqa: E402
from flowprior.diagnostics.shift import ShiftSettings, flow_parameter_shift, shift_sigma  # noqa: E402
from flowprior.params import ParameterSpace  # noqa: E402

log = logging.getLogger("bench_shift_gaussian")


def settings(name: str) -> ShiftSettings:
    if name == "workflow":
        return ShiftSettings.workflow()
    if name == "defaults":
        return ShiftSettings()
    base = ShiftSettings()
    flow = dataclasses.replace(base.flow, transforms=2, hidden=(32, 32), batch_size=2048,
                               lr=1e-3, max_steps=1000)
    return ShiftSettings(n_pairs=20000, n_flow_samples=60000, n_flows=3, flow=flow)


def pair(k: float, *, dim: int, n: int, seed: int) -> tuple[Chain, Chain]:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=dim)
    e /= np.linalg.norm(e)
    names = tuple(f"p{i}" for i in range(dim))
    space = ParameterSpace(names, [-60.0] * dim, [60.0] * dim)
    a = Chain(space, rng.normal(size=(n, dim)) + k * np.sqrt(2.0) * e, source="A")
    b = Chain(space, rng.normal(size=(n, dim)), source="B")
    return a, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--n", type=int, default=4096, help="samples per chain")
    ap.add_argument("--settings", choices=("workflow", "defaults", "test"), default="workflow")
    ap.add_argument("--k", default="0,2,4", help="offsets, comma-separated")
    ap.add_argument("--seeds", default="1,2", help="chain seeds, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("flowprior").setLevel(logging.ERROR)
    cfg = settings(args.settings)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for k in (float(v) for v in args.k.split(",")):
            a, b = pair(k, dim=args.dim, n=args.n, seed=seed)
            start = time.perf_counter()
            r = flow_parameter_shift(a, b, seed=seed + 1, threads=args.threads, settings=cfg)
            wall = time.perf_counter() - start
            exact = shift_sigma(float(stats.chi2.sf(k * k, args.dim)))
            err = r["shift_sigma_err"]
            miss = r["shift_sigma"] - exact
            rows.append((abs(miss), err))
            log.info(
                "D=%d n=%d %s seed %d k=%g: exact %.3f flow %.3f +- %s (stat %s, twins %s) "
                "miss %+.3f = %s errors; Gaussian %.3f; %.0f s",
                args.dim, args.n, args.settings, seed, k, exact, r["shift_sigma"],
                "n/a" if err is None else f"{err:.3f}",
                "n/a" if r["statistical_sigma_err"] is None else f"{r['statistical_sigma_err']:.3f}",
                "n/a" if r["calibration_sigma_rms"] is None else f"{r['calibration_sigma_rms']:.3f}",
                miss, "n/a" if not err else f"{miss / err:+.2f}", r["gaussian_shift_sigma"], wall,
            )
    known = [(m, e) for m, e in rows if e is not None]
    one = sum(m <= max(0.1, e) for m, e in known)
    two = sum(m <= max(0.1, 2 * e) for m, e in known)
    log.info("within max(0.1, 1 error): %d of %d; within max(0.1, 2 errors): %d of %d",
             one, len(known), two, len(known))
    return 0


if __name__ == "__main__":
    sys.exit(main())
