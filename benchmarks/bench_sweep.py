"""Sweep throughput: ``ufm.sweep`` versus a loop of ``ufm.minimize`` calls on the same grid.

Problem: bias-free CE UFM, K = 10, n = 20, d = 32 (``docs/theory.md#canonical-objective``), on a
``side x side`` log grid of ``lam_W, lam_H`` in ``[1e-4, 1e-1]`` (it crosses the zero threshold
``sqrt(n lam_W lam_H) = 1/K``), one seed.

Two reference loops, both what a user would write, timed in this process after a call that
compiles (compile times are reported separately):

A. ``ufm.minimize(prob_p, seed=0)``, default arguments: a second-order certificate (Lanczos
   Hessian spectrum, ~6,700 parameters here). Seconds per point, so with ``--loop-points M`` it is
   timed on ``M`` evenly spaced grid points and its time for the whole grid is extrapolated
   (per-point mean x points; the row says so).
B. ``ufm.minimize(prob_p, seed=0, order="first", certify="global")``: the certificate the sweep
   gives this family (first order + the gap to the proven lower bound closed: a certified global
   minimizer, which implies the second-order conditions). The whole grid.

Sweeps (``certify="auto"``, i.e. the global path for CE; each timed on its second call, the
first compiles):

1. ``sweep, 1 device``;
2. ``sweep, 2 host devices, SPMD``: one ``shard_map`` program, a chunk per device (the default);
3. ``sweep, 2 host devices, threads`` (``local_mode="threads"``): one thread per device (each
   device compiles its own copy);
4. ``dask, 2 processes`` (``--dask``): ``ufm.sweep(client=...)`` on a ``LocalCluster``.

The machine is shared: every row also reports the CPU seconds this process used, and the other
processes' share of the cores during the run; ratios within one run are what to compare.

Run: ``python benchmarks/bench_sweep.py`` (``--side 10``; ``--quick``: side 4, 4 loop-A points).
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import OtherLoad, load_line, machine_line, print_table  # noqa: E402


class _Clock:
    """Wall and CPU (user + system, this process) seconds of a block."""

    def __enter__(self):
        self.t, self.c = time.perf_counter(), os.times()
        return self

    def __exit__(self, *a):
        c = os.times()
        self.wall = time.perf_counter() - self.t
        self.cpu = (c.user - self.c.user) + (c.system - self.c.system)
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10, help="grid side (side^2 points)")
    ap.add_argument("--loop-points", type=int, default=12,
                    help="grid points on which loop A (default minimize, seconds a point) is timed")
    ap.add_argument("--quick", action="store_true", help="side 4, 4 loop-A points, no Dask")
    ap.add_argument("--dask", action="store_true", help="add the Dask LocalCluster row")
    args = ap.parse_args()
    side = 4 if args.quick else args.side
    m_a = 4 if args.quick else args.loop_points

    import jax

    import ufm
    from ufm import sweeps as sw

    ufm.enable_x64()
    prob = ufm.UFM(K=10, n=20, d=32, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    grid = {"lam_W": {"log": [1e-4, 1e-1, side]}, "lam_H": {"log": [1e-4, 1e-1, side]}}
    axes = sw.parse_grid(prob, grid)
    P = side * side
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes.values(), indexing="ij")], axis=1)
    mk = lambda lw, lh: ufm.UFM(K=10, n=20, d=32, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh)  # noqa: E731
    print(machine_line(), flush=True)
    load = OtherLoad()
    load.start()
    rows, comp = [], {}

    # A. the default loop, on a subset
    sub = np.unique(np.linspace(0, P - 1, min(m_a, P)).round().astype(int))
    with _Clock() as c:
        ufm.minimize(prob, seed=0, throw=False)
    comp["minimize (default)"] = c.wall
    with _Clock() as a:
        ref_a = [ufm.minimize(mk(*pts[i]), seed=0, throw=False) for i in sub]
    t_a, cpu_a = a.wall * P / len(sub), a.cpu * P / len(sub)
    rows.append((f"A: loop of minimize(seed=0) [{len(sub)} pts, x{P / len(sub):.1f}]", t_a, cpu_a,
                 f"{sum(s.converged for s in ref_a)}/{len(sub)}", "second"))
    print(f"  loop A: {a.wall / len(sub):.2f} s a point", flush=True)

    # B. the loop with the sweep's certificate, whole grid
    with _Clock() as c:
        ufm.minimize(prob, seed=0, order="first", certify="global", throw=False)
    comp["minimize (first, global)"] = c.wall
    with _Clock() as b:
        ref_b = [ufm.minimize(mk(lw, lh), seed=0, order="first", certify="global", throw=False)
                 for lw, lh in pts]
    t_b = b.wall
    ref_v = np.array([s.value for s in ref_b])
    rows.append(("B: loop of minimize(order='first', certify='global')", t_b, b.cpu,
                 f"{sum(s.converged for s in ref_b)}/{P}", "global"))
    print(f"  loop B: {t_b / P * 1e3:.1f} ms a point", flush=True)

    # sweeps
    devs = jax.local_devices()
    chunk = max(1, P // 4)
    worst = 0.0
    for label, dv, mode in (("sweep, 1 device", devs[:1], "spmd"),
                            (f"sweep, {len(devs)} host devices, SPMD", devs, "spmd"),
                            (f"sweep, {len(devs)} host devices, threads", devs, "threads")):
        with _Clock() as c:
            sw.sweep(prob, grid, chunk=chunk, devices=dv, progress=False, local_mode=mode)
        with _Clock() as s:
            ds = sw.sweep(prob, grid, chunk=chunk, devices=dv, progress=False, local_mode=mode)
        comp[label] = c.wall - s.wall
        v = ds.value.values.reshape(-1)
        worst = max(worst, float(np.max(np.abs(v - ref_v) / np.maximum(1.0, np.abs(ref_v)))))
        va = v[sub]
        worst = max(worst, float(np.max(np.abs(va - [r.value for r in ref_a]) / np.maximum(1.0, np.abs(va)))))
        scope = "global" if bool(ds.global_ok.all()) else f"global {int(ds.global_ok.sum())}/{P}"
        rows.append((label, s.wall, s.cpu, f"{int(ds.converged.sum())}/{P}", scope))
        print(f"  {label}: {s.wall:.2f} s ({t_a / s.wall:.1f}x A, {t_b / s.wall:.2f}x B), "
              f"random starts skipped {int(ds.random_skipped.sum())}/{P}", flush=True)

    if args.dask and not args.quick:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, Client(cl) as cli:
            with tempfile.TemporaryDirectory() as tmp:
                with _Clock() as c:
                    sw.sweep(prob, grid, chunk=chunk, store=f"{tmp}/a.zarr", client=cli, progress=False)
                with _Clock() as s:
                    ds = sw.sweep(prob, grid, chunk=chunk, store=f"{tmp}/b.zarr", client=cli, progress=False)
        comp["dask"] = c.wall - s.wall
        rows.append(("dask LocalCluster, 2 processes", s.wall, s.cpu, f"{int(ds.converged.sum())}/{P}",
                     "global"))

    other = load.stop()
    print(f"CE UFM K=10 n=20 d=32, {side}x{side} log grid of lam_W, lam_H in [1e-4, 1e-1], 1 seed, "
          f"chunk {chunk}")
    print_table(["method", "wall s", "cpu s", "x loop A", "x loop B", "certified", "certificate"],
                [(r[0], f"{r[1]:.2f}", f"{r[2]:.2f}", f"{t_a / r[1]:.2f}", f"{t_b / r[1]:.2f}", r[3], r[4])
                 for r in rows])
    print("compile / first-call overhead (s): " + ", ".join(f"{k} {v:.1f}" for k, v in comp.items()))
    print(f"per point: loop A {t_a / P:.3f} s, loop B {1e3 * t_b / P:.1f} ms; sweep values vs the "
          f"loops: worst relative difference {worst:.1e}")
    print(f"other processes used {100 * other:.0f}% of the cores during the run; {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
