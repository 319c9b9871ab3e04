"""One argument order, (W, H, labels, b=None, K=None): the classifier, the features, the labels,
the bias optional; the old forms still work for one release with a DeprecationWarning."""

from __future__ import annotations

import inspect
import warnings

import jax
import numpy as np
import pytest

from ufm import dilation, metrics

jax.config.update("jax_enable_x64", True)

# Every name the single-module ufm.metrics had, public ones and the module constant.
OLD_NAMES = [
    "PINV_RTOL", "StreamingNC", "TEST_NC1_CONVENTION", "all_metrics", "layer_metrics",
    "collapse_report", "cdnv", "centred_means", "class_means", "cosines", "equiangularity",
    "equinorm", "equinorm_H", "equinorm_W", "max_angle_deviation", "nc1", "nc1_trace_ratio",
    "nc2_H", "nc2_W", "nc2_etf", "nc2_orth_H", "nc2_orth_W", "nc3", "nc3_duality", "nc4",
    "orthogonal_frame_distance",
]

CLASSIFIER_FIRST = [
    metrics.nc3, metrics.nc3_duality, metrics.nc4, metrics.all_metrics,
    dilation.segment_crossing, dilation.clean_mean_accuracy,
]


def _instance(seed=0, K=3, d=4, n=4):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(K), n))
    H = rng.normal(size=(d, y.size)) + 2.0 * rng.normal(size=(d, K))[:, y]
    return rng, H, y, rng.normal(size=(K, d)), rng.normal(size=K)


@pytest.mark.parametrize("name", OLD_NAMES)
def test_every_old_name_is_still_public(name):
    assert name in metrics.__all__ or name == "PINV_RTOL"
    assert getattr(metrics, name) is not None


@pytest.mark.parametrize("fn", CLASSIFIER_FIRST, ids=lambda f: f.__name__)
def test_signatures_put_classifier_then_features_then_labels_then_bias(fn):
    names = list(inspect.signature(fn).parameters)
    order = [n for n in ("W", "H", "true_labels", "labels", "b", "K") if n in names]
    assert names[: len(order)] == order, names


def test_nc4_new_order_is_silent_and_equals_all_metrics():
    _, H, y, W, b = _instance()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = float(metrics.nc4(W, H, y, b))
        assert float(metrics.nc4(W, H, y, b=b)) == value
        assert float(metrics.nc4(W, b=b, H=H, labels=y)) == value
        assert float(metrics.nc4(W, H, y, b, 3)) == value
        assert float(metrics.nc4(W, H, y)) == float(metrics.nc4(W, H, y, None))
    assert float(metrics.all_metrics(W, H, y, b)["nc4"]) == value


@pytest.mark.parametrize("with_bias", [True, False])
def test_nc4_old_order_warns_and_gives_the_same_number(with_bias):
    _, H, y, W, b = _instance(1)
    b = b if with_bias else None
    new = float(metrics.nc4(W, H, y, b))
    with pytest.warns(DeprecationWarning, match=r"nc4\(W, H, labels, b=b"):
        assert float(metrics.nc4(W, b, H, y)) == new
    with pytest.warns(DeprecationWarning):
        assert float(metrics.nc4(W, b, H, y, 3)) == new
    with pytest.warns(DeprecationWarning):
        assert float(metrics.nc4(W, b, H, labels=y)) == new


def test_nc4_old_order_with_a_list_bias_is_recognised():
    _, H, y, W, b = _instance(2)
    with pytest.warns(DeprecationWarning):
        assert float(metrics.nc4(W, list(b), H, y)) == float(metrics.nc4(W, H, y, b))


def test_nc4_either_order_under_jit():
    _, H, y, W, b = _instance(3)
    new = jax.jit(lambda W, H, b: metrics.nc4(W, H, y, b))(W, H, b)
    assert float(new) == float(metrics.nc4(W, H, y, b))
    with pytest.warns(DeprecationWarning):
        old = jax.jit(lambda W, H, b: metrics.nc4(W, b, H, y))(W, H, b)
    assert float(old) == float(new)


def test_nc4_old_order_with_a_duplicate_argument_raises():
    _, H, y, W, b = _instance(4)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="multiple values"):
        metrics.nc4(W, b, H, labels=y, b=b)


def test_collapse_report_classifier_is_keyword_only():
    _, H, y, W, b = _instance(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = metrics.collapse_report(H, y, H, y, W=W, b=b)
    with pytest.warns(DeprecationWarning, match="W=, b="):
        assert metrics.collapse_report(H, y, H, y, W, b) == rep
    with pytest.warns(DeprecationWarning, match="W="):
        assert metrics.collapse_report(H, y, H, y, W) == metrics.collapse_report(H, y, H, y, W=W)
    with pytest.raises(TypeError, match="positional"):
        metrics.collapse_report(H, y, H, y, W, b, 3)


@pytest.mark.parametrize("fn", [dilation.segment_crossing, dilation.clean_mean_accuracy],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("with_bias", [True, False])
def test_dilation_old_order_warns_and_gives_the_same_numbers(fn, with_bias):
    _, H, y, W, b = _instance(6)
    b = b if with_bias else None
    observed = y.copy()
    observed[np.flatnonzero(y == 0)[-1]] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = np.asarray(fn(W, H, y, observed, b))
        np.testing.assert_array_equal(np.asarray(fn(W, H, y, observed, b=b, K=3)), new)
    with pytest.warns(DeprecationWarning, match="true_labels, labels, b=b"):
        np.testing.assert_array_equal(np.asarray(fn(W, b, H, y, observed)), new)


def test_old_private_means_name_warns_and_forwards():
    _, H, y, _, _ = _instance(7)
    with pytest.warns(DeprecationWarning, match="class_means_unchecked"):
        old = metrics._means
    assert old is metrics.class_means_unchecked
    Hbar, h_G = old(jax.numpy.asarray(H), jax.numpy.asarray(y), 3, "weighted")
    ref_Hbar, ref_h_G = metrics.class_means(H, y)
    np.testing.assert_array_equal(np.asarray(Hbar), np.asarray(ref_Hbar))
    np.testing.assert_array_equal(np.asarray(h_G), np.asarray(ref_h_G))
