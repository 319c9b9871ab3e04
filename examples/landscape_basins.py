"""Basin census: where random starts of ``ufm.minimize`` end, by init scale.

Three problems: the CE UFM with d > K (benign: every end point certified global), the CE UFM
with H >= 0 (spurious points: compared with the closed-form minimum of proofs_check's nguyen2023),
and the deep linear MSE UFM with m = 3 factors (small starts stay at the origin, a non-global local
minimum). Plain descent (``order="first"``) shows where gradient methods stop; the table lists the
counts per kind and the share that reaches the certified global minimum.

    python examples/landscape_basins.py --starts 32      # saves landscape_basins.png
"""

import argparse

import numpy as np

import ufm

ufm.enable_x64()


def problems():
    return {
        "CE, d > K": ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
        "CE, H >= 0": ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2,
                              nonneg=True),
        "deep linear MSE, m = 3": ufm.DeepUFM(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=4e-3, lam_H=4e-3,
                                              activation="linear"),
    }


def f_star(name, prob):
    """The global minimum: the certificate's bound where it is tight, else the closed form."""
    if name == "CE, H >= 0":
        from proofs_check.catalog import nguyen2023

        return nguyen2023.POSITIVE_FRAME.predict(prob)["value"]
    return None


def main(out="landscape_basins.png", starts=16, scales=(1e-3, 1e-1, None)):
    rows = []
    for name, prob in problems().items():
        cen = ufm.landscape.census(prob, starts=starts, init_scales=scales, order="first", gtol=1e-11)
        fs = f_star(name, prob)
        for r in cen.table():
            sel = (np.isnan(cen.init_scale) if r["init_scale"] is None else cen.init_scale == r["init_scale"])
            if fs is not None:
                r["share_global"] = float(np.mean(np.abs(cen.value[sel] - fs) <= 1e-7 * max(1.0, abs(fs))))
            rows.append((name, r))
        print(f"{name}: {cen.seconds:.1f} s for {starts * len(scales)} starts ({cen.mode})")
    header = f"{'problem':24s} {'scale':>7s} {'min':>4s} {'sad':>4s} {'deg':>4s} {'nst':>4s} {'global':>7s}  values"
    print(header)
    lines = [header]
    for name, r in rows:
        scale = "default" if r["init_scale"] is None else f"{r['init_scale']:g}"
        share = "n/a" if r["share_global"] is None else f"{r['share_global']:.2f}"
        line = (f"{name:24s} {scale:>7s} {r['minimum']:4d} {r['saddle']:4d} {r['degenerate']:4d} "
                f"{r['not stationary']:4d} {share:>7s}  " + ", ".join(f"{v:.6f}" for v in r["distinct_values"][:4]))
        print(line)
        lines.append(line)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.35 * len(lines) + 0.8))
    ax.axis("off")
    ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top")
    ax.set_title(f"basin census, {starts} starts per scale (min/sad/deg/nst: minimum, saddle, degenerate, "
                 "not stationary)", fontsize=9)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="landscape_basins.png")
    ap.add_argument("--starts", type=int, default=16)
    a = ap.parse_args()
    main(a.out, a.starts)
