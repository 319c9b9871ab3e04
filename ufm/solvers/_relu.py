r"""Deep ReLU models: certification on the activation piece and at the kinks of deep neural collapse.

A point of a ReLU :class:`ufm.DeepUFM` reached by the local solve is polished here on the host
(:func:`polish_piece`, the hook :func:`ufm.minimize` passes to the local solve): on its activation
piece (pattern frozen, consistency checked), else after a sharp softplus continuation by the
Newton polish of the kink manifold (:func:`polish_kink`) and the Clarke certificate
(:func:`clarke_certificate`).

References:
    Bertsekas, Nonlinear Programming (active-set identification then Newton on the identified
    manifold); Clarke, Optimization and Nonsmooth Analysis (1983); Bolte & Pauwels, Math. Program.
    2021 (arXiv 1909.10300); Súkeník, Mondelli & Lampert, NeurIPS 2023 (arXiv 2305.13165) and 2024
    (arXiv 2405.14468), the kinks and low-rank points of the deep UFM.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm._internal.precision import require_x64
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import DeepParams, DeepUFM, Problem
from ufm.solvers._common import check_params
from ufm.solvers._core import Run, SolveOptions, for_problem, solve
from ufm.solvers._local import minimize_local
from ufm.solvers._relu_clarke import clarke_certificate as clarke_certificate
from ufm.solvers._relu_clarke import at_kinks, kink_index, with_slopes
from ufm.solvers._relu_clarke import kink_masks as kink_masks
from ufm.solvers._relu_kink import dead_units as _dead_units  # noqa: F401  (tests reach it here)
from ufm.solvers._relu_kink import frozen_dead as _frozen_dead  # noqa: F401
from ufm.solvers._relu_kink import polish_kink as polish_kink
from ufm.solvers._results import RESULTS, Certificate, Solution, SolveError

__all__ = ["polish_relu", "clarke_certificate", "polish_kink", "kink_masks", "polish_piece"]


def polish_relu(prob: DeepUFM, params: DeepParams, *, rtol: float = 1e-3, gtol: float = 1e-12,
                max_newton: int = 200, throw: bool = True) -> Solution:
    r"""Certify a near-minimizer of a ReLU :class:`DeepUFM` on its activation piece.

    Deep-neural-collapse points of ReLU models sit on kinks: the orthogonal frames of the hidden
    class means have exact zeros, where ``relu`` is not differentiable. A gradient method then
    approaches the kink with a gradient norm that does not vanish (about ``1e-6`` relative), so
    :func:`ufm.minimize` cannot reach a ``1e-12`` certificate on ``prob`` itself. This function

    1. freezes the activation pattern ``M_l = 1[Z_l > rtol max|Z_l|]`` of ``params``
       (:meth:`DeepUFM.on_pattern`), a smooth (polynomial) piece of the objective;
    2. runs the local solve of :func:`ufm.minimize` on that piece from ``params`` (Newton polish,
       certificate ``gtol``);
    3. checks that the result lies on the same piece: every pre-activation entry with
       ``M_l = 1`` is ``> 0`` and every other entry is ``<= 1e-8 max|Z_l|``, so that ReLU and the
       frozen pattern give the same objective (``pattern_gap``, the difference, is reported);
    4. when the point has kink entries (``|Z_l| <= 1e-8 max|Z_l|``), the piece's certificate says
       nothing about the neighbouring pieces: the Clarke check (:func:`clarke_certificate`: slopes,
       one-sided slopes, curvature on the kink manifold) replaces it, and the Solution says
       ``order == "first"`` (``stats["clarke"]`` holds the check); it is ``successful`` only when
       no neighbouring piece descends and the kink-manifold curvature is ``>= -1e-8``.

    Args:
        prob: a DeepUFM (any activation; for ``"linear"`` step 1 is skipped).
        params: a near-minimizer, e.g. ``ufm.minimize(prob, throw=False).params``.
        rtol: pre-activations ``Z_l <= rtol max|Z_l|`` are treated as inactive; the default
            ``1e-3`` is far above the ``~1e-6`` accuracy of the first-order stage.
        gtol, max_newton: as in :func:`ufm.minimize`, for the piece. The defaults differ from
            minimize's (``1e-10``, ``100``) on purpose: a piece is a polynomial, on which Newton
            reaches ``1e-12`` from a near-minimizer, and that is what this function is for.
        throw: raise :class:`ufm.SolveError` when the piece's solve does not converge, or when a
            neighbouring piece of a kink point descends.

    Returns:
        The piece's :class:`ufm.Solution`, with ``value`` replaced by ``prob.objective`` at the
        polished point and ``stats["pattern_consistent"]`` (bool) and
        ``stats["pattern_gap"]`` (the largest ``|f_piece - f|``) added.

    References:
        Bertsekas, Nonlinear Programming (active-set identification then Newton on the
        identified manifold); the kinks of deep neural collapse: Súkeník, Mondelli & Lampert,
        NeurIPS 2023 (arXiv 2305.13165).
    """
    require_x64("ufm.minimize")
    smooth = prob.activation == "linear" or prob.pattern is not None
    piece = prob if smooth else prob.on_pattern(params, rtol)
    opts = dataclasses.replace(SolveOptions(), gtol=check_finite_positive("gtol", gtol),
                               max_newton=check_int("max_newton", max_newton, 0))
    x0 = check_params(piece, params)
    sol = minimize_local(piece, [x0], for_problem(opts, piece, x0, "auto"), seed=0, throw=throw)
    consistent = True
    if piece.pattern is not None:
        pre, _ = piece.layers(sol.params)
        for M, Z in zip(piece.pattern, pre[:-1]):
            M, Z = np.asarray(M), np.asarray(Z)
            consistent &= bool(np.all(Z[M > 0] > 0) and np.all(Z[M == 0] <= 1e-8 * np.max(np.abs(Z))))
    value = float(prob.objective(sol.params))
    stats = dict(sol.stats, pattern_consistent=consistent, pattern_gap=abs(value - sol.value))
    sol = dataclasses.replace(sol, value=value, stats=stats)
    if not smooth and prob.smoothing is None and sol.certificate.order == "second":
        sol = _clarke_solution(prob, piece, sol, for_problem(opts, piece, x0, "auto"), throw)
    return sol


def _clarke_solution(prob: DeepUFM, piece: DeepUFM, sol: Solution, opts: SolveOptions, throw: bool) -> Solution:
    """:func:`polish_relu`'s Solution when its point has kink entries: the certificate and result of
    the Clarke check (:func:`_settle_kinks`) instead of the piece's, ``stats["clarke"]`` added."""
    c = sol.certificate
    run = Run(sol.params, jnp.asarray(sol.value), jnp.int32(sol.result),
              Certificate(jnp.asarray(c.kkt), jnp.asarray(c.min_eig), jnp.int32(c.order_code)), {})
    settled, info, _ = _settle_kinks(prob, run, opts, {}, piece)
    if settled is run:
        return sol
    c = settled.certificate
    cert = Certificate(kkt=float(c.kkt), min_eig=float(c.min_eig), order_code=int(c.order_code))
    result = RESULTS(int(settled.result))
    if throw and result != RESULTS.successful:
        raise SolveError(
            f"polish_relu: the point is at {len(info['clarke']['kinks'])} ReLU kinks and "
            f"{len(info['clarke']['descent'])} of them open a neighbouring piece that descends "
            f"(Clarke residual {cert.kkt:.3g}, kink-manifold curvature {cert.min_eig:.3g}); it is not a "
            f"local minimizer: solve again with ufm.minimize from it, or pass throw=False")
    stats = dict(sol.stats, **{k: v for k, v in info.items() if k != "clarke"}, clarke=info.get("clarke"))
    return dataclasses.replace(sol, certificate=cert, result=result, stats=stats)


# ---- the host polish of the local solve -------------------------------------------------------------
def polish_piece(prob: Problem, run: Run, key: jax.Array, opts: SolveOptions, x0: Any = None,
                 rounds: int = 2) -> tuple:
    r"""Certify a piecewise-smooth (ReLU) model on its activation piece or at its kinks (host side).

    Deep-neural-collapse points of ReLU models sit on kinks (exact zeros of the pre-activations),
    where a gradient method stalls with a residual that does not vanish. :func:`_polish_once`
    polishes the point reached (on its activation piece, else through the kink manifold). Then
    :func:`_settle_kinks`: a point that claims second order and has kink entries is certified
    again by :func:`clarke_certificate` (a piece certificate says nothing about the neighbouring
    pieces), so it is reported ``order == "first"`` (Clarke), with ``min_eig`` on the kink
    manifold; when a neighbouring piece descends (a negative one-sided slope), the point is left
    into that piece and the whole solve and polish run again from there, up to
    ``opts.max_escapes`` times.

    Returns:
        ``(run, info)``: ``info`` the piece report (``consistent``, ``kinks``: ``(layer, unit,
        sample)`` exactly at a kink, ``gap``, ``rounds``, and ``clarke`` for a kink point), or
        ``None`` for smooth problems.
    """
    piece = prob.smooth_piece(run.params)
    if piece is None:
        return run, None
    run, info, piece = _polish_once(prob, piece, run, key, opts, x0, rounds)
    for _ in range(opts.max_escapes + 1):
        settled, info_s, y = _settle_kinks(prob, run, opts, info, piece)
        if y is None:
            return settled, info_s
        out = solve(prob, y, key, opts)  # a neighbouring piece descends: solve again from inside it
        counts = _add_counts(run.counts, out.counts)
        counts["escapes"] = run.counts["escapes"] + 1
        nxt, info_n, piece_n = _polish_once(prob, prob.smooth_piece(out.params), out._replace(counts=counts),
                                            key, opts, None, rounds)
        if int(nxt.result) != RESULTS.successful or not float(nxt.value) <= float(run.value):
            return settled, dict(info_s, escape=dict(value=float(nxt.value), result=RESULTS(int(nxt.result))))
        run, info, piece = nxt, info_n, piece_n
    return settled, info_s


def _polish_once(prob, piece, run: Run, key, opts: SolveOptions, x0, rounds: int) -> tuple:
    r"""The polish of :func:`polish_piece`; ``(run, info, piece or None)`` (the piece a polished run
    was certified on).

    Up to ``rounds`` times (:func:`_piece_rounds`): freeze the activation pattern of the current
    point (``prob.smooth_piece``, entries below ``1e-3`` of the layer's largest pre-activation
    count as off), run the whole solve on that smooth piece from the point, and check with
    ``prob.piece_report`` that the result lies on the same piece. The polished point is kept when
    it is consistent, certified on the piece, and not above the unpolished value. If no round
    succeeds for an uncertified point of a ReLU model without ``relu_features``, a sharp
    continuation runs from the point reached (``prob.smoothed(beta)``, ``beta = 1e3 .. 1e8``,
    first order, at most 3000 steps each), then :func:`_kink_rounds` (the Newton polish onto the
    kink manifold and the Clarke certificate, for the low-rank points below the DNC value). If
    that fails too and ``x0`` is given, a continuation from ``x0`` (``beta = 10 .. 1e6``, warm
    starts; ``beta`` is an array leaf, no recompilation), then the piece polish of its end point.
    """
    if int(run.result) in (RESULTS.nonfinite, RESULTS.diverged):  # nothing to polish: the caller reports it
        return run, {"consistent": False, "kinks": [], "gap": np.nan, "rounds": 0}, None
    certified = int(run.result) == RESULTS.successful
    if certified:
        rep = prob.piece_report(piece, run.params)
        if not rep["kinks"]:  # a smooth point of the ReLU model: nothing to polish
            return run, dict(rep, rounds=0), None
    polished, info, at = _piece_rounds(prob, piece, run, key, opts, rounds)
    if polished is None and not certified and not prob.relu_features:
        # the low-rank (kink) points: a sharp continuation from the point reached, then the kink polish
        sharp = dataclasses.replace(opts, max_steps=min(opts.max_steps, 3000), second=None)
        near = _continuation(prob, run.params, run, key, sharp, (1e3, 1e4, 1e5, 1e6, 1e7, 1e8))
        polished, info_k = _kink_rounds(prob, near, opts, info)
        if polished is not None:
            return polished, dict(info_k, continuation="sharp"), None
        if "clarke" in info_k:  # what the kink polish reached, kept in the report of what follows
            c = info_k["clarke"]
            info = dict(info, kink_attempt=dict(value=c["value"], kkt=c["kkt"], kinks=len(c["kinks"]),
                                                polish_residual=c["polish_residual"]))
    if polished is not None or x0 is None or prob.smoothed(1.0) is None or certified:
        return (polished if polished is not None else run), info, at
    cont = _continuation(prob, x0, run, key, opts, (1e1, 1e2, 1e3, 1e4, 1e5, 1e6))
    polished, info2, at = _piece_rounds(prob, prob.smooth_piece(cont.params), cont, key, opts, rounds)
    if polished is not None:
        return polished, dict(info2, continuation=True, **({"kink_attempt": info["kink_attempt"]}
                                                          if "kink_attempt" in info else {})), at
    return run, info, None


def _settle_kinks(prob, run: Run, opts: SolveOptions, info: dict, piece) -> tuple:
    """A run that claims second order at a point with kink entries: the Clarke check
    (:func:`clarke_certificate`, slopes started at the certifying piece's pattern) decides its
    certificate (:func:`_kink_verdict`). Returns ``(run, info, y)``: ``y`` a point inside a
    neighbouring piece with a lower value when one descends (:func:`_leave`), else ``None``."""
    c = (info or {}).get("clarke")
    if c is not None and int(run.certificate.order_code) == 1:  # certified by the kink path already
        y = None
        if c["descent"] and opts.second is not None:
            y = _leave(prob, run.params, c, *kink_masks(prob, run.params))
        return run, info, y
    if int(run.certificate.order_code) < 2:
        return run, info, None
    on, kink = kink_masks(prob, run.params)
    if not any(np.any(Kk) for Kk in kink):
        return run, info, None
    if prob.relu_features:  # the Clarke fit ignores the box H >= 0: claim first order only
        cert = run.certificate._replace(order_code=jnp.int32(1), min_eig=jnp.asarray(np.nan))
        return run._replace(certificate=cert), dict(info, second="not checked at kinks with relu_features"), None
    s0 = None
    if piece is not None:
        s0 = at_kinks(piece.pattern, kink_index(kink))
    c = clarke_certificate(prob, run.params, eig_tol=opts.eig_tol, s0=s0)
    cert, result = _kink_verdict(c, opts)
    info = dict(info, clarke=dict(c, kink_tol=1e-8))
    y = _leave(prob, run.params, c, on, kink) if c["descent"] and opts.second is not None else None
    return run._replace(result=jnp.int32(result), certificate=cert), info, y


def _kink_verdict(c: dict, opts: SolveOptions) -> tuple:
    """``(Certificate, RESULTS)`` of a Clarke check ``c``: order ``"first"`` when ``kkt <= gtol
    max(1, |f|)`` (else ``"none"``); ``successful`` when that holds and, if second order was asked,
    no neighbouring piece descends and ``min_eig >= -eig_tol``; else ``saddle`` (first order) or
    ``max_steps_reached``."""
    first = c["kkt"] <= opts.gtol * max(1.0, abs(c["value"]))
    ok = first and (opts.second is None or (not c["descent"] and c["min_eig"] >= -opts.eig_tol))
    cert = Certificate(kkt=jnp.asarray(c["kkt"]), min_eig=jnp.asarray(c["min_eig"]),
                       order_code=jnp.int32(1 if first else 0))
    result = RESULTS.successful if ok else RESULTS.saddle if first else RESULTS.max_steps_reached
    return cert, result


def _leave(prob, params, c: dict, on, kink):
    """A point with a lower ReLU value inside the neighbouring pieces that descend: the slopes of the
    descending kinks moved to the opposite vertex, a backtracking step along minus that piece's
    gradient (Armijo on the ReLU objective); ``None`` when no step decreases it."""
    s = np.array(c["slopes"], dtype=float)
    flip = np.array([k in set(c["descent"]) for k in c["kinks"]], dtype=bool)
    s[flip] = np.where(s[flip] < 0.5, 1.0, 0.0)
    flat, unravel = ravel_pytree(params)
    g = ravel_pytree(jax.grad(with_slopes(prob, on, kink, jnp.asarray(s)).objective)(params))[0]
    f0, gg = float(prob.objective(params)), float(g @ g)
    t = 1.0
    for _ in range(30):
        y = unravel(flat - t * g)
        if float(prob.objective(y)) <= f0 - 1e-4 * t * gg:
            return y
        t *= 0.25
    return None


def _add_counts(a: dict, b: dict) -> dict:
    return jax.tree_util.tree_map(lambda u, v: u + v, a, b)


def _continuation(prob, y, run: Run, key, opts: SolveOptions, betas) -> Run:
    """Solve ``prob.smoothed(beta)`` for each ``beta`` in turn (warm starts; ``beta`` is an array
    leaf, so one compiled solve serves them all); returns a Run at the last point, its ReLU
    value, ``max_steps_reached`` (nothing certified yet), ``run``'s certificate and the step
    counts added up."""
    total = run.counts
    for beta in betas:
        out = solve(prob.smoothed(jnp.asarray(beta)), y, key, opts)
        y, total = out.params, _add_counts(total, out.counts)
    return Run(y, prob.objective(y), jnp.int32(RESULTS.max_steps_reached), run.certificate, total)


def _piece_rounds(prob, piece, run: Run, key, opts: SolveOptions, rounds: int) -> tuple:
    """The piece rounds of :func:`_polish_once`: ``(polished run or None, report, its piece or None)``."""
    ref = float(run.value) if np.isfinite(float(run.value)) else np.inf
    # never above the point polished: 1e-12 relative for a certified point; for an uncertified one
    # 1e-4 relative (the piece drops entries below 1e-3 of a layer's largest, and a smoothed
    # start differs from its ReLU value by O(1/beta)); a jump onto a worse piece (for example the
    # dead-ReLU plateau, value about 1/2) is refused
    rel = 1e-12 if int(run.result) == RESULTS.successful else 1e-4
    tol = rel * max(1.0, abs(ref)) if np.isfinite(ref) else 0.0
    info = {"consistent": False, "kinks": [], "gap": np.nan, "rounds": 0}
    y = run.params
    for r in range(1, rounds + 1):
        out = solve(piece, y, key, opts)
        rep = prob.piece_report(piece, out.params)
        value = float(prob.objective(out.params))
        total = _add_counts(run.counts, out.counts)
        info = dict(rep, rounds=r)
        if rep["consistent"] and int(out.result) == RESULTS.successful and value <= ref + tol \
                and rep["gap"] <= 1e-10 * max(1.0, abs(value)):
            return Run(out.params, jnp.asarray(value), out.result, out.certificate, total), info, piece
        if not np.isfinite(value):
            break
        y = out.params
        piece = prob.smooth_piece(y)
    return None, info, None


# The kink tolerance of the second kink round: entries within 1e-5 of the kink but not at it (a
# point of the sharp continuation sits ~1e-6 off a kink it has not reached) are left on their piece.
RETRY_KINK_TOL = 1e-7


def _kink_rounds(prob, run: Run, opts: SolveOptions, info: dict, tol: float = 1e-5) -> tuple:
    r"""Certify a ReLU point that sits at kinks without being stationary on any adjacent piece.

    :func:`polish_kink` (Newton on the Lagrange system of the kink manifold, kink entries
    ``|Z| <= tol max|Z_l|``, dead units zeroed), then :func:`clarke_certificate` (kink set
    recomputed at ``1e-8``, slopes fitted in ``[0, 1]``). When that is not first order, once
    more with the kink tolerance :data:`RETRY_KINK_TOL` and the constraints on the frozen piece
    (``polish_kink(on_piece=True)``: a smooth Lagrange system, Levenberg-Marquardt steps where
    Newton's stall at a singular solution). Kept when its ``kkt <= gtol max(1, |f|)``:
    the Certificate then says ``order == "first"`` (first order in the Clarke sense) with
    ``min_eig`` the smallest eigenvalue of the Hessian on the kink manifold; ``result`` is
    ``successful`` when that second order holds and no neighbouring piece descends (or only
    first order was asked), else ``saddle`` (:func:`_kink_verdict`). The report
    (``info["clarke"]``) names the kinks, the slopes and what is certified. Returns
    ``(run or None, info)``.
    """
    gtol, eig_tol = opts.gtol, opts.eig_tol
    scale = max(1.0, abs(float(run.value))) if np.isfinite(float(run.value)) else 1.0
    rep = info
    for tol_k, on_piece in ((tol, False), (RETRY_KINK_TOL, True)):
        y, _, res, it = polish_kink(prob, run.params, tol=tol_k, gtol=1e-2 * gtol * scale, on_piece=on_piece)
        value = float(prob.objective(y))
        if not np.isfinite(value):
            continue
        c = clarke_certificate(prob, y, eig_tol=eig_tol, second=opts.second is not None)
        rep = dict(info, clarke=dict(c, kink_tol=tol_k, polish_residual=res, polish_steps=it))
        if c["kkt"] <= gtol * max(1.0, abs(value)):
            break
    else:
        return None, rep
    cert, result = _kink_verdict(c, opts)
    total = dict(run.counts, newton_steps=run.counts["newton_steps"] + it)
    rep.update(consistent=True, gap=0.0, kinks=c["kinks"])
    return Run(y, jnp.asarray(value), jnp.int32(result), cert, total), rep
