"""The default instances of every threshold theorem sit on both sides of its threshold.

A theorem whose statement has a threshold (the zero solution beyond ``kappa = 1/K``, an SVT that
shrinks a direction to 0, minority collapse, the deep jump, ...) declares it in
``Theorem.thresholds`` (:class:`proofs_check.theorem.Threshold`: a signed distance, the band the
solver cannot decide, the side(s) the statement covers). A check run only on one side could not
see a wrong prediction on the other, so here:

- every default instance is outside the band (the assumptions exclude it: a degenerate minimizer);
- a statement of both sides has default instances with a positive and with a negative distance;
- a statement of one side has its instances on that side, and its ``partner`` (the catalog entry
  that covers the other side, with the same distance) has instances on the other side.
"""

from __future__ import annotations

import numpy as np
import pytest

import ufm
from proofs_check.catalog import all_theorems
from proofs_check.theorem import Citation, Theorem, Threshold

ufm.enable_x64()

THEOREMS = all_theorems()
BY_NAME = {th.name: th for th in THEOREMS}
WITH_THRESHOLD = [th for th in THEOREMS if th.thresholds]


def _distances(threshold: Threshold, instances) -> np.ndarray:
    return np.concatenate([threshold.distances(p) for p in instances] + [np.zeros(0)])


def side_problems(th: Theorem, by_name: dict) -> list[str]:
    """What is wrong with the sides of ``th``'s default instances (empty when nothing is)."""
    out = []
    instances = th.instances()
    for t in th.thresholds:
        d = _distances(t, instances)
        if d.size == 0:
            out.append(f"{th.name}: no default instance has the threshold {t.what!r}")
            continue
        inside = d[np.abs(d) <= t.band]
        if inside.size:
            out.append(f"{th.name}: distances {inside.tolist()} within the band {t.band} of {t.what!r}")
        above, below = bool(np.any(d > t.band)), bool(np.any(d < -t.band))
        if t.covers == "both":
            if not (above and below):
                out.append(f"{th.name}: every default instance on one side of {t.what!r} "
                           f"(distances {np.round(d, 4).tolist()})")
            continue
        own = d > 0 if t.covers == "above" else d < 0
        if not np.all(own):
            out.append(f"{th.name}: states the side {t.covers!r} of {t.what!r} only, but an instance has "
                       f"distances {np.round(d, 4).tolist()}")
        partner = by_name.get(t.partner)
        if partner is None:
            out.append(f"{th.name}: partner {t.partner!r} is not in the catalog")
            continue
        other = _distances(t, partner.instances())
        want = other < -t.band if t.covers == "above" else other > t.band
        if other.size == 0 or not np.any(want):
            out.append(f"{th.name}: its partner {t.partner!r} has no instance on the other side of {t.what!r} "
                       f"(distances {np.round(other, 4).tolist()})")
    return out


@pytest.mark.parametrize("th", WITH_THRESHOLD, ids=[th.name[:50] for th in WITH_THRESHOLD])
def test_default_instances_on_both_sides(th):
    assert side_problems(th, BY_NAME) == []


@pytest.mark.parametrize("th", WITH_THRESHOLD, ids=[th.name[:50] for th in WITH_THRESHOLD])
def test_default_instances_inside_the_assumptions(th):
    """The distances are those of instances the theorem checks (each passes its assumptions)."""
    for p in th.instances():
        ok, why = th.assumptions(p)
        assert ok, (th.name, why)


def test_partners_point_back():
    """A one-sided threshold's partner covers the opposite side of a threshold with the same words."""
    for th in WITH_THRESHOLD:
        for t in th.thresholds:
            if t.covers == "both":
                continue
            back = [u for u in BY_NAME[t.partner].thresholds if u.what == t.what]
            assert back and all(u.covers in ("above", "below") and u.covers != t.covers for u in back), th.name


def test_statements_with_a_threshold_declare_it():
    """A theorem that names a threshold, a zero solution, a collapse to 0 or a jump declares it: a
    new threshold entry cannot skip the check above by leaving the field empty."""
    words = ("threshold", "zero solution", "collapse to 0", "collapses to 0", "jump", "beyond")
    for th in THEOREMS:
        text = (th.name + " " + th.statement).lower()
        named = [w for w in words if w in text]
        assert th.thresholds or not named, f"{th.name}: names {named} in its statement but declares no threshold"


# ---- the check itself fails where it should ----------------------------------------------------
def _fake(name, instances, covers="both", partner="", band=0.05):
    return Theorem(name=name, citation=Citation("A", 2000, "V"), tag="derived", statement="s",
                   assumptions=lambda p: (True, ""), assemble=lambda p, ev: {}, instances=lambda: instances,
                   measure=lambda p, params, names: {},
                   thresholds=(Threshold(lambda p: p - 1.0, "p - 1", band=band, covers=covers, partner=partner),))


def test_one_side_fails():
    assert side_problems(_fake("t", [0.5, 0.7]), {}) != []
    assert side_problems(_fake("t", [0.5, 1.5]), {}) == []


def test_band_fails():
    assert side_problems(_fake("t", [0.5, 1.02]), {}) != []


def test_one_sided_needs_its_partner_on_the_other_side():
    below = _fake("below", [0.5], covers="below", partner="above")
    above_ok, above_wrong = _fake("above", [1.5], covers="above", partner="below"), _fake("above", [0.8],
                                                                                       covers="above",
                                                                                       partner="below")
    assert side_problems(below, {"above": above_ok}) == []
    assert side_problems(below, {"above": above_wrong}) != []
    assert side_problems(below, {}) != []
    assert side_problems(_fake("below", [0.5, 1.5], covers="below", partner="above"), {"above": above_ok}) != []


def test_threshold_record_validates():
    with pytest.raises(ValueError, match="covers"):
        Threshold(lambda p: 0.0, "x", covers="left")
    with pytest.raises(ValueError, match="partner"):
        Threshold(lambda p: 0.0, "x", covers="above")
    with pytest.raises(ValueError, match="partner"):
        Threshold(lambda p: 0.0, "x", partner="other")
    with pytest.raises(ValueError, match="thresholds"):
        _fake("t", [1.5]).__class__(**{**_fake("t", [1.5]).__dict__, "thresholds": (lambda p: 0.0,)})
