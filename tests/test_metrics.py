"""Properties of ufm.metrics: every expected value is computed from the formula, never pasted."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ufm import geometry, metrics
from tests.helpers import examples

jax.config.update("jax_enable_x64", True)

SETTINGS = settings(deadline=None, max_examples=examples(20))

# Metrics that are exactly zero at a collapsed simplex-ETF configuration.
COLLAPSE_KEYS = (
    "nc1",
    "nc1_trace_ratio",
    "cdnv",
    "nc2_W",
    "nc2_H",
    "equinorm_W",
    "equinorm_H",
    "equiangularity_W",
    "equiangularity_H",
    "max_angle_deviation_W",
    "max_angle_deviation_H",
    "nc3",
    "nc3_duality",
    "nc4",
)


class Instance(NamedTuple):
    W: np.ndarray  # (K, d)
    H: np.ndarray  # (d, N)
    b: np.ndarray  # (K,)
    labels: np.ndarray  # (N,) int
    K: int
    rng: np.random.Generator


# A fixed pool of small shapes (K, d, class counts): hypothesis varies the data, the labels'
# order and the scales, while each shape compiles once. Cases: K = 2; d = K-1; d > N; one sample
# per class; d < K-1 with imbalance; K = 6.
SHAPES = [
    (2, 1, (3, 3)),
    (3, 2, (2, 2, 2)),
    (4, 10, (2, 1, 3, 2)),
    (4, 6, (1, 1, 1, 1)),
    (5, 3, (3, 1, 2, 3, 2)),
    (6, 7, (2, 2, 2, 2, 2, 2)),
]
BALANCED_SHAPES = [shape for shape in SHAPES if len(set(shape[2])) == 1]


@st.composite
def instances(draw) -> Instance:
    """Random features and classifier of a pooled shape, labels shuffled."""
    K, d, counts = draw(st.sampled_from(SHAPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.permutation(np.repeat(np.arange(K), counts))
    H = rng.normal(size=(d, labels.size)) + rng.normal(size=(d, 1))
    return Instance(rng.normal(size=(K, d)), H, rng.normal(size=K), labels, K, rng)


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.normal(size=(d, d)))
    return Q * np.sign(np.diag(R))


def _reference_means(H, labels, K, global_mean="weighted"):
    Hbar = np.stack([H[:, labels == k].mean(axis=1) for k in range(K)], axis=1)
    h_G = H.mean(axis=1) if global_mean == "weighted" else Hbar.mean(axis=1)
    return Hbar, h_G


def _well_conditioned(H, labels, K, global_mean="weighted") -> bool:
    """Centred means far from losing rank, so pinv tolerances cannot disagree."""
    Hbar, h_G = _reference_means(H, labels, K, global_mean)
    s = np.linalg.svd(Hbar - h_G[:, None], compute_uv=False)
    r = min(H.shape[0], K - 1)
    return s[r - 1] > 1e-3 * s[0]


def _assert_close_dicts(a, b, rtol=1e-8, atol=1e-10):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(float(a[k]), float(b[k]), rtol=rtol, atol=atol, err_msg=k)


# ---------------------------------------------------------------- collapse


@SETTINGS
@given(
    shape=st.sampled_from(BALANCED_SHAPES),
    scale_W=st.floats(0.1, 10.0),
    scale_H=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_metrics_vanish_at_collapsed_etf(shape, scale_W, scale_H, seed):
    K, d, (n, *_) = shape
    rng = np.random.default_rng(seed)
    W = np.asarray(geometry.simplex_etf(K, d, scale_W, key_or_seed=seed % 1000))
    labels = rng.permutation(np.repeat(np.arange(K), n))
    mu = rng.normal(size=d)  # a global shift, undone by the bias
    H = scale_H / scale_W * W.T[:, labels] + mu[:, None]
    b = -W @ mu
    m = metrics.all_metrics(W, H, labels, b=b)
    for key in COLLAPSE_KEYS:
        assert abs(float(m[key])) <= 1e-10, (key, float(m[key]))
    assert float(m["nc4"]) == 0.0
    # W itself is an ETF, so its distance to an orthogonal frame is the distance between targets.
    gap = math.sqrt(2.0 - 2.0 * math.sqrt((K - 1) / K))
    # gap > 0.4 for K <= 6: a relative bound suffices, no absolute slack (atol=0).
    np.testing.assert_allclose(float(m["nc2_orth_W"]), gap, rtol=1e-10, atol=0.0)


def test_nc1_zero_with_imbalanced_collapse():
    K, d, counts = SHAPES[2]  # imbalanced
    W = np.asarray(geometry.simplex_etf(K, d, key_or_seed=0))
    labels = np.repeat(np.arange(K), counts)
    H = W.T[:, labels]
    for gm in ("weighted", "unweighted"):
        assert float(metrics.nc1(H, labels, global_mean=gm)) <= 1e-20
    assert float(metrics.cdnv(H, labels)) <= 1e-20
    # The unweighted centre of an ETF is its centroid: NC2 and NC3 vanish with it.
    assert float(metrics.nc2_H(H, labels, global_mean="unweighted")) <= 1e-10
    assert float(metrics.nc3(W, H, labels, global_mean="unweighted")) <= 1e-10


# ---------------------------------------------------------------- invariances


@SETTINGS
@given(inst=instances())
def test_all_metrics_rotation_invariant(inst):
    W, H, b, labels, _, rng = inst
    Q = _rotation(H.shape[0], rng)
    _assert_close_dicts(
        metrics.all_metrics(W, H, labels, b=b), metrics.all_metrics(W @ Q.T, Q @ H, labels, b=b)
    )


@SETTINGS
@given(inst=instances(), c_H=st.floats(1e-3, 1e3), c_W=st.floats(1e-3, 1e3))
def test_all_metrics_scale_invariant(inst, c_H, c_W):
    W, H, b, labels, _, _ = inst
    # Logits W h + b scale by c_W c_H when b does: the decisions (nc4) are unchanged too.
    _assert_close_dicts(
        metrics.all_metrics(W, H, labels, b=b),
        metrics.all_metrics(c_W * W, c_H * H, labels, b=c_W * c_H * b),
    )


# ---------------------------------------------------------------- against direct formulas


def _reference_metrics(W, H, b, labels, K, global_mean="weighted"):
    """Every metric of ``all_metrics`` from its textbook formula: loops, d x d covariances."""
    Hbar, h_G = _reference_means(H, labels, K, global_mean)
    Z = H - Hbar[:, labels]
    Mbar = Hbar - h_G[:, None]
    N = H.shape[1]
    Sigma_W = Z @ Z.T / N
    Sigma_B = Mbar @ Mbar.T / K
    var = [np.mean(np.sum((H[:, labels == k] - Hbar[:, [k]]) ** 2, axis=0)) for k in range(K)]
    pairs = [(k, l) for k in range(K) for l in range(K) if k != l]
    target_etf = (np.eye(K) - np.ones((K, K)) / K) / np.sqrt(K - 1)
    target_orth = np.eye(K) / np.sqrt(K)

    def dist(A, T):
        return np.linalg.norm(A / np.linalg.norm(A) - T)

    def cv(norms):
        return np.std(norms) / np.mean(norms)

    def cos(X):  # columns of X
        return np.array(
            [
                X[:, k] @ X[:, l] / np.linalg.norm(X[:, k]) / np.linalg.norm(X[:, l])
                for k, l in pairs
            ]
        )

    logits = W @ H + b[:, None]
    dists = np.linalg.norm(H[:, None, :] - Hbar[:, :, None], axis=0)  # (K, N)
    return {
        "nc1": np.trace(Sigma_W @ np.linalg.pinv(Sigma_B, rcond=1e-10)) / K,
        "nc1_trace_ratio": np.trace(Sigma_W) / np.trace(Sigma_B),
        "cdnv": np.mean(
            [(var[k] + var[l]) / (2.0 * np.sum((Hbar[:, k] - Hbar[:, l]) ** 2)) for k, l in pairs]
        ),
        "nc2_W": dist(W @ W.T, target_etf),
        "nc2_H": dist(Mbar.T @ Mbar, target_etf),
        "equinorm_W": cv(np.linalg.norm(W, axis=1)),
        "equinorm_H": cv(np.linalg.norm(Mbar, axis=0)),
        "equiangularity_W": np.std(cos(W.T)),
        "equiangularity_H": np.std(cos(Mbar)),
        "max_angle_deviation_W": np.max(np.abs(cos(W.T) + 1.0 / (K - 1))),
        "max_angle_deviation_H": np.max(np.abs(cos(Mbar) + 1.0 / (K - 1))),
        "nc2_orth_W": dist(W @ W.T, target_orth),
        "nc2_orth_H": dist(Hbar.T @ Hbar, target_orth),
        "nc3": dist(W @ Mbar, target_etf),
        "nc3_duality": np.linalg.norm(W.T / np.linalg.norm(W) - Mbar / np.linalg.norm(Mbar)),
        "nc4": np.mean(np.argmax(logits, axis=0) != np.argmin(dists, axis=0)),
    }


def _check_against_reference(inst, global_mean="weighted"):
    W, H, b, labels, K, _ = inst
    m = metrics.all_metrics(W, H, labels, b=b, global_mean=global_mean)
    ref = _reference_metrics(W, H, b, labels, K, global_mean)
    assert m.keys() == ref.keys()
    assert float(m["nc1"]) >= 0.0
    for key in ref:
        if key == "nc1" and not _well_conditioned(H, labels, K, global_mean):
            continue  # the two pseudo-inverse tolerances may then legitimately disagree
        np.testing.assert_allclose(float(m[key]), ref[key], rtol=1e-8, atol=1e-12, err_msg=key)


@SETTINGS
@given(inst=instances())
def test_all_metrics_match_direct_formulas(inst):
    _check_against_reference(inst)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_all_metrics_match_direct_formulas_every_shape(shape):
    K, d, counts = shape
    rng = np.random.default_rng(K * 100 + d)
    labels = rng.permutation(np.repeat(np.arange(K), counts))
    H = rng.normal(size=(d, labels.size))
    inst = Instance(rng.normal(size=(K, d)), H, rng.normal(size=K), labels, K, rng)
    _check_against_reference(inst)


@SETTINGS
@given(inst=instances())
def test_unweighted_global_mean_matches_direct_formulas(inst):
    W, H, _, labels, K, _ = inst
    ref = _reference_metrics(W, H, np.zeros(K), labels, K, "unweighted")
    gm = {"global_mean": "unweighted"}
    if _well_conditioned(H, labels, K, "unweighted"):
        # NC1 and the trace ratio of random features are O(1) (never zero): atol=0.
        np.testing.assert_allclose(
            float(metrics.nc1(H, labels, **gm)), ref["nc1"], rtol=1e-8, atol=0.0
        )
    np.testing.assert_allclose(
        float(metrics.nc1_trace_ratio(H, labels, **gm)), ref["nc1_trace_ratio"], rtol=1e-10,
        atol=0.0,
    )
    np.testing.assert_allclose(
        float(metrics.nc2_H(H, labels, **gm)), ref["nc2_H"], rtol=1e-10, atol=1e-12
    )


@SETTINGS
@given(inst=instances(), eps=st.floats(0.0, 1e-6))
def test_nc1_nonnegative_near_collapse(inst, eps):
    W, H, b, labels, K, rng = inst
    Hbar, _ = _reference_means(H, labels, K)
    H_near = Hbar[:, labels] + eps * rng.normal(size=H.shape)
    assert float(metrics.all_metrics(W, H_near, labels, b=b)["nc1"]) >= 0.0


def test_public_functions_agree_with_all_metrics():
    rng = np.random.default_rng(7)
    K, d, counts = SHAPES[4]
    labels = rng.permutation(np.repeat(np.arange(K), counts))
    H, W, b = rng.normal(size=(d, labels.size)), rng.normal(size=(K, d)), rng.normal(size=K)
    m = metrics.all_metrics(W, H, labels, b=b)
    Mbar = metrics.centred_means(H, labels)
    G_W, G_H = W @ W.T, Mbar.T @ Mbar
    singles = {
        "nc1": metrics.nc1(H, labels),
        "nc1_trace_ratio": metrics.nc1_trace_ratio(H, labels),
        "cdnv": metrics.cdnv(H, labels),
        "nc2_W": metrics.nc2_W(W),
        "nc2_H": metrics.nc2_H(H, labels),
        "equinorm_W": metrics.equinorm_W(W),
        "equinorm_H": metrics.equinorm_H(H, labels),
        "equiangularity_W": metrics.equiangularity(G_W),
        "equiangularity_H": metrics.equiangularity(G_H),
        "max_angle_deviation_W": metrics.max_angle_deviation(G_W),
        "max_angle_deviation_H": metrics.max_angle_deviation(G_H),
        "nc2_orth_W": metrics.nc2_orth_W(W),
        "nc2_orth_H": metrics.nc2_orth_H(H, labels),
        "nc3": metrics.nc3(W, H, labels),
        "nc3_duality": metrics.nc3_duality(W, H, labels),
        "nc4": metrics.nc4(W, H, labels, b),
    }
    _assert_close_dicts(singles, m, rtol=1e-12)
    Hbar, h_G = metrics.class_means(H, labels)
    # centred_means is Hbar - h_G by the same float64 operations: equal to rounding, atol=0.
    np.testing.assert_allclose(
        np.asarray(Mbar), np.asarray(Hbar) - np.asarray(h_G)[:, None], rtol=1e-12, atol=0.0
    )
    # Without a bias, nc4 compares argmax W h_i with the nearest mean.
    Hbar_ref, _ = _reference_means(H, labels, K)
    dists = np.linalg.norm(H[:, None, :] - Hbar_ref[:, :, None], axis=0)
    expected = np.mean(np.argmax(W @ H, axis=0) != np.argmin(dists, axis=0))
    # A fraction of N samples: the same count, so no tolerance beyond float rounding.
    assert float(metrics.nc4(W, H, labels)) == pytest.approx(expected, rel=0.0, abs=1e-15)


@pytest.mark.parametrize("K", [2, 3, 5])
def test_orthogonal_frame_distance_and_etf_distance_swap(K):
    gap = math.sqrt(2.0 - 2.0 * math.sqrt((K - 1) / K))
    P = np.eye(K) - np.ones((K, K)) / K
    I = np.eye(K)
    assert float(metrics.orthogonal_frame_distance(3.0 * I)) <= 1e-12
    assert float(metrics.nc2_etf(3.0 * P)) <= 1e-12
    # gap > 0.4 for K <= 5: relative bounds, no absolute slack (atol=0).
    np.testing.assert_allclose(float(metrics.orthogonal_frame_distance(P)), gap, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(float(metrics.nc2_etf(I)), gap, rtol=1e-12, atol=0.0)


def test_orthogonal_frame_of_nonnegative_means():
    K, n = 4, 3
    labels = np.repeat(np.arange(K), n)
    H = 2.0 * np.eye(K)[:, labels]  # class means e_k: an orthogonal frame
    assert float(metrics.nc2_orth_H(H, labels)) <= 1e-12
    assert float(metrics.nc2_H(H, labels)) <= 1e-12  # centred, it is a simplex ETF
    assert float(metrics.nc2_orth_W(geometry.orthogonal_frame(K, 6))) <= 1e-12


# ---------------------------------------------------------------- jit


def test_all_metrics_under_jit_with_closed_over_labels():
    rng = np.random.default_rng(0)
    K, d, counts = SHAPES[2]
    labels = rng.permutation(np.repeat(np.arange(K), counts))
    H, W, b = rng.normal(size=(d, labels.size)), rng.normal(size=(K, d)), rng.normal(size=K)

    @jax.jit
    def f(W, H, b):
        return metrics.all_metrics(W, H, labels, b=b)

    _assert_close_dicts(f(W, H, b), metrics.all_metrics(W, H, labels, b=b), rtol=1e-12)
    # NC1 of random features is O(1): relative only (abs=0).
    assert float(jax.jit(lambda H: metrics.nc1(H, labels))(H)) == pytest.approx(
        float(metrics.nc1(H, labels)), rel=1e-12, abs=0.0
    )


def test_traced_labels_need_K():
    H = np.ones((2, 4))
    labels = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="K must be given"):
        jax.jit(metrics.nc1_trace_ratio)(H, labels)
    value = jax.jit(lambda H, y: metrics.nc1_trace_ratio(H + np.arange(4.0)[None, :], y, K=2))(
        H, labels
    )
    assert np.isfinite(float(value))


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_naming_the_argument():
    rng = np.random.default_rng(1)
    H, labels = rng.normal(size=(3, 6)), np.array([0, 1, 2, 0, 1, 2])
    W = rng.normal(size=(3, 3))
    with pytest.raises(ValueError, match="labels"):
        metrics.nc1(H, labels[:5])
    with pytest.raises(ValueError, match="H"):
        metrics.nc1(H[0], labels)
    with pytest.raises(ValueError, match="K"):
        metrics.nc1(H, np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        metrics.nc1(H, labels, K=4)  # class 3 has no samples
    with pytest.raises(ValueError, match="labels"):
        metrics.nc1(H, labels, K=2)  # label 2 out of range
    with pytest.raises(ValueError, match="global_mean"):
        metrics.nc1(H, labels, global_mean="median")
    with pytest.raises(ValueError, match="W"):
        metrics.nc3(W[:2], H, labels)
    with pytest.raises(ValueError, match="W"):
        metrics.nc4(W[:, :2], H, labels)
    with pytest.raises(ValueError, match="b"):
        metrics.nc4(W, H, labels, np.ones(2))
    with pytest.raises(ValueError, match="layout"):
        metrics.nc1(H, labels, layout="NxD")
    with pytest.raises(ValueError, match="G"):
        metrics.nc2_etf(np.ones((3, 2)))
