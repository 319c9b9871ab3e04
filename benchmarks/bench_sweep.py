"""Sweep throughput: ``ufm.sweep`` versus a loop of ``ufm.minimize`` calls on the same grid.

Problem: bias-free CE UFM, K = 10, n = 20, d = 32 (``shared/theory`` section 1), on a
``side x side`` log grid of ``lam_W, lam_H`` in ``[1e-4, 1e-1]`` (it crosses the zero threshold
``sqrt(n lam_W lam_H) = 1/K``), one seed.

Compared, all in this process and timed after a first run that compiles (compile times are
reported separately):

1. ``loop``: ``ufm.minimize(prob_p, seed=0, throw=False)`` for every grid point (the reference);
2. ``sweep, 1 device``: ``ufm.sweep(..., devices=[cpu:0])``, a chunk = one compiled ``lax.scan``
   over its points, each solved from the random start and from the previous point (warm start);
3. ``sweep, 2 host devices``: the same, one thread per XLA host device
   (``XLA_FLAGS=--xla_force_host_platform_device_count=2``, set below before JAX starts);
4. ``vmap over points``: one ``jit(vmap(solve))`` over a chunk's points, random starts only (what
   a GPU chunk would be; on CPU the batched while-loop runs until its slowest lane is done);
5. ``dask, 2 processes``: ``ufm.sweep(client=...)`` on a ``LocalCluster`` of 2 worker processes
   (each compiles once; timed on the second sweep).

Run: ``python benchmarks/bench_sweep.py`` (``--side 10``; ``--quick`` for a smoke run).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10, help="grid side (side^2 points)")
    ap.add_argument("--quick", action="store_true", help="side 4, no Dask")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-vmap", action="store_true", help="skip the vmap-over-points row")
    args = ap.parse_args()
    side = 4 if args.quick else args.side

    import jax

    import ufm
    from ufm import sweep as sw
    from ufm._sweep_kernel import SolveOptions, _solve_starts, _point_problem

    ufm.enable_x64()
    prob = ufm.UFM(K=10, n=20, d=32, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    grid = {"lam_W": {"log": [1e-4, 1e-1, side]}, "lam_H": {"log": [1e-4, 1e-1, side]}}
    axes = sw.parse_grid(prob, grid)
    P = side * side
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes.values(), indexing="ij")], axis=1)
    print(machine_line())
    load = OtherLoad()
    load.start()
    rows, comp = [], {}

    # 1. the reference loop
    def loop():
        out = []
        for lw, lh in pts:
            p = ufm.UFM(K=10, n=20, d=32, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh)
            out.append(ufm.minimize(p, seed=0, throw=False))
        return out

    t0 = time.perf_counter()
    ufm.minimize(prob, seed=0, throw=False)
    comp["minimize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = loop()
    t_loop = time.perf_counter() - t0
    ref_v = np.array([s.value for s in ref])
    rows.append(("loop of minimize", t_loop, 1.0, sum(s.converged for s in ref)))
    print(f"  loop: {t_loop:.2f} s, compile {comp['minimize']:.1f} s", flush=True)

    # 2-3. sweeps
    devs = jax.local_devices()
    chunk = max(1, P // 8)
    for label, dv in (("sweep, 1 device", devs[:1]), (f"sweep, {len(devs)} host devices", devs)):
        t0 = time.perf_counter()
        sw.sweep(prob, grid, chunk=chunk, devices=dv, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = sw.sweep(prob, grid, chunk=chunk, devices=dv, progress=False)
        t = time.perf_counter() - t0
        comp[label] = first - t
        v = ds.value.values.reshape(-1)
        rows.append((label, t, t_loop / t, int(ds.converged.sum())))
        print(f"  {label}: {t:.2f} s ({t_loop / t:.2f}x), first call {first:.1f} s", flush=True)
        lower = int(np.sum(v < ref_v - 1e-9 * np.maximum(1, np.abs(ref_v))))
        if lower:
            print(f"  {label}: {lower} points where the sweep found a lower certified value than the loop")

    # 4. vmap over points (random starts only)
    opts = SolveOptions(batch="vmap")

    @jax.jit
    def vmapped(vals):
        def one(v):
            p = _point_problem(prob, ("lam_W", "lam_H"), v)
            x0 = jax.tree_util.tree_map(lambda a: a[None], p.init(jax.random.PRNGKey(0)))
            return _solve_starts(p, x0, opts)[1][0]

        return jax.vmap(one)(vals)

    if not args.no_vmap:
        t0 = time.perf_counter()
        jax.block_until_ready(vmapped(pts[:chunk]))
        comp["vmap"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in range(0, P - chunk + 1, chunk):
            jax.block_until_ready(vmapped(pts[s:s + chunk]))
        t = (time.perf_counter() - t0) * P / (chunk * (P // chunk))
        rows.append(("vmap over points (1 device)", t, t_loop / t, P))

    # 5. dask processes
    if not (args.quick or args.no_dask):
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, Client(cl) as c:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                sw.sweep(prob, grid, chunk=chunk, store=f"{tmp}/a.zarr", client=c, progress=False)
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                ds = sw.sweep(prob, grid, chunk=chunk, store=f"{tmp}/b.zarr", client=c, progress=False)
                t = time.perf_counter() - t0
        comp["dask"] = first - t
        rows.append(("dask LocalCluster, 2 processes", t, t_loop / t, int(ds.converged.sum())))

    other = load.stop()
    print(f"CE UFM K=10 n=20 d=32, {side}x{side} log grid of lam_W, lam_H in [1e-4, 1e-1], 1 seed, "
          f"chunk {chunk}")
    print_table(["method", "wall s", "x loop", "certified"],
                [(r[0], f"{r[1]:.2f}", f"{r[2]:.2f}", f"{r[3]}/{P}") for r in rows])
    print("compile / first-call overhead (s): " + ", ".join(f"{k} {v:.1f}" for k, v in comp.items()))
    print(f"per point: loop {1e3 * t_loop / P:.1f} ms")
    print(f"other processes used {100 * other:.0f}% of the cores during the run; {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
