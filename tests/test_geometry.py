"""Properties of ufm.geometry: constructors match their Gram formulas; classify names them."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ufm import geometry
from tests.helpers import examples

jax.config.update("jax_enable_x64", True)

SETTINGS = settings(deadline=None, max_examples=examples(20))


def _P(K: int) -> np.ndarray:
    return np.eye(K) - np.ones((K, K)) / K


seeds = st.one_of(st.none(), st.integers(0, 1000))


@SETTINGS
@given(K=st.integers(2, 6), extra_d=st.integers(0, 4), scale=st.floats(0.1, 10.0), seed=seeds)
def test_simplex_etf_gram(K, extra_d, scale, seed):
    d = K - 1 + extra_d
    X = np.asarray(geometry.simplex_etf(K, d, scale, key_or_seed=seed))
    assert X.shape == (K, d)
    np.testing.assert_allclose(X @ X.T, scale**2 * K / (K - 1) * _P(K), atol=1e-12 * scale**2)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), scale, rtol=1e-12, atol=0.0)  # scale >= 0.1


@SETTINGS
@given(K=st.integers(2, 6), extra_d=st.integers(0, 4), scale=st.floats(0.1, 10.0), seed=seeds)
def test_orthogonal_frame_gram(K, extra_d, scale, seed):
    d = K + extra_d
    X = np.asarray(geometry.orthogonal_frame(K, d, scale, key_or_seed=seed))
    assert X.shape == (K, d)
    np.testing.assert_allclose(X @ X.T, scale**2 * np.eye(K), atol=1e-12 * scale**2)
    if seed is None:
        assert np.all(X >= 0)


def test_default_d_is_K():
    assert geometry.simplex_etf(5).shape == (5, 5)
    assert geometry.orthogonal_frame(3).shape == (3, 3)


def test_rotation_is_orthogonal_and_seeded():
    Q = np.asarray(geometry.random_rotation(5, 3))
    np.testing.assert_allclose(Q @ Q.T, np.eye(5), atol=1e-12)
    np.testing.assert_array_equal(Q, np.asarray(geometry.random_rotation(5, 3)))
    np.testing.assert_array_equal(Q, np.asarray(geometry.random_rotation(5, jax.random.PRNGKey(3))))
    a = np.asarray(geometry.simplex_etf(4, 6, key_or_seed=1))
    b = np.asarray(geometry.simplex_etf(4, 6, key_or_seed=2))
    # Two independent Haar rotations move the frame by O(1); NumPy's default tolerances, stated.
    assert not np.allclose(a, b, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: geometry.simplex_etf(5, d=3), "d=3 < 4"),
        (lambda: geometry.orthogonal_frame(4, d=3), "d=3 < 4"),
        (lambda: geometry.simplex_etf(1), "K"),
        (lambda: geometry.orthogonal_frame(2.5), "K"),
        (lambda: geometry.simplex_etf(3, scale=0.0), "scale"),
        (lambda: geometry.orthogonal_frame(3, scale=float("nan")), "scale"),
        (lambda: geometry.structure_of_rows(np.ones((1, 3))), "X"),
        (lambda: geometry.structure_of_gram(np.ones((3, 2))), "G"),
        (lambda: geometry.structure_of_rows(np.ones((3, 3)), tol=-1.0), "tol"),
        (lambda: geometry.structure_of_means(np.ones((2, 4)), np.array([0, 1, 0])), "labels"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- classify


@SETTINGS
@given(K=st.integers(2, 6), extra_d=st.integers(0, 4), scale=st.floats(0.1, 10.0), seed=seeds)
def test_classify_rows_recognizes_constructions(K, extra_d, scale, seed):
    etf = geometry.structure_of_rows(geometry.simplex_etf(K, K + extra_d, scale, key_or_seed=seed))
    assert etf.kind == "simplex_etf"
    assert etf.rank == K - 1
    assert etf.etf_distance <= 1e-10 and etf.equinorm <= 1e-10
    orth = geometry.structure_of_rows(
        geometry.orthogonal_frame(K, K + extra_d, scale, key_or_seed=seed)
    )
    assert orth.kind == "orthogonal_frame"
    assert orth.rank == K
    assert orth.orth_distance <= 1e-10
    # The two targets are a fixed distance apart: each construction is far from the other.
    gap = np.sqrt(2.0 - 2.0 * np.sqrt((K - 1) / K))
    # gap > 0.4 for K <= 6: relative bound only (atol=0).
    np.testing.assert_allclose([etf.orth_distance, orth.etf_distance], gap, rtol=1e-10, atol=0.0)


@SETTINGS
@given(K=st.integers(2, 6), d=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_classify_rows_random_is_other(K, d, seed):
    X = np.random.default_rng(seed).normal(size=(K, d))
    s = geometry.structure_of_rows(X)
    assert s.kind == "other"
    assert s.tol == 1e-6
    assert s.etf_distance > s.tol and s.orth_distance > s.tol


@pytest.mark.parametrize("K, d", [(2, 1), (3, 4), (6, 2)])
def test_classify_rows_zero(K, d):
    s = geometry.structure_of_rows(np.zeros((K, d)))
    assert s.kind == "zero"
    assert s.rank == 0
    assert geometry.structure_of_rows(np.full((K, d), 1e-14), atol=1e-12).kind == "zero"


@SETTINGS
@given(K=st.integers(2, 6), extra_d=st.integers(0, 3), seed=st.integers(0, 1000))
def test_classify_is_rotation_invariant(K, extra_d, seed):
    rng = np.random.default_rng(seed)
    d = K + extra_d
    Q = np.asarray(geometry.random_rotation(d, seed))
    for X in (
        np.asarray(geometry.simplex_etf(K, d)),
        np.asarray(geometry.orthogonal_frame(K, d)),
        rng.normal(size=(K, d)),
    ):
        a, b = geometry.structure_of_rows(X), geometry.structure_of_rows(X @ Q.T)
        assert a.kind == b.kind and a.rank == b.rank
        np.testing.assert_allclose(
            [a.etf_distance, a.orth_distance, a.equinorm],
            [b.etf_distance, b.orth_distance, b.equinorm],
            rtol=1e-8,
            atol=1e-12,
        )


@SETTINGS
@given(
    K=st.integers(2, 6),
    counts=st.lists(st.integers(1, 5), min_size=6, max_size=6),
    seed=st.integers(0, 1000),
)
def test_classify_means(K, counts, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(K), counts[:K]))
    d = K + 2
    # Class means on an orthogonal frame of nonnegative vectors (Nguyen et al. 2023).
    frame = np.asarray(geometry.orthogonal_frame(K, d, 3.0))
    assert geometry.structure_of_means(frame.T[:, labels], labels).kind == "orthogonal_frame"
    # Class means on a shifted simplex ETF: the centred means are an ETF.
    etf = np.asarray(geometry.simplex_etf(K, d, 2.0, key_or_seed=seed))
    shifted = etf.T[:, labels] + rng.normal(size=(d, 1))
    assert geometry.structure_of_means(shifted, labels).kind == "simplex_etf"
    # Random features (K >= 3: any two distinct centred means are antipodal, a K=2 simplex ETF).
    if K >= 3:
        random_means = geometry.structure_of_means(rng.normal(size=(d, labels.size)), labels)
        assert random_means.kind == "other"


def test_classify_means_zero_and_structure_fields():
    labels = np.array([0, 1, 2, 0])
    s = geometry.structure_of_means(np.zeros((3, 4)), labels, tol=1e-3, atol=1e-9)
    assert s.kind == "zero"
    assert (s.tol, s.atol) == (1e-3, 1e-9)
    assert isinstance(s, geometry.Structure)
