"""Hessian spectra of the CE UFM: the origin (a strict saddle) against the global minimizer.

At the origin the free Hessian has the closed-form eigenvalue
``(lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 n))`` with multiplicity ``(K-1) d``
(docs/theory.md#ce-etf): the left panel shows that block below zero. At the minimizer (certified
global by ``ufm.global_certificate``) every eigenvalue outside the rotation orbit is positive;
the rotation directions (``symmetry_dim`` of them, exact zeros) are counted apart, shown in grey.

    python examples/landscape_spectra.py            # saves landscape_spectra.png
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import ufm

ufm.enable_x64()


def main(out="landscape_spectra.png", K=4, n=2, d=5, lam=5e-3):
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=lam)
    origin = jax.tree_util.tree_map(jnp.zeros_like, prob.init(jax.random.PRNGKey(0)))
    sol = ufm.minimize(prob, certify="global")
    at0 = ufm.landscape.kind_of(prob, origin)
    at_min = ufm.landscape.kind_of(prob, sol.params)
    w_all, _ = ufm.landscape.spectrum(prob, sol.params, exclude_symmetry=False)
    print(f"origin: {at0.kind}, index {at0.index} (closed form (K-1)d = {(K - 1) * d}), "
          f"min eig {at0.min_eig:.6f}")
    print(f"minimizer: {at_min.kind}, index {at_min.index}, symmetry_dim {at_min.symmetry_dim}, "
          f"min eig {at_min.min_eig:.3e}, global gap {sol.certificate.global_gap:.1e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(at0.eigenvalues, "o", ms=3)
    ax[0].axhline(0, color="k", lw=0.5)
    ax[0].set(title=f"origin: strict saddle, index {at0.index}", xlabel="eigenvalue rank", ylabel="eigenvalue")
    w_all = np.sort(np.asarray(w_all)[np.isfinite(np.asarray(w_all))])
    ax[1].semilogy(np.abs(w_all) + 1e-18, "o", ms=3, color="0.6", label="all (symmetry zeros incl.)")
    ax[1].semilogy(np.sort(at_min.eigenvalues), "o", ms=3, label="symmetry directions removed")
    ax[1].set(title=f"global minimizer (gap {sol.certificate.global_gap:.0e})", xlabel="eigenvalue rank",
              ylabel="|eigenvalue|")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="landscape_spectra.png")
    main(ap.parse_args().out)
