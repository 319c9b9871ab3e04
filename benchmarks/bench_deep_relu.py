"""The deep ReLU UFM at K = 10, L = 4 (the low-rank regime): per-seed time and certificate, and the
kink machinery against its former implementation, in one process.

    DeepUFM(K=10, n=1, widths=(30,)*4, loss=MSE(), lam_W=0.004, lam_H=0.004, activation="relu")

1. ``ufm.minimize(prob, seed=s)`` (the default call, ``throw=True``) for each seed: wall time
   (compilation included for the first seed), value, result, certificate order, KKT residual,
   ``min_eig``, the number of kinks and of escapes; a raised exception is printed as the row's
   result (it should never happen: slow convergence on this nonsmooth problem is a result code).
2. For the seeds in ``--reference-seeds``: the point handed to the kink polish is kept, and the
   three parts of the kink machinery run on it twice, the current code and the former one
   (copied below): the Newton polish of the kink manifold (eigendecomposition reused while the
   chord step contracts, against one per step), the Clarke slope fit (Gauss-Newton with a
   bounded-variable least-squares step, against L-BFGS-B on ``||g(s)||^2``) and the kink-manifold
   curvature (the dense Hessian on null(J_S) with the symmetry directions removed, against the
   former one with them included, so the former value is about 0 where the current one is the
   smallest other eigenvalue: the two agree on the verdict ``min_eig >= -1e-8``, not on the
   number). Each row prints both times, their ratio, and both
   certificates (the ratio is only meaningful when they agree).

Prints the machine, the load average and the share of the cores other processes used: on a shared
machine the absolute times are disturbed, the ratios less so (both sides run in this process, one
after the other).

Usage: ``python benchmarks/bench_deep_relu.py [--seeds 0 1 2 3 4] [--reference-seeds 1]``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import OtherLoad, load_line, machine_line, print_table

jax.config.update("jax_enable_x64", True)

from jax.flatten_util import ravel_pytree  # noqa: E402

import ufm  # noqa: E402
import ufm.solvers._relu as relu  # noqa: E402
import ufm.solvers._relu_kink as relu_kink  # noqa: E402
from ufm.solvers import _relu_clarke as clarke  # noqa: E402


def problem() -> ufm.DeepUFM:
    return ufm.DeepUFM(K=10, n=1, widths=(30,) * 4, loss=ufm.MSE(), lam_W=0.004, lam_H=0.004, activation="relu")


# ---- the former implementation (reference) ----------------------------------------------------------
def reference_slope_fit(prob, params, on, kink):
    """``min ||g(s)||^2`` on the box by L-BFGS-B over all slopes (the former fit)."""
    from scipy.optimize import minimize as sp_minimize

    k = int(sum(np.sum(Kk) for Kk in kink))

    @jax.jit
    def res2(s):
        g = jax.grad(clarke.with_slopes(prob, on, kink, s).objective)(params)
        return jnp.sum(ravel_pytree(g)[0] ** 2)

    vg = jax.jit(jax.value_and_grad(res2))
    fun = lambda s: tuple(np.asarray(v, float) for v in vg(jnp.asarray(s)))  # noqa: E731
    out = sp_minimize(fun, np.full(k, 0.5), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * k,
                      options=dict(maxiter=2000, ftol=0.0, gtol=1e-30))
    s = np.clip(out.x, 0.0, 1.0)
    return s, float(np.sqrt(res2(jnp.asarray(s))))


def reference_min_eig(prob, params, on, kink, s):
    """Dense Hessian, full SVD of ``J_S``, dense ``eigvalsh`` on the null-space basis (the former check)."""
    flat, unravel = ravel_pytree(params)
    piece = clarke.with_slopes(prob, on, kink, jnp.asarray(s, flat.dtype))
    H = np.asarray(jax.jit(jax.hessian(lambda v: piece.objective(unravel(v))))(flat))
    _, sv, Vt = np.linalg.svd(clarke.kink_jacobian(prob, params, kink), full_matrices=True)
    N = Vt[int(np.sum(sv > 1e-10 * max(1.0, sv[0]))):].T
    return float(np.linalg.eigvalsh(N.T @ (0.5 * (H + H.T)) @ N)[0])


def reference_newton(F_j, J_j, v, gtol, max_iters):
    """The former Lagrange Newton: one dense eigendecomposition per step."""
    r = np.asarray(F_j(v))
    it = 0
    for it in range(1, max_iters + 1):
        if float(np.linalg.norm(r)) <= gtol:
            it -= 1
            break
        J = np.asarray(J_j(v))
        best = relu_kink._best_step(F_j, v, r, np.linalg.eigh(0.5 * (J + J.T)))
        if best is None:
            break
        _, v, r = best
    return v, r, it


# ---- the runs ----------------------------------------------------------------------------------------
def timed(fn):
    load = OtherLoad().start()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, load.stop(), out


def solve_seed(prob, seed):
    """``ufm.minimize(prob, seed=seed)``; returns (row, the point handed to the kink polish or None)."""
    kept = {}
    kink_rounds = relu._kink_rounds

    def keep(p, run, opts, info, tol=1e-5):
        kept.setdefault("near", run.params)
        return kink_rounds(p, run, opts, info, tol)

    relu._kink_rounds = keep
    try:
        wall, other, sol = timed(lambda: ufm.minimize(prob, seed=seed))
    except Exception as e:  # noqa: BLE001 (the row reports it)
        return [str(seed), "-", "-", f"raised {type(e).__name__}", "-", "-", "-", "-", "-", "-"], None
    finally:
        relu._kink_rounds = kink_rounds
    piece = sol.stats.get("piece") or {}
    c = sol.certificate
    row = [str(seed), f"{wall:.1f}", f"{other:.2f}", sol.result.name, c.order, f"{sol.value:.10f}",
           f"{c.kkt:.2e}", f"{c.min_eig:.2e}", str(len(piece.get("kinks", []))), str(sol.stats["escapes"])]
    return row, kept.get("near")


def compare_parts(prob, near, seed):
    """The three parts of the kink machinery on the same point, current against former."""
    rows = []
    t_new, o_new, (y, _, res_new, it_new) = timed(lambda: relu_kink.polish_kink(prob, near, gtol=1e-12))
    relu_kink.lagrange_newton, current = reference_newton, relu_kink.lagrange_newton
    try:
        t_ref, o_ref, (_, _, res_ref, it_ref) = timed(lambda: relu_kink.polish_kink(prob, near, gtol=1e-12))
    finally:
        relu_kink.lagrange_newton = current
    rows.append([str(seed), "kink Newton polish", f"{t_ref:.1f}", f"{t_new:.1f}", f"{t_ref / t_new:.1f}x",
                 f"res {res_ref:.1e} ({it_ref} steps)", f"res {res_new:.1e} ({it_new} steps)", f"{max(o_ref, o_new):.2f}"])
    on, kink = clarke.kink_masks(prob, y)
    t_ref, o_ref, (s_ref, k_ref) = timed(lambda: reference_slope_fit(prob, y, on, kink))
    t_new, o_new, (s_new, k_new) = timed(lambda: clarke.slope_fit(prob, y, on, kink))
    rows.append([str(seed), f"Clarke slope fit ({s_new.size} slopes)", f"{t_ref:.1f}", f"{t_new:.1f}",
                 f"{t_ref / t_new:.1f}x", f"kkt {k_ref:.1e}", f"kkt {k_new:.1e}", f"{max(o_ref, o_new):.2f}"])
    t_ref, o_ref, e_ref = timed(lambda: reference_min_eig(prob, y, on, kink, s_new))
    t_new, o_new, e_new = timed(lambda: clarke.manifold_min_eig(prob, y, on, kink, s_new))
    rows.append([str(seed), "kink-manifold min_eig", f"{t_ref:.1f}", f"{t_new:.1f}", f"{t_ref / t_new:.1f}x",
                 f"{e_ref:.2e}", f"{e_new:.2e}", f"{max(o_ref, o_new):.2f}"])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--reference-seeds", type=int, nargs="*", default=[1],
                    help="seeds whose kink point also runs the former kink machinery (slow)")
    args = ap.parse_args(argv)
    print(f"bench_deep_relu, {datetime.date.today()}: {machine_line()}, jax {jax.__version__}")
    print("command: python benchmarks/bench_deep_relu.py " + " ".join(sys.argv[1:] if argv is None else argv))
    prob = problem()
    rows, parts = [], []
    for seed in args.seeds:
        row, near = solve_seed(prob, seed)
        rows.append(row)
        print_table(["seed", "time s", "other load", "result", "order", "value", "KKT", "min_eig", "kinks",
                     "escapes"], [row])
        if seed in args.reference_seeds and near is not None:
            parts += compare_parts(prob, near, seed)
    print("\nper seed (default call, compilation in the first row):")
    print_table(["seed", "time s", "other load", "result", "order", "value", "KKT", "min_eig", "kinks", "escapes"],
                rows)
    if parts:
        print("\nthe kink machinery, former against current, same point, same process:")
        print_table(["seed", "part", "former s", "current s", "ratio", "former", "current", "other load"], parts)
    print(load_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
