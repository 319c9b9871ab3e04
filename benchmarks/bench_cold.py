"""A cold certified solve against a cold best-tuned gradient descent, compile included, under the
compile profile the command line uses: the ratio and its limit, side by side.

Model: the bias-free cross-entropy UFM of ``docs/theory.md#canonical-objective``,
lam_W = lam_H = 5e-3 (``--lam``), float64, start ``prob.init(PRNGKey(0))`` on both sides, at
K = 10, n = 20, d = 32 and K = 10, n = 100, d = 64 (``--sizes``).

The target, stated precisely:

    ratio = T_GD / T_solve >= 2

- ``T_solve``: wall time of the first call of ``ufm.minimize(prob, seed=0)`` in a fresh process
  (every tracing, lowering and XLA compilation included; the import of ufm and ``enable_x64``
  excluded, as they are the same on both sides) under the compile profile of ``ufm solve``:
  ``ufm.cli.use_compile_profile("fast")``, called in the child before JAX starts, exactly as the
  command line does (no persistent compilation cache: the command line's opt-in cache is not
  enabled, so every run is truly cold). This is the certified solve (first order, and second
  order where ``order="auto"`` affords it). ``ufm solve`` itself also asks for the Hessian's
  extreme eigenvalues (``hessian=True``), a report beyond the certificate; that call is timed
  apart on request (``--cli-call``, one fresh process) and printed, not used in the ratio.
- ``T_GD``: wall time of the first call of plain gradient descent, ``ufm.gradient_flow(prob,
  dt=lr, t1=lr * steps, seed=0)``, in a fresh process (its compilation included), for exactly
  the number of steps it needs to reach the value accuracy below, at the best ``lr`` of a small
  grid (``--lrs``, default 1, 2, 4, ..., 128; tuned in advance in this process, untimed:
  the step count to the accuracy is read off a recorded run of ``--budget`` steps, recorded every
  ``--stride`` steps, so it overestimates GD's steps by less than the stride). GD is timed under
  both profiles, ``"fast"`` (as ``ufm solve``) and ``"optimized"`` (XLA's defaults, as ``ufm
  flow`` and a user's own loop), and the faster is the reference: best-tuned in step size and
  in profile.
- value accuracy: ``f - f* <= --value-rtol * max(1, |f*|)`` (default 1e-12), ``f*`` the
  simplex-ETF value ``ufm.etf_prediction(prob).value`` (the global minimum for d >= K - 1).
  GD stops at the first recorded step inside it; the certified solve's own gap is printed (it is
  at float64 rounding, far inside, so the comparison favours GD).
- the limit: ``T_GD / (tracing + lowering of the cold solve)``, the ratio a solve would reach if
  XLA compiled and ran its programs in no time; tracing and lowering are those programs' own
  Python-side cost (``jax.monitoring`` durations), so no solve that builds the same programs can
  exceed it. Printed with the ratio and the target.

Each figure is the median over ``--repeats`` rounds; a round runs the solve and GD (both
profiles) each in its own fresh process, one after the other, in alternating order, so that a
drift in the machine's load falls on both sides; the per-round ratios' median is the ratio.

Run: ``python benchmarks/bench_cold.py`` (``--quick``: the small size, one round, lrs 4, 8, 16).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from _common import load_line, machine_line, print_table, run_child

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = ((10, 20, 32), (10, 100, 64))
LAM = 5e-3
SEED = 0
TARGET = 2.0
PROFILES = ("fast", "optimized")


# ---- child side (a fresh process) ----------------------------------------------------------------
def _problem(K, n, d, lam):
    import ufm

    return ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=None)


def child(argv) -> int:
    """``kind profile K n d lam [lr steps]``: set the profile as the command line does, then time
    the first call (compile included)."""
    kind, profile = argv[0], argv[1]
    K, n, d, lam = int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5])
    from ufm.cli import use_compile_profile

    in_effect = use_compile_profile(profile)  # before JAX starts its backend, as `ufm` does
    import jax
    from bench_compile import CompileClock

    import ufm

    ufm.enable_x64()
    prob = _problem(K, n, d, lam)
    clock = CompileClock()
    if kind == "gd":
        lr, steps = float(argv[6]), int(argv[7])

        def run():
            return ufm.gradient_flow(prob, t1=lr * steps, dt=lr, seed=SEED, throw=False,
                                     saveat=ufm.SaveAt(t1=True, params=False))
    else:
        kw = dict(gtol=1e-10, max_steps=10_000, order="auto", starts=1, hessian=True, throw=False)

        def run():
            return ufm.minimize(prob, seed=SEED, **(kw if kind == "solve_cli" else {}))

    w0, c0 = time.perf_counter(), time.process_time()
    out = run()
    jax.block_until_ready(jax.tree_util.tree_leaves(out))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    comp = clock.take()
    res = dict(wall=wall, cpu=cpu, trace=comp["trace"], lower=comp["lower"], compile=comp["compile"],
               profile=in_effect)
    if kind == "gd":
        res.update(value=float(np.asarray(out.values)[-1]), steps=int(out.stats["num_steps"]), result=out.result.name)
    else:
        c = out.certificate
        res.update(value=float(out.value), kkt=float(c.kkt), min_eig=float(c.min_eig), order=c.order,
                   converged=bool(out.converged), result=out.result.name)
    print("RESULT " + json.dumps(res))
    return 0


def spawn(*args, timeout=3600):
    """This file as a fresh child process; its RESULT and the others' share of the cores."""
    env = dict(os.environ)
    env.pop("UFM_COMPILE", None)  # the profile is the child's argument
    result, others = run_child(__file__, args, env, timeout, HERE)
    return dict(result, others=others)


# ---- parent --------------------------------------------------------------------------------------
def tune_gd(K, n, d, lam, lrs, budget, stride, f_star, tol):
    """Steps to ``f - f* <= tol`` for each lr (warm, untimed, this process): ``{lr: steps or None}``."""
    import ufm

    prob = _problem(K, n, d, lam)
    out = {}
    for lr in lrs:
        ts = lr * np.arange(stride, budget + 1, stride, dtype=float)
        traj = ufm.gradient_flow(prob, t1=lr * budget, dt=lr, seed=SEED, throw=False,
                                 saveat=ufm.SaveAt(ts=ts, params=False))
        gaps = np.asarray(traj.values) - f_star
        inside = np.flatnonzero(np.isfinite(gaps) & (gaps <= tol))
        ok = traj.result.name in ("successful", "max_steps_reached")
        out[lr] = int(stride * (inside[0] + 1)) if ok and inside.size else None
        how = f"{out[lr]:,} steps" if out[lr] else f"not within {budget:,} steps ({traj.result.name})"
        print(f"  GD lr={lr:g}: {how}", flush=True)
    return out


def median(rows, key):
    return float(np.median([r[key] for r in rows]))


def bench_size(K, n, d, args) -> list[str]:
    """Tune GD, then the paired cold rounds for one size; prints them and returns the summary row."""
    import ufm

    prob = _problem(K, n, d, args.lam)
    f_star = float(ufm.etf_prediction(prob).value)
    tol = args.value_rtol * max(1.0, abs(f_star))
    print(f"\nK={K} n={n} d={d} lam={args.lam:g} ({K * d + d * K * n:,} parameters): f* = {f_star:.15g}, "
          f"value accuracy f - f* <= {tol:.1e}; GD step counts (warm, untimed):", flush=True)
    need = tune_gd(K, n, d, args.lam, args.lrs, args.budget, args.stride, f_star, tol)
    good = {lr: s for lr, s in need.items() if s}
    if not good:
        print("  no lr of the grid reaches the accuracy within the budget: raise --budget")
        return [f"{K},{n},{d}"] + ["-"] * 10
    lr = min(good, key=good.get)
    steps = good[lr]
    if lr == max(args.lrs):
        print(f"  (lr={lr:g} is the grid's largest: GD's cold time is almost all compilation, so a larger lr "
              "would change it little)")
    sz = (K, n, d, args.lam)
    solves, gds = [], {p: [] for p in PROFILES}
    for r in range(args.repeats):
        jobs = [("solve", lambda: solves.append(spawn("solve", "fast", *sz)))]
        jobs += [(f"gd {p}", lambda p=p: gds[p].append(spawn("gd", p, *sz, lr, steps))) for p in PROFILES]
        for _, job in jobs if r % 2 == 0 else jobs[::-1]:
            job()
        s = solves[-1]
        g = min((gds[p][-1] for p in PROFILES), key=lambda x: x["wall"])
        print(f"  round {r + 1}: solve {s['wall']:.2f} s ({s['order']} order, {s['result']}), GD fast "
              f"{gds['fast'][-1]['wall']:.2f} s, optimized {gds['optimized'][-1]['wall']:.2f} s: ratio "
              f"{g['wall'] / s['wall']:.2f}x; others' cpu {max(s['others'], g['others']):.0%}", flush=True)
    ratios = [min(gds[p][i]["wall"] for p in PROFILES) / solves[i]["wall"] for i in range(args.repeats)]
    ratios_cpu = [min(gds[p][i]["cpu"] for p in PROFILES) / solves[i]["cpu"] for i in range(args.repeats)]
    gd_best = {p: median(gds[p], "wall") for p in PROFILES}
    best_p = min(gd_best, key=gd_best.get)
    t_gd = gd_best[best_p]
    front = median(solves, "trace") + median(solves, "lower")
    s0 = solves[0]
    print(f"  certified solve: value {s0['value']:.15g} (f - f* = {s0['value'] - f_star:.1e}), kkt {s0['kkt']:.1e}, "
          f"min_eig {s0['min_eig']:.3g}, order {s0['order']}, converged {s0['converged']}; tracing "
          f"{median(solves, 'trace'):.2f} s, lowering {median(solves, 'lower'):.2f} s, XLA compile "
          f"{median(solves, 'compile'):.2f} s of {median(solves, 'wall'):.2f} s")
    gfin = gds[best_p][0]
    print(f"  GD lr={lr:g}, {steps:,} steps: final f - f* = {gfin['value'] - f_star:.1e} ({gfin['result']}); cold "
          f"fast {gd_best['fast']:.2f} s, optimized {gd_best['optimized']:.2f} s (compile "
          f"{median(gds[best_p], 'trace') + median(gds[best_p], 'lower') + median(gds[best_p], 'compile'):.2f} s)")
    if args.cli_call:
        c = spawn("solve_cli", "fast", *sz)
        print(f"  as `ufm solve` calls it (hessian=True: also the Hessian's extreme eigenvalues): cold "
              f"{c['wall']:.2f} s, {c['result']}; GD / that = {t_gd / c['wall']:.2f}x")
    ratio, limit = float(np.median(ratios)), t_gd / front
    return [f"{K},{n},{d}", f"{median(solves, 'wall'):.2f}", f"{front:.2f}", f"{lr:g} / {steps:,}",
            f"{t_gd:.2f} ({best_p})", f"{ratio:.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]", f"{limit:.1f}x",
            f">= {TARGET:g}x", "met" if ratio >= TARGET else "NOT met",
            f"{median(solves, 'cpu'):.2f} / {min(median(gds[p], 'cpu') for p in PROFILES):.2f}: "
            f"{float(np.median(ratios_cpu)):.2f}x",
            f"{max(r['others'] for r in solves):.0%}"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=";".join(",".join(map(str, s)) for s in SIZES),
                   help="K,n,d;K,n,d;... (default 10,20,32;10,100,64)")
    p.add_argument("--lam", type=float, default=LAM)
    p.add_argument("--lrs", default="1,2,4,8,16,32,64,128", help="GD step sizes tried (comma separated)")
    p.add_argument("--budget", type=int, default=50_000, help="GD steps per lr when tuning")
    p.add_argument("--stride", type=int, default=5, help="GD recording stride when tuning")
    p.add_argument("--value-rtol", type=float, default=1e-12)
    p.add_argument("--repeats", type=int, default=3, help="paired cold rounds per size (median)")
    p.add_argument("--cli-call", action="store_true",
                   help="also time one cold solve with hessian=True, as `ufm solve` calls it (minutes at 64,640 "
                   "parameters: the Hessian's extreme eigenvalues)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split(",")) for s in args.sizes.split(";")]
    if args.quick:
        sizes, args.repeats, args.lrs, args.budget, args.cli_call = sizes[:1], 1, "4,8,16", 20_000, False
    args.lrs = [float(x) for x in args.lrs.split(",")]

    import jax

    import ufm

    ufm.enable_x64()
    from ufm.cli import FAST_COMPILE_FLAGS

    print(f"cold certified solve vs cold best-tuned GD, compile included; CE UFM, no bias, lam {args.lam:g}, "
          f"float64, seed {SEED}; {args.repeats} rounds of fresh processes")
    print(f"{machine_line()}, jax {jax.__version__} on {jax.devices()[0].platform}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"solve profile: `ufm solve`'s, use_compile_profile('fast') (XLA_FLAGS += {' '.join(FAST_COMPILE_FLAGS)}); "
          "GD: the faster of 'fast' and 'optimized'")
    print(f"start: {load_line()}")
    rows = [bench_size(K, n, d, args) for K, n, d in sizes]
    print()
    print_table(["K,n,d", "solve cold s", "its trace+lower s", "GD lr / steps", "GD cold s", "GD/solve [range]",
                 "limit", "target", "", "CPU s solve / GD: ratio", "others' cpu"], rows)
    print("GD/solve: the median of the rounds' wall-time ratios [their range]; limit: GD cold / the solve's "
          "tracing + lowering (the ratio if XLA compiled and ran in no time); CPU: this machine's steadier measure "
          "when shared (medians of CPU seconds of the child, all threads; ratio: median of the rounds')")
    print(f"end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
