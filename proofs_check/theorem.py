r"""The record type of the catalog: a theorem, its assumptions, its SymPy closed forms, its check.

A :class:`Theorem` ties together

- a citation and a tag (``"paper"``: the published statement, notation adapted; ``"derived"``:
  derived for ufm's canonical objective and confirmed numerically; see
  ``shared/theory/README.md``),
- its assumptions, a predicate on a :class:`ufm.UFM` that returns ``(ok, reason)``,
- SymPy expressions of the predicted scalars (``expressions``), which the numeric evaluator
  ``predict`` evaluates (through ``sympy.lambdify``) and assembles into invariants (values, norms,
  Gram matrices, bias, eigenvalues),
- symbolic proofs (:class:`Proof`): each returns a SymPy expression that must simplify to zero
  (for example the derivative of the reduced objective at the claimed point), or a boolean,
- a check that solves the problem numerically (by default :func:`ufm.minimize`, float64,
  certificate ``1e-12``) and compares every predicted invariant with the measured one.

Rows of the report (``ufm verify``) are dicts with the keys of ``ARCHITECTURE.md``: theorem,
source, instance, quantity, predicted, measured, rel_error, passed (plus ``tag``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.closed_forms import rel_error

__all__ = ["Citation", "Proof", "Theorem", "rel_error", "minimize_solver"]

DEFAULT_TOL = 1e-8
GTOL = 1e-12


@dataclass(frozen=True)
class Citation:
    """Where a result comes from."""

    authors: str
    year: int
    venue: str
    arxiv: str | None = None

    def __str__(self) -> str:
        arxiv = f", arXiv {self.arxiv}" if self.arxiv else ""
        return f"{self.authors} ({self.venue} {self.year}{arxiv})"

    @property
    def short(self) -> str:
        arxiv = f", arXiv {self.arxiv}" if self.arxiv else ""
        return f"{self.authors} {self.year}{arxiv}"


@dataclass(frozen=True)
class Proof:
    """A symbolic claim checked by SymPy.

    ``residual()`` returns a SymPy expression that must simplify to exactly ``0``, a tuple of
    such expressions (each must vanish), or a Python / SymPy boolean that must be ``True``.
    ``claim`` says in words what is shown.
    """

    claim: str
    residual: Callable[[], Any]

    @staticmethod
    def _simplify(expr):
        simplified = sp.simplify(expr)
        if simplified != 0:  # a second, stronger attempt on expressions with logs and roots
            simplified = sp.simplify(sp.expand_log(sp.radsimp(sp.together(simplified)), force=True))
        return simplified

    def run(self) -> tuple[bool, str]:
        """``(proved, simplified residual as text)``."""
        out = self.residual()
        if isinstance(out, (bool, sp.logic.boolalg.BooleanAtom)):
            return bool(out), str(out)
        parts = [self._simplify(e) for e in (out if isinstance(out, tuple) else (out,))]
        ok = all(p == 0 for p in parts)
        return ok, "0" if ok else ", ".join(map(str, parts))


def minimize_solver(prob, *, restarts: int = 2):
    """The default numerical solve: ``ufm.minimize`` with certificate ``1e-12`` and two starts.

    Returns ``(params, {"grad_norm": value, "converged": bool})``.
    """
    sol = ufm.minimize(prob, gtol=GTOL, restarts=restarts, throw=False)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


def describe(prob) -> str:
    """A compact, human-readable instance description (UFM and DeepUFM)."""
    if hasattr(prob, "describe"):  # problem families that describe themselves (ufm.RegressionUFM, ...)
        return prob.describe()
    if hasattr(prob, "widths"):
        lams = np.asarray(prob.lams)
        lam = f"{lams[0]:.4g}" if np.all(lams == lams[0]) else str(np.round(lams, 5).tolist())
        rf = ", relu_features" if prob.relu_features else ""
        return (f"K={prob.K} n={prob.n} widths={list(prob.widths)} {prob.activation}{rf} "
                f"{type(prob.loss).__name__} lam_W={lam} lam_H={float(prob.lam_H):.4g}")
    loss = prob.loss
    lname = type(loss).__name__
    if isinstance(loss, ufm.LabelSmoothing):
        lname += f"({float(loss.alpha):.4g})"
    elif isinstance(loss, ufm.Focal):
        lname += f"({float(loss.gamma):.4g})"
    elif isinstance(loss, ufm.MSE) and loss.encoding is not None:
        lname += f"(E {loss.encoding.shape[0]}x{loss.encoding.shape[1]})"
    bias = "none" if prob.lam_b is None else f"{float(prob.lam_b):.4g}"
    n = prob.n if prob.balanced else list(prob.counts)
    extra = ", H>=0" if prob.nonneg else ""
    return (f"K={prob.K} n={n} d={prob.d} {lname} lam_W={float(prob.lam_W):.4g} "
            f"lam_H={float(prob.lam_H):.4g} lam_b={bias}{extra}")


def _tolist(v):
    return np.asarray(v, dtype=float).tolist()


@dataclass(frozen=True)
class Theorem:
    """One closed-form statement about the minimizers of a model, and how to check it.

    Attributes:
        name: short name, e.g. "CE UFM: simplex ETF and its scale".
        citation: a :class:`Citation`.
        tag: ``"paper"`` or ``"derived"``.
        statement: the statement in one or two sentences, in ufm's canonical scaling.
        assumptions: ``prob -> (ok, reason)``; ``reason`` says which assumption fails.
        predict: ``prob -> {quantity: float | ndarray}``, the numeric evaluator of the closed forms.
        instances: ``() -> [prob, ...]``, representative instances (the default ``ufm verify`` run).
        random_instance: ``numpy.random.Generator -> prob`` inside the assumptions (``--random``).
        expressions: ``{name: sympy expression}``, the symbolic closed forms ``predict`` evaluates
            (shown in reports and docs).
        proofs: symbolic :class:`Proof` s.
        solve: ``prob -> (params, info)`` with ``info["grad_norm"]`` and ``info["converged"]``.
        measure: ``(prob, params, names) -> {name: value}``, the same invariants on a solution.
        tolerances: per-quantity relative tolerances (default ``1e-8``).
        upper_bounds: quantities that pass when ``measured <= predicted`` (a solver value below a
            candidate's, never an equality); when every quantity is such a bound the certificate
            row is reported but not required (a bound holds at any explicit point).
        slow: left out of the default ``ufm verify`` run (``--all`` includes it).
    """

    name: str
    citation: Citation
    tag: str
    statement: str
    assumptions: Callable
    predict: Callable
    instances: Callable
    measure: Callable
    random_instance: Callable | None = None
    expressions: dict = field(default_factory=dict)
    proofs: tuple = ()
    solve: Callable = minimize_solver
    tolerances: dict = field(default_factory=dict)
    upper_bounds: tuple = ()
    slow: bool = False

    def __post_init__(self):
        if self.tag not in ("paper", "derived"):
            raise ValueError(f"tag must be 'paper' or 'derived', got tag={self.tag!r}")

    @property
    def source(self) -> str:
        return self.citation.short

    def _row(self, instance, quantity, predicted, measured, err, passed):
        return {"theorem": self.name, "source": self.source, "tag": self.tag, "instance": instance,
                "quantity": quantity, "predicted": predicted, "measured": measured,
                "rel_error": err, "passed": bool(passed)}

    def check(self, prob) -> list[dict]:
        """Solve ``prob`` and compare every predicted invariant; one row per quantity.

        Raises ``ValueError`` when ``prob`` is outside the assumptions (with the reason).
        """
        ok, why = self.assumptions(prob)
        if not ok:
            raise ValueError(f"{self.name}: instance outside the assumptions: {why}")
        predicted = self.predict(prob)
        params, info = self.solve(prob)
        measured = self.measure(prob, params, list(predicted))
        inst = describe(prob)
        rows = []
        for q, p in predicted.items():
            if q in self.upper_bounds:
                err = (float(measured[q]) - float(p)) / abs(float(p))
                passed = float(measured[q]) <= float(p) * (1 + 1e-12)
            else:
                err = rel_error(measured[q], p)
                passed = err <= self.tolerances.get(q, DEFAULT_TOL)
            rows.append(self._row(inst, q, _tolist(p), _tolist(measured[q]), err, passed))
        g = float(info["grad_norm"])
        bounds_only = set(predicted) <= set(self.upper_bounds)
        label = "certificate grad_norm (reported only: bounds)" if bounds_only else "certificate grad_norm"
        rows.append(self._row(inst, label, 0.0, g, g, info["converged"] or bounds_only))
        return rows

    def prove(self) -> list[dict]:
        """Run the symbolic proofs; one row per proof (``predicted`` 0, ``measured`` the simplified
        residual as a float when it is a number, else ``None``)."""
        rows = []
        for proof in self.proofs:
            ok, text = proof.run()
            try:
                measured = float(sp.sympify(text)) if text not in ("True", "False") else float(not ok)
            except (TypeError, ValueError, sp.SympifyError):
                measured = None
            rows.append(self._row("symbolic (SymPy)", proof.claim, 0.0, measured, 0.0 if ok else None, ok))
        return rows
