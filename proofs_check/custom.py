r"""Bring your own loss, symbolically: a loss written as a SymPy expression in the true-class
probability ``p``, its ETF reduction derived and proved, its numbers lambdified from that expression.

For a loss ``l(p)`` of the true-class softmax probability (cross-entropy ``-log p``, PolyLoss
``-log p + eps (1 - p)``, ...), the simplex-ETF ansatz of a balanced UFM (see
:mod:`proofs_check.catalog.zhu2021`) gives ``p(g) = 1/(1 + (K-1) e^{-g})`` and

.. math::

    \phi(g) = l(p(g)) + (K-1)\kappa g, \qquad
    \phi'(g) = l'(p)\, p (1-p) + (K-1)\kappa \quad (dp/dg = p(1-p)),

    \phi''(g) = p(1-p)\, q(p), \qquad q(p) = l''(p)\, p(1-p) + l'(p)(1-2p).

:class:`SymbolicLoss` derives these with SymPy and, where SymPy can,

- solves ``phi'(g) = 0`` for ``p*`` in closed form (``g* = log((K-1) p*/(1-p*))``) and proves
  the stationarity by substitution;
- proves the threshold ``kappa_0 = -l'(1/K)/K^2`` (``phi'(0) = 0`` there, ``p*(kappa_0) = 1/K``);
- proves ``phi`` convex on ``g >= 0`` when ``q`` is a rational function of ``p`` with no sign
  change on ``(0, 1)`` (exact root counting, Sturm), so that ``kappa_0`` IS the zero threshold and
  ``g*`` the global minimizer. Otherwise the convexity row is absent and the threshold is the
  numeric supremum of :func:`ufm.etf_prediction` (the claim is not made).

The per-sample loss the solvers see is ``ufm.CustomLoss`` of the same expression, lambdified to
JAX with ``p = exp(log_softmax(z)_y)`` (and ``log p`` kept exact): one source of truth for the
solver, the prediction and the proofs. Parameters of the expression are SymPy symbols whose
values are given as numbers; proofs substitute their exact rational values.

References:
    Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the reduction; Zhou et al., NeurIPS 2022
    (arXiv 2210.02192), losses of ``p`` with ETF minimizers; Leng et al., ICLR 2022
    (arXiv 2204.12511), PolyLoss.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import jax
import numpy as np
import sympy as sp

import ufm
from proofs_check.measure import problem_numbers
from proofs_check.symbols import K, c_expr, g, kappa_expr
from proofs_check.theorem import Evaluator, Proof

__all__ = ["p", "kap", "SymbolicLoss"]

p = sp.Symbol("p", positive=True)  # true-class probability
kap = sp.Symbol("kappa", positive=True)
_s = sp.Symbol("s", negative=True)  # log p, so that -log(p) is evaluated as -s (no exp/log round trip)
_c = sp.Symbol("c", positive=True)  # the feature / classifier ratio h_k = c w_k (the expression "c")
p_of_g = 1 / (1 + (K - 1) * sp.exp(-g))
g_of_p = sp.log((K - 1) * p / (1 - p))  # the inverse of p_of_g: the logit gap at probability p
a2_of_g = (K - 1) * g / (K * _c)  # ||w_k||^2 on the ETF with logit gap g (g = c a^2 K/(K-1))


def _rational(v):
    return sp.nsimplify(v, rational=True) if not isinstance(v, sp.Basic) else v


@dataclass(frozen=True)
class SymbolicLoss:
    r"""A loss ``l(p)`` of the true-class probability, given as a SymPy expression.

    Args:
        expr: SymPy expression in :data:`p` and parameter symbols.
        params: ``{symbol name: number}`` for every other free symbol of ``expr``.
        name: short name (also names the :class:`ufm.CustomLoss` class).

    Example::

        from proofs_check.custom import SymbolicLoss, p
        poly = SymbolicLoss(-sp.log(p) + sp.Symbol("eps") * (1 - p), {"eps": 1.0}, "poly1")
        poly.proofs()        # stationarity, threshold, convexity
        prob = ufm.UFM(K=4, n=5, d=8, loss=poly.loss(), lam_W=5e-3, lam_H=5e-3)
        poly.predict(prob)   # numbers from the expression
    """

    expr: sp.Expr
    params: dict = field(default_factory=dict)
    name: str = "symbolic"

    def __post_init__(self):
        expr = sp.sympify(self.expr)
        object.__setattr__(self, "expr", expr)
        free = {s.name for s in expr.free_symbols} - {"p"}
        missing, extra = free - set(self.params), set(self.params) - free
        if missing or extra:
            raise ValueError(f"params must give a value to each parameter of the expression {sorted(free)}: "
                             f"missing {sorted(missing)}, unused {sorted(extra)}")
        object.__setattr__(self, "_fn", self._make_fn())
        object.__setattr__(self, "_roots", {})

    # ---- the expression and its derivatives (symbolic) ----------------------------------------
    @functools.cached_property
    def symbols(self) -> tuple:
        """The parameter symbols of the expression (every free symbol but ``p``), sorted by name."""
        return tuple(sorted((s for s in self.expr.free_symbols if s.name != "p"), key=lambda s: s.name))

    def exact(self, expr: sp.Expr | None = None, values: dict | None = None) -> sp.Expr:
        """``expr`` (default the loss) with the parameters replaced by exact rationals of ``values``
        (default ``params``)."""
        expr = self.expr if expr is None else expr
        values = self.params if values is None else values
        return expr.subs({s: _rational(values[s.name]) for s in self.symbols})

    @functools.cached_property
    def on_etf(self) -> sp.Expr:
        """``l(p(g))``: the loss of every sample on the ETF with logit gap ``g``."""
        return self.expr.subs(p, p_of_g)

    @functools.cached_property
    def phi(self) -> sp.Expr:
        """``phi(g) = l(p(g)) + (K-1) kappa g``."""
        return self.on_etf + (K - 1) * kap * g

    @functools.cached_property
    def dphi_in_p(self) -> sp.Expr:
        """``phi'(g)`` in terms of ``p``: ``l'(p) p (1-p) + (K-1) kappa``."""
        return sp.diff(self.expr, p) * p * (1 - p) + (K - 1) * kap

    @functools.cached_property
    def expressions(self) -> dict:
        """The expressions every number of :meth:`closed_form` and :meth:`predict` is evaluated
        from (an :class:`~proofs_check.theorem.Evaluator` resolves ``kappa`` and ``c`` inside the
        others by name): ``kappa = sqrt(n lam_W lam_H)``, ``c = sqrt(lam_W/(n lam_H))``, the
        ``threshold`` kappa_0, ``phi'(p)``, the gap ``g(p) = log((K-1)p/(1-p))``,
        ``||w_k||^2 = (K-1) g/(K c)`` and ``phi(g)``."""
        return {"kappa": kappa_expr, "c": c_expr, "threshold": self.threshold, "phi'(p)": self.dphi_in_p,
                "g(p)": g_of_p, "||w_k||^2": a2_of_g, "phi(g)": self.phi}

    @functools.cached_property
    def convexity_factor(self) -> sp.Expr:
        """``q(p) = l''(p) p(1-p) + l'(p)(1-2p)``; ``phi''(g) = p(1-p) q(p)``."""
        d1, d2 = sp.diff(self.expr, p), sp.diff(self.expr, p, 2)
        return sp.simplify(d2 * p * (1 - p) + d1 * (1 - 2 * p))

    @functools.cached_property
    def threshold(self) -> sp.Expr:
        """``kappa_0 = -l'(1/K)/K^2``, where ``phi'(0) = 0``."""
        return sp.simplify(-sp.diff(self.expr, p).subs(p, 1 / K) / K**2)

    def stationary_roots(self, values: dict | None = None) -> list:
        """Closed-form roots ``p(K, kappa, params)`` of ``phi' = 0`` (SymPy ``solve``), parameters
        symbolic, or exact rationals of ``values`` when given; ``[]`` when SymPy finds none."""
        key = None if values is None else tuple(sorted(values.items()))
        if key not in self._roots:
            expr = self.dphi_in_p if values is None else self.exact(self.dphi_in_p, values)
            try:
                roots = [self._stable(r) for r in sp.solve(sp.together(expr), p)]
            except (NotImplementedError, ValueError):
                roots = []
            self._roots[key] = roots
        return self._roots[key]

    @staticmethod
    def _stable(root):
        """The same root with its numerator rationalized (``(-b + sqrt(D))/(2a)`` becomes
        ``2c/(-b - sqrt(D))``), which does not cancel when ``a`` is tiny; kept only if SymPy proves
        the two forms equal."""
        other = 1 / sp.cancel(sp.radsimp(1 / root))
        return other if sp.simplify(other - root) == 0 else root

    def stationary_p(self, values: dict | None = None, K_value: int = 4,
                     frac: float = 0.5) -> sp.Expr | None:
        """The root that lies in ``(1/K, 1)`` at ``K = K_value``, ``kappa = frac * kappa_0`` (the ETF
        branch; the lowest ``phi`` if several do) and the parameter ``values`` (default ``params``):
        a root of the symbolic-parameter solve when one fits, else of the solve at exact ``values``;
        ``None`` if none does."""
        values = self.params if values is None else values
        at = {K: K_value, **{s: values[s.name] for s in self.symbols}}
        at[kap] = frac * float(self.threshold.subs(at))
        for roots in (self.stationary_roots(), self.stationary_roots(values)):
            best = None
            for r in roots:
                val = complex(sp.N(r.subs(at)))
                if abs(val.imag) < 1e-12 and 1.0 / K_value < val.real < 1:
                    gv = math.log((K_value - 1) * val.real / (1 - val.real))
                    phi = float(sp.N(self.phi.subs(at).subs(g, gv)))
                    if best is None or phi < best[0]:
                        best = (phi, r)
            if best is not None:
                return best[1]
        return None

    # ---- proofs ------------------------------------------------------------------------------
    def proofs(self) -> tuple:
        """The symbolic claims (see the module docstring); each residual must simplify to 0."""
        rows = [
            Proof(f"{self.name}: phi'(g) = l'(p) p(1-p) + (K-1) kappa on the ETF (chain rule, dp/dg = p(1-p))",
                  lambda: sp.diff(self.phi, g) - self.dphi_in_p.subs(p, p_of_g)),
            Proof(f"{self.name}: phi'(0) = 0 at kappa_0 = -l'(1/K)/K^2 = {self.exact(self.threshold)}",
                  lambda: self.dphi_in_p.subs(p, 1 / K).subs(kap, self.threshold)),
        ]
        root, convex = self.stationary_p(), self.convex()
        if root is not None:
            root = self.exact(root)
            rows.append(Proof(f"{self.name}: phi'(g*) = 0 at p* = {root} (g* = log((K-1)p*/(1-p*)))",
                              lambda: self.exact(self.dphi_in_p).subs(p, root)))
        if root is not None and convex:
            rows.append(Proof(f"{self.name}: p*(kappa_0) = 1/K (g* reaches 0 at the threshold)",
                              lambda: root.subs(kap, self.exact(self.threshold)) - 1 / K))
        if convex:
            rows.append(Proof(f"{self.name}: phi convex: q(p) = {self.exact(self.convexity_factor)} has no sign "
                              "change on (0, 1) and is positive inside (Sturm root count), so phi'' = p(1-p) q > 0",
                              lambda: self.convex()))
        return tuple(rows)

    def convex(self, values: dict | None = None, K_value: int | None = None) -> bool:
        """Exact check that ``q(p) > 0`` on ``(0, 1)`` (on ``(1/K, 1)``, i.e. ``g > 0``, for a given
        ``K_value``), parameters at ``values`` (default ``params``), when ``q`` is rational in ``p``;
        False when it has a sign change there or is not rational."""
        lo = sp.Integer(0) if K_value is None else sp.Rational(1, K_value)
        q = sp.together(self.exact(self.convexity_factor, values))
        num, den = sp.fraction(q)
        if not (num.is_polynomial(p) and den.is_polynomial(p)):
            return False
        for part in (num, den):
            poly = sp.Poly(part, p)
            if poly.is_zero:
                return False
            at_ends = int(poly.eval(lo) == 0) + int(poly.eval(1) == 0)
            if poly.degree() > 0 and poly.count_roots(lo, 1) - at_ends > 0:  # roots inside (lo, 1)
                return False
        return bool(q.subs(p, (lo + 1) / 2) > 0)

    # ---- numbers (lambdified from the same expressions) ----------------------------------------
    def _make_fn(self):
        in_s = sp.expand_log(self.expr.subs(p, sp.exp(_s)), force=True)
        f = sp.lambdify([_s, *self.symbols], in_s, modules="jax")
        names = [s.name for s in self.symbols]

        def per_sample(z, y, **params):
            return f(jax.nn.log_softmax(z)[y], *[params[n] for n in names])

        per_sample.__name__ = self.name
        return per_sample

    def loss(self, **values: float) -> ufm.CustomLoss:
        """The :class:`ufm.CustomLoss` of this expression (parameters default to ``params``)."""
        return ufm.CustomLoss(self._fn, self.name, **{**self.params, **values})

    def loss_values(self, loss: ufm.CustomLoss) -> dict:
        """``{parameter name: value}`` of a :class:`ufm.CustomLoss` built by :meth:`loss`."""
        return {s.name: float(getattr(loss, s.name)) for s in self.symbols}

    def closed_form(self, prob: ufm.UFM) -> tuple[float, float, float]:
        """``(g*, kappa_0, f*)`` at the instance's parameter values, lambdified from the expressions:
        ``g* = log((K-1) p*/(1-p*))`` with the closed-form ``p*``, ``0`` when ``kappa >= kappa_0``;
        ``f* = phi(g*)``. Needs a closed-form root and a proof of convexity (else ``ValueError``: use
        :func:`ufm.etf_prediction`)."""
        vals = self.loss_values(prob.loss)
        root = self.stationary_p(vals, K_value=prob.K)
        if root is None or not self.convex(vals, K_value=prob.K):
            raise ValueError(f"{self.name}: no closed-form prediction at {vals} (p* not solvable in (1/K, 1) "
                             "or phi not proved convex); use ufm.etf_prediction for the numeric one")
        ev = self.evaluator(prob)
        kv, thr = ev("kappa"), ev("threshold", **vals)
        gv = 0.0
        if kv < thr:
            args, subs = [K, kap, *self.symbols], [prob.K, kv] + [vals[s.name] for s in self.symbols]
            pv = float(np.real(complex(sp.lambdify(args, root)(*subs))))
            gv = ev("g(p)", p=pv)
        return gv, thr, ev("phi(g)", g=gv, **vals)

    def evaluator(self, prob: ufm.UFM) -> Evaluator:
        """An :class:`~proofs_check.theorem.Evaluator` of :attr:`expressions` at ``prob``'s numbers
        (the loss parameters are passed as values: ``ev(name, eps=...)``)."""
        return Evaluator(self.expressions, problem_numbers(prob))

    def predict(self, prob: ufm.UFM) -> dict:
        """Invariants of the ETF minimizer (value, Grams, norms, no within-class spread) from
        :meth:`closed_form` and the expressions ``c`` and ``||w_k||^2 = (K-1) g*/(K c)``
        (``h_k = c w_k``)."""
        gv, _, value = self.closed_form(prob)
        ev = self.evaluator(prob)
        Kv, c, a2 = prob.K, ev("c"), ev("||w_k||^2", g=gv)
        P = np.eye(Kv) - np.ones((Kv, Kv)) / Kv
        return {"value": value, "W_gram": a2 * Kv / (Kv - 1) * P, "Hbar_gram": c**2 * a2 * Kv / (Kv - 1) * P,
                "w_norm2": np.full(Kv, a2), "h_norm2": np.full(Kv, c**2 * a2), "within_class_spread": 0.0}
