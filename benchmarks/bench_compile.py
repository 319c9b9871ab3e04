"""Compile time of ``ufm.minimize``: cold vs warm solves, against the best-tuned gradient descent.

Model: the bias-free cross-entropy UFM of ``docs/theory.md#canonical-objective`` (``bench_minimize.py``),
K = 10, n = 100, d = 64, lam_W = lam_H = 5e-4, float64, start ``prob.init(PRNGKey(0))``.

1. **cold** ``ufm.minimize(prob, seed=0)``: the first call in a *fresh process* (import and
   ``enable_x64`` excluded, every compilation included), with the time JAX spent tracing,
   lowering and compiling (``jax.monitoring`` duration events) and the per-executable XLA compile
   times (``jax_log_compiles``, set in that child process only); then the **warm** call (best of
   ``--repeats``) and a call on a new problem with other lams (``lam_W = 1e-3, lam_H = 2e-4``),
   which must compile nothing (a jit cache hit).
2. **best-tuned gradient descent**: ``ufm.gradient_flow(prob, dt=lr, metrics=("grad_norm",))`` for
   each ``lr`` of ``--lrs``; the step count to ``||grad f|| <= 1e-10`` is measured (records every
   budget/200 steps), then a fresh process runs exactly that many steps: its first call (compile
   included) is the cold GD time. The best of them is the reference.
3. **size sweep**: in one fresh process, ``ufm.minimize`` over K in {3, 5, 10}, n in {10, 50},
   d in {K, 2K} (12 shapes, each solved once, cold for its shape): total time, time in tracing,
   lowering and compiling, and the share.
4. with ``--cache DIR``: the cold solve and the sweep again in fresh processes with
   ``ufm.enable_compilation_cache(DIR)`` (opt-in; reported apart from the true cold numbers):
   the first run fills the cache, the second loads from it.
5. the **fast compile profile** (``ufm.cli.FAST_COMPILE_FLAGS`` in the child's ``XLA_FLAGS``, as
   ``ufm solve`` and ``ufm verify`` run): the cold and warm solve, its ratio to the best GD (which
   keeps XLA's defaults, as a user's loop would), and the size sweep (``--no-sweep`` skips it).
6. with ``--parts``: ``ufm.minimize``'s stages compiled alone (L-BFGS, Newton-CG, curvature,
   saddle escape) for the main problem and a K=10, n=20, d=32 problem (second-order certificate
   through Lanczos), in CPU seconds of compilation.

Run: ``python benchmarks/bench_compile.py`` (``--quick``: no GD search, lr 5 only, 2,000-step
budget; ``--cache DIR``; ``--parts``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time

import numpy as np
from _common import load_line, machine_line, print_table, run_child

from ufm.cli import FAST_COMPILE_FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
K, n, d = 10, 100, 64
LAM = 5e-4
SEED = 0
GTOL = 1e-10
SWEEP = [(k, m, dd) for k in (3, 5, 10) for m in (10, 50) for dd in (k, 2 * k)]
EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
    "/jax/compilation_cache/cache_retrieval_time_sec": "compile",  # loading from the opt-in cache
}


# ---- child side (runs in a fresh process) --------------------------------------------------------
class CompileClock:
    """Seconds of tracing, lowering and XLA compiling (``jax.monitoring``) and per-executable
    compile times (``jax_log_compiles`` messages), since the last ``take()``."""

    def __init__(self):
        import jax

        self.acc = {"trace": 0.0, "lower": 0.0, "compile": 0.0}
        self.names: list = []
        self.hits = 0
        jax.monitoring.register_event_duration_secs_listener(self._event)
        jax.monitoring.register_event_listener(self._hit)
        jax.config.update("jax_log_compiles", True)  # this benchmark's child process only
        clock = self

        class Grab(logging.Handler):
            def emit(self, record):
                m = re.search(r"Finished XLA compilation of (.+?) in ([0-9.eE+-]+) sec", record.getMessage())
                if m:
                    clock.names.append((m.group(1), float(m.group(2))))

        h = Grab(level=logging.WARNING)
        for name in ("jax._src.dispatch", "jax._src.interpreters.pxla", "jax._src.compiler"):
            lg = logging.getLogger(name)
            lg.addHandler(h)
            lg.propagate = False

    def _event(self, name, secs, **_):
        if name in EVENTS:
            self.acc[EVENTS[name]] += secs

    def _hit(self, name, **_):
        if name == "/jax/compilation_cache/cache_hits":
            self.hits += 1

    def take(self):
        out = dict(self.acc, total=sum(self.acc.values()), executables=len(self.names),
                   by_name=_merge(self.names), cache_hits=self.hits)
        self.acc = {k: 0.0 for k in self.acc}
        self.names = []
        self.hits = 0
        return out


def _merge(pairs):
    tot: dict = {}
    for name, s in pairs:
        tot[name] = tot.get(name, 0.0) + s
    return sorted(tot.items(), key=lambda kv: -kv[1])


def _problem(K_, n_, d_, lam_W=LAM, lam_H=LAM):
    import ufm

    return ufm.UFM(K=K_, n=n_, d=d_, loss=ufm.CrossEntropy(), lam_W=lam_W, lam_H=lam_H, lam_b=None)


def _timed(fn):
    import jax

    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    jax.block_until_ready(jax.tree_util.tree_leaves(out))
    return out, time.perf_counter() - w0, time.process_time() - c0


def _cert(sol):
    c = sol.certificate
    return dict(value=float(sol.value), kkt=float(c.kkt), min_eig=float(c.min_eig), order=c.order,
                result=sol.result.name, stats={k: v for k, v in sol.stats.items() if isinstance(v, int)})


def child_minimize(cache, repeats):
    import ufm

    ufm.enable_x64()
    if cache:
        ufm.enable_compilation_cache(cache)
    clock = CompileClock()
    prob = _problem(K, n, d)
    sol, wall, cpu = _timed(lambda: ufm.minimize(prob, seed=SEED))
    cold = dict(wall=wall, cpu=cpu, **clock.take())
    warm = min(_timed(lambda: ufm.minimize(prob, seed=SEED))[1] for _ in range(repeats))
    clock.take()
    prob2 = _problem(K, n, d, lam_W=1e-3, lam_H=2e-4)
    sol2, wall2, _ = _timed(lambda: ufm.minimize(prob2, seed=SEED))
    new_lam = dict(wall=wall2, **clock.take())
    return dict(cold=cold, warm=warm, new_lam=new_lam, cert=_cert(sol), cert_new_lam=_cert(sol2))


def child_gd(lr, steps):
    import ufm

    ufm.enable_x64()
    prob = _problem(K, n, d)
    clock = CompileClock()

    def run():
        return ufm.gradient_flow(prob, t1=lr * steps, dt=lr, seed=SEED, metrics=("grad_norm",),
                                 saveat=ufm.SaveAt(ts=np.array([lr * steps]), params=False), dtype=np.float64)

    traj, wall, cpu = _timed(run)
    comp = clock.take()
    return dict(wall=wall, cpu=cpu, compile=comp["total"], steps=int(traj.stats["num_steps"]),
                grad_norm=float(np.asarray(traj.metrics["grad_norm"])[-1]))


def child_sweep(cache):
    import ufm

    ufm.enable_x64()
    if cache:
        ufm.enable_compilation_cache(cache)
    clock = CompileClock()
    rows = []
    for K_, n_, d_ in SWEEP:
        prob = _problem(K_, n_, d_)
        sol, wall, cpu = _timed(lambda: ufm.minimize(prob, seed=SEED, throw=False))
        c = clock.take()
        _, wall2, cpu2 = _timed(lambda: ufm.minimize(prob, seed=SEED, throw=False))  # warm, same shape
        clock.take()
        rows.append(dict(K=K_, n=n_, d=d_, wall=wall, cpu=cpu, compile=c["total"], backend=c["compile"],
                         warm=wall2, warm_cpu=cpu2,
                         order=sol.certificate.order, result=sol.result.name, value=float(sol.value)))
    return rows


def child_parts():
    import jax

    import ufm
    from jax.flatten_util import ravel_pytree

    from ufm.solvers import _core, _descent

    ufm.enable_x64()
    key = jax.random.PRNGKey(0)
    out = []
    for K_, n_, d_ in ((K, n, d), (10, 20, 32)):
        prob = _problem(K_, n_, d_)
        x0 = prob.init(key, None)
        opts = _core.for_problem(_core.SolveOptions(gtol=GTOL), prob, x0, "auto")
        parts = {
            "value_and_grad": lambda p, x: jax.value_and_grad(p.objective)(x),
            "L-BFGS": lambda p, x: _descent.lbfgs(p, x, 1e-6, 10_000),
            "Newton-CG": lambda p, x: _descent.newton_cg(p, x, GTOL, 100, 500),
        }
        if opts.second is not None:
            parts["curvature"] = lambda p, x: _core.curvature(p, x, key, opts)
            parts["escape"] = lambda p, x: _core.escape(p, x, ravel_pytree(x)[0], -1.0)
        parts["whole solve"] = lambda p, x: _core.solve(p, x, key, opts)
        for name, fn in parts.items():
            c0 = time.process_time()
            low = jax.jit(fn).trace(prob, x0).lower()
            c1 = time.process_time()
            low.compile()
            c2 = time.process_time()
            out.append(dict(shape=f"K={K_} n={n_} d={d_} ({opts.second or 'first order'})", part=name,
                            trace_lower=c1 - c0, compile=c2 - c1))
    return out


def child(argv):
    kind = argv[0]
    if kind == "minimize":
        res = child_minimize(argv[1] or None, int(argv[2]))
    elif kind == "gd":
        res = child_gd(float(argv[1]), int(argv[2]))
    elif kind == "sweep":
        res = child_sweep(argv[1] or None)
    else:
        res = child_parts()
    print("RESULT " + json.dumps(res))
    return 0


def spawn(*args, timeout=1800, fast=False):
    """Run this file as a fresh child process and return its RESULT (and the others' CPU share);
    ``fast``: with the fast compile profile's flags in the child's ``XLA_FLAGS``."""
    env = dict(os.environ)
    if fast:
        env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS]).strip()
    return run_child(__file__, args, env, timeout, HERE)


# ---- parent ---------------------------------------------------------------------------------------
def gd_search(lrs, budget):
    """Steps to ``||g|| <= GTOL`` for each lr (measured on bench_minimize's recording grid)."""
    import ufm
    from bench_minimize import gd_profile, steps_to_tol

    ufm.enable_x64()
    prob = _problem(K, n, d)
    out = {}
    for lr in lrs:
        step_nums, gn, _, sec, _ = gd_profile(prob, lr, 0.0, budget)
        need, how, _ = steps_to_tol(step_nums, gn, GTOL)
        out[lr] = (need, how, sec / step_nums[-1])
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lrs", default="2,5,8", help="GD learning rates to try (comma separated)")
    p.add_argument("--budget", type=int, default=20_000, help="GD steps per learning rate in the search")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache", default=None, help="also measure with ufm.enable_compilation_cache(DIR) "
                   "(DIR is emptied first; 'tmp' for a fresh temporary directory)")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--no-gd", action="store_true", help="skip the gradient-descent runs")
    p.add_argument("--parts", action="store_true", help="compile minimize's stages alone (CPU seconds)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    lrs = [5.0] if args.quick else [float(s) for s in args.lrs.split(",")]
    budget = 10_000 if args.quick else args.budget

    import jax

    print(f"CE-UFM K={K} n={n} d={d} lam_W=lam_H={LAM}, no bias, float64, seed {SEED}, gtol {GTOL:g}")
    print(f"{machine_line()}, jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"start: {load_line()}")

    res, others = spawn("minimize", "", args.repeats)
    cold, warm, new_lam, cert = res["cold"], res["warm"], res["new_lam"], res["cert"]
    print("\nufm.minimize, fresh process (true cold: no persistent cache)")
    print(f"  cold {cold['wall']:.2f} s wall ({cold['cpu']:.2f} s CPU): tracing {cold['trace']:.2f} s, lowering "
          f"{cold['lower']:.2f} s, XLA compile {cold['compile']:.2f} s in {cold['executables']} executables")
    for name, s in cold["by_name"][:6]:
        print(f"    {s:6.2f} s  {name}")
    print(f"  warm {warm:.3f} s (best of {args.repeats}); cold / warm = {cold['wall'] / warm:.0f}x")
    print(f"  new lams (same shapes): {new_lam['wall']:.3f} s, {new_lam['executables']} executables compiled "
          f"({new_lam['total']:.2f} s tracing+lowering+compiling)")
    print(f"  certificate: {cert}")
    print(f"  new-lam certificate: {res['cert_new_lam']}")
    print(f"  other processes used {others:.0%} of the cores meanwhile")

    if args.parts:
        parts, _ = spawn("parts")
        print("\nstages compiled alone (CPU seconds)")
        print_table(["shape", "part", "trace+lower", "XLA compile"],
                    [[r["shape"], r["part"], f"{r['trace_lower']:.2f}", f"{r['compile']:.2f}"] for r in parts])

    print(f"\ngradient descent: steps to ||grad f|| <= {GTOL:g} (budget {budget:,} steps per lr), then a "
          "fresh process runs that many steps")
    search = {} if args.no_gd else gd_search(lrs, budget)
    rows, best = [], None
    for lr, (need, how, per_step) in search.items():
        if need is None or how != "measured":
            rows.append([f"{lr:g}", "-", how, f"{per_step * 1e6:.0f}", "-", "-", "-", "-", "-", "-"])
            continue
        g, oth = spawn("gd", lr, need)
        ratio = g["wall"] / cold["wall"]
        rows.append([f"{lr:g}", f"{need:,}", how, f"{per_step * 1e6:.0f}", f"{g['wall']:.2f}", f"{g['cpu']:.2f}",
                     f"{g['compile']:.2f}", f"{g['grad_norm']:.1e}", f"{ratio:.2f}x ({g['cpu'] / cold['cpu']:.2f}x)",
                     f"{oth:.0%}"])
        if best is None or g["wall"] < best[1]:
            best = (lr, g["wall"], g["cpu"])
    print_table(["lr", "steps to 1e-10", "how", "us/step (warm)", "cold wall s", "cold CPU s", "of which compile",
                 "final |g|", "GD / minimize cold, wall (CPU)", "others' cpu"], rows)
    if best:
        print(f"  best-tuned GD: lr={best[0]:g}, cold {best[1]:.2f} s wall ({best[2]:.2f} s CPU); minimize cold "
              f"{cold['wall']:.2f} s wall ({cold['cpu']:.2f} s CPU): minimize is {best[1] / cold['wall']:.2f}x "
              f"(CPU {best[2] / cold['cpu']:.2f}x) faster cold, {best[1] / warm:.0f}x warm (GD cold / minimize warm)")

    fres, oth = spawn("minimize", "", args.repeats, fast=True)
    fc, fw = fres["cold"], fres["warm"]
    msg = (f"\nfast compile profile (XLA_FLAGS += {' '.join(FAST_COMPILE_FLAGS)}; as `ufm solve` and `ufm verify`), fresh process:"
           f"\n  cold {fc['wall']:.2f} s wall ({fc['cpu']:.2f} s CPU): tracing {fc['trace']:.2f} s, lowering "
           f"{fc['lower']:.2f} s, XLA compile {fc['compile']:.2f} s; warm {fw:.3f} s (default profile {warm:.3f} s: "
           f"{fw / warm:.2f}x); cold is {cold['wall'] / fc['wall']:.2f}x faster than the default profile's")
    if best:
        msg += (f"\n  best-tuned GD cold (default profile) / this cold = {best[1] / fc['wall']:.2f}x wall "
                f"(CPU {best[2] / fc['cpu']:.2f}x)")
    print(msg + f"\n  certificate: {fres['cert']}; others' cpu {oth:.0%}")

    cache_dir = None
    if args.cache:
        cache_dir = tempfile.mkdtemp(prefix="ufm-jax-cache-") if args.cache == "tmp" else args.cache
        if os.path.isdir(cache_dir):
            for f in os.listdir(cache_dir):
                fp = os.path.join(cache_dir, f)
                if os.path.isfile(fp):
                    os.remove(fp)
        print(f"\nopt-in persistent cache ufm.enable_compilation_cache({cache_dir!r}), fresh processes")
        for label in ("fill (empty cache)", "from cache"):
            r, oth = spawn("minimize", cache_dir, args.repeats)
            c = r["cold"]
            same = r["cert"] == cert
            msg = (f"  {label}: first call {c['wall']:.2f} s wall ({c['cpu']:.2f} s CPU; {c['executables']} "
                   f"executables, {c['cache_hits']} of them loaded from the cache; tracing {c['trace']:.2f} s, "
                   f"lowering {c['lower']:.2f} s, compile or load {c['compile']:.2f} s)")
            if best:
                msg += f"; best GD cold / this = {best[1] / c['wall']:.1f}x (CPU {best[2] / c['cpu']:.1f}x)"
            print(msg + f"; certificate as without cache: {same}; others' cpu {oth:.0%}")

    if not args.no_sweep:
        runs = [("no cache", None, False), ("no cache, fast compile profile", None, True)]
        if cache_dir:
            runs.append(("from cache", cache_dir, False))
            spawn("sweep", cache_dir)  # fill it for the sweep's shapes
        for label, cdir, fast in runs:
            rows_s, oth = spawn("sweep", cdir or "", fast=fast)
            tot = sum(r["wall"] for r in rows_s)
            comp = sum(r["compile"] for r in rows_s)
            tot_cpu = sum(r["cpu"] for r in rows_s)
            comp_cpu = sum(r["cpu"] - r["warm_cpu"] for r in rows_s)
            print(f"\nsize sweep ({label}): {len(rows_s)} shapes, K in {{3,5,10}}, n in {{10,50}}, d in {{K,2K}}, "
                  f"one cold minimize each; others' cpu {oth:.0%}")
            print_table(["K", "n", "d", "wall s", "compile s (trace+lower+XLA)", "share", "CPU s", "CPU s warm",
                         "CPU share (1 - warm/cold)", "order", "result"],
                        [[r["K"], r["n"], r["d"], f"{r['wall']:.2f}", f"{r['compile']:.2f}",
                          f"{r['compile'] / r['wall']:.0%}", f"{r['cpu']:.2f}", f"{r['warm_cpu']:.2f}",
                          f"{1 - r['warm_cpu'] / r['cpu']:.0%}", r["order"], r["result"]] for r in rows_s])
            print(f"  total {tot:.1f} s wall, compiling {comp:.1f} s: compile share {comp / tot:.0%} (wall); "
                  f"CPU {tot_cpu:.1f} s, of which not in the warm solves {comp_cpu:.1f} s: {comp_cpu / tot_cpu:.0%}")
    print(f"\nend: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
