"""StreamingNC and collapse_report against the in-memory metrics (float64, formulas, no pasted numbers)."""

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ufm import metrics as m

RTOL = 1e-10
# Metrics that are discontinuous (argmax counts) are compared exactly; the rest to RTOL relative.
COUNTS = ("nc4", "acc", "ncc_acc", "n", "pinv_rank")


def _instance(seed, K, d, N, spread=3.0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, N - K)])
    rng.shuffle(y)
    H = rng.normal(size=(d, N)) + spread * rng.normal(size=(d, K))[:, y] + 5.0  # offset: no cancellation luck
    return rng, H, y, rng.normal(size=(K, d)), rng.normal(size=K)


def _close(a, b, rtol=RTOL):
    # relative, with an absolute floor of 1e-13 for quantities that are zero by symmetry (e.g. the
    # spread of the single cosine of K = 2), where rounding leaves ~1e-15
    assert abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-13, (a, b)


def _streamed(rng, H, y, K, n_batches, **kw):
    """Random permutation, random batch sizes, alternate between two accumulators, merge."""
    N = H.shape[1]
    perm = rng.permutation(N)
    cuts = np.sort(rng.choice(np.arange(1, N), size=n_batches - 1, replace=False))
    a, b = m.StreamingNC(K=K, d=H.shape[0], **kw), m.StreamingNC(K=K, d=H.shape[0], **kw)
    for i, idx in enumerate(np.split(perm, cuts)):
        (a if rng.random() < 0.5 else b).update(H[:, idx], y[idx])
    return a.merge(b)


# A few fixed sizes: the in-memory reference is jitted per shape, so free sizes would compile anew
# for every draw; the seed, the batching, the split across accumulators and the centring are drawn.
SIZES = [(2, 1, 40), (3, 7, 97), (6, 20, 150)]


@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from(SIZES), n_batches=st.integers(2, 9),
       global_mean=st.sampled_from(["weighted", "unweighted"]))
def test_streaming_merged_equals_in_memory(seed, size, n_batches, global_mean):
    K, d, N = size
    rng, H, y, W, b = _instance(seed, K, d, N)
    ref = {k: float(v) for k, v in m.all_metrics(W, H, y, b, K, global_mean=global_mean).items()}
    Hbar, _ = m.class_means(H, y, K)
    acc = _streamed(rng, H, y, K, n_batches, W=W, b=b, centres=np.asarray(Hbar).T,
                    global_mean=global_mean)
    res = acc.result()
    for key, value in ref.items():
        if key in COUNTS:  # fractions of N: the same count
            assert round(res[key] * N) == round(value * N), key
        else:
            _close(res[key], value)
    assert res["n"] == N
    _close(res["acc"], float(np.mean(np.argmax(W @ H + b[:, None], axis=0) == y)))


@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from([(2, 3), (5, 12)]),
       n_batches=st.integers(2, 6))
def test_test_nc1_against_train_statistics(seed, size, n_batches):
    K, d = size
    rng, H, y, W, b = _instance(seed, K, d, 3 * K + 60)
    Ht, yt = H[:, : K + 30], y[: K + 30]
    Hs = H[:, K + 30:] + 0.3 * rng.normal(size=(d, H.shape[1] - K - 30))
    ys = y[K + 30:]
    if np.unique(ys).size < K:
        Hs, ys = np.concatenate([Hs, Ht[:, :K]], axis=1), np.concatenate([ys, yt[:K]])
    rep = m.collapse_report(Ht, yt, Hs, ys, W=W, b=b)
    # definition: test features centred at the train means, train Sigma_B
    Hbar_tr, _ = m.class_means(Ht, yt, K)
    Mbar_tr = np.asarray(m.centred_means(Ht, yt, K))
    Z = Hs - np.asarray(Hbar_tr)[:, ys]
    Sigma_W = Z @ Z.T / ys.size
    Sigma_B = Mbar_tr @ Mbar_tr.T / K
    expected = np.trace(Sigma_W @ np.linalg.pinv(Sigma_B, rcond=1e-10, hermitian=True)) / K
    _close(rep["test"]["nc1_vs_train"], expected, 1e-7)  # pinv of Sigma_B squares the conditioning
    train = _streamed(rng, Ht, yt, K, n_batches)
    test = _streamed(rng, Hs, ys, K, n_batches, W=W, b=b, centres=train.means)
    res = test.result(reference=train)
    _close(res["nc1_vs_train"], rep["test"]["nc1_vs_train"])
    for key in ("ncc_acc", "acc", "nc4"):
        assert res[key] == rep["test"][key], key
    _close(rep["train"]["nc1"], float(m.nc1(Ht, yt, K)))
    _close(rep["test"]["nc1"], float(m.nc1(Hs, ys, K)))


def test_float32_input_accumulates_in_float64_without_x64():
    rng, H, y, W, b = _instance(0, 4, 9, 300)
    H32 = H.astype(np.float32)
    ref = m.collapse_report(H32.astype(np.float64), y, W=W, b=b)["train"]
    with jax.enable_x64(False):
        assert not jax.config.jax_enable_x64  # the reports below really run without x64
        rep = m.collapse_report(H32, y, W=W, b=b)["train"]
        acc = m.StreamingNC(K=4, d=9, W=W, b=b).update(H32[:, :100], y[:100]).update(H32[:, 100:], y[100:])
        res = acc.result()
        assert not jax.config.jax_enable_x64  # their local float64 context changed no setting
    assert jax.config.jax_enable_x64  # the context manager restores the setting (conftest: x64 on)
    for key in ref:
        if key in COUNTS:
            assert rep[key] == ref[key] and (key not in res or res[key] == ref[key])
        else:
            _close(rep[key], ref[key])
            _close(res[key], ref[key])


def test_collapsed_features_have_zero_nc1_and_full_ncc_accuracy():
    K, d, n = 4, 6, 5
    M = np.random.default_rng(1).normal(size=(d, K))
    y = np.repeat(np.arange(K), n)
    rep = m.collapse_report(M[:, y], y, M[:, y] + 0.0, y)
    assert rep["train"]["nc1"] < 1e-28 and rep["test"]["nc1_vs_train"] < 1e-28  # rounding of the means
    assert rep["train"]["ncc_acc"] == 1.0 == rep["test"]["ncc_acc"]
    assert rep["train"]["pinv_rank"] == K - 1


@pytest.mark.parametrize("call, match", [
    (lambda: m.StreamingNC(K=1, d=3), "K"),
    (lambda: m.StreamingNC(K=3, d=0), "d"),
    (lambda: m.StreamingNC(K=3, d=2).update(np.zeros((3, 4)), [0, 1, 2, 0]), "H_batch"),
    (lambda: m.StreamingNC(K=3, d=2).update(np.zeros((2, 4)), [0, 1, 3, 0]), "labels_batch"),
    (lambda: m.StreamingNC(K=3, d=2).update(np.full((2, 1), np.nan), [0]), "finite"),
    (lambda: m.StreamingNC(K=3, d=2).update(np.zeros((2, 2)), [0, 1]).result(), "empty"),
    (lambda: m.StreamingNC(K=3, d=2).merge(m.StreamingNC(K=3, d=3)), "merge"),
    (lambda: m.StreamingNC(K=3, d=2, W=np.zeros((3, 3))), "W"),
    (lambda: m.collapse_report(np.zeros((2, 3)), [0, 2, 2]), "empty"),
    (lambda: m.collapse_report(np.zeros((2, 3)), [0, 1, 1], np.zeros((2, 2))), "together"),
    (lambda: m.collapse_report(np.zeros((2, 3)), [0, 1, 1], global_mean="median"), "global_mean"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
