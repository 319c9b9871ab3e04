r"""The strongly-regular-graph candidate of the deep ReLU UFM as a Problem over its free scalars.

Súkeník, Mondelli & Lampert (2024, arXiv 2405.14468) show that deep neural collapse is not
optimal for the deep ReLU UFM with many classes: a low-rank configuration built on the triangular
graph ``T(r)`` (``K = r(r-1)/2`` classes, one per edge ``{a, b}`` of the complete graph on ``r``
vertices) has a lower objective. :class:`GraphCandidate` exposes that family's ``2L + 3`` free
scalars as the parameters of a :class:`ufm.Problem`, so any ufm solver optimizes them; the value
is the deep UFM's objective at explicit parameters (:func:`graph_params`), hence an upper bound
on the deep UFM's optimum.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ufm.problems._base import Problem
from ufm.problems._deep import DeepParams, DeepUFM

__all__ = ["GraphCandidate", "graph_params"]


def _edge_incidence(r: int) -> np.ndarray:
    """``X0 (r, K)``: column ``{a, b}`` is ``e_a + e_b`` (rank ``r``, Gram ``2I + A(T(r))``)."""
    edges = list(itertools.combinations(range(r), 2))
    return np.array([[1.0 if a in e else 0.0 for e in edges] for a in range(r)])


def graph_params(prob: DeepUFM, r: int, e: int, th: jax.Array) -> DeepParams:
    r"""Deep-UFM parameters of the graph candidate with free scalars ``th``.

    Class ``{a, b}`` is represented by ``a_0 (e_a + e_b + s 1)`` in ``R^r`` up to layer ``e``;
    ``W_l = a_l (I_r + c_l J_r / r)`` keep it there (nonnegative, so the ReLUs act as the
    identity); ``W_e = a_e [e_c + e_d - (1/2 + t) 1]_{cd}`` (``K x r``) and the ReLU expand it to
    rank ``K`` (``t = 0``, ``s = 0`` give exactly ``relu(W_e X0) = a_e I_K``); later layers
    ``a_l (I_K + c_l J_K / K)``. ``th = (a_0, ..., a_L, c_1, ..., c_L, s, t)``.

    .. math:: K = \binom r2, \qquad \operatorname{relu}\big((X_0^T - \tfrac12)X_0\big) = I_K .

    References:
        Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468).
    """
    L, d, K = prob.L, prob.dims, prob.K
    X0 = _edge_incidence(r)
    Bp = X0.T
    a, c, s, t = th[: L + 1], th[L + 1: 2 * L + 1], th[2 * L + 1], th[2 * L + 2]

    def pad(A, rows, cols):
        return jnp.zeros((rows, cols)).at[: A.shape[0], : A.shape[1]].set(A)

    Hbar = pad(a[0] * (X0 + s), d[0], K)
    Ws = []
    for l in range(1, L + 1):
        if l < e:
            A = a[l] * (jnp.eye(r) + c[l - 1] * jnp.ones((r, r)) / r)
        elif l == e:
            A = a[l] * (Bp - (0.5 + t))
        else:
            A = a[l] * (jnp.eye(K) + c[l - 1] * jnp.ones((K, K)) / K)
        Ws.append(pad(A, d[l], d[l - 1]))
    return DeepParams(tuple(Ws), Hbar[:, prob.labels], None)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GraphCandidate(Problem):
    r"""The free scalars of the graph candidate of a deep ReLU UFM, as a Problem.

    ``objective(th) = deep.objective(graph_params(deep, r, e, th))`` with ``K = r(r-1)/2`` and the
    expansion at layer ``e`` (``1 <= e <= L``). ``init`` is the exact start ``a = 1``,
    ``c = s = t = 0`` (``H = X0``, identities, ``relu(B X0) = I``).

    Args:
        deep: the :class:`ufm.DeepUFM` (ReLU, ``K = r(r-1)/2``).
        r: number of graph vertices.
        e: the layer where the rank expands.

    References:
        Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468).
    """

    deep: DeepUFM
    r: int = dataclasses.field(metadata=dict(static=True))
    e: int = dataclasses.field(metadata=dict(static=True))

    def __post_init__(self):
        if not isinstance(self.deep, DeepUFM):
            raise ValueError(f"deep must be a ufm.DeepUFM, got {type(self.deep).__name__}")
        if self.deep.K != self.r * (self.r - 1) // 2:
            raise ValueError(f"r must satisfy K = r(r-1)/2, got r={self.r}, K={self.deep.K}")
        if not 1 <= self.e <= self.deep.L:
            raise ValueError(f"e must be in 1..L={self.deep.L}, got e={self.e}")

    def build(self, th: jax.Array) -> DeepParams:
        """The deep UFM's parameters at the free scalars ``th``."""
        return graph_params(self.deep, self.r, self.e, th)

    def objective(self, th: jax.Array) -> jax.Array:
        """The deep UFM's objective at :meth:`build` ``(th)``."""
        return self.deep.objective(self.build(th))

    def init(self, key: jax.Array, scale: float | None = None) -> jax.Array:
        """The exact start ``a = 1``, ``c = s = t = 0`` (``key`` and ``scale`` are not used)."""
        return jnp.zeros(2 * self.deep.L + 3).at[: self.deep.L + 1].set(1.0)
