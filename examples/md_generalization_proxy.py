"""A synthetic generalization proxy for the memorization-dilation model (ufm's, NOT the paper's).

For a solved :class:`ufm.MemorizationDilation` problem, clean test points are placed (a) at the
clean class means and (b) uniformly on the segments joining each clean mean to its class's noisy
features (the "dilated region" a network of limited expressivity maps between the class centre and a
memorized outlier). They are classified by the learned ``W`` and ``b``. The proxy error is the
fraction of (b) that crosses the decision boundary (:func:`ufm.dilation.segment_crossing`); (a) is
reported as the clean-mean accuracy. Plotted against the dilation for CE and LS over a lam sweep,
K = 2 and K = 4, radius variant, eta = 0.2. Saves ``md_generalization_proxy.png``.

Run: ``python examples/md_generalization_proxy.py [out.png]`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import ufm

ufm.enable_x64()
from ufm import dilation as dl
from ufm import MemorizationDilation, minimize

LAMS = tuple(np.geomspace(1e-2, 3.0, 8))


def main(out="md_generalization_proxy.png"):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    print(f"{'K':>2} {'loss':>6} {'lam':>7} {'D':>7} {'D/dist':>7} {'crossing':>8} {'clean acc':>9}")
    for ax, K in zip(axes, (2, 4)):
        for name, loss in (("CE", ufm.CrossEntropy()), ("LS0.1", ufm.LabelSmoothing(0.1)),
                           ("LS0.3", ufm.LabelSmoothing(0.3))):
            pts = []
            for lam in LAMS:
                prob = MemorizationDilation(K=K, n=10, d=K, loss=loss, lam_W=5e-3, lam_H=5e-3, lam=lam, eta=0.2)
                P = minimize(prob, starts=2, throw=False, gtol=1e-9, ctol=1e-9).params
                args = (P.H, prob.true_labels, prob.labels, K)
                D = float(np.mean(dl.displacement(*args)))
                Drel = float(np.mean(dl.relative_displacement(*args)))
                cross = float(np.mean(dl.segment_crossing(P.W, *args[:3], b=P.b, K=K)))
                acc = float(dl.clean_mean_accuracy(P.W, *args[:3], b=P.b, K=K))
                pts.append((Drel, cross))
                print(f"{K:>2} {name:>6} {lam:>7.3g} {D:>7.4f} {Drel:>7.4f} {cross:>8.4f} {acc:>9.2f}")
            x, y = zip(*pts)
            ax.plot(x, y, marker="o", label=name)
        ax.set(title=f"K={K}, radius variant, eta=0.2 (proxy: ufm's, not the paper's)",
               xlabel="relative dilation D / centre distance", ylabel="fraction of dilated segment misclassified")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("saved", out)


if __name__ == "__main__":
    main(*sys.argv[1:2])
