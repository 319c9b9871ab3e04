r"""Hypothesis strategies for ufm's objects: losses, regularization strengths, class counts, whole
:class:`ufm.UFM` problems (optionally inside a closed form's assumptions, on a chosen side of the
zero-solution threshold) and feature matrices for metric tests.

Modelled on ``xarray.testing.strategies``: every strategy takes keyword-only arguments with small
defaults, and whole problems are built by ``@st.composite`` functions. This module imports
`hypothesis <https://hypothesis.readthedocs.io>`_, a test-only dependency: install ufm with the
``test`` extra (``pip install ufm[test]``).

.. warning:: **Shapes are a compile-time cost.** A problem's sizes (``K``, the class counts, ``d``,
   the encoding's ``D``) are static, so every new shape makes :func:`ufm.minimize` compile again
   (several seconds each), while new hyper-parameters reuse the compiled solver. The default size
   ranges are therefore tiny; in a test suite pass ``sizes=[(3, 2, 4)]`` (one or two explicit
   ``(K, n, d)`` triples) and draw only the hyper-parameters.

Notation (``shared/theory/README.md`` sections 1-3): balanced classes with ``n`` samples each,
``kappa = sqrt(n lam_W lam_H)``. Each loss has a *zero-solution threshold* ``kappa*``: the global
minimizer is nonzero iff ``kappa < kappa*`` (:func:`kappa_threshold`). A ``regime`` places
``kappa`` relative to it:

- ``"nonzero"``: ``kappa`` in ``[0.05, 0.9] kappa*`` (for MSE encodings also at least 10% away
  from every singular value of the code, where the factored problem is degenerate);
- ``"zero"``: ``kappa`` in ``[1.1, 2] kappa*``;
- ``"near_threshold"``: ``kappa = (1 +- u) kappa*`` with ``u`` in ``[1e-3, 0.05]``, never exactly
  at it. At ``kappa*`` itself the minimizer is degenerate (zero curvature along the emerging
  direction) and first-order certificates pin the point only to about ``1e-4``; close to it the
  solvers converge slowly, so expect looser agreement there;
- ``"any"``: one of the three above.

Example:

    >>> import ufm.testing
    >>> from hypothesis import given, settings
    >>> @settings(deadline=None, max_examples=5)
    ... @given(ufm.testing.ufm_problems(regime="nonzero", sizes=[(3, 2, 4)]))
    ... def test_minimize_converges(prob):
    ...     assert ufm.minimize(prob).converged
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st

import ufm
from ufm.etf._reduction import etf_zero_threshold
from ufm.problems._base import normalize_counts

__all__ = [
    "LOSS_KINDS",
    "REGIMES",
    "class_counts",
    "closed_form_problems",
    "encodings",
    "features",
    "kappa",
    "kappa_threshold",
    "kappas",
    "lams",
    "losses",
    "ufm_problems",
]

REGIMES = ("any", "nonzero", "zero", "near_threshold")
LOSS_KINDS = ("ce", "ls", "focal", "mse")
BIAS_MODES = ("none", "free", "reg")

_REGIME_FRACS = {"nonzero": (0.05, 0.9), "zero": (1.1, 2.0)}
_NEAR = (1e-3, 0.05)  # relative distance from the threshold in "near_threshold"
_SV_MARGIN = 0.1  # "nonzero" MSE encodings: |s_i - K kappa| > 0.1 K kappa for every singular value
_SEEDS = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- thresholds (plain functions)


def kappa(prob) -> float:
    """``kappa = sqrt(n lam_W lam_H)`` of a balanced :class:`ufm.UFM`.

    Raises:
        ValueError: the problem is imbalanced (there is no single ``n``).
    """
    if not prob.balanced:
        raise ValueError(f"kappa needs balanced classes, got counts {prob.counts}")
    return math.sqrt(prob.n * float(prob.lam_W) * float(prob.lam_H))


_THRESHOLDS: dict = {}


def _etf_threshold(loss, K: int) -> float:
    """:func:`ufm.etf._reduction.etf_zero_threshold`, cached per loss type, hyper-parameters and ``K``."""
    import jax

    key = (type(loss).__name__, K, tuple(float(np.asarray(x)) for x in jax.tree_util.tree_leaves(loss)))
    if key not in _THRESHOLDS:
        _THRESHOLDS[key] = etf_zero_threshold(loss, K)
    return _THRESHOLDS[key]


def _code_singular_values(loss, K: int, bias_mode: str) -> np.ndarray:
    """Singular values of the code that MSE fits: ``E`` (no bias) or ``E P`` (bias)."""
    E = np.eye(K) if loss.encoding is None else np.asarray(loss.encoding, dtype=float)
    if bias_mode != "none":
        E = E @ (np.eye(K) - np.ones((K, K)) / K)
    return np.linalg.svd(E, compute_uv=False)


def kappa_threshold(loss, K: int, *, bias: str = "none", nonneg: bool = False) -> float:
    r"""Zero-solution threshold ``kappa*`` (balanced classes): the minimizer is nonzero iff
    ``kappa < kappa*``.

    - CE: ``1/K``; label smoothing: ``(1 - alpha)/K`` (Zhu et al. 2021 and section 2, [derived]);
    - focal: ``sup_g (l(0) - l(g)) / ((K-1) g)``. It equals ``1/K`` only at ``gamma = 0`` (for
      ``K = 2, gamma = 3`` it is about ``0.385/K``), so ``1/K`` would be a poor approximation.
      CE, label smoothing and focal are all computed numerically by the simplex-ETF reduction
      (``ufm.etf._reduction.etf_zero_threshold``: bracketing plus bisection in ``kappa``), not from the
      closed forms above (the catalog checks those against it);
    - MSE, one-hot, any bias mode: ``1/K`` (``K kappa = 1``: Tirer & Bruna 2022; free and
      regularized bias, section 3). MSE with an encoding ``E`` and no or free bias: ``s_max/K``
      with ``s_max`` the largest singular value of ``E`` (no bias) or ``E P`` (bias), from the
      singular-value threshold ``SVT_{K kappa}``;
    - nonnegative features (section 5, [derived]): CE/LS ``(1-alpha)/K sqrt((K-1)/K)``; bias-free
      one-hot MSE ``1/K`` (its orthogonal-frame minimizer is nonnegative up to a rotation).

    Args:
        loss: a :class:`ufm.Loss`.
        K: number of classes.
        bias: ``"none"``, ``"free"`` or ``"reg"``.
        nonneg: features constrained ``H >= 0``.

    Raises:
        ValueError: no threshold is known for the combination (MSE with an encoding and a
            regularized bias; nonnegative focal or MSE with a bias or an encoding).
    """
    if isinstance(loss, ufm.MSE):
        if nonneg and (bias != "none" or loss.encoding is not None):
            raise ValueError(
                "no known zero threshold for nonnegative MSE with a bias or an encoding"
            )
        if loss.encoding is not None and bias == "reg":
            raise ValueError(
                "no known zero threshold for MSE with an encoding and a regularized bias"
            )
        return float(_code_singular_values(loss, K, bias)[0]) / K
    alpha = float(loss.alpha) if isinstance(loss, ufm.LabelSmoothing) else 0.0
    if nonneg:
        if isinstance(loss, ufm.Focal):
            raise ValueError("no known zero threshold for the focal loss with nonnegative features")
        return (1.0 - alpha) / K * math.sqrt((K - 1) / K)
    return _etf_threshold(loss, K)


# ---------------------------------------------------------------- small strategies


def encodings(*, K: int, min_D: int = 2, max_D: int | None = None) -> st.SearchStrategy:
    """Random Gaussian label encodings ``E: (D, K)`` (float64 NumPy), ``D`` in ``[min_D, max_D]``.

    Entries come from a seeded NumPy generator, so the code is generic (full rank, distinct
    singular values) and never the all-zero matrix hypothesis would otherwise try first.

    Args:
        K: number of classes (columns).
        min_D, max_D: range of the code length ``D`` (default ``max_D = K + 1``). Each ``D`` is a
            new shape for the solvers (a new compilation).

    Example:
        ``@given(st.builds(ufm.MSE, ufm.testing.encodings(K=3, min_D=3, max_D=3)))``
    """
    max_D = K + 1 if max_D is None else max_D
    if not 1 <= min_D <= max_D:
        raise ValueError(f"need 1 <= min_D <= max_D, got min_D={min_D}, max_D={max_D}")
    return st.builds(
        lambda D, seed: np.random.default_rng(seed).standard_normal((D, K)),
        st.integers(min_D, max_D),
        _SEEDS,
    )


def losses(
    *,
    kinds: Sequence[str] = LOSS_KINDS,
    max_alpha: float = 0.5,
    max_gamma: float = 3.0,
    encodings: bool = False,
    K: int | None = None,
    min_D: int = 2,
    max_D: int | None = None,
) -> st.SearchStrategy:
    """Loss objects: ``CrossEntropy()``, ``LabelSmoothing(alpha)``, ``Focal(gamma)``, ``MSE(E)``.

    Args:
        kinds: loss names to draw from, a subset of ``("ce", "ls", "focal", "mse")``.
        max_alpha: label smoothing ``alpha`` is drawn in ``[0, max_alpha]`` (``< 1``).
        max_gamma: focal ``gamma`` is drawn in ``[0, max_gamma]``.
        encodings: if True, MSE is one-hot or (about half the time) uses a random ``(D, K)`` code
            from :func:`encodings`; needs ``K``. If False MSE is one-hot.
        K: number of classes, needed only for encodings.
        min_D, max_D: range of the code length (default ``[2, K + 1]``).

    Example:
        ``@given(ufm.testing.losses(kinds=("ce", "ls")))``
    """
    kinds = _check_kinds(kinds)
    if not 0.0 <= max_alpha < 1.0:
        raise ValueError(f"max_alpha must lie in [0, 1), got max_alpha={max_alpha}")
    if not 0.0 <= max_gamma < math.inf:
        raise ValueError(f"max_gamma must be a finite number >= 0, got max_gamma={max_gamma}")
    if encodings and K is None:
        raise ValueError("encodings=True needs K (the number of columns of the code)")
    mse = st.just(ufm.MSE())
    if encodings:
        mse = st.one_of(mse, st.builds(ufm.MSE, _encodings(K=K, min_D=min_D, max_D=max_D)))
    by_kind = {
        "ce": st.just(ufm.CrossEntropy()),
        "ls": st.builds(ufm.LabelSmoothing, st.floats(0.0, max_alpha)),
        "focal": st.builds(ufm.Focal, st.floats(0.0, max_gamma)),
        "mse": mse,
    }
    return st.one_of(*(by_kind[k] for k in kinds))


_encodings = encodings  # `losses` has an argument of the same name


def kappas(*, threshold: float = 1.0, regime: str = "any") -> st.SearchStrategy:
    """``kappa`` values placed relative to a zero-solution threshold (module docstring).

    Args:
        threshold: ``kappa*``, for example :func:`kappa_threshold`.
        regime: ``"any"``, ``"nonzero"``, ``"zero"`` or ``"near_threshold"``.

    Example:
        ``@given(ufm.testing.kappas(threshold=1 / 3, regime="zero"))``
    """
    return _fracs(_check_regime(regime)).map(lambda f: f * threshold)


def _fracs(regime: str) -> st.SearchStrategy:
    if regime == "any":
        return st.one_of(*(_fracs(r) for r in REGIMES[1:]))
    if regime == "near_threshold":
        signs = st.sampled_from((-1.0, 1.0))
        return st.builds(lambda u, sign: 1.0 + sign * u, st.floats(*_NEAR), signs)
    return st.floats(*_REGIME_FRACS[regime])


def lams(
    *, n: int = 1, kappa=None, min_rho: float = 0.5, max_rho: float = 2.0
) -> st.SearchStrategy:
    """``(lam_W, lam_H)`` with ``sqrt(n lam_W lam_H) = kappa`` and ``sqrt(lam_W / lam_H) = rho``:
    ``lam_W = kappa rho / sqrt(n)``, ``lam_H = kappa / (rho sqrt(n))``.

    Args:
        n: samples per class.
        kappa: a float, a strategy of floats, or None for :func:`kappas` with ``threshold=1``.
        min_rho, max_rho: range of the ratio ``rho`` (the balance of the two penalties).

    Example:
        ``@given(ufm.testing.lams(n=2, kappa=ufm.testing.kappas(threshold=1/3, regime="nonzero")))``
    """
    if not 0 < min_rho <= max_rho:
        raise ValueError(f"need 0 < min_rho <= max_rho, got min_rho={min_rho}, max_rho={max_rho}")
    if kappa is None:
        kappa = kappas()
    elif not isinstance(kappa, st.SearchStrategy):
        kappa = st.just(float(kappa))
    root_n = math.sqrt(n)
    return st.builds(
        lambda k, rho: (k * rho / root_n, k / (rho * root_n)), kappa, st.floats(min_rho, max_rho)
    )


def class_counts(
    *, K: int, min_n: int = 1, max_n: int = 6, balanced: bool | None = None
) -> st.SearchStrategy:
    """Samples per class: an int ``n`` (balanced) or a tuple of ``K`` ints, not all equal.

    Args:
        K: number of classes.
        min_n, max_n: range of each count.
        balanced: True for an int, False for an imbalanced tuple, None for either.

    Example:
        ``@given(ufm.testing.class_counts(K=3, balanced=False))``
    """
    if not 1 <= min_n <= max_n:
        raise ValueError(f"need 1 <= min_n <= max_n, got min_n={min_n}, max_n={max_n}")
    if balanced is False and min_n == max_n:
        raise ValueError(f"imbalanced counts need min_n < max_n, got min_n=max_n={min_n}")
    equal = st.integers(min_n, max_n)

    def make_unequal(counts):
        if len(set(counts)) > 1:
            return counts
        bumped = counts[0] + 1 if counts[0] < max_n else counts[0] - 1
        return (bumped,) + counts[1:]

    unequal = st.tuples(*([st.integers(min_n, max_n)] * K)).map(make_unequal)
    if balanced is None:
        return st.one_of(equal, unequal)
    return equal if balanced else unequal


# ---------------------------------------------------------------- whole problems


def _check_kinds(kinds) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in LOSS_KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds must be a nonempty subset of {LOSS_KINDS}, got {kinds!r}")
    return kinds


def _check_regime(regime) -> str:
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got regime={regime!r}")
    return regime


def _bias_of(prob) -> str:
    if prob.lam_b is None:
        return "none"
    return "free" if float(prob.lam_b) == 0.0 else "reg"


def _allowed_bias(loss, modes, *, imbalanced, nonneg, regime, closed_form) -> tuple[str, ...]:
    """The bias modes for which the regime's threshold (and, if asked, a closed form) exists."""
    if not (closed_form or regime != "any") or not isinstance(loss, ufm.MSE):
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
        need = min(loss.out_dim(K), K) if isinstance(loss, ufm.MSE) else K - 1
    if nonneg:
        need = max(need, K)
    return max(need, 1)


def _encoding_safe(frac, svals, top):
    """Move ``K kappa = frac * top`` out of the 10% neighbourhoods of the code's singular values.

    The allowed set (in ``log(K kappa)``) of ``[0.05, 0.9] top`` minus those neighbourhoods is a
    union of intervals; ``frac`` is mapped onto it monotonically, preserving its measure.
    """
    lo, hi = np.log(_REGIME_FRACS["nonzero"][0] * top), np.log(_REGIME_FRACS["nonzero"][1] * top)
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
    lo_f, hi_f = _REGIME_FRACS["nonzero"]
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
        kinds = _check_kinds(LOSS_KINDS if losses is None else losses)
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
    if not isinstance(loss, ufm.Loss):
        raise TypeError(f"the losses strategy must draw ufm.Loss objects, got {loss!r}")
    if imbalanced and (closed_form or regime != "any") and not isinstance(loss, ufm.MSE):
        raise ValueError(
            f"imbalanced counts with regime={regime!r} or closed forms need MSE without bias "
            f"(Dang et al. 2023), got loss={loss!r}; pass balanced=True"
        )
    return loss


losses_strategy = losses  # `ufm_problems` has an argument of the same name


def _draw_lams(draw, K, counts, loss, bias_mode, nonneg, regime):
    """``(lam_W, lam_H)`` placing the problem in ``regime`` (module docstring)."""
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
        sq = draw(_fracs(regime)) * ref / N
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
        frac = draw(_fracs(regime))
        if regime == "nonzero" and isinstance(loss, ufm.MSE) and loss.encoding is not None:
            frac = _encoding_safe(frac, _code_singular_values(loss, K, bias_mode), top * K)
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
        balanced = cfg["balanced"] if isinstance(loss, ufm.MSE) or not constrained else True
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
    return ufm.UFM(K=K, n=n, d=d, loss=loss, lam_W=lam_W, lam_H=lam_H, lam_b=lam_b, nonneg=nonneg)


def _config(*, min_K, max_K, sizes, losses, bias, nonneg, min_d, max_d, balanced, regime) -> dict:
    _check_regime(regime)
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
            ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy())
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
    """Valid :class:`ufm.UFM` problems, with ``kappa`` placed in ``regime`` (module docstring).

    Every new shape costs a JAX compilation of several seconds in :func:`ufm.minimize`; pass
    ``sizes`` to fix the shapes and let hypothesis vary only the hyper-parameters.

    Args:
        min_K, max_K: range of the number of classes (ignored with ``sizes``).
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
        min_d, max_d: range of ``d`` (default ``[max(K-1, 1), K+1]``, raised to ``K`` for
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


# ---------------------------------------------------------------- features for metric tests


def _frame(K: int, d: int, kind: str, rng) -> np.ndarray:
    """``(d, K)`` unit-norm class means: a simplex ETF or an orthogonal frame, randomly rotated."""
    if kind == "etf":
        if d < K - 1:
            raise ValueError(f"a simplex ETF needs d >= K-1, got d={d}, K={K}")
        M = (np.eye(K) - np.ones((K, K)) / K) * math.sqrt(K / (K - 1))
    else:
        if d < K:
            raise ValueError(f"an orthogonal frame needs d >= K, got d={d}, K={K}")
        M = np.eye(K)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    if K < d:
        M = np.vstack([M, np.zeros((d - K, K))])
    elif K > d:  # the ETF lies in the (K-1)-dimensional complement of the ones vector
        U, _, _ = np.linalg.svd(M)
        M = U[:, :d].T @ M
    return Q @ M


def features(*, K: int, n, d: int, collapsed: bool | str = False) -> st.SearchStrategy:
    """Feature matrices ``H: (d, N)`` (float64 NumPy) with their ``labels`` (length ``N``).

    Columns are grouped by class, as in :class:`ufm.UFM` (``labels = repeat(arange(K), counts)``).

    Args:
        K: number of classes.
        n: samples per class, an int or a tuple of ``K`` counts.
        d: feature dimension.
        collapsed: False for generic Gaussian features (random scale in ``[0.1, 10]``, class means
            distinct almost surely); ``"etf"`` (or True) for features exactly collapsed onto a
            randomly rotated simplex ETF (``d >= K-1``); ``"orthogonal"`` for an orthogonal frame
            (``d >= K``). Collapsed means have a random common norm in ``[0.1, 10]``.

    Returns:
        A strategy of ``(H, labels)`` pairs.

    Example:
        ``@given(ufm.testing.features(K=3, n=2, d=4, collapsed="etf"))``
    """
    counts = normalize_counts(n, K)[1]
    labels = np.repeat(np.arange(K), counts)
    kind = {True: "etf", "etf": "etf", "orthogonal": "orthogonal", False: None}.get(collapsed, "?")
    if kind == "?":
        raise ValueError(f"collapsed must be False, True, 'etf' or 'orthogonal', got {collapsed!r}")
    if kind is not None:
        _frame(K, d, kind, np.random.default_rng(0))  # check sizes now, not when drawing

    def build(seed, scale):
        rng = np.random.default_rng(seed)
        if kind is None:
            return scale * rng.standard_normal((d, labels.size)), labels.copy()
        return scale * _frame(K, d, kind, rng)[:, labels], labels.copy()

    return st.builds(build, _SEEDS, st.floats(0.1, 10.0))
