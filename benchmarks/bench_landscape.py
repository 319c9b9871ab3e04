"""Landscape and certificate costs: the global certificate vs the solve, Lanczos at 10^6
parameters, and the census in one compiled function (``vmap`` vs ``lax.map``).

1. **Certificate vs solve.** CE UFM (K = 10, n = 20, d = 16, lam = 5e-4, regularized bias): the
   warm wall time of ``ufm.minimize`` (first order, best of ``--repeats``) against the warm wall
   time of ``jax.jit(ufm.global_certificate)`` at its solution (one K x K spectral norm and K
   softmaxes), printed as a ratio; and ``minimize(certify="global")`` end to end.
2. **Lanczos at 10^6 parameters.** CE UFM with K = 10, d = 100, n = 1000 (``W`` 1000 + ``H``
   1,000,000 parameters): ``ufm.landscape.spectrum(..., method="lanczos", num_iters=--iters,
   exclude_symmetry=False)`` at a random point (the rotation tangents of d = 100, 4950 dense
   vectors of 10^6 entries, would take 40 GB: the symmetry projection is left out at this size).
   Reports the compile+run time, a warm run and the peak resident memory of the process
   (``ru_maxrss``), which includes JAX itself.
3. **Census mode.** ``ufm.landscape.census`` of a small CE UFM with ``--starts`` starts, run as
   ``mode="vmap"`` and ``mode="map"`` (each timed on a second call, compilation excluded).

Run: ``python benchmarks/bench_landscape.py`` (``--quick``: smaller Lanczos and census).
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import numpy as np

import ufm

ufm.enable_x64()


def _best(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best, out


def certificate_vs_solve(repeats):
    prob = ufm.UFM(K=10, n=20, d=16, loss=ufm.CrossEntropy(), lam_W=5e-4, lam_H=5e-4, lam_b=5e-4)
    ufm.minimize(prob, order="first")
    t_solve, sol = _best(lambda: ufm.minimize(prob, order="first").params, repeats)
    cert = jax.jit(ufm.global_certificate)
    jax.block_until_ready(cert(prob, sol))
    t_cert, c = _best(lambda: cert(prob, sol), max(repeats, 20))
    t0 = time.perf_counter()
    full = ufm.minimize(prob, order="first", certify="global")
    t_full = time.perf_counter() - t0
    print(f"[1] minimize (first order, warm): {t_solve * 1e3:.1f} ms; global_certificate (jit, warm): "
          f"{t_cert * 1e3:.3f} ms; ratio solve/certificate = {t_solve / t_cert:.0f}; gap {float(c.gap):.1e}")
    print(f"    minimize(certify='global') end to end (warm solve + certificate compiled on first use): {t_full * 1e3:.1f} ms, "
          f"gap {full.certificate.global_gap:.1e}, converged {full.converged}")


def lanczos_big(iters, n):
    prob = ufm.UFM(K=10, n=n, d=100, loss=ufm.CrossEntropy(), lam_W=5e-4, lam_H=5e-4)
    params = prob.init(jax.random.PRNGKey(0))
    size = params.W.size + params.H.size
    t0 = time.perf_counter()
    w, V = ufm.landscape.spectrum(prob, params, k=4, method="lanczos", num_iters=iters, exclude_symmetry=False)
    jax.block_until_ready(w)
    t_first = time.perf_counter() - t0
    t_warm, _ = _best(lambda: ufm.landscape.spectrum(prob, params, k=4, method="lanczos", num_iters=iters,
                                                      exclude_symmetry=False)[0], 1)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"[2] Lanczos, {size:,} parameters, {iters} steps: first call {t_first:.1f} s (compile included), "
          f"warm {t_warm:.1f} s, peak RSS {peak_gb:.2f} GB; smallest Ritz values {np.round(np.asarray(w), 6)}")


def census_modes(starts):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    out = {}
    for mode in ("map", "vmap"):
        ufm.landscape.census(prob, starts=starts, mode=mode)
        out[mode] = ufm.landscape.census(prob, starts=starts, mode=mode).seconds
    print(f"[3] census of {starts} starts on {jax.default_backend()}: map {out['map']:.2f} s, vmap "
          f"{out['vmap']:.2f} s (vmap/map = {out['vmap'] / out['map']:.2f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--starts", type=int, default=32)
    a = ap.parse_args()
    certificate_vs_solve(a.repeats)
    census_modes(8 if a.quick else a.starts)
    lanczos_big(20 if a.quick else a.iters, 100 if a.quick else 1000)


if __name__ == "__main__":
    main()
