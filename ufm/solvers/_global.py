r"""Global-optimality certificates: a proven lower bound on the global minimum of a Problem.

Two families have one.

**Shallow UFM, loss convex in the logits** (cross-entropy, label smoothing, MSE with any
encoding; any class counts; no bias, free bias or regularized bias; any ``d``; ``H >= 0`` allowed)
[derived here, docs/theory.md#global-bounds]. Notation: ``a_k = n_k/N``, ``D = diag(n_k)``,
``mu = sqrt(lam_W lam_H)``, ``t_k`` the target of class ``k`` (``e_k`` for CE,
``(1-alpha) e_k + alpha/K 1`` for LS, ``E e_k`` for MSE), ``ell_k(v) = loss(v, k)``.

1. *Collapse* (Jensen). ``f`` is convex in ``H`` for fixed ``(W, b)`` and invariant under
   permutations of the columns within a class, so replacing every ``h_i`` by its class mean
   ``hbar_k`` does not raise ``f``: ``f(W, H, b) >= f(W, Hbar Y, b)``.
2. *Factored penalty* (Srebro et al. 2005). For ``U = W Hbar D^{1/2}`` (``D x K``, class logits
   ``v_k = u_k/sqrt(n_k) + b``), ``lam_W/2 ||W||^2 + lam_H/2 ||Hbar D^{1/2}||^2 >= mu ||U||_*`` (AM-GM
   and ``||AB||_* <= ||A||_F ||B||_F``). Hence, for every ``d`` and with or without ``H >= 0``,

   .. math:: f(W, H, b) \ge P^\star = \min_{U, b}\ \sum_k a_k\, \ell_k(u_k/\sqrt{n_k} + b)
       + \mu \lVert U\rVert_* + \tfrac{\lambda_b}2 \lVert b\rVert^2 .

   For ``d >= K`` (signed features) every ``U`` is reachable with equality, so ``P* = f*``.
3. *Weak duality*. For any ``Lambda`` with ``||Lambda||_2 <= mu``, ``mu ||U||_* >= <Lambda, U>``.
   Writing ``lambda_k = -(sqrt(n_k)/N) s_k`` and minimizing over ``v_k`` and ``b`` separately,

   .. math:: P^\star \ge \mathcal D(s) = -\sum_k a_k\, \ell_k^*(s_k) - \beta(r), \qquad
       r = -\sum_k a_k s_k,

   with ``beta(r) = 0`` without bias, ``||r||^2/(2 lam_b)`` for ``lam_b > 0``, and the constraint
   ``r = 0`` for a free bias. Conjugates: CE/LS, ``ell_k^*(s) = sum_j p_j log p_j`` with
   ``p = s + t_k`` in the simplex (the negative entropy; ``+inf`` outside); MSE,
   ``ell_k^*(s) = <s, t_k> + ||s||^2/2``.
4. *The dual point at the candidate*. ``s_k = grad ell_k(v_k)`` at the candidate's class logits
   (``softmax(v_k) - t_k`` for CE/LS, ``v_k - t_k`` for MSE), i.e. ``Lambda = -grad g(U)``. For a
   free bias the constraint ``r = 0`` is enforced: MSE subtracts the weighted mean ``sum_k a_k
   s_k``; CE/LS replace ``p_k`` by ``theta p_k + (tbar - theta m)`` with ``m = sum_k a_k p_k``,
   ``tbar = sum_k a_k t_k`` and ``theta = min(1, min_j tbar_j/m_j)`` (columns stay in the simplex,
   their ``a``-weighted mean becomes ``tbar``). Then every ``s_k`` is scaled by
   ``tau = min(1, mu/||Lambda||_2)``; since ``s = 0`` lies in every conjugate's domain (``t_k`` is in
   the simplex) and ``r`` is linear in ``s``, the scaled point is dual feasible.
5. *Tightness*. At a global minimizer with ``d >= K``, ``U*`` solves the convex program, so
   ``-grad g(U*) in mu d||U*||_*`` (``tau = 1``), ``r = lam_b b*`` (``theta = 1``), and
   Fenchel-Young holds with equality: the gap vanishes. Elsewhere the bound stays valid.

**Deep linear MSE UFM** (:class:`ufm.DeepUFM`, ``activation="linear"``, any widths, any class
counts, any encoding; ``relu_features`` allowed) [derived]. With ``m = L + 1`` factors
``mu_0 = lam_H``, ``mu_l = lam_l`` and ``Lambda' = lam_H prod_l lam_l``, after the collapse step
(the objective is convex in ``H_1``) put ``Z = W_L ... W_1 Hbar D^{1/2}`` and ``T = E D^{1/2}``.
The generalized Hölder inequality for Schatten quasi-norms (Horn's log-majorization, any widths)
gives ``sum_i mu_i/2 ||A_i||^2 >= (m/2) Lambda'^{1/m} sum_j sigma_j(Z)^{2/m}``, and Mirsky's
inequality ``||Z - T||_F^2 >= sum_j (sigma_j(Z) - s_j)^2`` (``s_j`` the singular values of
``T``), so

.. math:: f \ge \sum_j \min_{x \ge 0}\ \phi_j(x), \qquad
    \phi_j(x) = \frac{(x - s_j)^2}{2N} + \frac m2 \Lambda'^{1/m} x^{2/m}.

Balanced one-hot: every term is ``h_m(x)/K`` after ``x -> sqrt(n) x``, so the bound is
``min_x h_m(x)`` (docs/theory.md#deep-reduction), attained by deep neural collapse when every width is
``>= K``. With a bias (free or regularized), ``T`` is replaced by ``T Q`` with ``Q`` the
projector orthogonal to ``sqrt(n)`` (the optimal free bias centres the residual, and ``Q`` does
not raise singular values); tight for a free bias. Each scalar minimum is exact: for ``m >= 3``
``phi_j''`` increases, so ``phi_j`` has at most one interior local minimum, found by bisection on
``phi_j'`` right of the inflection point and compared with ``phi_j(0)`` (the jump transition of
``h_m`` is where the two are equal).

Families without a proven bound raise ``ValueError`` (focal loss: not convex in the logits; ReLU
layers; deep models with another loss; the memorization-dilation model).

References:
    Srebro, Rennie & Jaakkola, NeurIPS 2005 (the factored nuclear norm); Zhu et al., NeurIPS 2021
    (arXiv 2105.02375) and Zhou et al., ICML 2022 (arXiv 2203.01238) (the landscape results this
    certifies); Súkeník, Mondelli & Lampert, NeurIPS 2023 (arXiv 2305.13165) (the deep reduction);
    Horn & Johnson, Topics in Matrix Analysis, sec. 3.3 (log-majorization, Mirsky).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ufm._internal.numerics import bisect
from ufm._internal.runtime import register_compiled
from ufm.losses import MSE, CrossEntropy, Focal, LabelSmoothing
from ufm.problems import UFM, DeepUFM, Params, Problem
from ufm.solvers._core import is_traced
from ufm.solvers._results import RESULTS, GlobalCertificate, Solution, SolveError

__all__ = ["GlobalCertificate", "global_certificate", "global_gap_ok", "global_unsupported_reason",
           "minimize_global", "scalar_reduction_min"]

_BISECT = 200  # most halvings of the scalar bracket (it stops at float64 resolution)


def global_unsupported_reason(prob: Problem) -> str | None:
    """Why ``prob`` has no proven lower bound (``None`` when it has one): the families of the module
    docstring are shallow :class:`ufm.UFM` with CE, LS or MSE and deep linear MSE :class:`ufm.DeepUFM`."""
    if isinstance(prob, UFM):
        if isinstance(prob.loss, Focal):
            return ("focal loss is not convex in the logits, so the class-level program is not convex "
                    "and its dual does not bound the minimum (CrossEntropy, LabelSmoothing and MSE have one)")
        if not isinstance(prob.loss, (CrossEntropy, LabelSmoothing, MSE)):
            return f"loss {type(prob.loss).__name__} has no conjugate implemented"
        return None
    if isinstance(prob, DeepUFM):
        if prob.L == 1:
            return None
        if prob.activation != "linear":
            return ("ReLU layers: the objective is not a function of the end-to-end product, so the "
                    "Schatten reduction does not apply (only deep *linear* MSE models have a bound)")
        if not isinstance(prob.loss, MSE):
            return ("deep linear models with a loss other than MSE: the reduced problem in the product is "
                    "not convex and has no closed-form minimum (only MSE has a bound)")
        return None
    return (f"{type(prob).__name__} has no proven lower bound (the memorization-dilation model and other "
            "families are not covered; supported: ufm.UFM with CE/LS/MSE, ufm.DeepUFM linear with MSE)")


def _class_logits(prob, W, H, b):
    """Class-mean logits ``V = W Hbar + b 1^T``, shape ``(D, K)``."""
    Y = jax.nn.one_hot(jnp.asarray(prob.labels), prob.K, dtype=H.dtype)  # (N, K)
    Hbar = (H @ Y) / jnp.asarray(prob.counts, dtype=H.dtype)[None, :]
    V = W @ Hbar
    return V if b is None else V + b[:, None]


def _targets(prob):
    """Targets ``t_k`` as columns, ``(D, K)``."""
    loss, K = prob.loss, prob.K
    if isinstance(loss, MSE):
        return jnp.eye(K) if loss.encoding is None else jnp.asarray(loss.encoding)
    if isinstance(loss, LabelSmoothing):
        return (1.0 - loss.alpha) * jnp.eye(K) + loss.alpha / K
    return jnp.eye(K)


def _free_bias_softmax(P, T, a):
    """Columns ``theta p_k + (tbar - theta m)``: still in the simplex, ``a``-mean ``tbar``."""
    m, tbar = P @ a, T @ a
    theta = jnp.minimum(1.0, jnp.min(tbar / jnp.maximum(m, 1e-300)))
    return theta * P + (tbar - theta * m)[:, None]


def _dual_point(prob, V, T, a):
    """``S`` (columns ``s_k``), dual feasible up to the spectral scaling, and the probabilities."""
    free = (prob.lam_b is not None) & (jnp.asarray(0.0 if prob.lam_b is None else prob.lam_b) == 0)
    if isinstance(prob.loss, MSE):
        S = V - T
        return jnp.where(free, S - (S @ a)[:, None], S), None
    P = jax.nn.softmax(V, axis=0)
    P = jnp.where(free, _free_bias_softmax(P, T, a), P)
    return P - T, P


def _conjugate_sum(prob, S, P, T, a):
    """``sum_k a_k ell_k^*(s_k)``; for CE/LS ``S = P - T`` with ``P`` columns in the simplex."""
    if isinstance(prob.loss, MSE):
        return jnp.sum(a * (jnp.sum(S * T, axis=0) + 0.5 * jnp.sum(S * S, axis=0)))
    return jnp.sum(a * jnp.sum(jax.scipy.special.xlogy(P, P), axis=0))


def _shallow_bound(prob, W, H, b):
    """The dual value ``D(s)`` at the scaled candidate dual point (module docstring, steps 3-4)."""
    counts = jnp.asarray(prob.counts, dtype=H.dtype)
    a = counts / prob.N
    T = _targets(prob).astype(H.dtype)
    S, P = _dual_point(prob, _class_logits(prob, W, H, b), T, a)
    mu = jnp.sqrt(prob.lam_W * prob.lam_H)
    Lam_norm = jnp.linalg.norm(S * (jnp.sqrt(counts) / prob.N)[None, :], ord=2)
    tau = jnp.where(Lam_norm > mu, mu / jnp.where(Lam_norm > 0, Lam_norm, 1.0), 1.0)
    S = tau * S
    P = None if P is None else tau * P + (1.0 - tau) * T
    bound = -_conjugate_sum(prob, S, P, T, a)
    if prob.lam_b is not None:
        r = -(S @ a)
        lb = jnp.asarray(prob.lam_b)
        bound = bound - jnp.where(lb > 0, jnp.sum(r * r) / (2.0 * jnp.where(lb > 0, lb, 1.0)), 0.0)
    return bound


def scalar_reduction_min(s: Any, c: Any, N: Any, m: int) -> jax.Array:
    r"""``min_{x >= 0} (x - s)^2/(2N) + c x^{2/m}`` (elementwise in ``s``), exactly.

    ``m = 2``: the soft threshold ``x* = (s - N c)_+``. ``m >= 3``: ``phi''`` is increasing, so
    ``phi'`` is convex and has at most two roots; the larger one (a local minimum) lies in
    ``(max(x_i, 0), s)`` with ``x_i`` the inflection point, and is found by bisection; the global
    minimum is the smaller of that value and ``phi(0) = s^2/(2N)`` (the jump transition of
    Súkeník et al. 2023 is where they are equal).

    Args:
        s: targets' singular values, ``>= 0``, any shape.
        c: coefficient ``(m/2) Lambda'^{1/m}``, ``>= 0``.
        N: the sample count (scalar).
        m: number of factors, ``m >= 2`` (static).

    Returns:
        The minimum values, the shape of ``s``.
    """
    s = jnp.asarray(s)
    phi = lambda x: (x - s) ** 2 / (2.0 * N) + c * x ** (2.0 / m)  # noqa: E731
    if m == 2:
        return phi(jnp.maximum(s - N * c, 0.0))
    dphi = lambda x: (x - s) / N + c * (2.0 / m) * x ** (2.0 / m - 1.0)  # noqa: E731
    x_infl = (c * (2.0 / m) * (1.0 - 2.0 / m) * N) ** (1.0 / (2.0 - 2.0 / m))
    lo = jnp.minimum(x_infl, s)
    hi = jnp.maximum(s, lo)

    x_loc = bisect(dphi, lo, hi, _BISECT)
    return jnp.minimum(phi(jnp.zeros_like(s)), phi(x_loc))


def _deep_linear_bound(prob):
    """``sum_j min_x phi_j(x)`` (module docstring, deep linear MSE)."""
    m = prob.L + 1
    counts = jnp.asarray(prob.counts, dtype=jnp.float64)
    T = _targets(prob) * jnp.sqrt(counts)[None, :]
    if prob.has_bias:
        q = jnp.sqrt(counts) / jnp.sqrt(jnp.sum(counts))
        T = T - jnp.outer(T @ q, q)
    s = jnp.linalg.svd(T, compute_uv=False)
    lam_prod = prob.lam_H * jnp.prod(prob.lams)
    c = 0.5 * m * lam_prod ** (1.0 / m)
    return jnp.sum(scalar_reduction_min(s, c, prob.N, m))


def _as_shallow(prob, params):
    """A one-layer DeepUFM as the UFM with the same objective."""
    ufm_prob = UFM(K=prob.K, n=prob.n, d=prob.widths[0], loss=prob.loss, lam_W=prob.lams[0],
                   lam_H=prob.lam_H, lam_b=prob.lam_b, nonneg=prob.relu_features)
    return ufm_prob, Params(params.Ws[0], params.H, params.b)


def global_certificate(prob: Problem, params: Any) -> GlobalCertificate:
    r"""A proven lower bound on the global minimum of ``prob``, and the gap of ``params`` to it.

    .. math:: \mathrm{gap} = f(\theta) - \underline f, \qquad \underline f \le \min f .

    Shallow :class:`ufm.UFM` with a loss convex in the logits: ``lower_bound`` is the value of the
    dual of the class-level nuclear-norm program at a dual point built from ``params``' class
    logits (``Lambda = -grad g(U)``, made feasible by the free-bias correction and the scaling
    ``min(1, mu/||Lambda||_2)``); it bounds the minimum for every ``d`` and with ``H >= 0``, and the
    gap vanishes at a global minimizer when ``d >= K`` (signed features). Deep linear MSE
    :class:`ufm.DeepUFM`: ``lower_bound`` is the exact minimum of the scalar (``h_m``) reduction,
    a bound for any widths, tight when every width is ``>= K`` without bias or with a free bias.
    The full derivation is in the docstring of :mod:`ufm.solvers._global` and in the README.

    Pure JAX: ``jax.jit(ufm.global_certificate)(prob, params)`` and ``jax.vmap`` over points or
    hyper-parameters work (the family dispatch is static).

    Args:
        prob: a :class:`ufm.UFM` (loss CE, LS or MSE) or a :class:`ufm.DeepUFM` (linear with MSE,
            or ``L = 1`` with CE, LS or MSE).
        params: the candidate point (``Params`` or ``DeepParams``).

    Returns:
        A :class:`GlobalCertificate` (``value``, ``lower_bound``, ``gap``, static ``method``).

    Raises:
        ValueError: the family has no proven bound (focal loss, ReLU layers, deep non-MSE, the
            memorization-dilation model), with the reason.

    References:
        Srebro, Rennie & Jaakkola, NeurIPS 2005; Zhu et al., NeurIPS 2021 (arXiv 2105.02375);
        Zhou et al., ICML 2022 (arXiv 2203.01238); Súkeník, Mondelli & Lampert, NeurIPS 2023
        (arXiv 2305.13165).
    """
    why = global_unsupported_reason(prob)
    if why is not None:
        raise ValueError(f"global_certificate: {why}")
    value = prob.objective(params)
    if isinstance(prob, DeepUFM) and prob.L == 1:
        prob, params = _as_shallow(prob, params)
    if isinstance(prob, UFM):
        bound, method = _shallow_bound(prob, params.W, params.H, params.b), "class-level dual"
    else:
        bound, method = _deep_linear_bound(prob).astype(value.dtype), "deep linear scalar reduction"
    return GlobalCertificate(value=value, lower_bound=bound, gap=value - bound, method=method)


_global_certificate_jit = register_compiled(jax.jit(global_certificate))
_GLOBAL_ROUNDS = 3  # the requested solve, new seeds, new seeds at the default init scale
_SEED_STRIDE = 1000


def global_gap_ok(gap: Any, value: Any, gtol: Any) -> Any:
    r"""The one rule of a global certificate: ``gap <= gtol max(1, |f|)``, elementwise.

    .. math:: f(\theta) - \underline f \le \mathrm{gtol}\cdot\max(1, |f(\theta)|)

    (the tolerance of the first-order certificate, relative to the objective). Used by
    ``minimize(certify="global")`` (``sol.converged``, ``certificate.global_ok`` and so
    ``certificate.scope``) and by ``ufm.sweep``'s global path.
    """
    return gap <= gtol * jnp.maximum(1.0, jnp.abs(value))


def _with_gap(sol: Solution, cert: GlobalCertificate, gtol: float) -> Solution:
    """``sol`` with the global certificate held in ``sol.certificate`` and ``not_global`` where the
    gap is too big; ``certificate.global_ok`` (local certificate and gap) is ``sol.converged``."""
    gap_ok = global_gap_ok(cert.gap, sol.value, gtol)
    local_ok = sol.result == RESULTS.successful
    if isinstance(sol.result, RESULTS):
        gap_ok = bool(gap_ok)
        result = RESULTS.not_global if (local_ok and not gap_ok) else sol.result
        cert = GlobalCertificate(value=float(cert.value), lower_bound=float(cert.lower_bound),
                                 gap=float(cert.gap), method=cert.method)
        ok = bool(local_ok and gap_ok)
    else:
        result = jnp.where(local_ok & ~gap_ok, jnp.int32(RESULTS.not_global), sol.result)
        ok = local_ok & gap_ok
    certificate = sol.certificate._replace(global_certificate=cert, global_ok=ok)
    return dataclasses.replace(sol, result=result, certificate=certificate)


def _global_rounds(minimize: Callable, prob, kwargs: dict) -> list:
    """Host rounds of :func:`minimize_global`: ``[(sol, GlobalCertificate), ...]``, stopping at the
    first certified one."""
    gtol = kwargs["gtol"]
    tried = []
    for r in range(_GLOBAL_ROUNDS):
        kw = dict(kwargs)
        if r > 0:
            kw.update(params0=None, starts=max(2, kwargs["starts"]), seed=kwargs["seed"] + r * _SEED_STRIDE,
                      init_scale=kwargs["init_scale"] if r == 1 else None)
        sol = minimize(prob, **kw, throw=False)
        cert = _global_certificate_jit(prob, sol.params)  # one compilation per problem shape
        gap = float(cert.gap)
        near = gap <= 1e3 * gtol * max(1.0, abs(sol.value))
        if sol.converged and not global_gap_ok(gap, sol.value, gtol) and near:
            polished = minimize(prob, **dict(kw, params0=sol.params, starts=1, gtol=gtol * 1e-2), throw=False)
            if polished.converged:
                sol, cert = polished, _global_certificate_jit(prob, polished.params)
        tried.append((sol, cert))
        if sol.converged and bool(global_gap_ok(float(cert.gap), sol.value, gtol)):
            break
    return tried


def minimize_global(minimize: Callable, prob: Problem, certify: str, kwargs: dict, throw: bool) -> Solution:
    r"""``ufm.minimize(prob, certify="global", ...)``: a local solve, then the global gap.

    Converged means first order (and second order where asked) certified *and*
    ``gap = f - lower_bound <= gtol max(1, |f|)`` (:func:`global_gap_ok`) with
    :func:`global_certificate`. On the host, when the gap is too big, up to two more rounds run:
    new seeds (``starts`` of them, at least two) at the requested ``init_scale``, then new seeds at
    the default scale (a start near the origin of a deep model with ``m >= 3`` factors stalls at
    the origin, a local minimum that is not global). A point whose gap is just above the
    tolerance is first re-polished with ``gtol / 100``. If no round closes the gap the
    lowest-valued run is returned with ``RESULTS.not_global`` and its measured gap
    (``stats["global_gaps"]`` lists every round's). Inside ``jit``/``vmap`` only the first solve
    runs (no more starts).

    Args:
        minimize: the local front door (:func:`ufm.minimize`), called with ``certify=None``.
        prob: the problem (a family with a proven bound, else ValueError).
        certify: must be ``"global"``.
        kwargs: ``minimize``'s other keyword arguments (``throw`` aside).
        throw: raise :class:`SolveError` unless globally certified (host only).
    """
    if certify != "global":
        raise ValueError(f"certify must be None or 'global', got certify={certify!r}")
    why = global_unsupported_reason(prob)
    if why is not None:
        raise ValueError(f"minimize(certify='global'): {why}")
    gtol = kwargs["gtol"]
    if is_traced((prob, kwargs["params0"])):
        sol = minimize(prob, **kwargs, throw=False)
        return _with_gap(sol, global_certificate(prob, sol.params), gtol)
    tried = _global_rounds(minimize, prob, kwargs)
    last_sol, last_cert = tried[-1]
    certified = bool(global_gap_ok(float(last_cert.gap), last_sol.value, gtol)) and last_sol.converged
    sol, cert = tried[-1] if certified else min(tried, key=lambda sc: (not sc[0].converged, sc[0].value))
    sol = _with_gap(sol, cert, gtol)
    gaps = [float(c.gap) for _, c in tried]
    sol = dataclasses.replace(sol, stats=dict(sol.stats, global_rounds=len(tried), global_gaps=gaps))
    if throw and sol.result != RESULTS.successful:
        raise SolveError(
            f"minimize(certify='global'): {sol.result.message}; best objective {sol.value:.10g}, gap "
            f"{float(cert.gap):.3g} to the lower bound (gtol={gtol}) after {len(tried)} rounds; try more "
            f"starts, another init_scale, or throw=False to inspect the point")
    return sol
