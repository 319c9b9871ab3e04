"""Memorization-dilation: dilation against noise rate, expressivity strength lam and LS alpha.

Solves :class:`ufm.MemorizationDilation` (both variants, CE and LS, K = 2 and K = 4) with
:func:`ufm.minimize` (two random starts, certified), measures the dilation with
:mod:`ufm.dilation`, prints a table, checks the qualitative claims of ``docs/theory.md#memorization-dilation``
over the grid and reports every grid point where one fails. Saves
``md_dilation_study.png`` (or the path given as the first argument).

Claims checked (D = mean displacement of noisy features from their true class's clean mean):
  A. LS dilates less than CE: D_LS(alpha) < D_CE at the same (K, variant, eta, lam), whenever D_CE > 0.
  B. In the radius variant D grows with eta (non-decreasing along the eta grid).
  C. Dilation switches off above a lam threshold (D < 1e-4 on the grid), smaller for LS than for CE.

Run: ``python examples/md_dilation_study.py [out.png]`` (about 5 minutes on 2 CPU cores; the noise rate
is static, so every eta compiles anew).
"""

from __future__ import annotations

import sys
import time

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
import numpy as np

import ufm

ufm.enable_x64()
from ufm import dilation as dl
from ufm import MemorizationDilation, minimize

N_PER_CLASS, LAM_W, LAM_H = 10, 5e-3, 5e-3
ETAS = (0.1, 0.2, 0.3, 0.4)
LAMS = tuple(np.geomspace(1e-2, 30.0, 10))
ALPHAS = (0.05, 0.1, 0.2, 0.3)
ZERO = 1e-4


def solve(K, variant, loss, eta, lam):
    prob = MemorizationDilation(K=K, n=N_PER_CLASS, d=K, loss=loss, lam_W=LAM_W, lam_H=LAM_H, lam=lam,
                                eta=eta, variant=variant)
    sol = minimize(prob, starts=2, throw=False, gtol=1e-9, ctol=1e-9)
    P = sol.params
    args = (P.H, prob.true_labels, prob.labels, K)
    Z = np.asarray(P.W @ P.H)
    idx = prob.noisy_index
    fits_noise = float(np.mean(np.argmax(Z[:, idx], axis=0) == prob.labels[idx]))
    return {"D": float(np.mean(dl.displacement(*args))), "Drel": float(np.mean(dl.relative_displacement(*args))),
                "spread": float(np.mean(dl.class_spread(*args))), "nc1": float(dl.nc1_noisy(P.H, prob.labels, K)),
                "memorized": fits_noise, "cross": float(np.mean(dl.segment_crossing(P.W, *args[:3], b=P.b, K=K))),
                "converged": sol.converged}


def main(out="md_dilation_study.png"):
    t0 = time.time()
    losses = {"CE": lambda: ufm.CrossEntropy()} | {f"LS{a}": (lambda a=a: ufm.LabelSmoothing(a)) for a in ALPHAS}
    rows, fails = [], []
    for K in (2, 4):
        for variant in ("radius", "per_sample"):
            for eta in ETAS:
                for lname, mk in losses.items():
                    for lam in LAMS:
                        rows.append(dict(K=K, variant=variant, eta=eta, loss=lname, lam=lam,
                                         **solve(K, variant, mk(), eta, lam)))
    R = {(r["K"], r["variant"], r["eta"], r["loss"], r["lam"]): r for r in rows}
    print(f"{'K':>2} {'variant':>10} {'eta':>4} {'loss':>6} {'lam':>8} {'D':>8} {'D/dist':>7} {'spread':>7} "
          f"{'NC1(noisy)':>10} {'memorized':>9} {'cross':>6} conv")
    for r in rows:
        print(f"{r['K']:>2} {r['variant']:>10} {r['eta']:>4} {r['loss']:>6} {r['lam']:>8.3g} {r['D']:>8.4f} "
              f"{r['Drel']:>7.4f} {r['spread']:>7.4f} {r['nc1']:>10.3g} {r['memorized']:>9.2f} {r['cross']:>6.3f} "
              f"{r['converged']}")
    # A: LS < CE
    nA = 0
    for (K, v, eta, lname, lam), r in R.items():
        if lname == "CE" or R[(K, v, eta, "CE", lam)]["D"] <= ZERO:
            continue
        nA += 1
        if not r["D"] < R[(K, v, eta, "CE", lam)]["D"]:
            fails.append(f"A fails: K={K} {v} eta={eta} lam={lam:.3g}: D_{lname}={r['D']:.4g} >= D_CE="
                         f"{R[(K, v, eta, 'CE', lam)]['D']:.4g}")
    # B: radius, D non-decreasing in eta
    nB = 0
    for K in (2, 4):
        for lname in losses:
            for lam in LAMS:
                Ds = [R[(K, "radius", e, lname, lam)]["D"] for e in ETAS]
                nB += 1
                if any(b < a - 1e-6 for a, b in itertools.pairwise(Ds)):
                    fails.append(f"B fails: K={K} {lname} lam={lam:.3g}: D over eta {np.round(Ds, 4).tolist()}")
    # C: thresholds
    nC = 0
    thresholds = {}
    for K in (2, 4):
        for v in ("radius", "per_sample"):
            for eta in ETAS:
                for lname in losses:
                    off = [lam for lam in LAMS if R[(K, v, eta, lname, lam)]["D"] <= ZERO]
                    thresholds[(K, v, eta, lname)] = min(off) if off else np.inf
                for lname in losses:
                    if lname == "CE":
                        continue
                    nC += 1
                    if not thresholds[(K, v, eta, lname)] <= thresholds[(K, v, eta, "CE")]:
                        fails.append(f"C fails: K={K} {v} eta={eta}: lam threshold {lname} "
                                     f"{thresholds[(K, v, eta, lname)]:.3g} > CE {thresholds[(K, v, eta, 'CE')]:.3g}")
    print("\nthresholds (smallest grid lam with D < 1e-4; inf = never switched off):")
    for key, val in thresholds.items():
        print("  ", key, f"{val:.3g}")
    print(f"\nclaim A checked at {nA} points, B at {nB}, C at {nC}; failures: {len(fails)}")
    for f in fails:
        print("  ", f)
    nconv = sum(not r["converged"] for r in rows)
    print(f"unconverged solves: {nconv} of {len(rows)}; runtime {time.time() - t0:.0f} s")

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for i, K in enumerate((2, 4)):
        lam_mid = LAMS[3]
        for v, ls_ in (("radius", "-"), ("per_sample", "--")):
            for lname in ("CE", "LS0.1", "LS0.3"):
                axes[i, 0].plot(ETAS, [R[(K, v, e, lname, lam_mid)]["D"] for e in ETAS], ls_, marker="o", label=f"{v} {lname}")
                axes[i, 1].semilogx(LAMS, [R[(K, v, 0.2, lname, lam)]["D"] for lam in LAMS], ls_, marker="o", label=f"{v} {lname}")
            axes[i, 2].plot([0.0] + list(ALPHAS), [R[(K, v, 0.2, n_, lam_mid)]["D"] for n_ in ["CE"] + [f"LS{a}" for a in ALPHAS]],
                            ls_, marker="o", label=v)
        axes[i, 0].set(title=f"K={K}: D vs eta (lam={lam_mid:.3g})", xlabel="eta", ylabel="dilation D")
        axes[i, 1].set(title=f"K={K}: D vs lam (eta=0.2)", xlabel="lam", ylabel="dilation D")
        axes[i, 2].set(title=f"K={K}: D vs LS alpha (eta=0.2, lam={lam_mid:.3g}; alpha=0 is CE)", xlabel="alpha")
        for ax in axes[i]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("saved", out)
    return rows, fails


if __name__ == "__main__":
    main(*sys.argv[1:2])
