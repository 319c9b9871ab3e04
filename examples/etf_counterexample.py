"""A loss for which the simplex ETF is NOT the minimizer: a smoothed top-2 loss.

``l(z, y) = -log(p_y + sum_{j != y} w_j p_j)``, ``w = softmax_{j != y}(z_j / tau)``: the sample
counts as right when its class is among the top two (the runner-up's probability is added, with
a smooth max of temperature ``tau``; cf. the smooth top-k losses of Berrada, Zisserman & Kumar,
ICLR 2018, arXiv 1802.07595). It is symmetric under relabelling and finite at the origin, so
``ufm.etf_prediction`` applies; but a low-dimensional arrangement in which each class has a close
partner pays for half the separation the ETF buys, and wins. ``ufm.etf_verdict`` finds it: over a
kappa grid it prints the verdict, the margin by which the certified solution beats the ansatz, its
rank and the Gram matrix of its classifier rows; it re-evaluates the objective at the returned
parameters (not trusting the solver's own value) and saves ``etf_counterexample.png`` (normalized
Gram of W for the ETF and for the solver's minimizer, and both values against kappa).

Run: ``python examples/etf_counterexample.py [--starts 4]`` (about a minute on 2 idle cores).
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

import ufm


def top2(z, y, tau):
    """Smoothed top-2 loss (module docstring)."""
    p = jax.nn.softmax(z)
    others = jnp.arange(z.shape[0]) != y
    w = jax.nn.softmax(jnp.where(others, z / tau, -jnp.inf))
    return -jnp.log(p[y] + jnp.sum(w * p))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--out", default="etf_counterexample.png")
    args = ap.parse_args()
    ufm.enable_x64()

    K, n, d = 4, 1, 4
    loss = ufm.CustomLoss(top2, "top2", tau=0.2)
    top = ufm.etf_prediction(ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=1e-3, lam_H=1e-3)).kappa_threshold
    print(f"top-2 loss, K={K}, d={d}: ETF zero threshold kappa* = {top:.6g}")
    rows, shown = [], None
    for frac in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8):
        lam = frac * top / math.sqrt(n)
        prob = ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam, lam_H=lam)
        v = ufm.etf_verdict(prob, starts=args.starts)
        recomputed = float(prob.objective(v.solution.params))
        rows.append((frac * top, v.prediction.value, recomputed, v.verdict))
        print(f"  kappa={frac * top:.4g}: {v.verdict}; ETF value {v.prediction.value:.8g}, certified solve "
              f"{recomputed:.8g} (solver reported {v.solution.value:.8g}); W rows: {v.rows.kind}, rank {v.rows.rank}")
        if shown is None and v.verdict == "ETF not optimal":
            shown = (frac * top, prob, v)
    kap, etf_values, solved, verdicts = map(np.array, zip(*rows))
    broken = int(np.sum(verdicts == "ETF not optimal"))
    print(f"ETF not optimal at {broken} of {len(rows)} kappa values; largest margin "
          f"{float(np.max(etf_values - solved)):.4g}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    if shown is not None:
        kap0, prob, v = shown
        W_etf = np.asarray(ufm.etf_params(prob, v.prediction).W)
        for ax, W, title in ((axes[0], W_etf, "ETF ansatz"), (axes[1], np.asarray(v.solution.params.W),
                                                               f"certified minimizer (rank {v.rows.rank})")):
            G = W @ W.T
            im = ax.imshow(G / np.abs(G).max(), cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_title(f"{title}\nW W^T / max, kappa={kap0:.3g}", fontsize=9)
            ax.set_xticks(range(K))
            ax.set_yticks(range(K))
        fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].plot(kap, etf_values, "k-o", ms=4, label="ETF prediction (ufm.etf_prediction)")
    axes[2].plot(kap, solved, "r-s", ms=4, label="certified solve (ufm.etf_verdict)")
    axes[2].set_xlabel(r"$\kappa$")
    axes[2].set_ylabel("objective")
    axes[2].legend(fontsize=8)
    axes[2].set_title("top-2 loss: the ETF ansatz is beaten", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
