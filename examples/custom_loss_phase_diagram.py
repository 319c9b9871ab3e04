"""Bring your own loss: PolyLoss-1 and a squared multiclass hinge through the whole pipeline.

For each loss: define it (PolyLoss from its SymPy expression in p, so proofs_check derives and
proves its ETF scale and threshold; the squared hinge as plain jax.numpy), predict the ETF scale
(``ufm.etf_prediction``), then run the verdict (certified solves from several starts plus the ETF
start) over a kappa grid, and draw the phase diagram: predicted ``||w_k||^2`` against kappa, the
certified solutions on top, coloured by verdict, and the zero threshold. Saves
``custom_loss_phase_diagram.png``.

The kappa grid is a plain loop over ``ufm.etf_verdict`` (``ufm.sweep`` is on another branch).

Run: ``python examples/custom_loss_phase_diagram.py [--points 12] [--starts 2]``.
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

import ufm
from proofs_check.catalog.custom_losses import POLY1


def squared_hinge(z, y, margin):
    """Weston-Watkins squared hinge: sum_{j != y} max(0, margin - (z_y - z_j))^2."""
    gaps = z[y] - z
    return jnp.sum(jnp.where(jnp.arange(z.shape[0]) == y, 0.0, jnp.maximum(0.0, margin - gaps) ** 2))


def phase_diagram(loss, *, K=4, n=2, d=5, lam_b=1e-2, points=12, starts=2):
    """Verdicts over kappa in (0, 1.4 kappa*) with lam_W = lam_H; returns a dict of arrays."""
    base = ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=1e-3, lam_H=1e-3, lam_b=lam_b)
    top = ufm.etf_prediction(base).kappa_threshold
    kappas = top * np.concatenate([np.linspace(0.05, 0.9, points - 3), [1.1, 1.25, 1.4]])
    rows = []
    for kap in kappas:
        lam = kap / math.sqrt(n)
        v = ufm.etf_verdict(ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam, lam_H=lam, lam_b=lam_b), starts=starts)
        w2 = float(np.mean(np.sum(np.asarray(v.solution.params.W) ** 2, axis=1)))
        rows.append((kap, v.prediction.w_norm**2, w2, v.verdict, abs(v.margin)))
        print(f"  kappa={kap:.4g}: {v.verdict:16s} predicted ||w||^2={v.prediction.w_norm**2:.6g} "
              f"solved {w2:.6g}  |value gap|={abs(v.margin):.1e}")
    kap, pred, solved, verdicts, gaps = map(np.array, zip(*rows))
    return dict(kappa=kap, predicted=pred, solved=solved, verdict=verdicts, gap=gaps, threshold=top)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=12)
    ap.add_argument("--starts", type=int, default=2)
    ap.add_argument("--out", default="custom_loss_phase_diagram.png")
    args = ap.parse_args()
    ufm.enable_x64()

    poly = POLY1.loss(eps=1.0)
    print("PolyLoss-1, l(p) =", POLY1.expr, "| symbolic rows:")
    for proof in POLY1.proofs():
        print(f"  [{'proved' if proof.run()[0] else 'FAILED'}] {proof.claim}")
    hinge = ufm.CustomLoss(squared_hinge, "squared_hinge", margin=1.0)

    results = {}
    for name, loss in (("PolyLoss-1 (eps=1)", poly), ("squared hinge (margin 1)", hinge)):
        print(name)
        results[name] = phase_diagram(loss, points=args.points, starts=args.starts)
    worst = max(float(np.max(r["gap"][r["verdict"] == "ETF optimal"], initial=0.0)) for r in results.values())
    print(f"largest |prediction - certified solve| where the verdict is 'ETF optimal': {worst:.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"ETF optimal": "tab:green", "ETF not optimal": "tab:red", "inconclusive": "tab:gray"}
    for ax, (name, r) in zip(axes, results.items()):
        fine = np.linspace(1e-3, r["kappa"].max(), 200)
        loss = poly if name.startswith("Poly") else hinge
        curve = [ufm.etf_prediction(ufm.UFM(K=4, n=2, d=5, loss=loss, lam_W=k / math.sqrt(2),
                                            lam_H=k / math.sqrt(2), lam_b=1e-2)).w_norm ** 2 for k in fine]
        ax.plot(fine, curve, "k-", lw=1, label="ETF prediction")
        for verdict, colour in colours.items():
            sel = r["verdict"] == verdict
            if sel.any():
                ax.plot(r["kappa"][sel], r["solved"][sel], "o", color=colour, label=f"certified solve: {verdict}")
        ax.axvline(r["threshold"], color="tab:blue", ls="--", label=f"zero threshold {r['threshold']:.4g}")
        ax.set_xlabel(r"$\kappa = \sqrt{n\lambda_W\lambda_H}$")
        ax.set_ylabel(r"$\|w_k\|^2$")
        ax.set_title(f"{name}, K=4")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print("saved", args.out)


if __name__ == "__main__":
    main()
