"""Padded problems (ufm.problems._padded): a padded solve is the unpadded one, and a sweep over sizes
compiles once per bucket.

The padded solve starts where the unpadded one starts (``PaddedUFM.init`` draws the same start), so
the two runs take the same steps up to round-off: value, Gram matrices (invariants, never raw
matrices), certificate order and ``min_eig`` agree to 1e-12.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ufm
from ufm.problems import PaddedUFM, active_params, bucket_of, bucket_size, embed_params, pad

ATOL = 1e-12
LOSSES = {"ce": ufm.CrossEntropy(), "ls": ufm.LabelSmoothing(0.1), "focal": ufm.Focal(2.0), "mse": ufm.MSE()}


def _grams(p):
    """Rotation invariants of a solution: W W^T, H^T H, W H, b."""
    out = [p.W @ p.W.T, p.H.T @ p.H, p.W @ p.H]
    return out + ([p.b] if p.b is not None else [])


@st.composite
def sized_problems(draw, bucket, losses=("ce",), biases=(None, 0.0, 1e-3), nonneg=(False,)):
    """A UFM that fits ``bucket``: K, n (balanced or per-class counts), d, loss, bias mode."""
    Km, nm, dm = bucket
    K = draw(st.integers(2, Km))
    if draw(st.booleans()):
        n = draw(st.integers(1, nm))
    else:
        n = tuple(draw(st.lists(st.integers(1, nm), min_size=K, max_size=K)))
    d = draw(st.integers(1, dm))
    loss = LOSSES[draw(st.sampled_from(losses))]
    lam = draw(st.sampled_from([3e-3, 5e-3, 1e-2]))
    prob = ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam, lam_H=5e-3, lam_b=draw(st.sampled_from(biases)),
                   nonneg=draw(st.sampled_from(nonneg)))
    return prob, draw(st.integers(0, 3))


def _check_exact(prob, bucket, seed, gram_rtol=0.0, eig_atol=ATOL):
    pp = pad(prob, bucket)
    assert (pp.K_max, pp.n_max, pp.d_max) == bucket
    # the same start, and the same objective there
    x0 = prob.init(jax.random.PRNGKey(seed))
    y0 = pp.init(jax.random.PRNGKey(seed))
    for a, b in zip(jax.tree_util.tree_leaves(x0), jax.tree_util.tree_leaves(active_params(pp, prob, y0))):
        np.testing.assert_allclose(a, b, rtol=0, atol=0)
    np.testing.assert_allclose(pp.objective(y0), prob.objective(x0), rtol=0, atol=ATOL)
    s1 = ufm.minimize(prob, seed=seed, throw=False)
    s2 = ufm.minimize(pp, seed=seed, throw=False)
    assert int(s1.result) == int(s2.result)
    assert s1.certificate.order == s2.certificate.order
    np.testing.assert_allclose(s2.value, s1.value, rtol=0, atol=ATOL)
    np.testing.assert_allclose(s2.certificate.min_eig, s1.certificate.min_eig, rtol=0, atol=eig_atol)
    # the padding stayed zero, and the invariants of the active block are those of the unpadded run
    act = active_params(pp, prob, s2.params)
    back = embed_params(pp, prob, act)
    for a, b in zip(jax.tree_util.tree_leaves(s2.params), jax.tree_util.tree_leaves(back)):
        np.testing.assert_allclose(a, b, rtol=0, atol=0)
    for a, b in zip(_grams(s1.params), _grams(act)):
        scale = max(1.0, float(np.max(np.abs(np.asarray(a)))))
        np.testing.assert_allclose(b, a, rtol=0, atol=max(ATOL, gram_rtol * scale))


@settings(max_examples=1)
@given(sized_problems((4, 3, 4), biases=(0.0,)))
def test_padded_ce_solve_equals_unpadded(case):
    prob, seed = case
    _check_exact(prob, (4, 3, 4), seed)


@pytest.mark.slow
@settings(max_examples=12)
@given(sized_problems((4, 3, 4), losses=tuple(LOSSES)))
def test_padded_solve_equals_unpadded_every_family(case):
    prob, seed = case
    _check_exact(prob, (4, 3, 4), seed)


@pytest.mark.slow
@settings(max_examples=6)
@given(sized_problems((6, 2, 8), losses=tuple(LOSSES)))
def test_padded_solve_equals_unpadded_wider_bucket(case):
    prob, seed = case
    _check_exact(prob, (6, 2, 8), seed)


@pytest.mark.slow
@settings(max_examples=6)
@given(sized_problems((8, 2, 24), losses=("ce", "ls", "focal", "mse")))
@example(case=(ufm.UFM(K=4, n=1, d=1, loss=ufm.CrossEntropy(), lam_W=3e-3, lam_H=5e-3, lam_b=0.0), 1))
def test_padded_lanczos_certificate_equals_the_unpadded_dense_one(case):
    # a bucket above PADDED_DENSE_MAX parameters certifies by Lanczos; the unpadded problem by dense eigh
    from ufm.solvers._core import second_order_method

    prob, seed = case
    pp = pad(prob, (8, 2, 24))
    x0 = pp.init(jax.random.PRNGKey(seed))
    assert second_order_method(pp, x0, "auto") == "lanczos"
    # the two solves certify by different methods (Lanczos against dense eigh), so after a saddle
    # escape their paths part; each stops within its KKT tolerance (1e-12) of the minimizer, which
    # moves a Gram entry of size G by about 2 sqrt(G) times that: measured 4.5e-12 G at K = 4, d = 1.
    # Lanczos stops when its Ritz residual is within 1e-11 max(1, ||T||) (ufm.solvers._certify
    # RITZ_TOL), so its min_eig meets eigh's to that bound (measured 1.0e-11 at K = 2, d = 2), not to
    # 1e-12. Values, result and order are still held to 1e-12.
    _check_exact(prob, (8, 2, 24), seed, gram_rtol=1e-10, eig_atol=1e-10)


@given(st.integers(1, 10_000))
def test_bucket_size_is_the_next_ladder_rung(size):
    b = bucket_size(size)
    rungs = sorted({2**k for k in range(16)} | {3 * 2**k for k in range(15)})
    assert b == min(r for r in rungs if r >= size)
    assert size <= b <= max(1, 3 * size // 2 + 1)


def test_objective_reads_only_the_active_block():
    prob = ufm.UFM(K=3, n=(2, 1, 2), d=2, loss=ufm.LabelSmoothing(0.2), lam_b=1e-3)
    pp = pad(prob, (4, 3, 3))
    x = pp.init(jax.random.PRNGKey(1))
    junk = jax.tree_util.tree_map(lambda a: a + jax.random.normal(jax.random.PRNGKey(2), a.shape), x)
    mask = pp.active_mask(x)
    dirty = jax.tree_util.tree_map(lambda a, j, m: jnp.where(m > 0, a, j), x, junk, mask)
    np.testing.assert_allclose(pp.objective(dirty), pp.objective(x), rtol=0, atol=1e-14)
    g = jax.grad(pp.objective)(dirty)
    for gi, m in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(mask)):
        assert np.all(np.asarray(gi)[np.asarray(m) == 0] == 0.0)
    np.testing.assert_allclose(pp.objective(x), prob.objective(active_params(pp, prob, x)), rtol=0, atol=1e-14)


@pytest.mark.parametrize("make, match", [
    (lambda: ufm.DeepUFM(K=3, n=2, widths=(3, 3), loss=ufm.MSE()), "DeepUFM"),
    (lambda: ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(encoding=2 * np.eye(3) - 1)), "encoding"),
    (lambda: ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), nonneg=True), "nonneg"),
])
def test_families_without_a_padded_form_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        pad(make())


def test_bucket_too_small_is_refused():
    with pytest.raises(ValueError, match="bucket"):
        pad(ufm.UFM(K=5, n=2, d=3, loss=ufm.CrossEntropy()), (4, 2, 4))
    with pytest.raises(ValueError, match="d must be whole numbers in"):
        PaddedUFM(K_max=4, n_max=2, d_max=4, loss=ufm.CrossEntropy(), K=3.0, n=2.0, d=5.0)


def test_default_bucket_rounds_every_size_up():
    assert bucket_of(5, (3, 7), 9) == (6, 8, 12)


# ---- sweeps over sizes ---------------------------------------------------------------------------

BASE = ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)


def _one_device():
    return jax.local_devices()[:1]


def test_size_axes_are_sweepable_and_checked():
    assert {"K", "n", "d"} <= set(ufm.sweeps.sweepable_fields(BASE))
    imbalanced = ufm.UFM(K=3, n=(1, 2, 3), d=2, loss=ufm.CrossEntropy())
    assert [s for s in ufm.sweeps.sweepable_fields(imbalanced) if s in "Knd"] == ["d"]
    with pytest.raises(ValueError, match="'K'.*imbalanced"):
        ufm.sweeps.parse_grid(imbalanced, {"K": [2, 3]})
    with pytest.raises(ValueError, match="'K'.*whole numbers >= 2"):
        ufm.sweeps.parse_grid(BASE, {"K": [1, 3]})
    with pytest.raises(ValueError, match="'d'.*whole numbers"):
        ufm.sweeps.parse_grid(BASE, {"d": [1.5, 3]})
    with pytest.raises(ValueError, match="'n'.*imbalanced"):
        ufm.sweeps.parse_grid(imbalanced, {"n": [1, 2]})
    with pytest.raises(ValueError, match="nonneg"):
        ufm.sweeps.parse_grid(ufm.UFM(K=3, n=2, d=2, loss=ufm.CrossEntropy(), nonneg=True), {"K": [2, 3]})
    with pytest.raises(ValueError, match="certify='global'"):
        ufm.sweep(BASE, {"K": [2, 3]}, certify="global")


def test_sweep_over_sizes_compiles_once_per_bucket():
    from ufm.sweeps import _kernel

    before = _kernel.solve_chunk._cache_size()
    # every point in the bucket (4, 2, 4): one program for the whole grid
    ds = ufm.sweep(BASE, {"K": [2, 3, 4], "d": [1, 4]}, chunk=6, devices=_one_device())
    assert _kernel.solve_chunk._cache_size() == before + 1
    # another base problem (sizes, hyper-parameters) and other sizes in the same bucket, with the
    # same axes and chunk length (what the program is compiled for): nothing compiles
    other = ufm.UFM(K=4, n=2, d=1, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=3e-3, lam_b=1e-3)
    ds2 = ufm.sweep(other, {"K": [4, 2], "d": [2, 4, 1]}, chunk=6, devices=_one_device())
    assert _kernel.solve_chunk._cache_size() == before + 1
    assert bool(ds.done.all()) and bool(ds2.done.all())
    assert ds.G_H.shape[-2:] == (4, 4)
    for K in (2, 3, 4):  # the Grams are zero beyond each point's K; a certified point has a phase
        G = ds.G_H.sel(K=K).values
        assert np.all(G[..., K:, :] == 0) and np.all(G[..., :, K:] == 0)
    ok = ds.result.values == 0
    assert np.all(ds.phase_name.values[ok] != "uncertified")


def test_imbalanced_sweep_over_d_keeps_the_class_counts():
    # the padded chunk keeps the per-class counts: each point is the imbalanced UFM of its d
    base = ufm.UFM(K=3, n=(4, 2, 1), d=2, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    ds = ufm.sweep(base, {"d": [1, 3]}, chunk=2, devices=_one_device())
    for d in (1, 3):
        prob = ufm.UFM(K=3, n=(4, 2, 1), d=d, loss=base.loss, lam_W=5e-3, lam_H=5e-3)
        sol = ufm.minimize(prob, seed=0, throw=False)
        np.testing.assert_allclose(ds.sel(d=d, seed=0).value_random.values, sol.value, rtol=0, atol=ATOL)


@pytest.mark.slow
def test_sweep_over_sizes_records_the_unpadded_solves():
    grid = {"K": [2, 3, 4], "d": [1, 3]}
    ds = ufm.sweep(BASE, grid, chunk=6, devices=_one_device())
    for K in grid["K"]:
        for d in grid["d"]:
            prob = ufm.UFM(K=K, n=2, d=d, loss=BASE.loss, lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
            sol = ufm.minimize(prob, seed=0, throw=False)
            point = ds.sel(K=K, d=d, seed=0)
            # the random start of the sweep is ufm.minimize(prob, seed=0)
            np.testing.assert_allclose(point.value_random.values, sol.value, rtol=0, atol=ATOL)
            if int(point.result) == 0:
                Wg = sol.params.W @ sol.params.W.T
                if not bool(point.warm_won):
                    np.testing.assert_allclose(point.G_W.values[:K, :K], Wg, rtol=0, atol=1e-9)
