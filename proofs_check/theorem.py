r"""The record type of the catalog: a theorem, its assumptions, its SymPy closed forms, its check.

A :class:`Theorem` ties together

- a citation and a tag (``"paper"``: the published statement, notation adapted; ``"derived"``:
  derived for ufm's canonical objective and confirmed numerically; see
  ``docs/theory.md``),
- its assumptions, a predicate on a problem that returns ``(ok, reason)``,
- SymPy expressions of the predicted scalars (``expressions``): **the single source of the
  numbers**. :meth:`Theorem.predict` lambdifies them (an :class:`Evaluator`) and hands them to
  ``assemble``, which only builds invariants (values, norms, Gram matrices, bias, eigenvalues)
  from the evaluated scalars. Replacing an expression (``dataclasses.replace(th,
  expressions=...)``) changes the prediction. Entries with no closed form say so in
  ``no_closed_form``, naming the independent solver their prediction comes from.
- proofs (:class:`Proof`) of three kinds, reported apart: ``"proof"`` (a symbolic argument: a
  SymPy expression that simplifies to exactly 0, or an exact boolean, for symbolic parameters),
  ``"definition"`` (a change of variables or a restated definition: shown, never counted as a
  proof) and ``"sample"`` (an exact check at finitely many sample points, e.g. ``K = 2..5``),
- ``assumed``: what the statement relies on without a proof here (a published theorem, a lemma
  argued in prose),
- a check that solves the problem numerically (by default :func:`ufm.minimize`, float64,
  certificate ``1e-12``) and compares every predicted invariant with the measured one.

Rows of the report (``ufm verify``) are dicts with the keys of ``ARCHITECTURE.md``: theorem,
source, instance, quantity, predicted, measured, rel_error, passed, plus ``tag`` and ``kind``
(``proof``, ``definition``, ``sample``, ``numeric``, ``bound`` (``measured <= predicted``),
``strict bound`` (``measured <= predicted (1 - margin)``: a claim that something is *below*),
``certificate`` (a solve's convergence, on the measured side or on the prediction's side:
:class:`SolveCertificate`) and ``count`` (a number reported, never compared: it cannot fail and
is never counted as a check)).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

import ufm
# problem_numbers, describe and rel_error are defined below the record type and are part of its
# public face
from proofs_check.measure import describe, problem_numbers, rel_error

__all__ = ["Citation", "Evaluator", "Proof", "SolveCertificate", "Theorem", "Threshold", "rel_error", "minimize_solver",
           "problem_numbers", "describe", "DEFAULT_TOL", "PROOF_KINDS", "GTOL", "STRICT_MARGIN"]

DEFAULT_TOL = 1e-8
GTOL = 1e-12
# The default margin of a strict bound, with its reason (Theorem.strict_margin).
STRICT_MARGIN = (1e-6, "1e-6 relative: two orders above the 1e-8 to which a certified solve (KKT 1e-12) "
                       "reproduces a closed-form value in this catalog, so a tie within what a solve can "
                       "resolve fails the row instead of passing a claim that says 'below'")
PROOF_KINDS = ("proof", "definition", "sample")
THRESHOLD_SIDES = ("both", "above", "below")
_KIND_LABEL = {"proof": "symbolic (SymPy)", "definition": "definition (not a proof)",
               "sample": "sample-point check (exact)"}


@dataclass(frozen=True)
class Citation:
    """Where a result comes from, and what that source shows for the entry.

    ``where`` names the statement in the paper (e.g. ``"Theorem 4.1, Corollary 4.2"``); ``what``
    says what the cited work shows when the entry goes beyond it (other scaling, an extension,
    ufm's own candidate or numbers); ``also`` lists further sources, each with its own ``what``.
    The three are optional: ``Citation(authors, year, venue, arxiv)`` is unchanged.
    """

    authors: str
    year: int
    venue: str
    arxiv: str | None = None
    where: str = ""
    what: str = ""
    also: tuple = ()

    def _one(self) -> str:
        arxiv = f", arXiv {self.arxiv}" if self.arxiv else ""
        where = f", {self.where}" if self.where else ""
        what = f": {self.what}" if self.what else ""
        return f"{self.authors} ({self.venue} {self.year}{arxiv}{where}){what}"

    def __str__(self) -> str:
        return "; ".join([self._one()] + [c._one() for c in self.also])

    @property
    def short(self) -> str:
        """``authors year, arXiv id`` (then the ``also`` sources, ``;``-separated): the ``source``
        column of the report."""
        arxiv = f", arXiv {self.arxiv}" if self.arxiv else ""
        return "; ".join([f"{self.authors} {self.year}{arxiv}"] + [c.short for c in self.also])


@dataclass(frozen=True)
class Proof:
    """A claim checked by SymPy.

    ``residual()`` returns a SymPy expression that must simplify to exactly ``0``, a tuple of
    such expressions (each must vanish), or a Python / SymPy boolean that must be ``True``.
    ``claim`` says in words what is shown; ``kind`` is ``"proof"`` (symbolic, for all values of
    the symbols), ``"definition"`` (restates a definition or a change of variables: reported, not
    counted as a proof) or ``"sample"`` (exact arithmetic at finitely many sample points).
    Floats are never rationalized (no ``nsimplify``): a residual that is not exactly zero fails.
    """

    claim: str
    residual: Callable[[], Any]
    kind: str = "proof"

    def __post_init__(self):
        if self.kind not in PROOF_KINDS:
            raise ValueError(f"Proof.kind must be one of {PROOF_KINDS}, got kind={self.kind!r}")

    @staticmethod
    def _simplify(expr):
        expr = sp.sympify(expr)
        if any(isinstance(a, sp.Float) for a in expr.atoms(sp.Number)):
            raise ValueError(f"a proof residual contains a float ({expr}); use exact numbers")
        simplified = sp.simplify(expr)
        if simplified != 0:  # a second, stronger attempt on expressions with logs and roots
            simplified = sp.simplify(sp.expand_log(sp.radsimp(sp.together(simplified)), force=True))
        if simplified != 0:
            simplified = sp.simplify(sp.powsimp(sp.powdenest(simplified, force=True), force=True))
        return simplified

    def run(self) -> tuple[bool, str]:
        """``(proved, simplified residual as text)``; computed once per Proof (theorems share
        proofs, e.g. the ETF penalty reduction)."""
        return _run_proof(self)

    def _run(self) -> tuple[bool, str]:
        out = self.residual()
        if isinstance(out, (bool, np.bool_, sp.logic.boolalg.BooleanAtom)):
            return bool(out), str(bool(out))
        parts = [self._simplify(e) for e in (out if isinstance(out, tuple) else (out,))]
        ok = all(p == 0 for p in parts)
        return ok, "0" if ok else ", ".join(map(str, parts))


@functools.lru_cache(maxsize=None)
def _run_proof(proof: Proof) -> tuple[bool, str]:
    return proof._run()


@functools.lru_cache(maxsize=4096)
def _lambdified(expr, names: tuple):
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    return sp.lambdify(syms, expr, modules="numpy"), tuple(s.name for s in syms)


@functools.lru_cache(maxsize=1024)
def _derivative(expr, var: str):
    sym = [s for s in expr.free_symbols if s.name == var]
    if not sym:
        raise ValueError(f"expression {expr} has no symbol {var!r}")
    return sp.diff(expr, sym[0])


class Evaluator:
    """Evaluates a theorem's SymPy expressions at a problem's numbers (float64, lambdified).

    ``ev(name, **values)`` evaluates ``expressions[name]``; each free symbol takes its value from
    ``values`` (by symbol name), else from another expression of the same name (evaluated
    recursively: ``kappa`` in ``g*`` is the expression ``kappa``), else from the problem's
    numbers (:func:`problem_numbers`). Array values broadcast. ``used`` records every expression
    evaluated, so that a test can require that each one feeds the prediction.
    """

    def __init__(self, expressions: dict, numbers: dict):
        self.expressions = expressions
        self.numbers = numbers
        self.used: set = set()
        self.certificates: dict = {}

    def certify(self, name: str, residual: float, converged: bool) -> None:
        """Record the convergence of a solve the prediction comes from (a
        :class:`SolveCertificate` under ``name``; :meth:`Theorem.check` reports it as a row)."""
        self.certificates[name] = SolveCertificate(float(residual), bool(converged))

    def __contains__(self, name):
        return name in self.expressions

    def get(self, name: str, default: Any = float("nan"), **values: Any) -> Any:
        """``self(name, **values)`` when the theorem has that expression, else ``default`` (a branch
        the theorem makes no prediction for, reached only when another expression was replaced)."""
        return self(name, **values) if name in self.expressions else default

    def diff(self, name: str, var: str, **values: Any) -> Any:
        """The derivative of expression ``name`` in its symbol ``var``, evaluated like ``__call__``
        (so replacing the expression replaces its derivative too)."""
        self.used.add(name)
        deriv = _derivative(sp.sympify(self.expressions[name]), var)
        return Evaluator({**self.expressions, name: deriv}, self.numbers)(name, **values)

    def __call__(self, name: str, **values):
        if name not in self.expressions:
            raise KeyError(f"no expression {name!r} (have {sorted(self.expressions)})")
        self.used.add(name)
        expr = sp.sympify(self.expressions[name])
        fn, names = _lambdified(expr, tuple(sorted(s.name for s in expr.free_symbols)))
        args = []
        for s in names:
            if s in values:
                args.append(values[s])
            elif s in self.expressions and s != name:
                args.append(self(s, **values))
            elif s in self.numbers:
                args.append(self.numbers[s])
            else:
                raise ValueError(f"expression {name!r}: no value for symbol {s!r}")
        out = np.asarray(fn(*args), dtype=float)
        return float(out) if out.ndim == 0 else out


def minimize_solver(prob: Any, *, starts: int = 2) -> tuple[Any, dict]:
    """The default numerical solve: ``ufm.minimize`` with certificate ``1e-12`` and two starts.

    Returns ``(params, {"grad_norm": value, "converged": bool})``.
    """
    sol = ufm.minimize(prob, gtol=GTOL, starts=starts, throw=False)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


def _tolist(v):
    return np.asarray(v, dtype=float).tolist()


@dataclass(frozen=True)
class SolveCertificate:
    """The convergence of a solve on the prediction's side (e.g. the class-level convex program
    whose invariants are the prediction): ``assemble`` records it with
    :meth:`Evaluator.certify`.

    It is not compared with a measurement: :meth:`Theorem.check` turns it into a ``certificate``
    row (predicted 0, measured ``residual``) that fails when ``converged`` is False, so a
    prediction from a solve that did not converge is never used silently.
    """

    residual: float
    converged: bool


@dataclass(frozen=True)
class Threshold:
    """A threshold of a statement: where the predicted minimizer changes form (the zero solution
    beyond ``kappa = 1/K``, a singular value shrunk to 0 by an SVT, a collapse, a jump).

    Contract: ``distance(prob)`` is the signed distance of ``prob`` to the threshold, a float or an
    array (one entry per quantity compared with the threshold: each singular value of an SVT, each
    class or direction with its own threshold; an empty array where ``prob`` has none), positive on
    the side ``what`` names, 0 on the threshold, scaled so that ``band`` is the half-width of the
    strip the solver cannot decide (a degenerate minimizer, two global ones) and the assumptions
    exclude (for ``value/threshold - 1`` with a 5% exclusion, ``band = 0.05``).

    ``covers`` says which side the statement covers: ``"both"``, or ``"above"`` (``distance > 0``)
    or ``"below"`` only, in which case ``partner`` names the catalog theorem that covers the other
    side with the same ``distance``. The default instances of a theorem with ``covers == "both"``
    sit on both sides, those of a one-sided theorem on its side and those of its partner on the
    other, every one outside the band (``tests/test_threshold_sides.py``).
    """

    distance: Callable[[Any], Any]
    what: str
    band: float = 0.05
    covers: str = "both"
    partner: str = ""

    def __post_init__(self):
        if self.covers not in THRESHOLD_SIDES:
            raise ValueError(f"Threshold.covers must be one of {THRESHOLD_SIDES}, got covers={self.covers!r}")
        if (self.covers == "both") == bool(self.partner):
            raise ValueError("Threshold.partner names the theorem of the other side exactly when covers is "
                             f"'above' or 'below' (got covers={self.covers!r}, partner={self.partner!r})")
        if not float(self.band) >= 0.0:
            raise ValueError(f"Threshold.band must be >= 0, got band={self.band!r}")

    def distances(self, prob: Any) -> np.ndarray:
        """``distance(prob)`` as a flat float array (empty where ``prob`` has no such threshold)."""
        return np.atleast_1d(np.asarray(self.distance(prob), dtype=float)).ravel()


@dataclass(frozen=True)
class Theorem:
    """One closed-form statement about the minimizers of a model, and how to check it.

    Attributes:
        name: short name, e.g. "CE UFM: simplex ETF and its scale".
        citation: a :class:`Citation`.
        tag: ``"paper"`` or ``"derived"``.
        statement: the statement in one or two sentences, in ufm's canonical scaling.
        assumptions: ``prob -> (ok, reason)``; ``reason`` says which assumption fails.
        assemble: ``(prob, ev) -> {quantity: float | ndarray}``: builds the predicted invariants
            from the evaluated expressions (``ev`` an :class:`Evaluator`; ``ev("g*")``). It holds
            no formula of its own beyond assembling matrices from the scalars.
        instances: ``() -> [prob, ...]``, representative instances (the default ``ufm verify`` run).
        measure: ``(prob, params, names) -> {name: value}``, the same invariants on a solution.
        random_instance: ``numpy.random.Generator -> prob`` inside the assumptions (``--random``).
        expressions: ``{name: sympy expression}``, the closed forms ``predict`` evaluates.
        proofs: :class:`Proof` s (of kinds proof, definition, sample).
        solve: ``prob -> (params, info)`` with ``info["grad_norm"]`` and ``info["converged"]``.
        tolerances: ``{quantity: (tolerance, reason)}`` for every quantity not compared at the
            default ``1e-8`` relative (a bare float is accepted but the tests require a reason).
            A prediction that is exactly zero is compared absolutely (``||measured|| <= tol``);
            upper bounds pass at ``measured <= predicted + 1e-12 |predicted|``.
        upper_bounds: quantities that pass when ``measured <= predicted`` (a value at an explicit
            point at or below a candidate's; a tie passes, so a claim that says *below* is a
            strict bound, never a plain one). A theorem whose
            quantities are all (non-strict) bounds emits no certificate row (a bound holds at any
            explicit point, so a certificate row could not fail for a reason that matters).
        strict_upper_bounds: quantities of a claim that says *below* (strictly): they pass when
            ``measured <= predicted - margin |predicted|`` (``measured <= predicted (1 - margin)``
            for a positive prediction), so a tie fails; reported as kind ``"strict bound"``. The
            prediction must be nonzero (a relative margin needs a scale).
        strict_margin: ``(margin, reason)`` of the strict bounds (default :data:`STRICT_MARGIN`);
            the reason says why the margin is well above the accuracy of the solve.
        counts: measured quantities reported as kind ``"count"`` rows (predicted ``None``, never
            compared, never failing, not counted as checks), e.g. how many end points of a census
            were degenerate and so left out of a count of strict minima.
        assumed: what the statement relies on without a proof here (shown in the report).
        no_closed_form: for entries whose prediction is not a closed form: the independent
            solver it comes from (e.g. the class-level convex program); empty otherwise.
        variables: ``prob -> {symbol name: number}`` (default :func:`problem_numbers`).
        slow: left out of the default ``ufm verify`` run (``--all`` includes it).
        thresholds: the :class:`Threshold` s of the statement (empty for a statement without one):
            each gives ``prob -> signed distance`` to a threshold, and the default ``instances``
            sit on both sides of it (or, for a statement of one side, on that side, its partner's on
            the other), outside the band the solver cannot decide.
    """

    name: str
    citation: Citation
    tag: str
    statement: str
    assumptions: Callable
    assemble: Callable
    instances: Callable
    measure: Callable
    random_instance: Callable | None = None
    expressions: dict = field(default_factory=dict)
    proofs: tuple = ()
    solve: Callable = minimize_solver
    tolerances: dict = field(default_factory=dict)
    upper_bounds: tuple = ()
    strict_upper_bounds: tuple = ()
    strict_margin: tuple = STRICT_MARGIN
    counts: tuple = ()
    assumed: tuple = ()
    no_closed_form: str = ""
    variables: Callable = problem_numbers
    slow: bool = False
    thresholds: tuple = ()

    def __post_init__(self):
        if self.tag not in ("paper", "derived"):
            raise ValueError(f"tag must be 'paper' or 'derived', got tag={self.tag!r}")
        margin, reason = self.strict_margin
        if not (0.0 < float(margin) < 1.0) or len(str(reason)) < 20:
            raise ValueError(f"strict_margin must be (margin in (0, 1), reason of 20+ characters), "
                             f"got strict_margin={self.strict_margin!r}")
        if not all(isinstance(t, Threshold) for t in self.thresholds):
            raise ValueError(f"thresholds must be a tuple of Threshold, got thresholds={self.thresholds!r}")
        both = set(self.upper_bounds) & set(self.strict_upper_bounds)
        if both:
            raise ValueError(f"a quantity is either a bound or a strict bound, got both for {sorted(both)}")

    @property
    def source(self) -> str:
        """The citation's short form (:attr:`Citation.short`), the report's ``source``."""
        return self.citation.short

    def evaluator(self, prob: Any) -> Evaluator:
        """An :class:`Evaluator` of this theorem's expressions at ``prob``'s numbers."""
        return Evaluator(self.expressions, self.variables(prob))

    def predict(self, prob: Any) -> dict:
        """The predicted invariants: the expressions, lambdified, assembled by ``assemble``."""
        return self.assemble(prob, self.evaluator(prob))

    def expressions_used(self, prob: Any) -> set:
        """Names of the expressions that :meth:`predict` evaluates on ``prob``."""
        ev = self.evaluator(prob)
        self.assemble(prob, ev)
        return set(ev.used)

    def tolerance(self, quantity: str) -> tuple[float, str]:
        """``(relative tolerance, reason)`` of a quantity (``(1e-8, "")`` by default)."""
        t = self.tolerances.get(quantity, DEFAULT_TOL)
        return (float(t), "") if np.ndim(t) == 0 and not isinstance(t, tuple) else (float(t[0]), str(t[1]))

    def _row(self, instance, quantity, predicted, measured, err, passed, kind):
        return {"theorem": self.name, "source": self.source, "tag": self.tag, "kind": kind,
                "instance": instance, "quantity": quantity, "predicted": predicted, "measured": measured,
                "rel_error": err, "passed": bool(passed)}

    def solve_and_measure(self, prob: Any, names: Iterable[str]) -> tuple[dict, dict]:
        """Solve ``prob`` and measure the invariants ``names``: ``(measured, info)``. ``names`` may
        be a prediction (a dict): its :meth:`measured_names` are measured."""
        names = self.measured_names(names) if isinstance(names, dict) else list(names)
        params, info = self.solve(prob)
        return self.measure(prob, params, names), info

    def measured_names(self, predicted: dict) -> list[str]:
        """The quantities to measure: every predicted one, then the :attr:`counts`."""
        return list(predicted) + [q for q in self.counts if q not in predicted]

    def _compare_one(self, q: str, p: Any, m: Any) -> tuple[float, bool, str]:
        """``(error, passed, kind)`` of one predicted quantity against its measurement."""
        if q in self.upper_bounds:
            err = (float(m) - float(p)) / abs(float(p))
            return err, float(m) <= float(p) + 1e-12 * abs(float(p)), "bound"  # a tie passes, any sign
        if q in self.strict_upper_bounds:
            if float(p) == 0.0:
                raise ValueError(f"{self.name}: strict bound {q!r} has a zero prediction "
                                 "(no scale for the margin)")
            err = (float(m) - float(p)) / abs(float(p))
            return err, float(m) <= float(p) - float(self.strict_margin[0]) * abs(float(p)), "strict bound"
        err = rel_error(m, p)
        return err, err <= self.tolerance(q)[0], "numeric"

    def compare(self, prob: Any, predicted: dict, measured: dict, info: dict,
                certificates: dict | None = None) -> list[dict]:
        """Rows comparing ``predicted`` with ``measured`` (one per quantity), the :attr:`counts`
        found in ``measured`` (kind ``count``), a ``certificate`` row per solve on the
        prediction's side (``certificates``: ``{name: SolveCertificate}``, from
        :meth:`Evaluator.certify`), and the certificate of the measuring solve."""
        inst = describe(prob)
        rows = []
        for q, p in predicted.items():
            err, passed, kind = self._compare_one(q, p, measured[q])
            rows.append(self._row(inst, q, _tolist(p), _tolist(measured[q]), err, passed, kind))
        for q in self.counts:
            if q in measured and q not in predicted:
                rows.append(self._row(inst, q, None, _tolist(measured[q]), None, True, "count"))
        for q, cert in (certificates or {}).items():
            r = float(cert.residual)
            rows.append(self._row(inst, q, 0.0, r, r, bool(cert.converged), "certificate"))
        if not set(predicted) <= set(self.upper_bounds):
            g = float(info["grad_norm"])
            rows.append(self._row(inst, "certificate grad_norm", 0.0, g, g, bool(info["converged"]), "certificate"))
        return rows

    def check(self, prob: Any) -> list[dict]:
        """Solve ``prob`` and compare every predicted invariant; one row per quantity.

        Raises ``ValueError`` when ``prob`` is outside the assumptions (with the reason).
        """
        ok, why = self.assumptions(prob)
        if not ok:
            raise ValueError(f"{self.name}: instance outside the assumptions: {why}")
        ev = self.evaluator(prob)
        predicted = self.assemble(prob, ev)
        measured, info = self.solve_and_measure(prob, predicted)
        return self.compare(prob, predicted, measured, info, ev.certificates)

    def prove(self) -> list[dict]:
        """Run the symbolic proofs; one row per proof (``predicted`` 0, ``measured`` the simplified
        residual as a float when it is a number, else ``None``; ``kind`` the proof's kind)."""
        rows = []
        for proof in self.proofs:
            ok, text = proof.run()
            try:
                measured = float(sp.sympify(text)) if text not in ("True", "False") else float(not ok)
            except (TypeError, ValueError, sp.SympifyError):
                measured = None
            rows.append(self._row(_KIND_LABEL[proof.kind], proof.claim, 0.0, measured, 0.0 if ok else None, ok,
                                  proof.kind))
        return rows
