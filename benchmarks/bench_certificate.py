"""The second-order certificate against the first-order solve it certifies, in one process.

Model: the cross-entropy UFM with a bias, lam_W = lam_H = lam_b = 5e-3, float64, seed 0, at
K=10, n=20, d=32 (6,730 parameters) and K=10, n=100, d=64 (64,650 parameters).

1. **warm** (same process, every executable compiled first): ``ufm.minimize(prob, order="first")``
   and ``ufm.minimize(prob, order="second")`` interleaved, best of ``--repeats``; their ratio
   (target <= 2), and the curvature check alone (the compiled ``smallest_eig`` at the solution)
   over the first-order solve;
2. the **old method** for reference: the dense tangent basis (``ufm.symmetry_basis``) and 100
   fixed Lanczos steps projected through it (``spectrum(..., implicit=False)``), with its
   ``min_eig`` beside the new one (the certificate must agree to 1e-10); at the larger size only
   with ``--old-large`` (it builds a 64,650 x 2,016 basis: minutes);
3. **cold** (``--cold``, default on): ``ufm.minimize(prob, order="first")`` and the default
   ``ufm.minimize(prob)`` (``order="auto"``, second order at both sizes) each as the first call
   of a fresh process (import excluded, compilation included), alternated ``--cold-repeats``
   times; the ratio of the medians (target <= 3).

Run: ``nice python benchmarks/bench_certificate.py`` (``--quick``: 3 repeats, one cold pair).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import _common

SIZES = [(10, 20, 32), (10, 100, 64)]
LAM = 5e-3

_COLD = """
import sys, time
import ufm
ufm.enable_x64()
K, n, d, order = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W={lam}, lam_H={lam}, lam_b={lam})
t0 = time.perf_counter()
sol = ufm.minimize(prob) if order == "auto" else ufm.minimize(prob, order=order)
print(time.perf_counter() - t0, sol.certificate.order, sol.certificate.min_eig)
""".format(lam=LAM)


def _problem(ufm, K, n, d):
    return ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=LAM, lam_H=LAM, lam_b=LAM)


def _interleaved(fns: dict, repeats: int) -> dict:
    """Best wall time of each callable, the calls interleaved so that load hits them alike."""
    import jax

    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def warm(K: int, n: int, d: int, repeats: int, old: bool) -> None:
    import jax

    import ufm
    from ufm.solvers import _certify

    prob = _problem(ufm, K, n, d)
    first = ufm.minimize(prob, order="first")
    second = ufm.minimize(prob, order="second")
    x, key = first.params, jax.random.PRNGKey(0)
    check = jax.jit(_certify.smallest_eig, static_argnums=(3, 4))
    lam_new = float(check(prob, x, key, "lanczos", 100)[0])
    fns = {"first": lambda: ufm.minimize(prob, order="first").value,
           "second": lambda: ufm.minimize(prob, order="second").value,
           "check": lambda: check(prob, x, key, "lanczos", 100)[0]}
    t = _interleaved(fns, repeats)
    size = sum(v.size for v in jax.tree_util.tree_leaves(x))
    print(f"K={K}, n={n}, d={d} ({size:,} parameters), warm, best of {repeats}:")
    print(f"  first order {t['first'] * 1e3:9.1f} ms   second order {t['second'] * 1e3:9.1f} ms   "
          f"ratio {t['second'] / t['first']:5.2f} (target <= 2)")
    print(f"  curvature check alone {t['check'] * 1e3:7.1f} ms = {t['check'] / t['first']:5.2f} x the "
          f"first-order solve; min_eig {second.certificate.min_eig:.15g} (solve), {lam_new:.15g} (check)")
    if old:
        ref = jax.jit(_certify.spectrum, static_argnames=("method", "exclude_symmetry", "num_iters", "implicit"))

        def run_old():
            return ref(prob, x, key, method="lanczos", exclude_symmetry=True, num_iters=100, implicit=False)[0]

        lam_old = float(run_old()[0])
        t_old = _interleaved({"old": run_old}, max(1, repeats // 3))["old"]
        print(f"  old check (dense basis + 100 Lanczos steps) {t_old * 1e3:9.1f} ms = "
              f"{t_old / t['first']:6.1f} x first order; min_eig {lam_old:.15g}, "
              f"|new - old| = {abs(lam_new - lam_old):.2e} (<= 1e-10 wanted)")


def cold(K: int, n: int, d: int, repeats: int) -> None:
    times = {"first": [], "auto": []}
    for _ in range(repeats):
        for order in times:
            out = subprocess.run([sys.executable, "-c", _COLD, str(K), str(n), str(d), order],
                                 capture_output=True, text=True, check=True).stdout.split()
            times[order].append(float(out[0]))
            cert = f"{out[1]} order, min_eig {out[2]}"
    f, a = statistics.median(times["first"]), statistics.median(times["auto"])
    print(f"K={K}, n={n}, d={d}, cold (fresh process, compile included), median of {repeats}:")
    print(f"  minimize(order='first') {f:6.1f} s   minimize() {a:6.1f} s ({cert})   "
          f"ratio {a / f:4.2f} (target <= 3)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--no-old", action="store_true")
    ap.add_argument("--old-large", action="store_true")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.cold_repeats = 3, 1
    import ufm

    ufm.enable_x64()
    print(_common.machine_line(), "|", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(f"command: python benchmarks/bench_certificate.py {' '.join(sys.argv[1:])}")
    for i, (K, n, d) in enumerate(SIZES):
        warm(K, n, d, args.repeats, old=not args.no_old and (i == 0 or args.old_large))
    if not args.no_cold:
        cold(*SIZES[1], args.cold_repeats)
    print(_common.load_line())


if __name__ == "__main__":
    main()
