"""Neural collapse along the gradient flow of a cross-entropy UFM.

Integrates the gradient flow of the canonical regularized CE UFM (Zhu et al. 2021) from a small
random start with adaptive steps, records NC1, NC2 (classifier and centred means) and NC3 inside
the compiled loop, and then certifies the end point with ``ufm.minimize``: the flow's limit and
the certified minimizer have the same objective and both are simplex ETFs.

    python examples/collapse_dynamics.py            # saves collapse_dynamics.png
"""

import argparse

import numpy as np

import ufm

ufm.enable_x64()


def main(out="collapse_dynamics.png", K=4, n=10, d=8, lam=5e-3, t1=5000.0):
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=lam)
    ts = np.geomspace(1e-2, t1, 120)
    traj = ufm.gradient_flow(prob, t1=t1, saveat=ufm.SaveAt(ts=ts, params=False), init_scale=0.05,
                             metrics=("nc1", "nc2_W", "nc2_H", "nc3", "grad_norm"), rtol=1e-8, atol=1e-10)
    sol = ufm.minimize(prob, params0=traj.final)
    print(f"flow end: f = {traj.values[-1]:.12f}, grad_norm = {traj.metrics['grad_norm'][-1]:.2e}, "
          f"{traj.stats['num_steps']} adaptive steps ({traj.stats['num_rejected']} rejected)")
    print(f"certified: f = {sol.value:.12f}, grad_norm = {sol.grad_norm:.2e}, "
          f"W is a {ufm.geometry.structure_of_rows(sol.params.W).kind}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("nc1", "nc2_W", "nc2_H", "nc3"):
        ax[0].loglog(traj.times, np.maximum(traj.metrics[name], 1e-16), label=name)
    ax[0].set(xlabel="time t", ylabel="metric", title=f"CE UFM, K={K}, n={n}, d={d}, lam={lam:g}")
    ax[0].legend()
    ax[1].loglog(traj.times, traj.values - sol.value + 1e-16)
    ax[1].set(xlabel="time t", ylabel="f(t) - f*", title="objective gap to the certified minimizer")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="collapse_dynamics.png")
    main(ap.parse_args().out)
