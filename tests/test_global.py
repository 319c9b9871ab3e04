"""Global-optimality certificates: ``ufm.global_certificate``.

Properties: the gap vanishes at ``minimize``'s solution on closed-form instances; at any other
point (perturbed, ``d < K``, ``H >= 0``) the lower bound stays below the true minimum (the
closed-form value of the ``d >= K`` signed instance, which is ``<=`` every other instance's
minimum); the deep linear bound is the ``h_m`` value; unsupported families raise.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
import ufm.testing
from proofs_check import closed_forms as cf
from proofs_check.catalog import deep as deep_cat
from tests.helpers import examples

SIZES = [(3, 2, 3), (4, 2, 4)]
CLOSED = ufm.testing.closed_form_problems(sizes=SIZES, losses=("ce", "ls", "mse"), regime="nonzero")


def _perturb(params, seed, scale):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _gap_at_solution(prob):
    sol = ufm.minimize(prob, gtol=1e-12, starts=2)
    cert = ufm.global_certificate(prob, sol.params)
    f_star = cf.predict(prob).quantities["value"]
    assert abs(float(cert.value) - sol.value) <= 1e-14 * max(1.0, abs(sol.value))
    assert float(cert.gap) <= 1e-9 * max(1.0, abs(sol.value))
    assert float(cert.gap) >= -1e-12 * max(1.0, abs(sol.value))
    assert float(cert.lower_bound) <= f_star + 1e-12 * max(1.0, abs(f_star))


# Every example compiles ufm.minimize for its shape (about 5-10 s each on 2 cores), so the
# default run draws 3; the slow variant below draws 25 over K up to 5.
@settings(max_examples=examples(3))
@given(prob=ufm.testing.closed_form_problems(min_K=2, max_K=4, max_d=5, losses=("ce", "ls", "mse"),
                                             balanced=None, regime="nonzero"))
def test_gap_vanishes_at_minimize_solution(prob):
    """Sizes drawn too: K in 2..4, n in 1..6 (balanced or, for bias-free MSE, not), d from the
    closed form's minimum to 5."""
    _gap_at_solution(prob)


@pytest.mark.slow
@settings(max_examples=examples(25))
@given(prob=ufm.testing.closed_form_problems(min_K=2, max_K=5, losses=("ce", "ls", "mse"), regime="nonzero"))
def test_gap_vanishes_at_minimize_solution_many(prob):
    _gap_at_solution(prob)


@settings(max_examples=examples(6))
@given(prob=CLOSED, d=st.integers(1, 5), nonneg=st.booleans(), seed=st.integers(0, 99),
       scale=st.sampled_from([1e-3, 0.1, 1.0]))
def test_bound_below_true_minimum_anywhere(prob, d, nonneg, seed, scale):
    f_star = cf.predict(prob).quantities["value"]  # = min over every d and under H >= 0, or lower
    other = dataclasses.replace(prob, d=d, nonneg=nonneg)
    params = other.project(_perturb(other.init(jax.random.PRNGKey(seed)), seed + 1, scale))
    cert = ufm.global_certificate(other, params)
    assert float(cert.lower_bound) <= f_star + 1e-12 * max(1.0, abs(f_star))
    assert float(cert.gap) >= 0.0


def test_not_tight_below_rank_or_with_nonneg():
    """d < K (MSE, no bias: the optimal class logits have rank K): the bound is strictly below."""
    prob = ufm.UFM(K=4, n=3, d=2, loss=ufm.MSE(), lam_W=2e-3, lam_H=2e-3)
    sol = ufm.minimize(prob, starts=2)
    cert = ufm.global_certificate(prob, sol.params)
    assert float(cert.gap) > 1e-3
    f_big = cf.predict(dataclasses.replace(prob, d=4)).quantities["value"]
    assert float(cert.lower_bound) <= f_big + 1e-12


def test_jit_and_vmap():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=0.0)
    p0 = prob.init(jax.random.PRNGKey(0))
    eager = ufm.global_certificate(prob, p0)
    jitted = jax.jit(ufm.global_certificate)(prob, p0)
    assert jitted.method == eager.method == "class-level dual"
    assert float(jnp.abs(jitted.lower_bound - eager.lower_bound)) <= 1e-13
    batch = jax.vmap(lambda s: ufm.global_certificate(prob, _perturb(p0, s, 0.1)).lower_bound)(jnp.arange(3))
    one = ufm.global_certificate(prob, _perturb(p0, 1, 0.1)).lower_bound
    assert batch.shape == (3,) and float(jnp.abs(batch[1] - one)) <= 1e-13


@pytest.mark.parametrize("m,lam", [(3, 0.004), (3, 0.02), (4, 0.01)])
def test_deep_linear_bound_is_h_m_value(m, lam):
    prob = ufm.DeepUFM(K=3, n=2, widths=(3,) * (m - 1), loss=ufm.MSE(), lam_W=lam, lam_H=lam,
                       activation="linear")
    cert = ufm.global_certificate(prob, prob.init(jax.random.PRNGKey(0)))
    assert cert.method == "deep linear scalar reduction"
    expected = deep_cat.dnc_prediction(prob)["value"]
    assert abs(float(cert.lower_bound) - expected) <= 1e-12 * max(1.0, expected)
    assert float(cert.lower_bound) <= float(prob.objective(prob.zeros())) + 1e-15


@settings(max_examples=examples(8))
@given(widths=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 99),
       bias=st.sampled_from([None, 0.0, 0.05]), imbalanced=st.booleans())
def test_deep_linear_bound_below_any_point_and_any_width(widths, seed, bias, imbalanced):
    n = (1, 2, 3) if imbalanced else 2
    prob = ufm.DeepUFM(K=3, n=n, widths=tuple(widths), loss=ufm.MSE(), lam_W=0.01, lam_H=0.01,
                       lam_b=bias, activation="linear")
    p0 = prob.init(jax.random.PRNGKey(seed))
    for params in (p0, _perturb(p0, seed, 0.1), jax.tree_util.tree_map(lambda x: 0.1 * x, p0), prob.zeros()):
        cert = ufm.global_certificate(prob, params)
        assert float(cert.gap) >= -1e-12 * max(1.0, float(cert.value))


def test_deep_one_layer_equals_shallow_dual_at_optimum():
    """m = 2: the scalar reduction (soft threshold) and the class-level dual agree at the minimizer."""
    deep = ufm.DeepUFM(K=3, n=(2, 3, 4), widths=(3,), loss=ufm.MSE(), lam_W=0.01, lam_H=0.02,
                       activation="linear")
    shallow = ufm.UFM(K=3, n=(2, 3, 4), d=3, loss=ufm.MSE(), lam_W=0.01, lam_H=0.02)
    sol = ufm.minimize(shallow, gtol=1e-12)
    dual = ufm.global_certificate(shallow, sol.params).lower_bound
    from ufm.solvers._global import _deep_linear_bound  # the m = 2 scalar reduction itself

    assert abs(float(_deep_linear_bound(deep)) - float(dual)) <= 1e-12
    one = ufm.global_certificate(deep, ufm.DeepParams((sol.params.W,), sol.params.H, None))
    assert abs(float(one.lower_bound) - float(dual)) <= 1e-14
    assert abs(float(dual) - sol.value) <= 1e-10 * max(1.0, sol.value)


@pytest.mark.parametrize("m", [2, 3, 5])
@settings(max_examples=examples(10))
@given(s=st.floats(0.0, 3.0), c=st.floats(1e-4, 0.5), N=st.integers(1, 12))
def test_scalar_reduction_min_is_the_minimum(m, s, c, N):
    from ufm.solvers._global import scalar_reduction_min

    xs = np.linspace(0.0, 3.5, 200_001)
    phi = (xs - s) ** 2 / (2 * N) + c * xs ** (2.0 / m)
    got = float(scalar_reduction_min(jnp.asarray(s), c, N, m))
    assert got <= phi.min() + 1e-12
    assert got >= phi.min() - 1e-8  # the grid spacing bounds how far the grid minimum can be above


@pytest.mark.parametrize("make", [
    lambda: ufm.UFM(K=3, n=2, d=3, loss=ufm.Focal(2.0)),
    lambda: ufm.DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.MSE(), activation="relu"),
    lambda: ufm.DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.CrossEntropy(), activation="linear"),
    lambda: ufm.MemorizationDilation(K=2, n=4, d=2, loss=ufm.CrossEntropy(), eta=0.25, lam=0.5),
])
def test_unsupported_families_raise_with_reason(make):
    prob = make()
    with pytest.raises(ValueError, match="global_certificate: .+"):
        ufm.global_certificate(prob, prob.init(jax.random.PRNGKey(0)))


@pytest.mark.slow
def test_minimize_certify_global_deep_linear_never_certifies_the_origin():
    """Started near the origin (a local minimum for m >= 3), certify='global' either
    reaches the h_m value or returns not converged with the measured gap."""
    prob = ufm.DeepUFM(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=4e-3, lam_H=4e-3, activation="linear")
    plain = ufm.minimize(prob, init_scale=1e-3, throw=False)
    f_star = deep_cat.dnc_prediction(prob)["value"]
    assert plain.value > f_star + 0.1  # the trap exists: the plain solve stops at the origin
    sol = ufm.minimize(prob, init_scale=1e-3, certify="global", throw=False)
    gap = sol.certificate.global_gap
    if sol.converged:
        assert abs(sol.value - f_star) <= 1e-9 * max(1.0, f_star) and gap <= 1e-10 * max(1.0, sol.value)
    else:
        assert sol.result == ufm.RESULTS.not_global and gap > 1e-10


def test_minimize_certify_global_shallow_and_failure_modes():
    prob = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    sol = ufm.minimize(prob, certify="global")
    assert sol.converged and sol.certificate.global_gap <= 1e-10 * max(1.0, sol.value)
    assert sol.certificate.scope == "global"
    narrow = dataclasses.replace(prob, d=1, loss=ufm.MSE(), lam_b=None)
    with pytest.raises(ufm.SolveError, match="gap"):
        ufm.minimize(narrow, certify="global")
    with pytest.raises(ValueError, match="focal"):
        ufm.minimize(dataclasses.replace(prob, loss=ufm.Focal(2.0)), certify="global")
    with pytest.raises(ValueError, match="certify"):
        ufm.minimize(prob, certify="local")
