"""Small strategies: losses, label encodings, ``kappa`` in a regime, penalty pairs, class counts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from ufm.losses import MSE, CrossEntropy, Focal, LabelSmoothing

__all__ = ["REGIMES", "LOSS_KINDS", "BIAS_MODES", "REGIME_FRACS", "SEEDS", "encodings", "losses", "kappas",
           "regime_fracs", "lams", "class_counts", "check_kinds", "check_regime"]

REGIMES = ("any", "nonzero", "zero", "near_threshold")
LOSS_KINDS = ("ce", "ls", "focal", "mse")
BIAS_MODES = ("none", "free", "reg")

REGIME_FRACS = {"nonzero": (0.05, 0.9), "zero": (1.1, 2.0)}  # kappa / kappa* in each regime
_NEAR = (1e-3, 0.05)  # relative distance from the threshold in "near_threshold"
SEEDS = st.integers(0, 2**32 - 1)
"""Seeds of the NumPy and JAX generators behind the array strategies."""


def encodings(*, K: int, min_D: int = 2, max_D: int | None = None) -> st.SearchStrategy:
    """Random Gaussian label encodings ``E: (D, K)`` (float64 NumPy), ``D`` in ``[min_D, max_D]``.

    Entries come from a seeded NumPy generator, so the code is generic (full rank, distinct
    singular values) and never the all-zero matrix hypothesis would otherwise try first.

    Args:
        K: number of classes (columns).
        min_D: range of the code length ``D`` (default ``max_D = K + 1``). Each ``D`` is a
            new shape for the solvers (a new compilation).
        max_D: range of the code length ``D`` (default ``max_D = K + 1``). Each ``D`` is a
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
        SEEDS,
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
        min_D: range of the code length (default ``[2, K + 1]``).
        max_D: range of the code length (default ``[2, K + 1]``).

    Example:
        ``@given(ufm.testing.losses(kinds=("ce", "ls")))``
    """
    kinds = check_kinds(kinds)
    if not 0.0 <= max_alpha < 1.0:
        raise ValueError(f"max_alpha must lie in [0, 1), got max_alpha={max_alpha}")
    if not 0.0 <= max_gamma < math.inf:
        raise ValueError(f"max_gamma must be a finite number >= 0, got max_gamma={max_gamma}")
    if encodings and K is None:
        raise ValueError("encodings=True needs K (the number of columns of the code)")
    mse = st.just(MSE())
    if encodings:
        mse = st.one_of(mse, st.builds(MSE, _encodings(K=K, min_D=min_D, max_D=max_D)))
    by_kind = {
        "ce": st.just(CrossEntropy()),
        "ls": st.builds(LabelSmoothing, st.floats(0.0, max_alpha)),
        "focal": st.builds(Focal, st.floats(0.0, max_gamma)),
        "mse": mse,
    }
    return st.one_of(*(by_kind[k] for k in kinds))


_encodings = encodings  # `losses` has an argument of the same name


def kappas(*, threshold: float = 1.0, regime: str = "any") -> st.SearchStrategy:
    """``kappa`` values placed relative to a zero-solution threshold (see :mod:`ufm.testing`).

    Args:
        threshold: ``kappa*``, for example :func:`kappa_threshold`.
        regime: ``"any"``, ``"nonzero"``, ``"zero"`` or ``"near_threshold"``.

    Example:
        ``@given(ufm.testing.kappas(threshold=1 / 3, regime="zero"))``
    """
    return regime_fracs(check_regime(regime)).map(lambda f: f * threshold)


def regime_fracs(regime: str) -> st.SearchStrategy:
    """``kappa / kappa*`` for a regime (see :mod:`ufm.testing`)."""
    if regime == "any":
        return st.one_of(*(regime_fracs(r) for r in REGIMES[1:]))
    if regime == "near_threshold":
        signs = st.sampled_from((-1.0, 1.0))
        return st.builds(lambda u, sign: 1.0 + sign * u, st.floats(*_NEAR), signs)
    return st.floats(*REGIME_FRACS[regime])


def lams(
    *, n: int = 1, kappa: float | st.SearchStrategy | None = None, min_rho: float = 0.5, max_rho: float = 2.0
) -> st.SearchStrategy:
    """``(lam_W, lam_H)`` with ``sqrt(n lam_W lam_H) = kappa`` and ``sqrt(lam_W / lam_H) = rho``:
    ``lam_W = kappa rho / sqrt(n)``, ``lam_H = kappa / (rho sqrt(n))``.

    Args:
        n: samples per class.
        kappa: a float, a strategy of floats, or None for :func:`kappas` with ``threshold=1``.
        min_rho: range of the ratio ``rho`` (the balance of the two penalties).
        max_rho: range of the ratio ``rho`` (the balance of the two penalties).

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
        min_n: range of each count.
        max_n: range of each count.
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


def check_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """The loss kinds as a tuple; ``ValueError`` unless a nonempty subset of :data:`LOSS_KINDS`."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in LOSS_KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds must be a nonempty subset of {LOSS_KINDS}, got {kinds!r}")
    return kinds


def check_regime(regime: str) -> str:
    """``regime`` itself; ``ValueError`` unless it is one of :data:`REGIMES`."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got regime={regime!r}")
    return regime
