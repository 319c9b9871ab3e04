"""proofs_check.custom: a loss as a SymPy expression of p, proved and lambdified."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from tests.helpers import examples
from proofs_check.catalog.custom_losses import POLY1, POLY1_ETF
from proofs_check.custom import SymbolicLoss, kap, p
from proofs_check.symbols import K
from proofs_check.theorem import Proof


def poly1_by_hand(z, y, eps):
    logp = jax.nn.log_softmax(z)[y]
    return -logp + eps * (1.0 - jnp.exp(logp))


def test_lambdified_loss_is_the_expression():
    rng = np.random.default_rng(0)
    Z, y = jnp.asarray(4.0 * rng.standard_normal((5, 9))), jnp.asarray(rng.integers(0, 5, 9))
    for e in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(POLY1.loss(eps=e)(Z, y), ufm.CustomLoss(poly1_by_hand, eps=e)(Z, y), rtol=1e-14)
    assert type(POLY1.loss(eps=0.2)) is type(POLY1.loss())  # one class: new eps, no recompilation


@settings(max_examples=examples(2))  # about 3 s an example
@given(frac=st.one_of(st.floats(0.05, 0.95), st.floats(1.05, 1.8)), e=st.floats(0.0, 1.0), K=st.sampled_from([3, 5]),
       lam_b=st.sampled_from([None, 0.0, 1e-2]))
def test_symbolic_prediction_equals_the_numeric_reduction(frac, e, K, lam_b):
    """Outside the 5% band around the threshold (at it the minimizer is degenerate)."""
    k0 = (K + e) / K**2
    lw = lh = frac * k0 / math.sqrt(2)
    prob = ufm.UFM(K=K, n=2, d=K, loss=POLY1.loss(eps=e), lam_W=lw, lam_H=lh, lam_b=lam_b)
    g, thr, value = POLY1.closed_form(prob)
    num = ufm.etf_prediction(prob)
    assert abs(thr - num.kappa_threshold) <= 1e-12 * thr
    assert abs(value - num.value) <= 1e-12 * value
    assert abs(g - num.g) <= 1e-12 * max(1.0, g)
    assert (g == 0.0) == num.zero


def test_every_expression_feeds_the_prediction():
    """Changing the loss expression changes what is predicted (one source of truth)."""
    eps = sp.Symbol("eps", real=True)
    other = SymbolicLoss(-sp.log(p) + eps * (1 - p) / 2, {"eps": 1.0}, "poly1_half")
    prob = ufm.UFM(K=4, n=2, d=4, loss=POLY1.loss(), lam_W=1e-2, lam_H=1e-2)
    prob2 = ufm.UFM(K=4, n=2, d=4, loss=other.loss(), lam_W=1e-2, lam_H=1e-2)
    assert abs(POLY1.closed_form(prob)[0] - other.closed_form(prob2)[0]) > 1e-3
    assert abs(other.closed_form(prob2)[2] - ufm.etf_prediction(prob2).value) <= 1e-12


def test_a_wrong_stationary_point_is_refuted():
    K = sp.Symbol("K", positive=True)
    wrong = sp.sqrt(1 - K * kap)  # the right one is sqrt(1 - (K-1) kappa)
    ok, residual = Proof("wrong p*", lambda: POLY1.exact(POLY1.dphi_in_p).subs(p, wrong)).run()
    assert not ok and residual != "0"


def test_all_rows_proved_and_the_theorem_lists_them():
    names = [r["quantity"] for r in POLY1_ETF.prove()]
    assert all(r["passed"] for r in POLY1_ETF.prove())
    assert any("convex" in q for q in names) and any("p*(kappa_0)" in q for q in names)


def test_nonconvex_loss_is_not_claimed_convex():
    brier = SymbolicLoss((1 - p) ** 2, {}, "brier_true")
    assert not brier.convex()  # q(p) = 2(1-3p)(p-1) changes sign at p = 1/3
    prob = ufm.UFM(K=4, n=2, d=4, loss=brier.loss(), lam_W=1e-2, lam_H=1e-2)
    num = ufm.etf_prediction(prob)  # the numeric supremum is above the g -> 0 limit: a first-order jump
    assert num.kappa_threshold > float(brier.threshold.subs(K, 4)) * (1 + 1e-6)


@pytest.mark.parametrize("params,match", [({}, "missing"), ({"eps": 1.0, "x": 2.0}, "unused")])
def test_parameters_must_match_the_expression(params, match):
    with pytest.raises(ValueError, match=match):
        SymbolicLoss(-sp.log(p) + sp.Symbol("eps") * (1 - p), params if "eps" in params else params, "bad")
