"""Peer benchmark: flowprior against margarine on the same training and held-out data.

margarine (PyPI, Bevins et al.; 2.2.0 is a JAX/flax rewrite with RealNVP, NICE and KDE
estimators on a probit-transformed prior box) is the published package that turns posterior
samples into priors. Both estimators get the same exact training samples of the 2-D banana
and of the bimodal 7-D mixture (``--n``, each splits off its own validation set: margarine
10 % validation + 10 % unused test, flowprior 20 %), the same prior box, and are scored on the
same independent exact held-out samples: training wall time, exact KL ``E_p[log p - log q]``
and C2ST (flow samples against held-out samples). flowprior's time to margarine's accuracy is
the training time at which flowprior's validation KL first reached margarine's held-out KL.

margarine needs JAX, flax and tfp-nightly; keep it out of the project's environment::

    python3.11 -m venv /tmp/venv-margarine
    /tmp/venv-margarine/bin/pip install margarine torch==2.13.0
    /tmp/venv-margarine/bin/pip install zuko==1.6.0 pocomc==1.2.6 emcee==3.1.6 pandas==3.1.1 \\
        pyarrow==26.0.1 safetensors==0.8.0 scikit-learn==1.9.1 matplotlib==3.11.2 corner==2.3.0
    /tmp/venv-margarine/bin/pip install --no-deps -e .
    taskset -c 0 /tmp/venv-margarine/bin/python benchmarks/bench_margarine.py

One thread each (torch: ``threads=1``; XLA: set below, before JAX is imported).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from flowprior.diagnostics import c2st  # noqa: E402
from flowprior.priors import FlowPrior  # noqa: E402
from flowprior.problems import get_problem  # noqa: E402
from flowprior.train import TrainConfig, train_flow  # noqa: E402

log = logging.getLogger("bench_margarine")


def run_margarine(x_train, bounds, *, epochs, batch_size, lr, seed):
    """Train margarine's RealNVP (its defaults otherwise); returns (model, seconds, epochs)."""
    import jax
    import jax.numpy as jnp
    from margarine.estimators.realnvp import RealNVP

    t = time.perf_counter()
    model = RealNVP(
        jnp.asarray(x_train, dtype=jnp.float32),
        theta_ranges=jnp.asarray(bounds.T, dtype=jnp.float32),
        in_size=x_train.shape[1],
        permutations_key=jax.random.PRNGKey(seed),
    )
    model.train(
        jax.random.PRNGKey(seed),
        learning_rate=lr,
        epochs=epochs,
        patience=50,
        batch_size=batch_size,
    )
    seconds = time.perf_counter() - t
    return model, seconds, len(model.train_loss)


def margarine_log_prob(model, x, chunk=20000):
    import jax.numpy as jnp

    out = [np.asarray(model.log_prob(jnp.asarray(x[i : i + chunk], dtype=jnp.float32)))
           for i in range(0, len(x), chunk)]
    return np.concatenate(out).astype(np.float64)


def margarine_sample(model, n, seed):
    import jax

    return np.asarray(model.sample(jax.random.PRNGKey(seed + 1), n), dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=["banana", "mixture_7d"])
    ap.add_argument("--n", type=int, default=50_000, help="training samples (both estimators)")
    ap.add_argument("--n-held-out", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--margarine-epochs", type=int, default=20)
    ap.add_argument("--margarine-batch", type=int, default=1000)
    ap.add_argument("--margarine-lr", type=float, default=1e-3)
    ap.add_argument("--flowprior-kind", default="nsf")
    ap.add_argument("--flowprior-max-time", type=float, default=60.0)
    ap.add_argument("--c2st-max-n", type=int, default=5000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from importlib.metadata import version

    rows = []
    for name in args.problems:
        prob = get_problem(name)
        chain = prob.chain(args.n, seed=[args.seed, 0])
        held = prob.sample(args.n_held_out, seed=[args.seed, 1])
        log_p = prob.log_prob(held)

        cfg = TrainConfig(kind=args.flowprior_kind, seed=args.seed, threads=1, progress=False,
                          max_time=args.flowprior_max_time)
        res = train_flow(chain, cfg)
        prior = FlowPrior.from_result(res, seed=args.seed)
        kl_f = float(np.mean(log_p - prior.logpdf(held)))
        y_f = prior.rvs(args.c2st_max_n, seed=args.seed)
        c2_f = c2st(held, y_f, seed=args.seed, max_n=args.c2st_max_n)

        model, sec_m, ep_m = run_margarine(
            chain.samples, prob.params.bounds, epochs=args.margarine_epochs,
            batch_size=args.margarine_batch, lr=args.margarine_lr, seed=args.seed,
        )
        lq_m = margarine_log_prob(model, held)
        finite = np.isfinite(lq_m)
        kl_m = float(np.mean(log_p[finite] - lq_m[finite]))
        y_m = margarine_sample(model, args.c2st_max_n, args.seed)
        y_m = y_m[np.isfinite(y_m).all(axis=1)]
        c2_m = c2st(held, y_m, seed=args.seed, max_n=args.c2st_max_n)

        hist = res.history
        reached = hist.loc[hist["val_kl"] <= kl_m, "seconds"]
        to_m = float(reached.iloc[0]) if len(reached) else float("nan")
        rows.append(
            {
                "problem": name,
                "margarine_s": sec_m,
                "margarine_epochs": ep_m,
                "margarine_kl": kl_m,
                "margarine_nonfinite": int((~finite).sum()),
                "margarine_c2st": c2_m,
                "flowprior_s": float(res.metrics["train_seconds"]),
                "flowprior_steps": int(res.metrics["steps"]),
                "flowprior_kl": kl_f,
                "flowprior_c2st": c2_f,
                "flowprior_s_to_margarine_kl": to_m,
            }
        )
        log.info("%s", rows[-1])

    log.info("margarine %s, flowprior %s, same data: %d training, %d held-out exact samples",
             version("margarine"),
             args.flowprior_kind, args.n, args.n_held_out)
    header = ("| problem | margarine s (epochs) | margarine KL | margarine C2ST | flowprior s (steps) "
              "| flowprior KL | flowprior C2ST | KL ratio m/f | time ratio m/f | flowprior s to margarine KL | speed-up to same KL |")
    print(header)
    print("|" + "---|" * 11)
    for r in rows:
        speed = r["margarine_s"] / r["flowprior_s_to_margarine_kl"]
        print(
            f"| {r['problem']} | {r['margarine_s']:.1f} ({r['margarine_epochs']}) "
            f"| {r['margarine_kl']:.4f} | {r['margarine_c2st']:.3f} "
            f"| {r['flowprior_s']:.1f} ({r['flowprior_steps']}) | {r['flowprior_kl']:.4f} "
            f"| {r['flowprior_c2st']:.3f} | {r['margarine_kl'] / r['flowprior_kl']:.1f} "
            f"| {r['margarine_s'] / r['flowprior_s']:.2f} | {r['flowprior_s_to_margarine_kl']:.1f} "
            f"| {speed:.0f}x |"
        )


if __name__ == "__main__":
    main()
