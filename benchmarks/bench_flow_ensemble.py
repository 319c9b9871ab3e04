"""An ensemble of gradient flows in one compiled call against the Python loop of single flows.

``E`` flows (default 1,000) of a small UFM over seeds, initial scales and ``lam_H``, each ``S``
fixed gradient-descent steps (``dt = 0.05``), recorded at three times:

1. loop: ``ufm.gradient_flow(replace(prob, lam_H=lam_e), seed=e, init_scale=s_e, dt=...)`` called
   ``E`` times from Python (one compiled loop, reused: the host dispatch and the conversion of each
   result are part of what a loop costs);
2. ``ufm.flow_ensemble(..., batch="vmap")``: all members advance together (batched products);
3. ``ufm.flow_ensemble(..., batch="map")``: ``jax.lax.map``, one member after the other inside
   one compiled program.

Timing: best of ``--repeats`` calls after a warm-up call (its time, the compile, is printed
apart); the loop's time is measured on ``--loop-sample`` members and scaled to ``E`` (it is linear
in ``E``). Every ensemble member is checked against the sequential call (final objective to
1e-12 relative) on the sampled members, or the script exits 1. The speed-up of each ensemble mode
over the loop is printed with the target side by side (>= 1: one call must not lose to the loop).
``batch="auto"`` (the default) picks ``map`` on CPU, where vmap's batched products lose at the
larger size, and ``vmap`` on an accelerator.

Shapes: ``--K --n --d`` (default K=4, n=5, d=8, CE, lam_W = 5e-3) and a second, larger size
(``--big``: K=10, n=20, d=32) where batched products are large enough for XLA:CPU to lose.

Run: ``python benchmarks/bench_flow_ensemble.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from _common import best_wall_and_cpu, load_line, machine_line, print_table

TARGET = 1.0  # the ensemble call at least as fast as the loop of single flows


def _problem(K: int, n: int, d: int):
    import ufm

    return ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)


def _members(E: int):
    return np.arange(E), np.linspace(0.1, 1.0, E), np.geomspace(1e-3, 1e-1, E)


def run_size(K: int, n: int, d: int, E: int, steps: int, repeats: int, sample: int) -> tuple[list, bool]:
    """Rows ``[mode, seconds, us per flow, speed-up over the loop, target, verdict]`` for one size."""
    import jax
    import ufm

    prob = _problem(K, n, d)
    seeds, scales, lams = _members(E)
    dt = 0.05
    kw = dict(t1=steps * dt, dt=dt, saveat=ufm.SaveAt(ts=[0.0, steps * dt / 2, steps * dt], params=False))

    def loop(members):
        return [ufm.gradient_flow(dataclasses.replace(prob, lam_H=float(lams[e])), seed=int(seeds[e]),
                                  init_scale=float(scales[e]), throw=False, **kw).values[-1] for e in members]

    sample = min(sample, E)
    picked = np.linspace(0, E - 1, sample).astype(int)
    loop(picked[:1])  # compile the single flow
    t_loop, _, ref = best_wall_and_cpu(lambda: loop(picked), repeats)
    t_loop *= E / sample
    rows, ok = [["loop (Python)", f"{t_loop:.3f}", f"{1e6 * t_loop / E:.0f}", "1.0x", "", ""]], True
    for batch in ("vmap", "map"):
        def call():
            return jax.block_until_ready(ufm.flow_ensemble(prob, lams={"lam_H": lams}, seeds=seeds, scales=scales,
                                                           batch=batch, **kw))

        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        sec, _, ens = best_wall_and_cpu(call, repeats)
        got = np.asarray(ens.values)[picked, -1]
        rel = np.max(np.abs(got - np.asarray(ref)) / np.abs(np.asarray(ref)))
        ok &= bool(rel <= 1e-12)
        ratio = t_loop / sec
        rows.append([f"flow_ensemble {batch}", f"{sec:.3f}", f"{1e6 * sec / E:.0f}", f"{ratio:.1f}x",
                     f">= {TARGET:g}x", "met" if ratio >= TARGET else "NOT met"])
        print(f"  K={K} n={n} d={d} {batch}: first call (compile + run) {first:.2f} s; "
              f"max rel. diff to the loop {rel:.1e}")
    return rows, ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--E", type=int, default=1000, help="flows in the ensemble")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--loop-sample", dest="loop_sample", type=int, default=100,
                   help="members the Python loop runs (its time is scaled to E)")
    p.add_argument("--K", type=int, default=4)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--big", action="store_true", help="also K=10, n=20, d=32")
    p.add_argument("--quick", action="store_true", help="smoke run: E=50, 20 steps, 1 repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.E, args.steps, args.repeats, args.loop_sample = 50, 20, 1, 10
    import jax

    jax.config.update("jax_enable_x64", True)
    print(f"flow ensemble: E={args.E} flows, {args.steps} Euler steps each, best of {args.repeats}")
    print(machine_line())
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"start: {load_line()}")
    sizes = [(args.K, args.n, args.d)] + ([(10, 20, 32)] if args.big else [])
    ok = True
    for K, n, d in sizes:
        rows, good = run_size(K, n, d, args.E, args.steps, args.repeats, args.loop_sample)
        ok &= good
        print(f"\nK={K} n={n} d={d}:")
        print_table(["mode", "best s", "us/flow", "speed-up over loop", "target", ""], rows)
    print(f"end: {load_line()}")
    if not ok:
        print("FAIL: an ensemble member differs from its sequential flow", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
