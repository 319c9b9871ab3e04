"""Neural collapse on a real (small) network: train vs test collapse, cascade, transfer, label noise.

A ReLU MLP (64 -> 128 -> 128 -> 64 -> 10, float32, full-batch SGD with momentum and weight decay
on every parameter, optax) is trained on scikit-learn's digits (1797 8x8 images that ship inside
scikit-learn; nothing is downloaded) far past 100% train accuracy. Every ``RECORD`` steps the
features of every hidden layer are measured in float64 with :func:`ufm.metrics.collapse_report`.
It reproduces, qualitatively, the three findings of Hui, Belkin & Nakkiran, "Limitations of neural
collapse for understanding generalization in deep learning" (arXiv 2202.08384):

  (i)   collapse on the train set but not on the test set (test NC1 is measured against the TRAIN
        class means and between-class covariance: ``ufm.metrics.TEST_NC1_CONVENTION``);
  (ii)  more collapse can hurt transfer: a network trained on digits 0-4, a linear probe on digits
        5-9 fitted on its penultimate features, over training;
  (iii) collapse cascades into earlier layers (NC1 per layer over training);

then holds the last layer against the certified UFM minimizer (``ufm.minimize`` on ``ufm.UFM`` at
the same K, n, loss and weight decay) and repeats the study with symmetric label noise, CE vs label
smoothing, beside the memorization-dilation model solved by ``ufm.minimize``.

Run: ``python examples/nc_real_network.py [out_dir] [--tiny]`` (``--tiny``: a seconds-long smoke
version used by the tests). Needs the ``studies`` extra (scikit-learn) and matplotlib.
Saves ``nc_real_network.png`` and ``nc_real_network_noise.png`` and prints every number quoted in
the README.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import ufm  # noqa: E402
from ufm import dilation as dl  # noqa: E402
from ufm.metrics import collapse_report  # noqa: E402

FULL = dict(widths=(128, 128, 64), steps=6000, record=150, lr=0.05, wd=1e-3, n_train=90,
            noise_steps=6000, eta=0.2, alpha=0.2, md_n=5, md_lam=0.1)
TINY = dict(widths=(16, 16, 12), steps=40, record=20, lr=0.05, wd=1e-3, n_train=20,
            noise_steps=40, eta=0.2, alpha=0.2, md_n=3, md_lam=0.1)


def enable_x64():
    """float64 for the metrics and the UFM solves (the network itself is kept in float32)."""
    if hasattr(ufm, "enable_x64"):
        ufm.enable_x64()
    else:
        jax.config.update("jax_enable_x64", True)


# ------------------------------------------------------------------ data


def digits_split(classes, n_train, seed=0):
    """Standardized digits of ``classes`` (relabelled 0..len-1); ``n_train`` per class for training,
    the rest for testing. Features are columns: X (64, N)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        tr.append(idx[:n_train])
        te.append(idx[n_train:])
    tr, te = np.concatenate(tr), np.concatenate(te)
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1.0
    remap = np.full(10, -1)
    remap[list(classes)] = np.arange(len(classes))
    f = lambda i: (((X[i] - mu) / sd).T.astype(np.float32), remap[y[i]])  # noqa: E731
    return (*f(tr), *f(te))


# ------------------------------------------------------------------ network


def init_mlp(key, sizes):
    """He-initialized layers ``(W_l (out, in), b_l)``, float32."""
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        W = jax.random.normal(k, (b, a), jnp.float32) * jnp.sqrt(2.0 / a).astype(jnp.float32)
        params.append((W, jnp.zeros((b,), jnp.float32)))
    return params


def forward(params, X):
    """Hidden features of every layer (post-ReLU, columns) and the logits."""
    feats, h = [], X
    for W, b in params[:-1]:
        h = jax.nn.relu(W @ h + b[:, None])
        feats.append(h)
    W, b = params[-1]
    return feats, W @ h + b[:, None]


@functools.lru_cache(maxsize=None)
def make_trainer(K, lr, wd):
    r"""Full-batch SGD (momentum 0.9) on

    .. math:: \frac1N\sum_i \ell_\alpha(f(x_i), y_i) + \frac{wd}2 \sum_l (\|W_l\|_F^2 + \|b_l\|^2),

    ``ell_alpha`` cross-entropy with label smoothing ``alpha`` (0: plain CE). With the UFM's
    canonical objective (mean loss, 1/2 on the penalties) the last layer's decay maps one-to-one:
    ``lam_W = lam_b = wd`` (factor 1; ``ufm.conventions`` lists the other scalings).
    """
    opt = optax.sgd(lr, momentum=0.9)

    def objective(params, X, Y):
        _, logits = forward(params, X)
        data = jnp.mean(optax.softmax_cross_entropy(logits.T, Y))
        return data + 0.5 * wd * sum(jnp.sum(W**2) + jnp.sum(b**2) for W, b in params)

    @functools.partial(jax.jit, static_argnames="n_steps")
    def run(params, state, X, y, alpha, n_steps):
        Y = optax.smooth_labels(jax.nn.one_hot(y, K, dtype=jnp.float32), alpha)

        def step(carry, _):
            p, s = carry
            g = jax.grad(objective)(p, X, Y)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (params, state), _ = jax.lax.scan(step, (params, state), None, length=n_steps)
        return params, state

    return opt, run


def train(X, y, K, cfg, *, steps, alpha=0.0, seed=0, record=None):
    """Train; call ``record(step, params)`` every ``cfg['record']`` steps (and at step 0)."""
    sizes = (X.shape[0], *cfg["widths"], K)
    params = init_mlp(jax.random.PRNGKey(seed), sizes)
    opt, run = make_trainer(K, cfg["lr"], cfg["wd"])
    state = opt.init(params)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    record(0, params)
    for t in range(cfg["record"], steps + 1, cfg["record"]):
        params, state = run(params, state, Xj, yj, jnp.float32(alpha), n_steps=cfg["record"])
        record(t, params)
    return params


def np_forward(params, X):
    feats, logits = forward(params, jnp.asarray(X))
    return [np.asarray(h) for h in feats], np.asarray(logits)


# ------------------------------------------------------------------ the studies


def main_study(cfg):
    """Findings (i) and (iii), and the trained net for the UFM comparison."""
    Xtr, ytr, Xte, yte = digits_split(range(10), cfg["n_train"])
    rows = []

    def record(t, params):
        ftr, ltr = np_forward(params, Xtr)
        fte, lte = np_forward(params, Xte)
        W, b = (np.asarray(a, np.float64) for a in params[-1])
        rep = collapse_report(ftr[-1], ytr, fte[-1], yte, W=W, b=b)
        layers = [collapse_report(a, ytr, c, yte) for a, c in zip([Xtr] + ftr, [Xte] + fte)]
        rows.append(dict(step=t, train=rep["train"], test=rep["test"],
                         layer_nc1_train=[r["train"]["nc1"] for r in layers],
                         layer_nc1_test=[r["test"]["nc1_vs_train"] for r in layers],
                         layer_ncc_test=[r["test"]["ncc_acc"] for r in layers]))

    params = train(Xtr, ytr, 10, cfg, steps=cfg["steps"], record=record)
    return rows, params, (Xtr, ytr, Xte, yte)


def transfer_study(cfg):
    """Finding (ii): train on digits 0-4; linear probe on 5-9 from the penultimate features."""
    from sklearn.linear_model import LogisticRegression

    Xtr, ytr, Xte, yte = digits_split(range(5), cfg["n_train"])
    # probe data: digits 5-9, half to fit the probe, half to score it
    Pa, pa, Pb, pb = digits_split(range(5, 10), cfg["n_train"] // 2, seed=1)
    rows = []

    def record(t, params):
        ftr, _ = np_forward(params, Xtr)
        fte, lte = np_forward(params, Xte)
        fa, _ = np_forward(params, Pa)
        fb, _ = np_forward(params, Pb)
        sc = np.std(fa[-1]) + 1e-12
        probe = LogisticRegression(max_iter=2000, C=1.0).fit(fa[-1].T / sc, pa)
        rep = collapse_report(ftr[-1], ytr, fte[-1], yte)
        probe_rep = collapse_report(fa[-1], pa, fb[-1], pb)
        rows.append(dict(step=t, source_train_nc1=rep["train"]["nc1"],
                         source_test_acc=float(np.mean(np.argmax(lte, 0) == yte)),
                         probe_acc=float(probe.score(fb[-1].T / sc, pb)),
                         probe_ncc_acc=probe_rep["test"]["ncc_acc"],
                         target_nc1=probe_rep["train"]["nc1"]))

    train(Xtr, ytr, 5, cfg, steps=cfg["steps"], record=record)
    return rows


def flip_labels(y, K, eta, seed=0):
    """Symmetric noise: a fraction ``eta`` of each class relabelled uniformly to another class."""
    rng = np.random.default_rng(seed)
    noisy = y.copy()
    for k in range(K):
        idx = np.flatnonzero(y == k)
        pick = rng.choice(idx, size=int(round(eta * idx.size)), replace=False)
        noisy[pick] = (k + rng.integers(1, K, size=pick.size)) % K
    return noisy


def noise_study(cfg):
    """Label noise: CE vs LS; dilation of the noisy samples' penultimate features, test accuracy."""
    Xtr, ytr, Xte, yte = digits_split(range(10), cfg["n_train"])
    ynoisy = flip_labels(ytr, 10, cfg["eta"])
    out = {}
    for name, alpha in (("CE", 0.0), (f"LS{cfg['alpha']}", cfg["alpha"])):
        rows = []

        def record(t, params, rows=rows):
            ftr, ltr = np_forward(params, Xtr)
            _, lte = np_forward(params, Xte)
            H = ftr[-1].astype(np.float64)
            pred = np.argmax(ltr, 0)
            noisy = ynoisy != ytr
            rows.append(dict(step=t, test_acc=float(np.mean(np.argmax(lte, 0) == yte)),
                             memorized=float(np.mean(pred[noisy] == ynoisy[noisy])),
                             clean_fit=float(np.mean(pred[~noisy] == ytr[~noisy])),
                             rel_disp=float(np.mean(dl.relative_displacement(H, ytr, ynoisy, 10))),
                             disp=float(np.mean(dl.displacement(H, ytr, ynoisy, 10))),
                             centre_dist=float(dl.centre_distance(H, ytr, ynoisy, 10)),
                             nc1_noisy=float(dl.nc1_noisy(H, ynoisy, 10))))

        train(Xtr, ynoisy, 10, cfg, steps=cfg["noise_steps"], alpha=alpha, record=record)
        out[name] = rows
    return out


# ------------------------------------------------------------------ UFM and M-D beside the network


def ufm_comparison(cfg, params, data):
    r"""The trained last layer beside the certified UFM minimizer.

    Mapping: the network minimizes ``mean CE + (wd/2) sum ||theta||^2``; its last layer sees
    exactly ufm's canonical data term and penalties on ``W`` and ``b``, so ``lam_W = lam_b = wd``.
    The features carry no penalty of their own in the network (they pay through the earlier layers'
    decay), so ``lam_H`` has no exact counterpart: we take the value that the UFM's own balance
    identity at any critical point, ``lam_W ||W||_F^2 = lam_H ||H||_F^2`` (rescale ``W -> tW``,
    ``H -> H/t``), assigns to the network's trained ``(W, H)``. That one scalar is fitted; the ETF
    geometry, NC1 = 0, the norms and the logit margin are then predictions.
    """
    Xtr, ytr, Xte, yte = data
    ftr, ltr = np_forward(params, Xtr)
    fte, _ = np_forward(params, Xte)
    H = ftr[-1].astype(np.float64)
    W, b = (np.asarray(a, np.float64) for a in params[-1])
    K, n, d = 10, cfg["n_train"], H.shape[0]
    wd = cfg["wd"]
    lam_H = wd * np.sum(W**2) / np.sum(H**2)
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=wd, lam_H=lam_H, lam_b=wd)
    t0 = time.time()
    sol = ufm.minimize(prob, seed=0, throw=False)
    P = sol.params
    Wu, Hu, bu = (np.asarray(a) for a in (P.W, P.H, P.b))
    rep_u = collapse_report(Hu, np.asarray(prob.labels), W=Wu, b=bu)["train"]
    rep_n = collapse_report(H, ytr, fte[-1], yte, W=W, b=b)

    def margin(Wm, bm, Hm, y):  # mean over samples of (true logit - best other logit)
        Z = Wm @ Hm + bm[:, None]
        t = Z[y, np.arange(y.size)]
        Z[y, np.arange(y.size)] = -np.inf
        return float(np.mean(t - Z.max(0)))

    def mean_norm(Hm, y):  # mean norm of the centred class means
        Mb = np.stack([Hm[:, y == k].mean(1) for k in range(K)], 1)
        return float(np.mean(np.linalg.norm(Mb - Mb.mean(1, keepdims=True), axis=0)))

    cmp = dict(
        lam_W=wd, lam_H=float(lam_H), lam_b=wd, solve_s=time.time() - t0, converged=bool(sol.converged),
        kkt=float(sol.grad_norm),
        ufm_value=float(sol.value), net_value_in_ufm_objective=float(prob.objective(
            ufm.Params(W=jnp.asarray(W), H=jnp.asarray(H), b=jnp.asarray(b)))),
        W_norm=(float(np.linalg.norm(W)), float(np.linalg.norm(Wu))),
        centred_mean_norm_train=(mean_norm(H, ytr), mean_norm(Hu, np.asarray(prob.labels))),
        centred_mean_norm_test=mean_norm(fte[-1].astype(np.float64), yte),
        margin_train=(margin(W, b, H, ytr), margin(Wu, bu, Hu, np.asarray(prob.labels))),
        margin_test=margin(W, b, fte[-1].astype(np.float64), yte),
        net_train=rep_n["train"], net_test=rep_n["test"], ufm=rep_u,
    )
    return cmp


def md_comparison(cfg):
    """The M-D model (radius variant) at K = 10, the study's noise rate and weight decay, CE vs LS.

    ``n = md_n`` samples per class (5: one noisy sample per class at eta = 0.2; larger n made the
    augmented-Lagrangian solve of the LS problem stop unconverged within the study's time budget),
    ``d = K``, ``lam_W = lam_H = wd``; the expressivity strength ``lam`` has no network counterpart
    and is fixed at ``md_lam``. Compared through the scale-free relative displacement.
    """
    K = 10
    out = {}
    for name, loss in (("CE", ufm.CrossEntropy()), (f"LS{cfg['alpha']}", ufm.LabelSmoothing(cfg["alpha"]))):
        prob = ufm.MemorizationDilation(K=K, n=cfg["md_n"], d=K, loss=loss, lam_W=cfg["wd"],
                                        lam_H=cfg["wd"], lam=cfg["md_lam"], eta=cfg["eta"])
        t0 = time.time()
        sol = ufm.minimize(prob, throw=False, gtol=1e-7, ctol=1e-7)
        P = sol.params
        args = (P.H, prob.true_labels, prob.labels, K)
        out[name] = dict(rel_disp=float(np.mean(dl.relative_displacement(*args))),
                         disp=float(np.mean(dl.displacement(*args))),
                         centre_dist=float(dl.centre_distance(*args)), kkt=sol.kkt_residuals,
                         clean_mean_acc=float(np.mean(dl.clean_mean_accuracy(P.W, *args[:3], b=P.b, K=K))),
                         converged=bool(sol.converged), solve_s=time.time() - t0)
    return out


# ------------------------------------------------------------------ plots and main


def plot_main(rows, trans, cmp, path):
    s = [r["step"] for r in rows]
    fig, ax = plt.subplots(2, 3, figsize=(16, 9))
    a = ax[0, 0]
    a.semilogy(s, [r["train"]["nc1"] for r in rows], label="train NC1")
    a.semilogy(s, [r["test"]["nc1_vs_train"] for r in rows], label="test NC1 (vs train means/Sigma_B)")
    a.semilogy(s, [r["test"]["nc1"] for r in rows], ":", label="test NC1 (own means)")
    a.set(title="(i) NC1 of the penultimate features: train vs test", xlabel="step")
    a.legend(fontsize=8)
    a = ax[0, 1]
    for key, lab in (("nc2_H", "NC2 (features)"), ("nc2_W", "NC2 (classifier)"), ("nc3", "NC3"),
                     ("nc4", "NC4")):
        a.plot(s, [r["train"][key] for r in rows], label=f"train {lab}")
    a.plot(s, [r["test"]["nc2_H"] for r in rows], "--", label="test NC2 (features)")
    a.plot(s, [r["test"]["nc4"] for r in rows], "--", label="test NC4 (vs train means)")
    a.set(title="NC2-NC4", xlabel="step")
    a.legend(fontsize=8)
    a = ax[0, 2]
    a.plot(s, [r["train"]["acc"] for r in rows], label="train acc")
    a.plot(s, [r["test"]["acc"] for r in rows], label="test acc")
    a.plot(s, [r["test"]["ncc_acc"] for r in rows], "--", label="test NCC acc (train means)")
    a.set(title="accuracy", xlabel="step", ylim=(0.8, 1.005))
    a.legend(fontsize=8)
    a = ax[1, 0]
    L = len(rows[0]["layer_nc1_train"])
    for layer in range(L):
        a.semilogy(s, [r["layer_nc1_train"][layer] for r in rows],
                   label="input" if layer == 0 else f"layer {layer}")
    a.set(title="(iii) cascade: train NC1 per layer", xlabel="step")
    a.legend(fontsize=8)
    a = ax[1, 1]
    t = [r["step"] for r in trans]
    a.plot(t, [r["probe_acc"] for r in trans], label="linear probe acc on 5-9")
    a.plot(t, [r["probe_ncc_acc"] for r in trans], label="NCC probe acc on 5-9")
    a.plot(t, [r["source_test_acc"] for r in trans], "--", label="source (0-4) test acc")
    a2 = a.twinx()
    a2.semilogy(t, [r["source_train_nc1"] for r in trans], "k:", label="source train NC1")
    a2.set_ylabel("source train NC1")
    a.set(title="(ii) transfer: net on 0-4, probe on 5-9", xlabel="step")
    a.legend(fontsize=8, loc="center right")
    a = ax[1, 2]
    if cmp is None:
        a.set_axis_off()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    keys = ["nc1", "nc2_H", "nc2_W", "nc3", "equinorm_H", "equinorm_W"]
    x = np.arange(len(keys))
    a.bar(x - 0.27, [cmp["ufm"][k] + 1e-16 for k in keys], 0.27, label="UFM minimizer")
    a.bar(x, [cmp["net_train"][k] for k in keys], 0.27, label="network, train")
    a.bar(x + 0.27, [cmp["net_test"][k] for k in keys], 0.27, label="network, test (own means)")
    a.set_yscale("log")
    a.set_xticks(x, keys, fontsize=8)
    a.set(title="last layer vs certified UFM (matched lam_W, lam_b)")
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_noise(noise, md, path):
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, rows in noise.items():
        s = [r["step"] for r in rows]
        ax[0].plot(s, [r["rel_disp"] for r in rows], label=name)
        ax[1].plot(s, [r["test_acc"] for r in rows], label=f"{name} test acc")
        ax[1].plot(s, [r["memorized"] for r in rows], "--", label=f"{name} noisy labels fitted")
    ax[0].set(title="network: dilation of noisy samples (relative displacement)", xlabel="step")
    ax[1].set(title="network: test accuracy, memorization", xlabel="step")
    for a in ax[:2]:
        a.legend(fontsize=8)
    names = list(md) if md is not None else []
    ax[2].bar(np.arange(len(names)) - 0.2, [md[k]["rel_disp"] for k in names], 0.4, label="M-D model (ufm)")
    ax[2].bar(np.arange(len(names)) + 0.2, [noise[k][-1]["rel_disp"] for k in names], 0.4,
              label="network (final)")
    if md is None:
        ax[2].set_axis_off()
    ax[2].set_xticks(np.arange(len(names)), names)
    ax[2].set(title="relative displacement: M-D model vs network")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(out_dir=".", tiny=False, models=True):
    """Run everything; ``models=False`` skips the UFM and M-D solves (the smoke test does)."""
    enable_x64()
    cfg = TINY if tiny else FULL
    os.makedirs(out_dir, exist_ok=True)
    timings = {}
    t0 = time.time()
    rows, params, data = main_study(cfg)
    timings["main"] = time.time() - t0
    t0 = time.time()
    trans = transfer_study(cfg)
    timings["transfer"] = time.time() - t0
    t0 = time.time()
    cmp = ufm_comparison(cfg, params, data) if models else None
    timings["ufm"] = time.time() - t0
    t0 = time.time()
    noise = noise_study(cfg)
    timings["noise"] = time.time() - t0
    t0 = time.time()
    md = md_comparison(cfg) if models else None
    timings["md"] = time.time() - t0
    plot_main(rows, trans, cmp, os.path.join(out_dir, "nc_real_network.png"))
    plot_noise(noise, md, os.path.join(out_dir, "nc_real_network_noise.png"))
    results = dict(config=cfg, rows=rows, transfer=trans, ufm=cmp, noise=noise, md=md, timings=timings)
    with open(os.path.join(out_dir, "nc_real_network.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    summarize(results)
    return results


def summarize(R):
    rows, trans, cmp, noise, md = R["rows"], R["transfer"], R["ufm"], R["noise"], R["md"]
    first100 = next((r["step"] for r in rows if r["train"]["acc"] == 1.0), None)
    print(f"timings (s): {json.dumps({k: round(v, 1) for k, v in R['timings'].items()})}")
    print(f"train acc reaches 1.0 at step {first100}; final step {rows[-1]['step']}")
    print("step   trainNC1  testNC1(vs train)  testNC1(own)  train_acc test_acc test_ncc  "
          "layerNC1(train, input..penult)")
    for r in rows[:: max(1, len(rows) // 8)] + [rows[-1]]:
        print(f"{r['step']:>5} {r['train']['nc1']:>9.3g} {r['test']['nc1_vs_train']:>12.3g} "
              f"{r['test']['nc1']:>14.3g} {r['train']['acc']:>9.3f} {r['test']['acc']:>8.3f} "
              f"{r['test']['ncc_acc']:>8.3f}  " + " ".join(f"{v:.3g}" for v in r["layer_nc1_train"]))
    print("transfer: step  source_trainNC1  source_test_acc  probe_acc  probe_ncc_acc")
    for r in trans[:: max(1, len(trans) // 8)] + [trans[-1]]:
        print(f"   {r['step']:>5} {r['source_train_nc1']:>12.3g} {r['source_test_acc']:>12.3f} "
              f"{r['probe_acc']:>10.3f} {r['probe_ncc_acc']:>10.3f}")
    best = max(trans, key=lambda r: r["probe_acc"])
    print(f"transfer: best probe acc {best['probe_acc']:.3f} at step {best['step']}, "
          f"final {trans[-1]['probe_acc']:.3f}")
    if cmp is None:
        return
    print("UFM vs network (last layer):")
    for k in ("lam_W", "lam_H", "lam_b", "converged", "kkt", "solve_s", "ufm_value",
              "net_value_in_ufm_objective", "W_norm", "centred_mean_norm_train",
              "centred_mean_norm_test", "margin_train", "margin_test"):
        print(f"  {k}: {cmp[k]}")
    for k in ("nc1", "nc2_H", "nc2_W", "nc3", "equinorm_H", "equinorm_W", "nc4"):
        print(f"  {k}: UFM {cmp['ufm'].get(k, float('nan')):.3g}  net train {cmp['net_train'].get(k):.3g}  "
              f"net test {cmp['net_test'].get(k):.3g}")
    print(f"  test nc1_vs_train {cmp['net_test']['nc1_vs_train']:.3g}")
    print("label noise (final): name  test_acc  memorized  rel_disp disp centre_dist  |  "
          "M-D model rel_disp disp centre_dist")
    for name, rs in noise.items():
        peak = max(rs, key=lambda r: r["test_acc"])
        print(f"  {name}: {rs[-1]['test_acc']:.3f} (peak {peak['test_acc']:.3f} @ {peak['step']}) "
              f"{rs[-1]['memorized']:.3f} {rs[-1]['rel_disp']:.3f} {rs[-1]['disp']:.3g} "
              f"{rs[-1]['centre_dist']:.3g}"
              + ("" if md is None else f"  |  {md[name]['rel_disp']:.3f} {md[name]['disp']:.3g} "
                 f"{md[name]['centre_dist']:.3g} (converged {md[name]['converged']}, "
                 f"{md[name]['solve_s']:.0f} s)"))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(*(args[:1] or ["."]), tiny="--tiny" in sys.argv)
