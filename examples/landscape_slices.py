"""Slices of the CE UFM landscape: along the escape direction of the origin, a 2-D cut through the
minimizer along its two softest eigenvectors, and the straight path between two minimizers of the
nonnegative model (its barrier; the two are aligned by a rotation first).

    python examples/landscape_slices.py            # saves landscape_slices.png
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import ufm

ufm.enable_x64()


def main(out="landscape_slices.png", K=3, n=2, d=4, lam=5e-3):
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=lam)
    origin = jax.tree_util.tree_map(jnp.zeros_like, prob.init(jax.random.PRNGKey(0)))
    cp = ufm.landscape.kind_of(prob, origin)
    ts = np.linspace(-6.0, 6.0, 121)
    along = ufm.landscape.slice_1d(prob, origin, cp.escape, ts)
    sol = ufm.minimize(prob)
    _, V = ufm.landscape.spectrum(prob, sol.params, k=2)
    grid_t = np.linspace(-1.0, 1.0, 41)
    grid = ufm.landscape.slice_2d(prob, sol.params, V[:, 0], V[:, 1], grid_t, grid_t)
    pos = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=2 * lam, lam_b=2 * lam, nonneg=True)
    ends = [ufm.minimize(pos, seed=s, throw=False) for s in range(6)]
    ends = sorted(ends, key=lambda s: s.value)
    a, b = ends[0], ends[-1]
    pa = ufm.landscape.path(pos, a.params, b.params, num=101, align=False)
    print(f"origin: {cp.kind}, index {cp.index}; f drops from {along[60]:.4f} to {along.min():.4f} along the escape")
    print(f"H >= 0: end values {[round(s.value, 6) for s in ends]}; barrier on the straight path "
          f"between the lowest and highest: {pa['barrier']:.3e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    ax[0].plot(ts, along)
    ax[0].set(title=f"origin, escape direction (index {cp.index})", xlabel="t", ylabel="f(t v)")
    c = ax[1].contourf(grid_t, grid_t, grid.T - sol.value, 30)
    fig.colorbar(c, ax=ax[1])
    ax[1].set(title="minimizer: softest two eigenvectors", xlabel="t (v1)", ylabel="s (v2)")
    ax[2].plot(pa["t"], pa["values"])
    ax[2].set(title=f"H >= 0: straight path, barrier {pa['barrier']:.2e}", xlabel="t", ylabel="f")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="landscape_slices.png")
    main(ap.parse_args().out)
