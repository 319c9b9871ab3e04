"""What a solve returns: the named outcome (RESULTS), the certificate family and the Solution.

The certificate family: a :class:`Certificate` says what is certified at a point (first order,
second order, and, where asked, global optimality); the global part is a
:class:`GlobalCertificate` (the proven lower bound, the gap, how the bound was obtained), held
inside the Certificate as its ``global_certificate`` field. The global certificate is held, not
derived from a shared base class, because it is a statement about the same point at a third
level (``f - lower_bound``), computed after the local certificate and optional: the Solution
keeps one certificate record, and :func:`ufm.global_certificate` returns the global part alone
for any point.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["RESULTS", "SolveError", "GlobalCertificate", "Certificate", "Solution", "ORDER_NAMES"]


class RESULTS(enum.IntEnum):
    """How a solve ended. ``sol.result`` holds one member; ``.message`` explains it.

    Inside the compiled loop the code is an int32 array; failure is data, not an exception.
    After the loop the host raises :class:`SolveError` for anything but ``successful`` unless the
    solver was called with ``throw=False`` (as :func:`ufm.sweep`-style uses and ``vmap`` need).
    """

    successful = 0
    max_steps_reached = 1
    nonfinite = 2
    diverged = 3
    step_size_too_small = 4
    linesearch_failed = 5
    saddle = 6
    not_global = 7
    unstable_step = 8

    @property
    def message(self) -> str:
        """What the outcome means and what to change."""
        return _MESSAGES[self]


_MESSAGES = {
    RESULTS.successful: "converged",
    RESULTS.max_steps_reached: (
        "stopped at max_steps before grad_norm <= gtol (or before t1); increase max_steps or check "
        "that the problem has a minimizer"
    ),
    RESULTS.nonfinite: "non-finite values (NaN or inf) in the parameters or the objective",
    RESULTS.diverged: "the objective grew without bound (more than 1e12 times its starting size)",
    RESULTS.step_size_too_small: (
        "the adaptive step size fell below its minimum; the error tolerance cannot be met"
    ),
    RESULTS.linesearch_failed: (
        "no step along the search direction decreased the objective or the KKT residual; "
        "the iterate is as accurate as float64 allows here"
    ),
    RESULTS.saddle: (
        "a first-order point with negative curvature outside the symmetry directions (a strict "
        "saddle), and the escapes along the negative-curvature direction did not leave it"
    ),
    RESULTS.not_global: (
        "certify='global': the gap to the proven lower bound on the global minimum stayed above "
        "gtol * max(1, |f|) after the restarts (a local, non-global point, or a bound that is not "
        "tight for this instance: d < K, H >= 0 or a regularized bias in a deep model)"
    ),
    RESULTS.unstable_step: (
        "a fixed step is above its stability limit: a gradient-descent step increased the objective "
        "beyond rounding (or, with momentum, the objective grew past 1e3 (1 + |f(0)|)), which a "
        "gradient flow never does (the limit is dt < 2/L, L the largest Hessian eigenvalue along "
        "the path; 2 (1 + momentum)/L for heavy ball); use a smaller dt or dt=None"
    ),
}


class SolveError(RuntimeError):
    """A solve failed; the message names the solver, what was tried and what to change."""


ORDER_NAMES = ("none", "first", "second")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GlobalCertificate:
    r"""A proven lower bound on the global minimum, and the gap of a candidate to it.

    .. math:: \mathrm{gap} = f(\theta) - \underline f, \qquad \underline f \le \min f .

    Returned by :func:`ufm.global_certificate`; a ``minimize(certify="global")`` solution holds
    one as ``sol.certificate.global_certificate``.

    Attributes:
        value: ``f(params)``, shape ``()``.
        lower_bound: a number provably ``<=`` the global minimum of the problem, shape ``()``.
        gap: ``value - lower_bound`` (``>= 0`` up to rounding), shape ``()``.
        method: how the bound was obtained (static): ``"class-level dual"`` or
            ``"deep linear scalar reduction"``.
    """

    value: jax.Array
    lower_bound: jax.Array
    gap: jax.Array
    method: str = field(metadata=dict(static=True))


class Certificate(NamedTuple):
    r"""What a :class:`Solution` certifies (a pytree; its leaves are arrays inside ``jit``).

    Attributes:
        kkt: the first-order residual ``||theta - P(theta - grad f)||_2`` (the gradient norm
            without constraints); the one stored copy (``sol.grad_norm`` reads it).
        min_eig: the smallest eigenvalue of the Hessian on the free components with the
            directions of the model's continuous symmetries removed
            (:func:`ufm.solvers.hessian_spectrum`; above 2000 parameters the smallest Ritz value of a
            randomly started Lanczos run stopped at relative residual 1e-11: within that residual
            of an eigenvalue and never below the smallest; a lower eigenvalue is missed only when
            the start is nearly orthogonal to its eigenvector); ``nan`` when second order was not
            checked,
            ``+inf`` when no direction is left.
        order_code: ``0`` (nothing certified), ``1`` (first order: ``kkt <= gtol max(1, |f|)``),
            ``2`` (second order as well: ``min_eig >= -eig_tol``). See :attr:`order`.
        global_certificate: the :class:`GlobalCertificate` of the point (``certify="global"``),
            else ``None`` (a local certificate only).
        global_ok: with ``global_certificate``, whether global optimality is certified: the
            local certificate holds and ``gap <= gtol max(1, |f|)``
            (:func:`ufm.solvers.global_gap_ok`, the rule ``certify="global"`` judges by); else
            ``None``. :attr:`scope` reads it, so scope and ``sol.converged`` never disagree.
    """

    kkt: Any
    min_eig: Any
    order_code: Any
    global_certificate: GlobalCertificate | None = None
    global_ok: Any = None

    @property
    def order(self) -> Any:
        """``"none"``, ``"first"`` or ``"second"`` (an array of names under ``vmap``)."""
        code = np.asarray(self.order_code)
        if code.ndim == 0:
            return ORDER_NAMES[int(code)]
        return np.asarray(ORDER_NAMES, dtype=object)[code]

    @property
    def global_gap(self) -> Any:
        """``f - lower_bound`` from :attr:`global_certificate` (``None`` without one)."""
        return None if self.global_certificate is None else self.global_certificate.gap

    @property
    def scope(self) -> str:
        """``"global"`` when global optimality is certified (:attr:`global_ok`; every entry under
        ``vmap``), else ``"local"``: a second-order point is a local minimizer candidate, not
        the global one."""
        if self.global_ok is not None and bool(np.all(np.asarray(self.global_ok))):
            return "global"
        return "local"


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Solution:
    """The outcome of :func:`ufm.minimize`: a point and its certificate (a pytree).

    On the host path the scalar fields are Python numbers and ``result`` a :class:`ufm.RESULTS`
    member; inside ``jax.jit``/``jax.vmap`` (``throw=False``) they are arrays.

    Attributes:
        params: the point found (for :class:`ufm.UFM`, ``Params(W, H, b)``).
        value: the *objective* ``f(params)`` (unlike optimistix, where ``value`` is the argmin).
        grad_norm: ``||theta - P(theta - grad f)||_2``, a property reading ``certificate.kkt`` (the
            one stored copy of the KKT residual).
        result: a :class:`ufm.RESULTS` member (an int32 code inside ``jit``). ``successful``
            means what was asked is certified (see ``converged``); ``saddle`` means a point with
            negative curvature that the escapes did not leave.
        certificate: a :class:`Certificate` (``kkt``, ``min_eig``, ``order``, ``global_gap``).
        hessian_eigs: ``(lambda_min, lambda_max)`` of the Hessian on the free components (symmetry
            directions *included*), when requested with ``hessian=True``; else ``None``.
        stats: ``num_steps`` (all iterations), ``first_order_steps``, ``newton_steps``,
            ``cg_steps``, ``escapes`` (saddle escapes), ``max_steps``, ``seed``, and with
            ``starts > 1`` ``start_values`` and ``start_results`` (one per start; also under
            their former names ``restart_values`` and ``restart_results`` for one release).
        multipliers: for a constrained solve, the multipliers of ``prob.constraints`` (else None).
        residuals: for a constrained solve, signed: ``primal`` (``max_i c_i``), ``dual``
            (``min_i y_i``), ``complementarity`` (``max_i |y_i c_i|``) and ``stationarity``;
            else None. :attr:`kkt_residuals` gives them as residuals (``>= 0``).
    """

    params: Any
    value: Any
    result: Any
    certificate: Any = None
    hessian_eigs: Any = None
    stats: dict = field(default_factory=dict)
    multipliers: Any = None
    residuals: Any = None

    @property
    def grad_norm(self) -> Any:
        """``||theta - P(theta - grad f)||_2``: the stored ``certificate.kkt`` itself."""
        return None if self.certificate is None else self.certificate.kkt

    @property
    def converged(self) -> Any:
        """Whether what was asked is certified (``result == successful``)."""
        r = self.result
        if isinstance(r, RESULTS) or isinstance(r, (int, np.integer)):
            return int(r) == RESULTS.successful
        return jnp.asarray(r) == RESULTS.successful

    @property
    def kkt_residuals(self) -> dict:
        """The residuals of the KKT conditions of a constrained solve: ``stationarity``,
        ``violation`` (``max(0, max_i c_i)``), ``complementarity`` and ``dual`` (``min_i y_i``);
        without inequality constraints the last three are 0 and ``stationarity`` is ``grad_norm``."""
        if self.residuals is None:
            return {"stationarity": self.grad_norm, "violation": 0.0, "complementarity": 0.0, "dual": 0.0}
        r = self.residuals
        return {"stationarity": r["stationarity"], "violation": max(0.0, r["primal"]),
                "complementarity": r["complementarity"], "dual": r["dual"]}

    @property
    def kkt(self) -> dict:
        """Deprecated name of :attr:`kkt_residuals` (the first-order residual alone is
        ``certificate.kkt``)."""
        warnings.warn("Solution.kkt is deprecated; use Solution.kkt_residuals (the dict of constrained "
                      "residuals) or Solution.certificate.kkt (the KKT residual)", DeprecationWarning,
                      stacklevel=2)
        return self.kkt_residuals

    @property
    def iterations(self) -> int:
        """First-order plus Newton iterations of the returned run (``stats["num_steps"]``)."""
        return self.stats["num_steps"]
