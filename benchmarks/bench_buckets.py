"""Cold time of a (K, d) grid of CE UFMs: one compile per bucket of sizes against one per shape.

Both arms solve the same points with the same local (second-order) certificate, in one process:

- buckets: ``ufm.sweep(prob, {"K": Ks, "d": ds})``, each chunk padded to its bucket of sizes
  (:mod:`ufm.sweeps._sizes`), so the kernel compiles once per bucket;
- per shape: one ``ufm.sweep`` of one point for each ``(K, d)`` (the only way before size axes),
  compiling once per shape. ``--shapes M`` times ``M`` of the shapes (spread over the grid) and
  scales their time by ``P / M``; the printed line says which.

The buckets arm runs first, so it is cold (nothing of the kernel compiled); the per-shape arm
compiles a new program for every shape anyway. Prints both times, the compile counts and the
ratio, with the machine and the compile profile.

    UFM_COMPILE=fast python benchmarks/bench_buckets.py            # the 100-point grid
    python benchmarks/bench_buckets.py --shapes 10                  # baseline on 10 shapes, scaled

The ``UFM_COMPILE`` profile (``fast``: XLA:CPU at -O0, a third of the compile time) is applied as the
``ufm`` command applies it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from ufm.cli import use_compile_profile

PROFILE = use_compile_profile("optimized")  # before JAX starts; UFM_COMPILE overrides

import jax  # noqa: E402
import numpy as np  # noqa: E402

import ufm  # noqa: E402
from ufm.sweeps import _kernel  # noqa: E402

KS = list(range(2, 12))
DS = [1, 2, 3, 4, 6, 8, 11, 14, 18, 22]


def _problem(K: int, d: int, n: int, lam: float) -> ufm.UFM:
    return ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=lam)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2, help="samples per class (default 2)")
    ap.add_argument("--lam", type=float, default=5e-3, help="lam_W = lam_H = lam_b (default 5e-3)")
    ap.add_argument("--shapes", type=int, default=len(KS) * len(DS),
                    help="shapes the per-shape arm solves (spread over the grid; time scaled to all)")
    args = ap.parse_args()
    ufm.enable_x64()
    devices = jax.local_devices()[:1]
    base = _problem(2, 1, args.n, args.lam)
    grid = {"K": [float(k) for k in KS], "d": [float(d) for d in DS]}
    P = len(KS) * len(DS)

    c0 = _kernel.solve_chunk._cache_size()
    t0 = time.perf_counter()
    ds = ufm.sweep(base, grid, devices=devices, certify="local", progress=False)
    t_buckets = time.perf_counter() - t0
    n_buckets = _kernel.solve_chunk._cache_size() - c0
    names, counts = np.unique(ds.phase_name.values.astype(str), return_counts=True)
    phases = {str(k): int(v) for k, v in zip(names, counts)}

    shapes = [(k, d) for k in KS for d in DS]
    pick = np.unique(np.linspace(0, P - 1, min(args.shapes, P)).round().astype(int))
    c1 = _kernel.solve_chunk._cache_size()
    t1 = time.perf_counter()
    same = 0
    for i in pick:
        K, d = shapes[i]
        one = ufm.sweep(_problem(K, d, args.n, args.lam), {"lam_W": [args.lam]}, devices=devices,
                        certify="local", progress=False)
        # the random start is the same point in both arms (the padded init draws the unpadded start)
        same += bool(np.isclose(float(one.value_random.values.ravel()[0]),
                                float(ds.value_random.sel(K=K, d=d).values.ravel()[0]), rtol=0, atol=1e-9))
    t_shapes = (time.perf_counter() - t1) * P / len(pick)
    n_shapes = _kernel.solve_chunk._cache_size() - c1

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.platform()}; JAX {jax.__version__}; "
          f"compile profile {PROFILE}; one device")
    print(f"grid: CE UFM, K {KS[0]}..{KS[-1]} x d {DS}, n={args.n}, lam={args.lam:g}: {P} points, local certificate")
    print(f"buckets:   {t_buckets:8.1f} s  ({n_buckets} compiles of the chunk kernel); phases {phases}")
    scaled = "" if len(pick) == P else f", measured on {len(pick)} shapes and scaled by {P}/{len(pick)}"
    print(f"per shape: {t_shapes:8.1f} s  ({n_shapes} compiles for {len(pick)} shapes{scaled})")
    print(f"ratio per shape / buckets: {t_shapes / t_buckets:.2f}x; random-start values equal "
          f"(1e-9) at {same} of {len(pick)} shapes")


if __name__ == "__main__":
    main()
