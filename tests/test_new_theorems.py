"""Citations that say what each source shows, the corrected tags, and the deep linear CE entries
(Garrod & Keating 2025): properties computed from the formulas, never numbers pasted from a run."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import ufm
from proofs_check.catalog import (
    all_theorems, deep_ce_landscape, deep_linear, deep_relu, imbalanced_ce, landscape, mse, seli,
)
from proofs_check.catalog._common import kappa
from proofs_check.theorem import Citation

# ---- the Citation record -------------------------------------------------------------------------


def test_a_four_field_citation_prints_as_before():
    c = Citation("A & B", 2020, "ICML", "2001.00001")
    assert str(c) == "A & B (ICML 2020, arXiv 2001.00001)"
    assert c.short == "A & B 2020, arXiv 2001.00001"


@given(where=st.text("abc 1.", min_size=1, max_size=8), what=st.text("xyz ", min_size=1, max_size=12))
def test_where_what_and_also_are_printed(where, what):
    other = Citation("C", 2019, "PNAS", what="an asymptotic statement")
    c = Citation("A & B", 2020, "ICML", "2001.00001", where=where, what=what, also=(other,))
    text = str(c)
    assert where in text and what in text and "an asymptotic statement" in text
    assert text.index(what) < text.index("C (PNAS 2019)")
    assert c.short == "A & B 2020, arXiv 2001.00001; C 2019"


# ---- the corrected tags and sources ----------------------------------------------------------------


def _authors(th):
    return [th.citation.authors] + [c.authors for c in th.citation.also]


def test_no_entry_cites_a_source_for_what_it_does_not_show():
    sources = {th.name: th.source for th in all_theorems()}
    # the deep linear reduction, its bound and its minimizers: Dang et al. and Garrod & Keating
    for th in (deep_linear.DEEP_LINEAR,):
        assert "2301.00437" in th.source and "2404.06106" in th.source and "2305.13165" not in th.source
    # the jump and the origin: ufm's own analysis, not a paper's statement
    for th in (deep_linear.JUMP, deep_linear.ORIGIN):
        assert th.tag == "derived" and _authors(th)[0].startswith("ufm")
    # Súkeník et al. 2024 is a NeurIPS paper; the SRG candidate is ufm's, hence derived
    assert deep_relu.LOW_RANK.citation.venue == "NeurIPS" and deep_relu.LOW_RANK.tag == "derived"
    assert "ufm's" in deep_relu.LOW_RANK.citation.what
    # the two-layer ReLU entry at K = 3 is a numerical finding
    assert deep_relu.TWO_LAYER.tag == "derived" and "numerical finding" in deep_relu.TWO_LAYER.statement.lower()
    # the finite minority threshold and the class-level program: Hong & Ling first, Fang et al. too
    for th in (imbalanced_ce.MINORITY_COLLAPSED, imbalanced_ce.MINORITY_SEPARATED, imbalanced_ce.CONVEX_IMBALANCED):
        assert _authors(th)[0] == "Hong & Ling" and th.citation.venue == "JMLR"
        assert any("Fang" in a for a in _authors(th))
    # the MSE landscape check with a regularized bias is ufm's extension
    assert landscape.MSE_NO_SPURIOUS.tag == "derived" and "extension" in landscape.MSE_NO_SPURIOUS.citation.what
    assert mse.MSE_REG_BIAS.citation.authors == "Massion, Massart & Makhlouf"
    assert not any("(imbalanced" in s for s in sources.values())


def test_the_regularized_bias_defaults_sit_on_both_sides_of_the_threshold():
    sides = set()
    for prob in mse.MSE_REG_BIAS.instances():
        kk = prob.K * kappa(prob)
        sides.add(float(prob.lam_b) < kk / (1 - kk))
    assert sides == {True, False}


# ---- Garrod & Keating: the square beats DNC (K = 4, L = 3) -------------------------------------------
_f = {name: sp.lambdify(sorted(e.free_symbols, key=lambda s: s.name), e, "numpy")
      for name, e in deep_ce_landscape.EXPRESSIONS.items()}  # arguments: K, Lambda, m, x (sorted by name)


@given(lam=st.floats(1e-14, 1e2), u=st.floats(1e-3, 60.0))
def test_the_square_is_below_every_nonzero_dnc_point(lam, u):
    """f_sq(2u) < f_DNC(u) at K = 4, m = 4 (the proof's claim) on drawn Lambda and u: the gap is at
    least the penalty part (6 - 4 sqrt 2) Lambda^(1/4) sqrt(u), up to rounding."""
    dnc = _f["f_DNC(x)"](4.0, lam, 4.0, u)
    sq = _f["f_square(x)"](lam, 4.0, 2 * u)
    penalty_gap = (6 - 4 * np.sqrt(2)) * lam**0.25 * np.sqrt(u)
    assert dnc - sq >= penalty_gap - 1e-12 * max(1.0, abs(dnc))


@given(lams=st.lists(st.floats(1e-3, 5e-2), min_size=4, max_size=4), x=st.floats(0.1, 20.0),
       pattern=st.sampled_from(["dnc", "square"]))
def test_family_points_are_balanced_and_have_the_stated_logits(lams, x, pattern):
    prob = ufm.DeepUFM(K=4, n=2, widths=(4, 4, 4), loss=ufm.CrossEntropy(), lam_W=lams[1:], lam_H=lams[0],
                       activation="linear")
    p = deep_ce_landscape.family_point(prob, pattern, x)
    B = deep_ce_landscape._patterns(4)[pattern]
    assert np.allclose(B @ B, B, rtol=0, atol=1e-12)  # an orthogonal projector
    Hbar = np.asarray(p.H)[:, ::2]  # n = 2: each class mean appears twice
    logits = np.asarray(p.Ws[2]) @ np.asarray(p.Ws[1]) @ np.asarray(p.Ws[0]) @ Hbar
    assert np.allclose(logits, x * B, rtol=0, atol=1e-10 * x)
    mus = [2 * lams[0]] + lams[1:]
    weighted = [mu * float(np.sum(np.asarray(f) ** 2)) for mu, f in zip(mus, [Hbar, *p.Ws])]
    assert np.allclose(weighted, weighted[0], rtol=1e-12, atol=0)


def test_outside_the_regime_is_refused_with_a_reason():
    big = ufm.DeepUFM(K=4, n=1, widths=(4, 4, 4), loss=ufm.CrossEntropy(), lam_W=0.5, lam_H=0.5, activation="linear")
    ok, why = deep_ce_landscape.DNC_CRITICAL.assumptions(big)
    assert not ok and "small lam" in why
    k3 = ufm.DeepUFM(K=3, n=1, widths=(3, 3, 3), loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3, activation="linear")
    ok, why = deep_ce_landscape.DNC_NOT_GLOBAL.assumptions(k3)
    assert not ok and "K = 4, L = 3" in why


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_random_instances_pass_both_entries(seed):
    rng = np.random.default_rng(seed)
    for th in deep_ce_landscape.THEOREMS:
        prob = th.random_instance(rng)
        if not th.assumptions(prob)[0]:
            continue
        rows = th.check(prob)
        assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]


# ---- SELI: the simplex-encoded labels are the max-margin logits -------------------------------------
@given(counts=st.lists(st.integers(1, 500), min_size=2, max_size=8))
def test_the_sel_certificate_holds_for_any_counts(counts):
    """The dual certificate M = (P D P)^(+1/2): M (P D P) M = P, the classifier Gram squares to
    P D P, and every off-diagonal entry of M is <= 0 (the multipliers of the KKT argument)."""
    geo = seli.sel_geometry(counts)
    k = len(counts)
    P = np.eye(k) - np.ones((k, k)) / k
    A = P @ np.diag(np.asarray(counts, float)) @ P
    scale = float(np.max(counts))
    assert np.allclose(geo["M"] @ A @ geo["M"], P, rtol=0, atol=1e-9)
    assert np.allclose(geo["W_gram"] @ geo["W_gram"], A, rtol=0, atol=1e-9 * scale)
    off = geo["M"][~np.eye(k, dtype=bool)]
    assert np.all(off <= 1e-12 * np.abs(geo["M"]).max())


def test_a_point_with_unit_margins_has_nuclear_norm_at_least_the_sel_value():
    """Weak duality on explicit points: random logit matrices scaled to unit minimum margin never
    have a nuclear norm below tr (P D P)^(1/2)."""
    rng = np.random.default_rng(0)
    counts = (5, 1, 1)
    y = np.repeat(np.arange(3), counts)
    value = seli.sel_geometry(counts)["value"]
    for _ in range(200):
        Z = rng.normal(size=(3, y.size)) + 3 * (np.arange(3)[:, None] == y[None, :])
        own = Z[y, np.arange(y.size)]
        gaps = np.where(np.arange(3)[:, None] == y[None, :], np.inf, own[None, :] - Z)
        if gaps.min() <= 0:
            continue
        assert np.linalg.norm(Z / gaps.min(), "nuc") >= value * (1 - 1e-12)
