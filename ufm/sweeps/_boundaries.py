r"""Phase boundaries: placed by bisection on the phase of certified minimizers, compared with
predicted thresholds.

Predicted thresholds come in as numbers (``proofs_check.boundaries`` computes them from the
theorem catalog); ``ufm`` never imports the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from ufm._internal.deprecation import renamed_keywords
from ufm.problems import Problem
from ufm.sweeps._grid import parse_grid
from ufm.sweeps._kernel import solve_options, solve_points
from ufm.sweeps._phases import order_parameter, phase_of

__all__ = ["locate_boundary", "compare_thresholds"]

EXACT_PHASES = ("zero", "simplex_etf", "orthogonal_frame")  # phases with an order parameter


def _phase_at(prob, path, x, starts, opts):
    """Phase and class-mean Gram of the lowest certified of ``starts`` solves at ``path = x``."""
    rec = solve_points(prob, (path,), np.array([[x]]), starts, opts)
    rec = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], rec)
    best = int(np.argmin(np.where(rec.result == 0, rec.value, np.inf)))
    if rec.result[best] != 0:
        raise RuntimeError(f"locate_boundary: no certified solve at {path}={x:.17g}")
    G_H, G_W = rec.G_H[best], rec.G_W[best]
    return phase_of(G_H, G_W, prob.counts, prob.d), G_H


@renamed_keywords(seeds="starts")
def locate_boundary(prob: Problem, field: str, lo: float, hi: float, *, starts: int = 2,
                    rtol: float = 1e-3, refine: bool = True, gtol: float = 1e-10) -> dict:
    r"""Place the boundary between two phases along one field, by bisection and extrapolation.

    1. Bisection (geometric when ``lo > 0``) on the atlas phase of the certified minimizer
       until the bracket is ``rtol`` wide relative to its centre.
    2. Refinement (``refine=True``): when one side's phase is exact (``zero``, ``simplex_etf``,
       ``orthogonal_frame``), its order parameter :math:`m` (:func:`ufm.sweeps.order_parameter`:
       the largest squared class-mean norm, or the distance to the ETF / frame) vanishes there
       and grows away from the boundary; six certified solves on the other side, at distances
       :math:`j\,\delta` (:math:`\delta` the bracket width), are fitted by a cubic in the field and
       the boundary is its root in the bracket:

       .. math:: m(x) \approx \sum_{i \le 3} c_i (x - x_0)^i, \qquad x^* : m(x^*) = 0.

    Args:
        prob: the base problem.
        field: a sweepable field (:func:`ufm.sweeps.sweepable_fields`).
        lo: the search interval; the phases at its ends must differ.
        hi: the search interval; the phases at its ends must differ.
        starts: random starts per solve (seeds ``0 .. starts - 1``; the lowest certified value is
            kept). The default is 2, not the sweep's 1: a bisection step has no warm start from a
            neighbour, and one local minimizer named with the wrong phase moves the bracket for
            good. (Deprecated name: ``seeds``.)
        rtol: relative bracket width at which bisection stops.
        refine: extrapolate the order parameter (else return the bracket's centre).
        gtol: certified-solve tolerance.

    Returns:
        ``{"field", "boundary", "bracket": (a, b), "phases": (phase_at_a, phase_at_b),
        "method": "bisection" | "bisection+order-parameter fit", "solves"}``.

    Raises:
        ValueError: bad arguments, or equal phases at ``lo`` and ``hi`` (nothing to locate).
    """
    parse_grid(prob, {field: [lo, hi]})
    if not lo < hi:
        raise ValueError(f"lo must be < hi, got lo={lo}, hi={hi}")
    opts = solve_options(prob, jax.local_devices(), gtol=gtol)

    def phase(x):
        return _phase_at(prob, field, x, starts, opts)

    pa, pb = phase(lo)[0], phase(hi)[0]
    if pa == pb:
        raise ValueError(f"locate_boundary: the phase is {pa!r} at both {field}={lo:g} and "
                         f"{field}={hi:g}; widen the interval")
    a, b, solves = _bisect(phase, pa, float(lo), float(hi), rtol)
    out = {"field": field, "boundary": 0.5 * (a + b), "bracket": (a, b), "phases": (pa, pb),
           "method": "bisection", "solves": solves + 2}
    exact = [p for p in EXACT_PHASES if p in (pa, pb)]
    if refine and exact:
        x = _order_parameter_root(phase, exact[0], exact[0] == pa, a, b)
        if x is not None:
            out.update(boundary=x, method="bisection+order-parameter fit", solves=solves + 8)
    return out


def _bisect(phase, pa, a, b, rtol):
    """Shrink ``[a, b]`` (phase ``pa`` at ``a``, another at ``b``) to ``rtol`` relative width;
    returns ``(a, b, solves)``."""
    solves, geometric = 0, a > 0
    while (b - a) > rtol * abs(0.5 * (a + b)):
        m = math.sqrt(a * b) if geometric else 0.5 * (a + b)
        solves += 1
        a, b = (m, b) if phase(m)[0] == pa else (a, m)  # invariant: phase(a) == pa != phase(b)
    return a, b, solves


def _order_parameter_root(phase, exact, exact_at_a, a, b):
    """The root near ``[a, b]`` of a cubic fitted to the order parameter of the ``exact`` phase,
    sampled at six points on the other side of the bracket (where it is nonzero); None if none."""
    sign = 1.0 if exact_at_a else -1.0
    edge, delta = (b, b - a) if sign > 0 else (a, b - a)
    xs = edge + sign * delta * np.arange(1, 7)
    ms = [order_parameter(exact, phase(float(x))[1]) for x in xs]
    coef = np.polynomial.polynomial.polyfit(xs - edge, ms, 3)
    roots = [r.real + edge for r in np.polynomial.polynomial.polyroots(coef)
             if abs(r.imag) < 1e-12 * delta]
    inside = [r for r in roots if a - delta <= r <= b + delta]
    if not inside:
        return None
    return float(min(inside, key=lambda r: abs(r - 0.5 * (a + b))))


def compare_thresholds(measured: Mapping | Sequence[Mapping], predicted: Mapping[str, float]) -> list[dict]:
    r"""Measured boundaries against predicted thresholds.

    .. math::

        \mathrm{rel\_error} = \frac{|x_\mathrm{measured} - x_\mathrm{predicted}|}{|x_\mathrm{predicted}|}

    Args:
        measured: a :func:`locate_boundary` result or a list of them.
        predicted: ``{field: predicted threshold}`` (for the theorem catalog's thresholds use
            ``proofs_check.boundaries``; ``ufm`` does not import the catalog).

    Returns:
        One record per measured boundary whose field has a prediction: ``field``, ``measured``,
        ``predicted``, ``rel_error``, ``phases``.
    """
    measured = [measured] if isinstance(measured, Mapping) else list(measured)
    rows = []
    for m in measured:
        if m["field"] not in predicted:
            continue
        p = float(predicted[m["field"]])
        rows.append({"field": m["field"], "measured": m["boundary"], "predicted": p,
                     "rel_error": abs(m["boundary"] - p) / abs(p), "phases": m["phases"]})
    return rows
