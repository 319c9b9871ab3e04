"""The structured symmetry projection and the residual-stopped Lanczos give the dense reference.

The reference is the dense path of the certificate: the orthonormal tangent basis of
``ufm.symmetry_basis`` and ``eigh`` of the projected Hessian. Every expected number is computed
from it (or from a diagonal matrix's known spectrum), never pasted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import ufm
from ufm.solvers import _certify, _lanczos, _symmetry
from tests.helpers import examples

SIZES = [(2, 2, 3), (3, 2, 4), (3, 1, 2)]  # few shapes: each compiles once
LAMS = st.floats(1e-3, 5e-2)


@st.composite
def problems(draw, losses=(ufm.CrossEntropy(), ufm.MSE())):
    K, n, d = draw(st.sampled_from(SIZES))
    loss = draw(st.sampled_from(losses))
    lam_b = draw(st.sampled_from([None, 0.0, 5e-3]))
    return ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=draw(LAMS), lam_H=draw(LAMS), lam_b=lam_b)


def _point(prob, seed, scale):
    return jax.tree_util.tree_map(lambda x: scale * x, prob.init(jax.random.PRNGKey(seed)))


def _dense_projection(prob, x, v):
    P = np.asarray(ufm.symmetry_basis(prob, x)[0])
    return v - P @ (P.T @ v)


@settings(deadline=None, max_examples=examples(5))
@given(problems(), st.integers(0, 2**16), st.sampled_from([1e-2, 1.0, 3.0]))
def test_implicit_projection_equals_the_dense_basis(prob, seed, scale):
    x = _point(prob, seed, scale)
    proj = _symmetry.implicit_projector(prob, x)
    assert proj is not None
    v = np.asarray(jax.random.normal(jax.random.PRNGKey(seed + 1), ravel_pytree(x)[0].shape))
    got = np.asarray(jax.jit(proj)(jnp.asarray(v)))
    np.testing.assert_allclose(got, _dense_projection(prob, x, v), atol=1e-10 * np.linalg.norm(v))
    np.testing.assert_allclose(np.asarray(jax.jit(proj)(jnp.asarray(got))), got, atol=1e-10 * np.linalg.norm(v))


def test_implicit_projection_at_a_rank_deficient_minimizer():
    # at the CE minimizer with d > K - 1 the features span K - 1 dimensions: W^T W + H H^T is
    # singular and the rotations inside its null space are not tangent directions (dropped by both)
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    x = ufm.minimize(prob).params
    v = np.asarray(jax.random.normal(jax.random.PRNGKey(0), ravel_pytree(x)[0].shape))
    got = np.asarray(_symmetry.implicit_projector(prob, x)(jnp.asarray(v)))
    np.testing.assert_allclose(got, _dense_projection(prob, x, v), atol=1e-10 * np.linalg.norm(v))


def test_deep_relu_projection_is_the_input_rotation():
    prob = ufm.DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3, activation="relu")
    x = prob.init(jax.random.PRNGKey(3))
    proj = _symmetry.implicit_projector(prob, x)
    v = np.asarray(jax.random.normal(jax.random.PRNGKey(4), ravel_pytree(x)[0].shape))
    np.testing.assert_allclose(np.asarray(proj(jnp.asarray(v))), _dense_projection(prob, x, v),
                               atol=1e-10 * np.linalg.norm(v))


def test_families_without_the_structure_use_the_dense_basis():
    lin = ufm.DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3, activation="linear")
    box = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, nonneg=True)
    for prob in (lin, box):
        assert _symmetry.implicit_projector(prob, prob.init(jax.random.PRNGKey(0))) is None


_smallest = jax.jit(_certify.smallest_eig, static_argnums=(3, 4))


def _reference_min_eig(prob, x):
    w, _ = _certify.spectrum(prob, x, jax.random.PRNGKey(0), "dense", True, 1, implicit=False)
    return float(w[0])


@settings(deadline=None, max_examples=examples(3))
@given(problems(), st.integers(0, 2**16), st.sampled_from([1e-3, 0.3, 2.0]))
def test_projected_lanczos_min_eig_equals_the_dense_reference(prob, seed, scale):
    x = _point(prob, seed, scale)
    lam, vec = _smallest(prob, x, jax.random.PRNGKey(seed), "lanczos", 200)
    ref = _reference_min_eig(prob, x)
    assert abs(float(lam) - ref) <= 1e-10 * max(1.0, abs(ref))
    # the vector is a unit vector orthogonal to the symmetry directions, with Rayleigh quotient lam
    vec = np.asarray(vec)
    np.testing.assert_allclose(np.linalg.norm(vec), 1.0, atol=1e-10)
    np.testing.assert_allclose(_dense_projection(prob, x, vec), vec, atol=1e-9)


def test_a_saddle_is_found_with_the_reference_curvature():
    # near the origin the CE UFM has negative curvature (the origin is a strict saddle, Zhu et al.
    # 2021), with nonzero rotation tangents to project out
    prob = ufm.UFM(K=4, n=2, d=5, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    x = _point(prob, 7, 1e-2)
    lam, _ = _smallest(prob, x, jax.random.PRNGKey(0), "lanczos", 200)
    ref = _reference_min_eig(prob, x)
    assert ref < -1e-3 and abs(float(lam) - ref) <= 1e-10
    dense, _ = _smallest(prob, x, jax.random.PRNGKey(0), "dense", 1)
    assert abs(float(dense) - ref) <= 1e-10


def test_the_certified_saddle_escape_matches_the_dense_certificate():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    zero = jax.tree_util.tree_map(jnp.zeros_like, prob.init(jax.random.PRNGKey(0)))
    sol = ufm.minimize(prob, params0=zero)
    assert sol.converged and sol.stats["escapes"] >= 1
    assert abs(sol.certificate.min_eig - _reference_min_eig(prob, sol.params)) <= 1e-10


@st.composite
def spectra(draw):
    size = draw(st.sampled_from([3, 12, 40]))  # few shapes: each compiles once
    return draw(st.lists(st.floats(-2.0, 2.0), min_size=size, max_size=size, unique=True))


@settings(deadline=None, max_examples=examples(6))
@given(spectra(), st.integers(0, 2**16), st.sampled_from([5, 100]))
def test_smallest_ritz_of_a_diagonal_matrix(eigs, seed, max_steps):
    d = jnp.asarray(eigs)
    v0 = jax.random.normal(jax.random.PRNGKey(seed), d.shape)
    ritz = _lanczos.smallest_ritz(lambda v: d * v, v0, max_steps=max_steps, tol=jnp.asarray(1e-12))
    lo = min(eigs)
    assert float(ritz.value) >= lo - 1e-12  # a Rayleigh quotient: never below lambda_min
    res = float(jnp.linalg.norm(d * ritz.vector - ritz.value * ritz.vector))
    assert res <= float(ritz.residual) + 1e-8  # the reported residual is the Ritz pair's
    if d.size <= min(max_steps, _lanczos.CYCLE):  # one cycle spans the whole space: exact
        assert abs(float(ritz.value) - lo) <= 1e-10
