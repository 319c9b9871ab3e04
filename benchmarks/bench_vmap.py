"""A vmapped batch of problems against a loop over them, on the same compiled code.

Two measurements, each as a ratio to a reference run in the same process:

1. gradient steps: ``S`` fixed gradient-descent steps (``lax.fori_loop``) on ``B`` CE UFMs
   (``K=10, n=20, d=32`` by default) with different ``lam``: one ``jax.vmap`` call over the batch
   against a Python loop calling the single-problem compiled function ``B`` times. Reported in
   microseconds per problem-gradient-step.
2. certified solves: ``ufm.minimize(..., throw=False)`` under ``jax.jit(jax.vmap(...))`` over ``B``
   values of ``lam`` against the host loop of ``ufm.minimize`` (the same compiled solver core).

Usage: ``python benchmarks/bench_vmap.py [--batch 100] [--steps 200] [--solves 8]``.
On XLA:CPU batched small matmuls are slow, so the loop can win there; vmap is the path for
GPU/TPU and sharding.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from _common import load_line, machine_line


def _best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--solves", type=int, default=8)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--d", type=int, default=32)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import ufm

    ufm.enable_x64()
    print(machine_line())
    print(load_line())
    B, S = args.batch, args.steps
    prob = ufm.UFM(K=args.K, n=args.n, d=args.d, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    x0 = prob.init(jax.random.PRNGKey(0))
    lams = jnp.linspace(1e-3, 1e-2, B)

    def descend(lam):
        p = dataclasses.replace(prob, lam_W=lam, lam_H=lam)
        g = jax.grad(p.objective)

        def body(_, x):
            return jax.tree_util.tree_map(lambda u, v: u - 0.5 * v, x, g(x))

        return p.objective(jax.lax.fori_loop(0, S, body, x0))

    one = jax.jit(descend)
    many = jax.jit(jax.vmap(descend))
    one(lams[0]).block_until_ready()
    many(lams).block_until_ready()
    t_loop = _best(lambda: [one(l).block_until_ready() for l in lams])
    t_vmap = _best(lambda: many(lams).block_until_ready())
    loop_v = np.array([float(one(l)) for l in lams])
    assert np.allclose(np.asarray(many(lams)), loop_v, rtol=1e-12, atol=0)
    us = 1e6 / (B * S)
    print(f"\ngradient steps, B={B} problems (K={args.K}, n={args.n}, d={args.d}), S={S} steps each")
    print(f"  loop of single-problem jit : {t_loop * us:8.2f} us per problem-step")
    print(f"  one vmapped jit            : {t_vmap * us:8.2f} us per problem-step")
    print(f"  vmap / loop                : {t_vmap / t_loop:8.2f}")

    M = args.solves
    small = ufm.UFM(K=4, n=3, d=5, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    slams = jnp.linspace(1e-3, 1e-2, M)

    def solve(lam):
        return ufm.minimize(dataclasses.replace(small, lam_W=lam, lam_H=lam), throw=False).value

    batched = jax.jit(jax.vmap(solve))
    t = time.perf_counter()
    batched(slams).block_until_ready()
    t_compile = time.perf_counter() - t
    ufm.minimize(small)  # compile the host path
    t_bv = _best(lambda: batched(slams * 1.01).block_until_ready())
    t_bl = _best(lambda: [ufm.minimize(dataclasses.replace(small, lam_W=float(l), lam_H=float(l)))
                          for l in np.asarray(slams) * 1.01])
    seq = np.array([ufm.minimize(dataclasses.replace(small, lam_W=float(l), lam_H=float(l))).value
                    for l in np.asarray(slams)])
    err = float(np.max(np.abs(np.asarray(batched(slams)) - seq)))
    print(f"\ncertified solves (second order), M={M} problems K=4, n=3, d=5")
    print(f"  host loop of ufm.minimize  : {t_bl / M * 1e3:8.2f} ms per solve")
    print(f"  jit(vmap(minimize))        : {t_bv / M * 1e3:8.2f} ms per solve (compile {t_compile:.1f} s once)")
    print(f"  vmap / loop                : {t_bv / t_bl:8.2f}   max |vmap - loop| = {err:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
