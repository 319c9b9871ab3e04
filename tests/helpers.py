"""Shared helpers for ufm's tests (tree comparisons, ETF targets, problem builders)."""

from __future__ import annotations

import os

import jax
import numpy as np

THOROUGH = os.environ.get("UFM_HYPOTHESIS_PROFILE") == "thorough"
THOROUGH_EXAMPLES = 200


def examples(n: int) -> int:
    """A test's own hypothesis example count ``n`` (kept small: every new shape compiles); the
    thorough profile (``UFM_HYPOTHESIS_PROFILE=thorough``, tests/conftest.py) raises it to 200,
    so that no test's own setting keeps the thorough run narrow."""
    return max(int(n), THOROUGH_EXAMPLES) if THOROUGH else int(n)


def tree_allclose(a, b, rtol=1e-12, atol=0.0) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        return False
    return all(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol) for x, y in zip(la, lb))


def etf_gram(K: int) -> np.ndarray:
    """Normalized simplex-ETF Gram ``P / sqrt(K-1)`` (unit Frobenius norm)."""
    return (np.eye(K) - np.ones((K, K)) / K) / np.sqrt(K - 1)


def normalized(G) -> np.ndarray:
    G = np.asarray(G, dtype=float)
    return G / np.linalg.norm(G)


def class_means(H, labels, K):
    H = np.asarray(H)
    return np.stack([H[:, labels == k].mean(axis=1) for k in range(K)], axis=1)
