"""Rows that say no more than they check: strict bounds (a tie fails), count rows (never a check),
certificates of the prediction's own solve, random draws that were not checked, and the census
counts of the spurious-minima entries."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
from proofs_check import verify
from proofs_check.catalog import duality, imbalanced_ce, landscape
from proofs_check.catalog.deep_relu import LOW_RANK
from proofs_check.theorem import STRICT_MARGIN, Citation, Theorem
from tests.helpers import examples

PROB = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)


def _toy(**changes) -> Theorem:
    """A theorem with one strict bound ``"v"`` and one plain bound ``"u"`` (no solve is run: the
    rows are built with :meth:`Theorem.compare`)."""
    base = dict(name="toy", citation=Citation("A", 2000, "V"), tag="derived", statement="toy",
                assumptions=lambda p: (True, ""), assemble=lambda p, ev: {"v": 1.0, "u": 1.0},
                instances=lambda: [PROB], measure=lambda p, params, names: {}, no_closed_form="toy",
                strict_upper_bounds=("v",), upper_bounds=("u",))
    return Theorem(**{**base, **changes})


def _rows(th, predicted, measured, converged=True):
    return {r["quantity"]: r for r in th.compare(PROB, predicted, measured,
                                                   {"grad_norm": 0.0, "converged": converged})}


@settings(max_examples=examples(20))
@given(p=st.floats(1e-6, 1e6), sign=st.sampled_from([1.0, -1.0]), margin=st.floats(1e-9, 0.5))
def test_a_tie_fails_a_strict_bound_and_passes_a_plain_one(p, sign, margin):
    th = _toy(strict_margin=(margin, "a margin for the test, well above rounding"))
    p = sign * p
    rows = _rows(th, {"v": p, "u": p}, {"v": p, "u": p})
    assert rows["v"]["kind"] == "strict bound" and not rows["v"]["passed"]
    assert rows["u"]["kind"] == "bound" and rows["u"]["passed"]
    # below by more than the margin passes; below by less fails
    assert _rows(th, {"v": p}, {"v": p - 2 * margin * abs(p)})["v"]["passed"]
    assert not _rows(th, {"v": p}, {"v": p - 0.5 * margin * abs(p)})["v"]["passed"]


def test_strict_bound_needs_a_scale_and_a_stated_margin():
    with pytest.raises(ValueError, match="zero prediction"):
        _rows(_toy(), {"v": 0.0}, {"v": -1.0})
    with pytest.raises(ValueError, match="strict_margin"):
        _toy(strict_margin=(1e-6, ""))
    with pytest.raises(ValueError, match="strict_margin"):
        _toy(strict_margin=(0.0, "a reason long enough to be read"))
    with pytest.raises(ValueError, match="both"):
        _toy(upper_bounds=("v",))
    margin, reason = STRICT_MARGIN
    assert 0 < margin < 1 and len(reason) > 20


def test_strict_claims_use_strict_bounds():
    """The claims that say 'below' are strict bound rows, with a margin and its reason."""
    for th in (LOW_RANK, duality.DUAL_VALID):
        assert th.strict_upper_bounds and len(th.strict_margin[1]) > 20
    assert not LOW_RANK.upper_bounds  # "low rank beats DNC": no tie may pass


def test_summary_counts_strict_bounds_apart_and_counts_are_not_checks():
    th = _toy(counts=("n",))
    rows = th.compare(PROB, {"v": 1.0, "u": 1.0}, {"v": 0.5, "u": 1.0, "n": 3.0},
                      {"grad_norm": 0.0, "converged": True})
    kinds = [r["kind"] for r in rows]
    assert kinds.count("strict bound") == 1 and kinds.count("bound") == 1 and kinds.count("count") == 1
    count = [r for r in rows if r["kind"] == "count"][0]
    assert count["predicted"] is None and count["measured"] == 3.0
    s = verify.summarize(rows)[0]
    assert s["strict bound"] == 1 and s["bound"] == 1 and s["count"] == 1
    text = verify.format_summary(rows)
    head, line = text.splitlines()[0].split(), text.splitlines()[2].split()
    assert line[head.index("checks")] == "2" and line[head.index("strict")] == "1"
    assert "| strict bounds |" in verify.format_markdown(rows)


def test_the_prediction_solve_certificate_fails_when_it_did_not_converge(monkeypatch):
    """The separated side of minority collapse (and the convex entry) predict with the class-level
    program: its convergence is a certificate row, failing when the program did not converge."""
    th = imbalanced_ce.MINORITY_SEPARATED
    prob = th.instances()[0]
    real = imbalanced_ce.solve_class_level
    for max_iters, expect in ((100_000, True), (2, False)):
        monkeypatch.setattr(imbalanced_ce, "solve_class_level", lambda p, m=max_iters: real(p, max_iters=m))
        ev = th.evaluator(prob)
        pred = th.assemble(prob, ev)
        rows = th.compare(prob, pred, pred, {"grad_norm": 0.0, "converged": True}, ev.certificates)
        cert = [r for r in rows if r["quantity"] == imbalanced_ce.CLASS_LEVEL_CERTIFICATE]
        assert len(cert) == 1 and cert[0]["kind"] == "certificate" and cert[0]["passed"] is expect


def _never_inside(th):
    return dataclasses.replace(th, instances=lambda: [], assumptions=lambda p: (False, "never inside"),
                               random_instance=lambda rng: PROB)


def test_random_draws_not_checked_are_reported(capsys, monkeypatch):
    rejected = _never_inside(_toy(name="rejected"))
    absent = dataclasses.replace(_toy(name="absent"), instances=lambda: [])
    rows = verify.run([rejected, absent], random=3, prove=False)
    counts = {r["theorem"]: r for r in rows if r["quantity"] == verify.RANDOM_QUANTITY}
    assert counts["rejected"]["measured"] == 0 and counts["rejected"]["predicted"] == 3
    assert "never inside" in counts["rejected"]["instance"]
    assert "no random_instance" in counts["absent"]["instance"]
    assert all(r["kind"] == "count" for r in counts.values())
    short = verify.random_shortfall(rows)
    assert len(short) == 2 and "0 of 3" in short[0]
    monkeypatch.setattr(verify, "all_theorems", lambda: [rejected])
    assert verify.main(["--random", "2", "--quiet"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Fewer than --random 2 random instances checked for 1 theorem(s): rejected: 0 of 2" in out


def test_all_random_draws_checked_say_so():
    th = dataclasses.replace(_toy(name="inside"), instances=lambda: [], random_instance=lambda rng: PROB,
                             assumptions=lambda p: (True, ""), solve=lambda p: (None, {"grad_norm": 0.0,
                                                                                       "converged": True}),
                             measure=lambda p, params, names: {"v": 0.5, "u": 1.0})
    rows = verify.run([th], random=2, prove=False)
    count = [r for r in rows if r["quantity"] == verify.RANDOM_QUANTITY][0]
    assert count["measured"] == count["predicted"] == 2 and not verify.random_shortfall(rows)


# ---- the spurious-minima census rows -----------------------------------------------------------
KINDS = ("minimum", "degenerate", "saddle", "not stationary")


@settings(max_examples=examples(30))
@given(data=st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0.0, 2.0), st.floats(0.0, 1.0)),
                     min_size=1, max_size=12))
def test_spurious_counts_only_strict_minima_above_a_shown_reference(data):
    kind = np.array([k for k, _, _ in data])
    value = np.array([v for _, v, _ in data])
    gap = np.array([g for _, _, g in data])
    cen = SimpleNamespace(kind=kind, value=value, gap=gap)
    names = [landscape.SPURIOUS, landscape.STRICT_COUNT, landscape.DEGENERATE_COUNT, landscape.SPURIOUS_COUNT,
             landscape.REFERENCE]
    for reference in ("certificate", "best found"):
        out = landscape._spurious_measure(reference)(None, cen, names)
        if reference == "certificate":
            ref = np.max(value - gap)
        else:
            stationary = kind != "not stationary"
            ref = np.min(value[stationary]) if stationary.any() else np.inf
        above = value > ref + landscape.SPURIOUS_TOL * max(1.0, abs(ref))
        assert out[landscape.REFERENCE] == ref
        assert out[landscape.SPURIOUS_COUNT] == np.sum((kind == "minimum") & above)
        assert out[landscape.SPURIOUS] == float(np.any((kind == "minimum") & above))
        assert out[landscape.STRICT_COUNT] == np.sum(kind == "minimum")
        assert out[landscape.DEGENERATE_COUNT] == np.sum(kind == "degenerate")


def test_spurious_entries_report_their_counts_and_never_use_the_predicted_minimum():
    for th in (landscape.NONNEG_SPURIOUS, landscape.DEEP_SPURIOUS):
        assert {landscape.STRICT_COUNT, landscape.DEGENERATE_COUNT, landscape.SPURIOUS_COUNT} <= set(th.counts)
    with pytest.raises(ValueError, match="reference"):
        landscape.spurious_reference(SimpleNamespace(kind=np.array(["minimum"]), value=np.ones(1),
                                                     gap=np.ones(1)), "predicted")
    with pytest.raises(ValueError, match="global_certificate"):
        landscape.spurious_reference(SimpleNamespace(kind=np.array(["minimum"]), value=np.ones(1),
                                                     gap=np.full(1, np.nan)), "certificate")
