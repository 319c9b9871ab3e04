"""Whole problems: :class:`ufm.UFM` instances placed in a regime, optionally inside a closed form."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st

from ufm.losses import MSE, CrossEntropy, Loss
from ufm.problems import UFM, normalize_counts
from ufm.testing._strategies import (
    BIAS_MODES, LOSS_KINDS, REGIME_FRACS, REGIMES, check_kinds, check_regime, class_counts, regime_fracs,
)
from ufm.testing._strategies import losses as losses_strategy  # an argument below has the same name
from ufm.testing._thresholds import code_singular_values, kappa_threshold

__all__ = ["ufm_problems", "closed_form_problems", "bias_of"]

_SV_MARGIN = 0.1  # "nonzero" MSE encodings: |s_i - K kappa| > 0.1 K kappa for every singular value


def bias_of(prob: UFM) -> str:
    """The bias mode of a problem: ``"none"`` (no bias), ``"free"`` (``lam_b = 0``) or ``"reg"``."""
    if prob.lam_b is None:
        return "none"
    return "free" if float(prob.lam_b) == 0.0 else "reg"


def _allowed_bias(loss, modes, *, imbalanced, nonneg, regime, closed_form) -> tuple[str, ...]:
    """The bias modes for which the regime's threshold (and, if asked, a closed form) exists."""
    if not (closed_form or regime != "any") or not isinstance(loss, MSE):
        return modes
    if imbalanced or nonneg:
        return tuple(m for m in modes if m == "none")
    if loss.encoding is not None:
        return tuple(m for m in modes if m != "reg")
    return modes


def _min_d(loss, K: int, *, nonneg: bool, closed_form: bool) -> int:
    """Smallest ``d`` the closed form (or the nonnegative threshold of section 5) needs."""
    need = 1
    if closed_form:
        need = min(loss.out_dim(K), K) if isinstance(loss, MSE) else K - 1
    if nonneg:
        need = max(need, K)
    return max(need, 1)


def _encoding_safe(frac, svals, top):
    """Move ``K kappa = frac * top`` out of the 10% neighbourhoods of the code's singular values.

    The allowed set (in ``log(K kappa)``) of ``[0.05, 0.9] top`` minus those neighbourhoods is a
    union of intervals; ``frac`` is mapped onto it monotonically, preserving its measure.
    """
    lo, hi = np.log(REGIME_FRACS["nonzero"][0] * top), np.log(REGIME_FRACS["nonzero"][1] * top)
    cuts = sorted(
        (np.log(s / (1 + _SV_MARGIN)), np.log(s / (1 - _SV_MARGIN))) for s in svals if s > 0
    )
    pieces, start = [], lo
    for a, b in cuts:
        if b <= start or a >= hi:
            continue
        if a > start:
            pieces.append((start, a))
        start = max(start, b)
    if start < hi:
        pieces.append((start, hi))
    total = sum(b - a for a, b in pieces)
    lo_f, hi_f = REGIME_FRACS["nonzero"]
    t = (frac - lo_f) / (hi_f - lo_f) * total
    for a, b in pieces:
        if t <= b - a:
            return float(np.exp(a + t)) / top
        t -= b - a
    return float(np.exp(pieces[-1][1])) / top


def _draw_loss(draw, losses, K, d_max, *, imbalanced, nonneg, regime, closed_form):
    if losses is None or isinstance(losses, str) or (
        isinstance(losses, Sequence) and all(isinstance(k, str) for k in losses)
    ):
        kinds = check_kinds(LOSS_KINDS if losses is None else losses)
        if imbalanced and (closed_form or regime != "any"):
            kinds = tuple(k for k in kinds if k == "mse")
        if nonneg and regime != "any":
            kinds = tuple(k for k in kinds if k != "focal")
        if closed_form and d_max is not None:  # a fixed d: one-hot MSE needs d >= K, CE d >= K-1
            kinds = tuple(k for k in kinds if d_max >= (K if k == "mse" else K - 1))
        if not kinds:
            raise ValueError(
                f"no loss kind in {losses!r} fits K={K}, d={d_max}, imbalanced={imbalanced}: "
                "imbalanced counts need 'mse' (closed forms and regimes exist only for bias-free "
                "MSE), closed forms need d >= K-1 (CE family) or d >= K (MSE), and nonnegative "
                "features have no focal threshold"
            )
        return draw(losses_strategy(kinds=kinds, K=K))
    is_factory = callable(losses) and not isinstance(losses, st.SearchStrategy)
    strategy = losses(K) if is_factory else losses
    loss = draw(strategy)
    if not isinstance(loss, Loss):
        raise TypeError(f"the losses strategy must draw ufm.Loss objects, got {loss!r}")
    if imbalanced and (closed_form or regime != "any") and not isinstance(loss, MSE):
        raise ValueError(
            f"imbalanced counts with regime={regime!r} or closed forms need MSE without bias "
            f"(Dang et al. 2023), got loss={loss!r}; pass balanced=True"
        )
    return loss


def _draw_lams(draw, K, counts, loss, bias_mode, nonneg, regime):
    """``(lam_W, lam_H)`` placing the problem in ``regime`` (see :mod:`ufm.testing`)."""
    rho = draw(st.floats(0.5, 2.0))
    N = sum(counts)
    if len(set(counts)) > 1:  # bias-free MSE, Dang et al.: class k is zero iff sqrt(n_k) <= N sq
        roots = np.sqrt(counts)
        if regime == "any":
            regime = draw(st.sampled_from(REGIMES[1:]))
        if regime == "near_threshold":
            ref = float(draw(st.sampled_from(sorted(set(roots)))))
        else:
            ref = float(roots.min() if regime == "nonzero" else roots.max())
        sq = draw(regime_fracs(regime)) * ref / N
    else:
        n = counts[0]
        if regime == "any":
            try:
                top = kappa_threshold(loss, K, bias=bias_mode, nonneg=nonneg)
            except ValueError:  # no known threshold: any kappa is fine, scale it like CE's
                top = 1.0 / K
            regime = draw(st.sampled_from(REGIMES[1:]))
        else:
            top = kappa_threshold(loss, K, bias=bias_mode, nonneg=nonneg)
        frac = draw(regime_fracs(regime))
        if regime == "nonzero" and isinstance(loss, MSE) and loss.encoding is not None:
            frac = _encoding_safe(frac, code_singular_values(loss, K, bias_mode), top * K)
        sq = frac * top / math.sqrt(n)
    return sq * rho, sq / rho


@st.composite
def _problems(draw, cfg: dict, closed_form: bool):
    regime = cfg["regime"]
    constrained = closed_form or regime != "any"
    nonneg = cfg["nonneg"] if cfg["nonneg"] is not None else draw(st.booleans())
    if cfg["sizes"] is not None:
        K, n, d = draw(st.sampled_from(cfg["sizes"]))
        imbalanced = len(set(normalize_counts(n, K)[1])) > 1
    else:
        K, n, d = draw(st.integers(cfg["min_K"], cfg["max_K"])), None, None
        imbalanced = cfg["balanced"] is False
    loss = _draw_loss(draw, cfg["losses"], K, d, imbalanced=imbalanced, nonneg=nonneg,
                      regime=regime, closed_form=closed_form)
    if n is None:  # the loss first: regimes and closed forms with imbalance exist for MSE only
        balanced = cfg["balanced"] if isinstance(loss, MSE) or not constrained else True
        n = draw(class_counts(K=K, balanced=balanced))
    counts = normalize_counts(n, K)[1]
    imbalanced = len(set(counts)) > 1
    modes = _allowed_bias(loss, cfg["bias"], imbalanced=imbalanced, nonneg=nonneg, regime=regime,
                          closed_form=closed_form)
    if not modes:
        raise ValueError(
            f"none of bias={cfg['bias']} has a known threshold/closed form for {loss!r} "
            f"(counts={counts}, nonneg={nonneg}); add 'none' to bias"
        )
    bias_mode = draw(st.sampled_from(modes))
    need = _min_d(loss, K, nonneg=nonneg and constrained, closed_form=closed_form)
    if d is None:
        lo = max(need, cfg["min_d"] if cfg["min_d"] is not None else max(K - 1, 1))
        hi = cfg["max_d"] if cfg["max_d"] is not None else max(K + 1, lo)
        if lo > hi:
            raise ValueError(f"max_d={hi} is below the d={lo} that K={K} and {loss!r} need")
        d = draw(st.integers(lo, hi))
    elif d < need:
        raise ValueError(f"size (K={K}, n={n}, d={d}) is too small for {loss!r}: need d >= {need}")
    lam_W, lam_H = _draw_lams(draw, K, counts, loss, bias_mode, nonneg and constrained, regime)
    lam_b = {"none": None, "free": 0.0}.get(bias_mode)
    if bias_mode == "reg":
        lam_b = draw(st.floats(1e-3, 1.0))
    return UFM(K=K, n=n, d=d, loss=loss, lam_W=lam_W, lam_H=lam_H, lam_b=lam_b, nonneg=nonneg)


def _config(*, min_K, max_K, sizes, losses, bias, nonneg, min_d, max_d, balanced, regime) -> dict:
    check_regime(regime)
    if not 2 <= min_K <= max_K:
        raise ValueError(f"need 2 <= min_K <= max_K, got min_K={min_K}, max_K={max_K}")
    bias = (bias,) if isinstance(bias, str) else tuple(bias)
    if not bias or any(b not in BIAS_MODES for b in bias):
        raise ValueError(f"bias must be a nonempty subset of {BIAS_MODES}, got bias={bias!r}")
    if sizes is not None:
        sizes = [tuple(s) for s in sizes]
        if not sizes or any(len(s) != 3 for s in sizes):
            raise ValueError(f"sizes must be a nonempty list of (K, n, d) triples, got {sizes!r}")
        for K, n, d in sizes:  # validates early, with ufm's own messages
            UFM(K=K, n=n, d=d, loss=CrossEntropy())
    if balanced not in (True, False, None):
        raise ValueError(f"balanced must be True, False or None, got {balanced!r}")
    if nonneg not in (True, False, None):
        raise ValueError(f"nonneg must be True, False or None, got {nonneg!r}")
    return {"min_K": min_K, "max_K": max_K, "sizes": sizes, "losses": losses, "bias": bias,
            "nonneg": nonneg, "min_d": min_d, "max_d": max_d, "balanced": balanced,
            "regime": regime}


def ufm_problems(
    *,
    min_K: int = 2,
    max_K: int = 4,
    sizes: Sequence[tuple] | None = None,
    losses: Sequence[str] | st.SearchStrategy | Callable | None = None,
    bias: Sequence[str] | str = BIAS_MODES,
    nonneg: bool | None = False,
    min_d: int | None = None,
    max_d: int | None = None,
    balanced: bool | None = True,
    regime: str = "any",
) -> st.SearchStrategy:
    """Valid :class:`ufm.UFM` problems, with ``kappa`` placed in ``regime`` (see :mod:`ufm.testing`).

    Every new shape costs a JAX compilation of several seconds in :func:`ufm.minimize`; pass
    ``sizes`` to fix the shapes and let hypothesis vary only the hyper-parameters.

    Args:
        min_K: range of the number of classes (ignored with ``sizes``).
        max_K: range of the number of classes (ignored with ``sizes``).
        sizes: an explicit list of ``(K, n, d)`` triples to sample from (``n`` an int or a tuple
            of ``K`` counts); it overrides ``min_K``, ``max_K``, ``min_d``, ``max_d``, ``balanced``.
        losses: None (all of ``("ce", "ls", "focal", "mse")``, MSE one-hot), a sequence of those
            names, a strategy of :class:`ufm.Loss` objects, or a callable ``K -> strategy`` (use
            it for MSE encodings, which need ``K``:
            ``losses=lambda K: ufm.testing.losses(kinds=("mse",), encodings=True, K=K)``).
        bias: bias modes to draw from: ``"none"`` (``lam_b=None``), ``"free"`` (``lam_b=0``),
            ``"reg"`` (``lam_b`` in ``[1e-3, 1]``). Modes without a known threshold for the
            drawn loss (MSE encodings with ``"reg"``; imbalanced or nonnegative MSE with a bias)
            are skipped when ``regime != "any"``.
        nonneg: ``H >= 0`` (True), signed (False) or either (None).
        min_d: range of ``d`` (default ``[max(K-1, 1), K+1]``, raised to ``K`` for
            nonnegative features in a regime).
        max_d: range of ``d`` (default ``[max(K-1, 1), K+1]``, raised to ``K`` for
            nonnegative features in a regime).
        balanced: counts balanced (True), imbalanced (False) or either (None).
        regime: ``"any"``, ``"nonzero"``, ``"zero"`` or ``"near_threshold"``. For balanced
            classes it places ``kappa = sqrt(n lam_W lam_H)`` relative to
            :func:`kappa_threshold`. For imbalanced counts (bias-free MSE only, Dang et al.
            2023) it places ``N sqrt(lam_W lam_H)`` relative to ``sqrt(n_k)``: below
            ``sqrt(min n_k)`` ("nonzero": no class collapses to 0), above ``sqrt(max n_k)``
            ("zero"), or near ``sqrt(n_k)`` of a drawn class. ``lam_W / lam_H = rho^2`` with
            ``rho`` in ``[0.5, 2]``.

    Raises:
        ValueError: on invalid bounds (immediately) or, when drawing, on a combination with no
            known threshold (for example imbalanced cross-entropy with ``regime="zero"``).

    Example:
        ``@given(ufm.testing.ufm_problems(regime="nonzero"))``, or with one compiled shape:
        ``@given(ufm.testing.ufm_problems(sizes=[(3, 2, 4)], losses=("ce",), regime="zero"))``
    """
    cfg = _config(min_K=min_K, max_K=max_K, sizes=sizes, losses=losses, bias=bias, nonneg=nonneg,
                  min_d=min_d, max_d=max_d, balanced=balanced, regime=regime)
    return _problems(cfg, closed_form=False)


def closed_form_problems(
    *,
    min_K: int = 2,
    max_K: int = 4,
    sizes: Sequence[tuple] | None = None,
    losses: Sequence[str] | st.SearchStrategy | Callable | None = None,
    bias: Sequence[str] | str = BIAS_MODES,
    nonneg: bool | None = False,
    min_d: int | None = None,
    max_d: int | None = None,
    balanced: bool | None = True,
    regime: str = "any",
) -> st.SearchStrategy:
    """Problems inside the assumptions of ``proofs_check.closed_forms`` (``assumptions(prob)[0]``
    is True), so that ``closed_forms.predict(prob)`` gives the global minimizer's invariants.

    Same arguments as :func:`ufm_problems`. Valid problems are constructed, not filtered: ``d`` is
    raised to ``K - 1`` (CE family) or ``min(D, K)`` (MSE), imbalanced counts draw bias-free MSE,
    and MSE encodings skip the regularized bias. ``nonneg`` must be False (the nonnegative model
    has no closed form in ``proofs_check``).

    Raises:
        ValueError: ``nonneg`` is not False, or when drawing, an explicit size or loss strategy
            that no closed form covers.

    Example:
        ``@given(ufm.testing.closed_form_problems(sizes=[(3, 2, 4)], losses=("ce", "mse"),
        regime="nonzero"))``, then compare ``ufm.minimize(prob)`` with
        ``proofs_check.closed_forms.predict(prob)``.
    """
    if nonneg is not False:
        raise ValueError("closed_form_problems needs nonneg=False: proofs_check has no closed form "
                         "for nonnegative features")
    cfg = _config(min_K=min_K, max_K=max_K, sizes=sizes, losses=losses, bias=bias, nonneg=nonneg,
                  min_d=min_d, max_d=max_d, balanced=balanced, regime=regime)
    return _problems(cfg, closed_form=True)
