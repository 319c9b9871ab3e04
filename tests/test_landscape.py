"""ufm.landscape: classification of critical points, census, slices and paths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import _common as cc
from proofs_check.catalog import zhu2021
from tests.helpers import examples


def _origin(prob):
    return jax.tree_util.tree_map(jnp.zeros_like, prob.init(jax.random.PRNGKey(0)))


@settings(max_examples=examples(3))
@given(K=st.integers(2, 4), d=st.integers(2, 5), n=st.integers(1, 3), lam=st.floats(1e-3, 2e-2),
       rho=st.floats(0.5, 2.0), bias=st.sampled_from([None, 1e-2]))
def test_ce_origin_is_strict_saddle_with_closed_form_multiplicity(K, d, n, lam, rho, bias):
    """docs/theory.md#ce-etf: the smallest eigenvalue at 0 has multiplicity (K-1)d; its value is the
    catalog's SymPy expression. (kappa < 1/K so that the eigenvalue is negative.)"""
    lam_W, lam_H = lam * rho, lam / rho
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=lam_W, lam_H=lam_H, lam_b=bias)
    lam_min = cc.evaluate(zhu2021.lam_min_expr, prob)
    if lam_min >= -1e-6:  # outside the saddle regime (kappa >= 1/K): nothing to check
        return
    cp = ufm.landscape.kind_of(prob, _origin(prob))
    assert cp.kind == "saddle"
    assert cp.index == (K - 1) * d
    assert abs(cp.min_eig - lam_min) <= 1e-10
    assert np.sum(np.abs(cp.eigenvalues - lam_min) <= 1e-9) == (K - 1) * d
    v = cp.escape  # a unit direction of negative curvature: f decreases along it to second order
    t = 1e-3
    f0 = float(prob.objective(_origin(prob)))
    ft = float(prob.objective(jax.tree_util.tree_map(lambda x: t * x, v)))
    assert ft < f0


def test_minimum_and_symmetry_counted_apart():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    sol = ufm.minimize(prob)
    cp = ufm.landscape.kind_of(prob, sol.params)
    assert cp.kind == "minimum" and cp.index == 0 and cp.null_dim == 0
    # rotations of R^4 keeping the (K-1) = 2-dimensional span of the ETF fixed form SO(2):
    # orbit dimension 6 - 1 = 5
    assert cp.symmetry_dim == 4 * 3 // 2 - 1
    # without removing the symmetry the same point has exactly that many zero eigenvalues
    w, _ = ufm.landscape.spectrum(prob, sol.params, exclude_symmetry=False)
    assert np.sum(np.abs(np.asarray(w)) <= 1e-8) == cp.symmetry_dim


def test_not_stationary_and_bad_input():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    cp = ufm.landscape.kind_of(prob, prob.init(jax.random.PRNGKey(1)))
    assert cp.kind == "not stationary" and cp.escape is None
    with pytest.raises(ValueError, match="gtol"):
        ufm.landscape.kind_of(prob, prob.init(jax.random.PRNGKey(1)), gtol=-1.0)
    with pytest.raises(ValueError, match="mode"):
        ufm.landscape.census(prob, mode="gpu")


def test_census_finds_only_global_minima_for_ce_d_above_K():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    cen = ufm.landscape.census(prob, starts=4, init_scales=(None,), order="auto")
    second = cen.kind == "minimum"
    assert second.all()
    assert np.all(cen.gap[second] <= 1e-9 * np.maximum(1.0, np.abs(cen.value[second])))
    (row,) = cen.table()
    assert row["starts"] == 4 and row["share_global"] == 1.0


def test_slices_and_path_barrier():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)
    sol = ufm.minimize(prob)
    w, V = ufm.landscape.spectrum(prob, sol.params, k=2)
    ts = np.linspace(-1e-2, 1e-2, 5)
    vals = ufm.landscape.slice_1d(prob, sol.params, V[:, 0], ts)
    # second-order Taylor along a unit eigenvector at a critical point: f(t) - f(0) = w t^2/2 + O(t^3)
    pred = sol.value + 0.5 * float(w[0]) * ts**2
    assert np.max(np.abs(vals - pred)) <= 1e-2 * np.max(np.abs(pred - sol.value))  # cubic term ~ t
    grid = ufm.landscape.slice_2d(prob, sol.params, V[:, 0], V[:, 1], ts, ts[:3])
    assert grid.shape == (5, 3) and abs(grid[2, 2] - sol.value) <= 1e-14
    # a rotated copy of a minimizer: barrier 0 after alignment, positive without it
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    rot = sol.params._replace(W=sol.params.W @ Q.T, H=Q @ sol.params.H)
    aligned = ufm.landscape.path(prob, sol.params, rot, num=11)
    assert abs(aligned["barrier"]) <= 1e-10 and aligned["distance"] <= 1e-6
    raw = ufm.landscape.path(prob, sol.params, rot, num=11, align=False)
    assert raw["barrier"] > 0


def test_classify_is_the_deprecated_name_of_kind_of():
    """The old name warns and is the same function."""
    with pytest.warns(DeprecationWarning, match="kind_of"):
        classify = ufm.landscape.classify
    assert classify is ufm.landscape.kind_of
    assert "kind_of" in ufm.landscape.__all__ and "classify" not in ufm.landscape.__all__
