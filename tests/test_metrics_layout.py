"""layout="Nd": every function that takes features gives, on X of shape (N, d) as a network gives
them, what the default layout gives on X.T; the layout is validated and never guessed."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ufm import dilation, geometry, metrics
from tests.helpers import examples

jax.config.update("jax_enable_x64", True)

# Every drawn size compiles each metric anew (about 20 s per example for all of them): few examples.
SETTINGS = settings(deadline=None, max_examples=examples(3))

# The same numbers reach the same float64 operations, so the two layouts agree to rounding. The
# absolute floor is for quantities that vanish by symmetry (NC1 with one sample per class, the
# angle spread of K = 2 vectors), where rounding leaves ~1e-16 in either layout.
RTOL, ATOL = 1e-12, 1e-12


@st.composite
def network_features(draw):
    """``X: (N, d)``, labels with every class present, a classifier, and noisy observed labels."""
    K = draw(st.integers(2, 5))
    d = draw(st.integers(1, 8))
    counts = draw(st.lists(st.integers(2, 4), min_size=K, max_size=K))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.permutation(np.repeat(np.arange(K), counts))
    X = rng.normal(size=(labels.size, d)) + 3.0 * rng.normal(size=(K, d))[labels]
    # Observed labels: flip one sample of each class whose first sample stays clean.
    observed = labels.copy()
    for k in range(K):
        i = np.flatnonzero(labels == k)[-1]
        observed[i] = (k + 1) % K
    return X, labels, observed, rng.normal(size=(K, d)), rng.normal(size=K), K


def _assert_same(a, b, name):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b), name
    for x, y in zip(leaves_a, leaves_b):
        if isinstance(x, str):
            assert x == y, name
        else:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL, atol=ATOL, err_msg=name)


# name -> f(H, labels, W, b, observed, **layout): one entry per function that takes features.
JITTED = {
    "class_means": lambda H, y, W, b, o, **kw: metrics.class_means(H, y, **kw),
    "centred_means": lambda H, y, W, b, o, **kw: metrics.centred_means(H, y, **kw),
    "nc1": lambda H, y, W, b, o, **kw: metrics.nc1(H, y, **kw),
    "nc1_unweighted": lambda H, y, W, b, o, **kw: metrics.nc1(H, y, global_mean="unweighted", **kw),
    "nc1_trace_ratio": lambda H, y, W, b, o, **kw: metrics.nc1_trace_ratio(H, y, **kw),
    "cdnv": lambda H, y, W, b, o, **kw: metrics.cdnv(H, y, **kw),
    "nc2_H": lambda H, y, W, b, o, **kw: metrics.nc2_H(H, y, **kw),
    "equinorm_H": lambda H, y, W, b, o, **kw: metrics.equinorm_H(H, y, **kw),
    "nc2_orth_H": lambda H, y, W, b, o, **kw: metrics.nc2_orth_H(H, y, **kw),
    "nc3": lambda H, y, W, b, o, **kw: metrics.nc3(W, H, y, **kw),
    "nc3_duality": lambda H, y, W, b, o, **kw: metrics.nc3_duality(W, H, y, **kw),
    "nc4": lambda H, y, W, b, o, **kw: metrics.nc4(W, H, y, b, **kw),
    "all_metrics": lambda H, y, W, b, o, **kw: metrics.all_metrics(W, H, y, b, **kw),
}
HOST = {
    "collapse_report": lambda H, y, W, b, o, **kw: metrics.collapse_report(H, y, H, o, W=W, b=b, **kw),
    "structure_of_means": lambda H, y, W, b, o, **kw: geometry.structure_of_means(H, y, **kw),
    "clean_means": lambda H, y, W, b, o, **kw: dilation.clean_means(H, y, o, **kw),
    "displacement": lambda H, y, W, b, o, **kw: dilation.displacement(H, y, o, **kw),
    "centre_distance": lambda H, y, W, b, o, **kw: dilation.centre_distance(H, y, o, **kw),
    "relative_displacement": lambda H, y, W, b, o, **kw: dilation.relative_displacement(H, y, o, **kw),
    "class_spread": lambda H, y, W, b, o, **kw: dilation.class_spread(H, y, o, **kw),
    "nc1_noisy": lambda H, y, W, b, o, **kw: dilation.nc1_noisy(H, o, **kw),
    "segment_crossing": lambda H, y, W, b, o, **kw: dilation.segment_crossing(W, H, y, o, b, **kw),
    "clean_mean_accuracy": lambda H, y, W, b, o, **kw: dilation.clean_mean_accuracy(W, H, y, o, b, **kw),
}
EVERY = {**JITTED, **HOST}


@SETTINGS
@given(data=network_features())
def test_network_layout_equals_default_on_the_transpose(data):
    X, y, observed, W, b, _ = data
    for name, f in EVERY.items():
        _assert_same(f(X, y, W, b, observed, layout="Nd"), f(X.T, y, W, b, observed), name)
        _assert_same(f(X.T, y, W, b, observed, layout="dN"), f(X.T, y, W, b, observed), name)


@SETTINGS
@given(data=network_features(), n_batches=st.integers(1, 4))
def test_streaming_network_batches_equal_default_batches(data, n_batches):
    X, y, _, W, b, K = data
    d = X.shape[1]
    rows = StreamingNCPair(K, d, W, b)
    for idx in np.array_split(np.arange(y.size), n_batches):
        rows.nd.update(X[idx], y[idx])
        rows.dn.update(X[idx].T, y[idx])
    _assert_same(rows.nd.result(), rows.dn.result(), "StreamingNC")
    # the statistics are layout-free: accumulators of either layout merge
    merged = metrics.StreamingNC(K=K, d=d, W=W, b=b).merge(rows.nd)
    _assert_same(merged.result(), rows.dn.result(), "merge")


class StreamingNCPair:
    """Two accumulators of the same set, one fed rows (layout="Nd"), one fed columns."""

    def __init__(self, K, d, W, b):
        self.nd = metrics.StreamingNC(K=K, d=d, W=W, b=b, layout="Nd")
        self.dn = metrics.StreamingNC(K=K, d=d, W=W, b=b)


def test_square_features_follow_the_keyword_not_the_shape():
    rng = np.random.default_rng(3)
    y = np.array([0, 1, 2, 0, 1, 2])
    X = rng.normal(size=(6, 6)) + 2.0 * rng.normal(size=(3, 6))[y]  # N = d: the shape cannot tell
    assert float(metrics.nc1(X, y, layout="Nd")) == float(metrics.nc1(X.T, y))
    assert float(metrics.nc1(X, y)) == float(metrics.nc1(X, y, layout="dN"))
    assert float(metrics.nc1(X, y)) != float(metrics.nc1(X, y, layout="Nd"))


def test_results_keep_the_module_convention():
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(3), 4)
    X = rng.normal(size=(12, 5))
    Hbar, h_G = metrics.class_means(X, y, layout="Nd")
    assert Hbar.shape == (5, 3) and h_G.shape == (5,)
    assert metrics.centred_means(X, y, layout="Nd").shape == (5, 3)
    assert dilation.clean_means(X, y, y, layout="Nd").shape == (5, 3)


def test_network_layout_under_jit():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 3)
    X, W, b = rng.normal(size=(12, 6)), rng.normal(size=(4, 6)), rng.normal(size=4)
    jitted = jax.jit(lambda X, W, b: metrics.all_metrics(W, X, y, b, layout="Nd"))
    _assert_same(jitted(X, W, b), metrics.all_metrics(W, X.T, y, b), "all_metrics under jit")


BAD_LAYOUTS = ["nd", "ND", "Nd ", "(N, d)", None, 0]


@pytest.mark.parametrize("layout", BAD_LAYOUTS, ids=repr)
@pytest.mark.parametrize("name", sorted(EVERY))
def test_unknown_layout_raises_naming_the_argument_and_values(name, layout):
    rng = np.random.default_rng(6)
    y = np.array([0, 1, 2, 0, 1, 2])
    X = rng.normal(size=(6, 4))
    with pytest.raises(ValueError, match=r"layout must be one of \('dN', 'Nd'\)"):
        EVERY[name](X, y, rng.normal(size=(3, 4)), None, y, layout=layout)


@pytest.mark.parametrize("layout", BAD_LAYOUTS[:2], ids=repr)
def test_streaming_unknown_layout_raises(layout):
    with pytest.raises(ValueError, match="layout must be one of"):
        metrics.StreamingNC(K=3, d=2, layout=layout)


def test_network_layout_shape_errors_name_the_layout():
    y = np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        metrics.nc1(np.ones(4), y, layout="Nd")
    with pytest.raises(ValueError, match="H.shape\\[0\\]"):
        metrics.nc1(np.ones((5, 2)), y, layout="Nd")
    with pytest.raises(ValueError, match="d=2 columns"):
        metrics.StreamingNC(K=3, d=2, layout="Nd").update(np.ones((4, 3)), y)
    with pytest.raises(ValueError, match="H_test must have d=2 columns"):
        metrics.collapse_report(np.ones((4, 2)), y, np.ones((4, 3)), y, layout="Nd")
