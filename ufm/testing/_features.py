"""Feature matrices for metric tests: generic Gaussian features, or features collapsed onto a frame."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from ufm.problems import normalize_counts
from ufm.testing._strategies import SEEDS

__all__ = ["features"]


def _frame_means(K: int, d: int, kind: str) -> np.ndarray:
    """``(d, K)`` unit-norm class means before the rotation: a simplex ETF or an orthogonal frame."""
    if kind == "etf":
        if d < K - 1:
            raise ValueError(f"a simplex ETF needs d >= K-1, got d={d}, K={K}")
        M = (np.eye(K) - np.ones((K, K)) / K) * math.sqrt(K / (K - 1))
    else:
        if d < K:
            raise ValueError(f"an orthogonal frame needs d >= K, got d={d}, K={K}")
        M = np.eye(K)
    if K < d:
        return np.vstack([M, np.zeros((d - K, K))])
    if K > d:  # the ETF lies in the (K-1)-dimensional complement of the ones vector
        U, _, _ = np.linalg.svd(M)
        return U[:, :d].T @ M
    return M


def _haar_rotation(seed: int, d: int) -> np.ndarray:
    """A Haar-random ``Q`` in ``O(d)`` from ``jax.random.orthogonal``, in float64 whatever the
    process's ``jax_enable_x64`` (a scoped ``jax.enable_x64`` leaves that setting as it was)."""
    with jax.enable_x64(True):
        Q = jax.random.orthogonal(jax.random.PRNGKey(seed), d, dtype=jnp.float64)
        return np.asarray(Q, dtype=np.float64)


def features(*, K: int, n: int | Sequence[int], d: int, collapsed: bool | str = False) -> st.SearchStrategy:
    """Feature matrices ``H: (d, N)`` (float64 NumPy) with their ``labels`` (length ``N``).

    Columns are grouped by class, as in :class:`ufm.UFM` (``labels = repeat(arange(K), counts)``).

    Args:
        K: number of classes.
        n: samples per class, an int or a tuple of ``K`` counts.
        d: feature dimension.
        collapsed: False for generic Gaussian features (random scale in ``[0.1, 10]``, class means
            distinct almost surely); ``"etf"`` (or True) for features exactly collapsed onto a
            simplex ETF (``d >= K-1``); ``"orthogonal"`` for an orthogonal frame (``d >= K``).
            Collapsed means have a random common norm in ``[0.1, 10]`` and are rotated by a
            Haar-random ``Q`` in ``O(d)`` (``jax.random.orthogonal``, seeded by the draw).

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
    M = None if kind is None else _frame_means(K, d, kind)  # checks the sizes now, not when drawing

    def build(seed, scale):
        if M is None:
            rng = np.random.default_rng(seed)
            return scale * rng.standard_normal((d, labels.size)), labels.copy()
        return scale * (_haar_rotation(seed, d) @ M)[:, labels], labels.copy()

    return st.builds(build, SEEDS, st.floats(0.1, 10.0))
