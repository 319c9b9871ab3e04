r"""The verdict on the simplex-ETF prediction: certified solves from several starts, held against it.

:func:`etf_verdict` solves a balanced UFM with :func:`ufm.minimize` (certificate ``gtol``, second
order checked by the smallest Hessian eigenvalue) from ``starts`` random points and from the ETF
point of :func:`ufm.etf_params`, and compares the best certified value with
:func:`ufm.etf_prediction`:

- ``"ETF optimal"``: the best value equals the prediction to ``rtol`` (relative) and a solution
  with that value classifies as a simplex ETF (rows of ``W`` and centred class means, by
  :mod:`ufm.geometry`), or as zero when the prediction is the zero solution;
- ``"ETF not optimal"``: some certified solution is lower than the prediction by more than
  ``rtol``; the record holds its geometry and the margin;
- ``"inconclusive"``: no start was certified, or the values agree but no solution with that value
  is an ETF (the minimizer is not unique), with the reason.

For a loss with a proven lower bound (CE, label smoothing, MSE: :func:`ufm.global_certificate`)
the record also holds the global gap of the chosen solution, and "ETF optimal" with a gap
``<= rtol max(1, |f|)`` is a proof that the ETF is the global minimizer. Without one (focal,
custom losses) "ETF optimal" means: no certified solution from these starts beats the ansatz.
"""

from __future__ import annotations

from typing import NamedTuple

from ufm import geometry
from ufm._internal.validation import check_finite_positive, check_int
from ufm.etf._prediction import ETFPrediction, etf_params, etf_prediction
from ufm.problems import UFM
from ufm.solvers import Solution, global_certificate, minimize

__all__ = ["ETFVerdict", "etf_verdict"]

_MIN_EIG_TOL = 1e-8  # relative to max(1, lambda_max): a second-order point up to round-off


class ETFVerdict(NamedTuple):
    """What :func:`etf_verdict` found.

    Attributes:
        verdict: ``"ETF optimal"``, ``"ETF not optimal"`` or ``"inconclusive"``.
        prediction: the :class:`ufm.ETFPrediction`.
        solution: the best certified :class:`ufm.Solution` (lowest value; among ties, an ETF).
        margin: ``prediction.value - solution.value``: by how much the solver beats the ansatz
            (``<= rtol * max(1, |value|)`` in magnitude when the ETF is optimal).
        rows: :func:`ufm.geometry.structure_of_rows` of the solution's ``W``.
        means: :func:`ufm.geometry.structure_of_means` of the solution's features.
        values: the value of every start (random starts first, the ETF start last; ``nan`` where
            a start was not certified).
        certified: how many starts were certified (first and second order).
        message: one line that explains the verdict.
        global_gap: ``f(solution) - lower bound`` from :func:`ufm.global_certificate` where the
            family has a proven bound (``nan`` otherwise): the verdict is then a global statement.
    """

    verdict: str
    prediction: ETFPrediction
    solution: Solution | None
    margin: float
    rows: geometry.Structure | None
    means: geometry.Structure | None
    values: tuple
    certified: int
    message: str
    global_gap: float = float("nan")

    @property
    def optimal(self) -> bool:
        """Whether the verdict is ``"ETF optimal"``."""
        return self.verdict == "ETF optimal"


def _certified(sol: Solution) -> bool:
    if not sol.converged or sol.hessian_eigs is None:
        return False
    lo, hi = sol.hessian_eigs
    return lo >= -_MIN_EIG_TOL * max(1.0, abs(hi))


def _is_etf(prob, sol, pred) -> tuple[bool, geometry.Structure, geometry.Structure]:
    rows = geometry.structure_of_rows(sol.params.W)
    means = geometry.structure_of_means(sol.params.H, prob.labels, prob.K)
    want = "zero" if pred.zero else "simplex_etf"
    return rows.kind == want and means.kind == want, rows, means


def _solves(prob, pred, starts, seed, gtol, max_steps):
    runs = [minimize(prob, seed=seed + s, gtol=gtol, max_steps=max_steps, hessian=True, throw=False)
            for s in range(starts)]
    runs.append(minimize(prob, params0=etf_params(prob, pred, seed=seed), gtol=gtol, max_steps=max_steps,
                         hessian=True, throw=False))
    return runs


def etf_verdict(prob: UFM, *, starts: int = 4, seed: int = 0, rtol: float = 1e-8, gtol: float = 1e-12,
                max_steps: int = 10_000) -> ETFVerdict:
    r"""Is the simplex ETF the minimizer? Certified solves against :func:`ufm.etf_prediction`.

    .. math::

        \text{margin} = \phi_\kappa(g^*) - \min_{\text{certified starts}} f(W, H, b), \qquad
        \text{ETF optimal} \iff |\text{margin}| \le \text{rtol}\cdot\max(1, |\phi_\kappa(g^*)|)
        \text{ and the solution is a simplex ETF}.

    Main arguments:
        prob: a balanced :class:`ufm.UFM` (the assumptions of :func:`ufm.etf_prediction`).
        starts: random starts (seeds ``seed .. seed + starts - 1``); the ETF point of the
            prediction is always one more start.

    Other arguments:
        seed: first seed. rtol: relative agreement of values (default ``1e-8``).
        gtol: certificate tolerance of each solve (default ``1e-12``, tighter than the solvers'
            ``1e-10``: the verdict compares values to ``rtol = 1e-8`` and sorts near-ties, so each
            certified value must be accurate well below that). max_steps: first-stage cap.

    Returns:
        An :class:`ETFVerdict`; ``verdict.optimal`` is ``verdict.verdict == "ETF optimal"``.

    Raises:
        ValueError: bad arguments or a problem outside the assumptions of the prediction.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375); Zhou et al., NeurIPS 2022 (arXiv 2210.02192).
    """
    starts = check_int("starts", starts, 1)
    rtol = check_finite_positive("rtol", rtol)
    pred = etf_prediction(prob)
    runs = _solves(prob, pred, starts, int(seed), gtol, max_steps)
    ok = [r for r in runs if _certified(r)]
    values = tuple(r.value if _certified(r) else float("nan") for r in runs)
    if not ok:
        return ETFVerdict("inconclusive", pred, None, float("nan"), None, None, values, 0,
                          f"no start was certified (results: {[r.result.name for r in runs]}); "
                          "try more starts or a larger max_steps")
    tol = rtol * max(1.0, abs(pred.value))
    best_value = min(r.value for r in ok)
    ties = [r for r in ok if r.value <= best_value + tol]
    checked = [(r,) + _is_etf(prob, r, pred) for r in ties]
    sol, is_etf, rows, means = next((c for c in checked if c[1]), checked[0])
    margin = pred.value - sol.value
    if margin > tol:
        verdict, msg = "ETF not optimal", (
            f"a certified solution beats the ETF ansatz by {margin:.6g} ({margin / abs(pred.value):.3g} "
            f"relative): W rows {rows.kind} (rank {rows.rank}), class means {means.kind} (rank {means.rank})")
    elif margin < -tol:
        verdict, msg = "inconclusive", (
            f"the best certified value is above the prediction by {-margin:.3g}: the ETF start did not "
            "certify; try a larger max_steps")
    elif is_etf:
        agree = abs(margin) / max(1.0, abs(pred.value))
        verdict, msg = "ETF optimal", (
            f"best certified value agrees with the prediction to {agree:.1e} and the solution is "
            f"{'zero' if pred.zero else 'a simplex ETF'} ({len(ok)} of {len(runs)} starts certified)")
    else:
        verdict, msg = "inconclusive", (
            f"values agree ({abs(margin):.3g}) but the solution is not {'zero' if pred.zero else 'an ETF'} "
            f"(W rows {rows.kind}, means {means.kind}): the minimizer is not unique")
    gap = _global_gap(prob, sol)
    if gap == gap:  # a proven bound exists
        proved = gap <= tol
        msg += (f"; global gap {gap:.2g}: " + ("proved globally optimal" if proved else
                                               "not proved globally optimal (gap above rtol)"))
    return ETFVerdict(verdict, pred, sol, float(margin), rows, means, values, len(ok), msg, gap)


def _global_gap(prob, sol) -> float:
    """The global gap of ``sol`` where ufm has a proven lower bound, else ``nan``."""
    try:
        return float(global_certificate(prob, sol.params).gap)
    except ValueError:  # no bound for this family (focal, custom losses): said in the docstring
        return float("nan")


