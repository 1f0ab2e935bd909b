"""Benchmark: the flow parameter shift between two public posteriors, with the default settings.

Issue #14 asks for flowprior's number beside a published one, and for a 6-D pair of ~1e5-sample
chains in <= 2 minutes on 2 cores. The chains are the public GetDist roots of tensiometer's
``test_chains/`` (``DES``: DES Y1 3x2pt, 8 files, 96 721 samples; ``Planck18TTTEEE``: 13 300
samples), exported as described in ``benchmarks/bench_train_real.py``. The published value is
Raveri & Doux 2021 (Phys. Rev. D 104, 043504), DES Y1 vs Planck 2018 over the six LCDM
parameters: 2.6-3.0 sigma (flow and KDE estimates).

    python benchmarks/bench_tension_real.py --chain-dir /tmp/chains [--threads 2] [--seed 0]

Prints one line per run (the flow shift with its error, the statistical error and the
calibration twins' share, the Gaussian shift, the wall time) for the six parameters with the
library defaults (``ShiftSettings()``), and with the workflow's settings
(``ShiftSettings.workflow()``). Exit status 1 when the default run takes more than 120 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from flowprior.chains import read_chain  # noqa: E402
from flowprior.diagnostics.shift import ShiftSettings, flow_parameter_shift  # noqa: E402

log = logging.getLogger("bench_tension_real")
PARAMETERS = ["omegabh2", "omegach2", "theta", "tau", "logA", "ns"]
PUBLISHED = "2.6-3.0 sigma (Raveri & Doux 2021)"
WALL_GOAL = 120.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chain-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    a = read_chain(os.path.join(args.chain_dir, "DES"), select=PARAMETERS)
    b = read_chain(os.path.join(args.chain_dir, "Planck18TTTEEE"), select=PARAMETERS)
    log.info("DES: %d samples; Planck18TTTEEE: %d samples; published %s",
             a.samples.shape[0], b.samples.shape[0], PUBLISHED)
    status = 0
    for label, settings in (("defaults", ShiftSettings()), ("workflow", ShiftSettings.workflow())):
        start = time.perf_counter()
        r = flow_parameter_shift(a, b, parameters=PARAMETERS, seed=args.seed,
                                 threads=args.threads, settings=settings)
        wall = time.perf_counter() - start
        cal = r["calibration_sigma_rms"]
        log.info(
            "%-9s flow %.2f +- %.2f sigma (statistical %.3f, calibration %s), P = %.5f; "
            "Gaussian %.2f sigma; test NLL flow %.4f vs Gaussian %.4f; %.0f s wall, %d threads",
            label, r["shift_sigma"], r["shift_sigma_err"], r["statistical_sigma_err"],
            "n/a" if cal is None else f"{cal:.3f}", r["shift_probability"],
            r["gaussian_shift_sigma"], r["flow_test_nll"], r["gaussian_test_nll"], wall,
            args.threads,
        )
        if label == "defaults" and wall > WALL_GOAL:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
