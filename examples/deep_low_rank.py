"""Deep neural collapse versus low rank (Súkeník, Mondelli & Lampert 2024, arXiv 2405.14468).

For the deep ReLU MSE UFM with K = 10 classes, n = 1, widths 30 and all lam = 0.004:

1. the DNC value h_m(x*) (closed form, m = L + 1, checked against the explicit DNC point);
2. the strongly-regular-graph candidate (K = C(5, 2): class {a, b} -> e_a + e_b, rank 5 in the
   hidden layers, one ReLU expansion to rank 10), its free scalars optimized;
3. the best of several ``ufm.minimize`` runs, with the class-mean rank of every layer;

printed as a table of loss ratios (candidate / DNC, solver / DNC) for L in {3, 4, 5}, and a
multi-start census: Adam runs vmapped over seeds in one compiled call per L, classified by their
final value as DNC, below DNC (low rank) or above DNC (zero-direction / other local minima), as a
function of the init scale.

    python examples/deep_low_rank.py            # saves deep_low_rank.png
"""

import argparse
import time

import jax
import numpy as np
import optax

import ufm

ufm.enable_x64()
from proofs_check.catalog import deep
from ufm import DeepUFM, layer_metrics


def make(L, K=10, width=30, lam=0.004):
    return DeepUFM(K=K, n=1, widths=(width,) * L, loss=ufm.MSE(), lam_W=lam, lam_H=lam)


def census(prob, scales, seeds=32, steps=4000, lr=1e-2):
    """Final objective of ``seeds`` Adam runs per init scale: one jit, vmapped over the seeds."""

    @jax.jit
    def run(keys, scale):
        def one(key):
            params = prob.init(key, scale)
            opt = optax.adam(lr)
            vg = jax.value_and_grad(prob.objective)

            def step(carry, _):
                p, s = carry
                _, g = vg(p)
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), None

            (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
            return prob.objective(p)

        return jax.vmap(one)(keys)

    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    return {s: np.asarray(run(keys, s)) for s in scales}


def classify(values, dnc, rtol=2e-3):
    v = np.asarray(values)
    return dict(dnc=float(np.mean(np.abs(v / dnc - 1) <= rtol)), lower=float(np.mean(v < dnc * (1 - rtol))),
                higher=float(np.mean(v > dnc * (1 + rtol))))


def main(out="deep_low_rank.png", Ls=(3, 4, 5), starts=6, seeds=32):
    rows, cens = [], {}
    scales = (0.05, 0.1, 0.2, 0.3, 0.5)
    for L in Ls:
        t = time.perf_counter()
        prob = make(L)
        dnc = deep.dnc_prediction(prob)["value"]
        dnc_explicit = float(prob.objective(deep.dnc_params(prob)))
        srg, srg_params, e = deep.srg_candidate(prob, 5, starts=4)
        sol = ufm.minimize(prob, starts=starts, throw=False)
        ranks = layer_metrics(prob, sol.params, rank_rtol=1e-4)
        srg_ranks = layer_metrics(prob, srg_params, rank_rtol=1e-4)["rank"] if srg_params is not None else None
        cens[L] = census(prob, scales, seeds=seeds)
        rows.append((L, dnc, dnc_explicit, srg, e, srg_ranks, sol.value, ranks["rank"], ranks["nc1"].max(),
                     time.perf_counter() - t))

    print(f"{'L':>2} {'DNC h_m(x*)':>12} {'DNC explicit':>12} {'SRG cand.':>10} {'SRG/DNC':>8} "
          f"{'SRG ranks':>14} {'solver':>10} {'solver/DNC':>10} {'solver ranks':>16} {'max NC1':>8} {'time':>6}")
    for L, dnc, dx, srg, e, sr, val, rk, nc1, tt in rows:
        print(f"{L:2d} {dnc:12.6f} {dx:12.6f} {srg:10.6f} {srg / dnc:8.4f} {sr!s:>14} {val:10.6f} "
              f"{val / dnc:10.4f} {rk!s:>16} {nc1:8.1e} {tt:5.0f}s")
    print("\nmulti-start census (Adam, 4000 steps, lr 1e-2; fraction of seeds)")
    print(f"{'L':>2} {'scale':>6} {'DNC':>6} {'below DNC':>10} {'above DNC':>10}")
    for L in Ls:
        dnc = deep.dnc_prediction(make(L))["value"]
        for s, v in cens[L].items():
            c = classify(v, dnc)
            print(f"{L:2d} {s:6.2f} {c['dnc']:6.2f} {c['lower']:10.2f} {c['higher']:10.2f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    Lv = [r[0] for r in rows]
    ax[0].plot(Lv, [r[3] / r[1] for r in rows], "o-", label="SRG candidate / DNC")
    ax[0].plot(Lv, [r[6] / r[1] for r in rows], "s-", label="best solver run / DNC")
    ax[0].axhline(1.0, color="k", lw=0.8, ls="--")
    ax[0].set(xlabel="L (weight layers)", ylabel="loss ratio", xticks=Lv,
              title="K=10, n=1, width 30, lam=0.004")
    ax[0].legend()
    for L in Ls:
        dnc = deep.dnc_prediction(make(L))["value"]
        ax[1].plot(scales, [classify(cens[L][s], dnc)["lower"] for s in scales], "o-", label=f"L={L}: below DNC")
    ax[1].set(xlabel="init scale (entry std)", ylabel="fraction of seeds", title="multi-start census")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="deep_low_rank.png")
    ap.add_argument("--seeds", type=int, default=32)
    args = ap.parse_args()
    main(args.out, seeds=args.seeds)
