"""Time to a certified minimizer: ``ufm.minimize`` vs fixed-step gradient descent (and heavy ball).

Model (bias-free cross-entropy UFM, ``docs/theory.md#canonical-objective``), ``W: (K, d)``, ``H: (d, N)``,
``N = K n``, labels ``np.repeat(arange(K), n)``:

    f(W, H) = (1/N) sum_i CE(W h_i, y_i) + lam_W/2 ||W||_F^2 + lam_H/2 ||H||_F^2

with K = 10, n = 100, d = 64, lam_W = lam_H = 5e-4, float64, all runs from the same random start
``prob.init(PRNGKey(0))``.

Compared:

1. ``ufm.minimize(prob, seed=0, gtol=1e-10)`` (L-BFGS then Newton-CG, one compiled solve):
   wall time of a warm call (best of ``--repeats``) and, separately, the compile time (first
   call minus warm call); its certificate ``sol.grad_norm``, ``sol.value`` and ``sol.stats``.
2. ``ufm.gradient_flow(prob, dt=lr, momentum=mu, metrics=("grad_norm",))``: gradient descent
   (``mu = 0``) at several learning rates and heavy ball (``mu = 0.9``), run for a fixed budget of
   steps with the gradient norm recorded along the way. When the norm reaches 1e-10 inside the
   budget, the step count is *measured*; otherwise the linear rate of ``log ||grad f||`` over the
   tail of the run is fitted and the steps to 1e-10 are *extrapolated*. The time per step is
   measured on the same compiled loop after a warm-up (compilation excluded).

The certificate of ``minimize`` is relative, ``grad_norm <= gtol * max(1, |f|)``; here ``f < 1``,
so both stop at the same absolute gradient norm 1e-10.

Run: ``python benchmarks/bench_minimize.py`` (``--quick`` for a smoke run, ``--budget N``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import OtherLoad, best_time, load_line, machine_line, print_table

K, n, d = 10, 100, 64
LAM_W = LAM_H = 5e-4
GTOL = 1e-10
SEED = 0
NUM_SAVES = 200  # grad-norm records per gradient-descent run
TAIL = 0.25  # fraction of the (pre-floor) records used for the rate fit

# (label, learning rate, momentum, share of --budget): lr=0.1 is bench_flow's learning rate;
# the larger ones show how much a tuned step size changes the picture.
GD_RUNS = [
    ("GD", 0.1, 0.0, 1.0),
    ("heavy ball", 0.1, 0.9, 0.3),
    ("GD", 1.0, 0.0, 0.3),
    ("GD", 5.0, 0.0, 0.1),
]


def make_problem():
    import ufm

    ufm.enable_x64()

    return ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=LAM_W, lam_H=LAM_H, lam_b=None)


# ---- 1. ufm.minimize ----------------------------------------------------------------------------
def time_minimize(prob, repeats: int):
    """``(compile seconds, best warm seconds, Solution)``."""
    import jax

    import ufm

    ufm.enable_x64()

    def solve():
        sol = ufm.minimize(prob, seed=SEED, gtol=GTOL)
        jax.block_until_ready(sol.params)
        return sol

    t0 = time.perf_counter()
    solve()
    first = time.perf_counter() - t0
    sec, sol = best_time(solve, repeats)
    return first - sec, sec, sol


# ---- 2. fixed-step gradient descent / heavy ball ------------------------------------------------
def gd_profile(prob, lr: float, mu: float, steps: int):
    """Run ``steps`` steps recording ``||grad f||`` ``NUM_SAVES`` times.

    Returns ``(step numbers, grad norms, final objective, warm seconds, compile seconds)``; the
    warm-up uses the same shapes (same number of records, one step each), so the timed call does
    not compile.
    """
    import jax

    import ufm

    ufm.enable_x64()

    chunk = max(steps // NUM_SAVES, 1)

    def run(chunk_steps):
        ts = lr * chunk_steps * np.arange(1, NUM_SAVES + 1)
        traj = ufm.gradient_flow(
            prob,
            t1=float(ts[-1]),
            dt=lr,
            momentum=mu,
            seed=SEED,
            metrics=("grad_norm",),
            saveat=ufm.SaveAt(ts=ts, params=False),
            dtype=np.float64,
        )
        return jax.block_until_ready(traj)

    t0 = time.perf_counter()
    run(1)
    warm_up = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = run(chunk)
    sec = time.perf_counter() - t0
    step_nums = chunk * np.arange(1, NUM_SAVES + 1)
    assert traj.stats["num_steps"] == step_nums[-1], traj.stats
    return step_nums, np.asarray(traj.metrics["grad_norm"]), float(traj.values[-1]), sec, warm_up


def steps_to_tol(step_nums, gnorms, tol: float):
    """``(steps, how, rate)``: the first recorded step with ``||g|| <= tol`` ("measured"), else a
    log-linear fit over the tail extrapolated to ``tol`` ("extrapolated"); ``rate`` is the fitted
    decay of ``ln ||g||`` per step (None when measured)."""
    hit = np.flatnonzero(gnorms <= tol)
    if hit.size:
        return int(step_nums[hit[0]]), "measured", None
    m = len(step_nums)
    tail = slice(int((1 - TAIL) * m), m)
    slope, icpt = np.polyfit(step_nums[tail], np.log(gnorms[tail]), 1)
    if slope >= 0:
        return None, "no decay in the tail", slope
    return int(np.ceil((np.log(tol) - icpt) / slope)), "extrapolated", -slope


# ---- driver -------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--budget",
        type=int,
        default=200_000,
        help="steps of the lr=0.1 GD run; the other runs get a share of it",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: 4,000-step budget, 1 repeat")
    args = p.parse_args(argv)
    budget, repeats = (4_000, 1) if args.quick else (args.budget, args.repeats)

    import jax

    print(
        f"CE-UFM K={K} n={n} d={d} lam_W=lam_H={LAM_W}, no bias, float64, seed {SEED}, "
        f"target ||grad f|| <= {GTOL:g}"
    )
    print(f"{machine_line()}, jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"start: {load_line()}")
    prob = make_problem()

    load = OtherLoad().start()
    compile_s, run_s, sol = time_minimize(prob, repeats)
    others = load.stop()
    print("\nufm.minimize (measured)")
    print(f"  wall time {run_s:.3f} s (best of {repeats}, compiled), compile {compile_s:.2f} s")
    print(f"  value {sol.value:.15g}  grad_norm {sol.grad_norm:.3e}  result {sol.result.name}")
    print(f"  stats {sol.stats}")
    print(f"  other processes used {others:.0%} of the cores meanwhile")

    rows = []
    for label, lr, mu, share in GD_RUNS:
        steps = max(int(budget * share), NUM_SAVES)
        load = OtherLoad().start()
        step_nums, gn, f_end, sec, warm = gd_profile(prob, lr, mu, steps)
        others = load.stop()
        per_step = sec / step_nums[-1]
        need, how, rate = steps_to_tol(step_nums, gn, GTOL)
        t_need = None if need is None else need * per_step
        rows.append(
            [
                label,
                f"{lr:g}",
                f"{mu:g}",
                f"{step_nums[-1]:,}",
                f"{sec:.1f}",
                f"{per_step * 1e6:.0f}",
                f"{gn[-1]:.1e}",
                f"{f_end - sol.value:.1e}",
                "-" if rate is None else f"{rate:.2e}",
                "-" if need is None else f"{need:,}",
                how,
                "-" if t_need is None else f"{t_need:.1f}",
                "-" if t_need is None else f"{t_need / run_s:.0f}x",
                "-" if t_need is None else f"{(t_need + warm) / (compile_s + run_s):.1f}x",
                f"{others:.0%}",
            ]
        )
        print(
            f"  ran {label} lr={lr:g} mu={mu:g}: {step_nums[-1]:,} steps in {sec:.1f} s "
            f"(warm-up incl. compile {warm:.1f} s)"
        )
    print()
    print_table(
        [
            "method",
            "lr",
            "mu",
            "steps run",
            "run s",
            "us/step",
            "final |g|",
            "f - f_min",
            "fit rate",
            "steps to 1e-10",
            "how",
            "s to 1e-10",
            "vs minimize",
            "cold",
            "others' cpu",
        ],
        rows,
    )
    print(
        "\n'run s', 'us/step', 'final |g|' are measured. 'steps to 1e-10' is measured (first "
        f"record at or below 1e-10, records every budget/{NUM_SAVES} steps) or extrapolated from a "
        f"log-linear fit over the last {TAIL:.0%} of the run ('fit rate' = -d ln|g|/d step); "
        "'s to 1e-10' = steps x measured us/step; 'vs minimize' divides it by minimize's warm "
        "wall time (compile excluded on both sides); 'cold' compares first calls (GD: s to 1e-10 "
        "+ its warm-up call incl. compile; minimize: compile + run). 'others' cpu': share of the "
        "cores used by other processes during that run; well above 0% means distorted timings."
    )
    print(f"end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
