r"""The deep unconstrained feature model: free features followed by L weight layers."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ufm._internal.validation import as_float_array, check_int, check_nonneg, is_concrete, scalar_param
from ufm.losses import Loss
from ufm.problems._base import (
    ClassSizes, Problem, PyTree, bias_shift_tangent, concat_tangents, features_lower, normalize_counts,
    rotation_tangents, skew_basis, stack_tangents,
)

__all__ = ["DeepParams", "DeepUFM"]

ACTIVATIONS = ("relu", "linear")


class DeepParams(NamedTuple):
    """Parameters of a :class:`DeepUFM`.

    Attributes:
        Ws: ``(W_1, ..., W_L)``; ``W_l`` has shape ``(d_{l+1}, d_l)`` with ``d_{L+1} = D``
            (``D = K`` except for MSE encodings).
        H: ``(d_1, N)`` free features ``H_1``, columns grouped by class (class 0 first).
        b: ``(D,)`` bias of the last layer, or ``None``.
    """

    Ws: tuple  # L arrays, W_l shape=(d_{l+1}, d_l), float64
    H: jax.Array  # shape=(d_1, N), float64
    b: jax.Array | None  # shape=(D,), float64, or None


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (numbers.Integral, np.integer)) and not isinstance(widths, bool):
        widths = (widths,)
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be a non-empty sequence of ints >= 1 (d_1, ..., d_L), "
                         f"got widths={widths!r}") from None
    if not widths:
        raise ValueError("widths must be a non-empty sequence of ints >= 1 (d_1, ..., d_L), got widths=()")
    return tuple(check_int("widths", w, 1, hint=f" (in widths={widths!r})") for w in widths)


def _per_layer(name: str, value, L: int):
    """A scalar or a length-L sequence -> a float64 ``(L,)`` array (concrete values only)."""
    if value is None:
        raise ValueError(f"{name} must be a number >= 0 or a sequence of L={L} numbers >= 0, got None")
    if not is_concrete(value) and not isinstance(value, (list, tuple)):
        return value  # a tracer or a placeholder while JAX rebuilds the pytree
    arr = np.asarray(value, dtype=float) if not isinstance(value, jax.Array) else np.asarray(value)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != L):
        raise ValueError(f"{name} must be a scalar or have L={L} entries (one per weight layer), "
                         f"got shape {arr.shape}: {name}={value!r}")
    check_nonneg(name, arr)
    return jnp.broadcast_to(jnp.asarray(arr, dtype=float), (L,))


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class DeepUFM(ClassSizes, Problem):
    r"""Deep unconstrained feature model (deep UFM): free features and ``L`` weight layers.

    .. math::
        f(H_1, W_1, \dots, W_L, b) = \frac1N \sum_{i=1}^N
            \ell\big(W_L\, s(W_{L-1} \cdots s(W_1\, h_i)) + b,\ y_i\big)
            + \sum_{l=1}^L \frac{\lambda_l}2 \lVert W_l\rVert_F^2
            + \frac{\lambda_H}2 \lVert H_1\rVert_F^2 + \frac{\lambda_b}2 \lVert b\rVert_2^2

    with ``s`` the activation (ReLU or the identity) between consecutive layers, none after
    ``W_L``. Layer ``l`` has input width ``d_l`` (``widths[l-1]``) and output width ``d_{l+1}``,
    ``d_{L+1} = K`` (or ``D`` for MSE encodings). ``L = 1`` is :class:`ufm.UFM` (same objective);
    ``L = 2`` with ReLU is the extended UFM of Tirer & Bruna (2022).

    Features of layer ``l``: ``X_1 = H_1`` (post-activation), pre-activation ``Z_l = W_l X_l``,
    ``X_{l+1} = s(Z_l)``; the logits are ``Z_L + b``.

    Args:
        K: number of classes, ``K >= 2``.
        n: samples per class, an int (balanced) or a sequence of ``K`` ints.
        widths: ``(d_1, ..., d_L)``; ``H_1`` has ``d_1`` rows and there are ``L = len(widths)``
            weight layers.
        loss: any :class:`ufm.losses.Loss` (it takes logits of shape ``(D, N)``).
        lam_W: weight decay of the layers, a number (all layers) or a sequence of ``L`` numbers
            ``(lambda_1, ..., lambda_L)``, each ``>= 0``; stored as a float64 ``(L,)`` array.
        lam_H: weight decay of ``H_1``, ``>= 0``.
        lam_b: ``None`` (no bias), ``0.0`` (free bias) or ``> 0`` (regularized bias) on the last
            layer.
        activation: ``"relu"`` or ``"linear"`` (deep linear UFM).
        relu_features: a ReLU on ``H_1`` itself. Implemented as the constraint ``H_1 >= 0``
            (``box_lower``), not as an activation: the two models have the same optimal value
            and the same minimizers, because at a minimizer of ``f(relu(H_1))`` the penalty forces
            every negative entry of ``H_1`` to ``0`` (it changes nothing else), so ``H_1 =
            relu(H_1) >= 0``; the constrained form keeps the objective smooth in ``H_1`` and lets
            :func:`ufm.minimize` certify a KKT point.
        smoothing: ``None`` (the exact ReLU), or ``beta > 0``: the smooth surrogate
            ``s(z) = softplus(beta z) / beta`` (``0 <= s(z) - relu(z) <= log(2)/beta``), used by
            :func:`ufm.minimize` as a continuation towards the ReLU model (an array leaf: changing it
            does not recompile).
        pattern: ``None``, or a fixed activation pattern ``(M_1, ..., M_{L-1})`` of 0/1 arrays
            ``M_l: (d_{l+1}, N)``: then ``s(Z_l) = M_l * Z_l``, the smooth piece of the ReLU
            model on which the pattern is ``M`` (made by :meth:`on_pattern`, used by
            :func:`polish_relu` to certify ReLU minimizers that sit on kinks).

    .. note:: With ``activation="relu"`` the objective is not differentiable where a
       pre-activation entry is exactly ``0``; JAX uses ``relu'(0) = 0``. Deep-neural-collapse
       points sit on such kinks (the off-diagonal zeros of an orthogonal frame), with the data
       gradient vanishing there, so the certificate still applies (see the tests).

    .. warning:: Papers scale the penalties differently; this is the canonical objective of
       ``docs/theory.md#canonical-objective, #deep-reduction``: ``lam/2`` and a mean over samples.

    References:
        Tirer & Bruna, ICML 2022 (arXiv 2202.08087), the extended (two-layer) UFM; Súkeník,
        Mondelli & Lampert, NeurIPS 2023 (arXiv 2305.13165), the deep UFM and deep neural
        collapse; Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468), its low-rank minimizers.
    """

    K: int = field(metadata=dict(static=True))
    n: int | tuple[int, ...] = field(metadata=dict(static=True))
    widths: tuple[int, ...] = field(metadata=dict(static=True))
    loss: Loss
    lam_W: ArrayLike = 5e-3  # stored as a float64 array
    lam_H: ArrayLike = 5e-3  # stored as a float64 array
    lam_b: ArrayLike | None = None  # stored as a float64 array
    activation: str = field(default="relu", metadata=dict(static=True))
    relu_features: bool = field(default=False, metadata=dict(static=True))
    pattern: tuple | None = None
    smoothing: jax.Array | None = None

    def __post_init__(self):
        if not isinstance(self.K, (numbers.Integral, np.integer)) or isinstance(self.K, bool) or self.K < 2:
            raise ValueError(f"K must be an integer >= 2 (number of classes), got K={self.K!r}")
        object.__setattr__(self, "K", int(self.K))
        object.__setattr__(self, "n", normalize_counts(self.n, self.K)[0])
        object.__setattr__(self, "widths", _check_widths(self.widths))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'linear', got activation={self.activation!r}")
        if not isinstance(self.loss, Loss):
            raise ValueError(f"loss must be a ufm loss (ufm.MSE(), ufm.CrossEntropy(), ...), "
                             f"got loss={self.loss!r}")
        self.loss.check(self.K)
        object.__setattr__(self, "lam_W", _per_layer("lam_W", self.lam_W, len(self.widths)))
        for name in ("lam_H", "lam_b"):
            value = getattr(self, name)
            if value is None and name == "lam_H":
                raise ValueError("lam_H must be a number >= 0, got None")
            if value is not None:
                if (is_concrete(value) or isinstance(value, (list, tuple))) and np.ndim(value) != 0:
                    raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
                check_nonneg(name, value)
                object.__setattr__(self, name, as_float_array(value))
        object.__setattr__(self, "relu_features", bool(self.relu_features))
        if self.smoothing is not None:
            object.__setattr__(self, "smoothing", scalar_param("smoothing", self.smoothing, positive=True))
        if self.pattern is not None and all(is_concrete(M) for M in self.pattern):
            shapes = tuple((d, self.N) for d in self.widths[1:])
            got = tuple(np.shape(M) for M in self.pattern)
            if got != shapes:
                raise ValueError(f"pattern must hold L-1={self.L - 1} arrays of shapes {shapes}, got {got}")
            object.__setattr__(self, "pattern", tuple(jnp.asarray(M, dtype=float) for M in self.pattern))

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def L(self) -> int:
        """Number of weight layers."""
        return len(self.widths)

    @property
    def dims(self) -> tuple[int, ...]:
        """``(d_1, ..., d_L, D)``: ``W_l`` maps ``dims[l-1] -> dims[l]``."""
        return self.widths + (self.D,)

    @property
    def labels(self) -> np.ndarray:
        """Class of each column of ``H_1``."""
        return np.repeat(np.arange(self.K), self.counts)

    @property
    def lams(self) -> jax.Array:
        """``(lambda_1, ..., lambda_L)`` as an ``(L,)`` array."""
        return jnp.broadcast_to(self.lam_W, (self.L,))

    # ---- the Problem contract ----------------------------------------------------------------
    def init(self, key: jax.Array, scale: float | None = None) -> DeepParams:
        """Gaussian start; bias 0.

        ``scale=None``: ``W_l`` entries have standard deviation ``sqrt(2/d_l)`` (He) for ReLU and
        ``sqrt(1/d_l)`` for linear layers, ``H_1`` entries 1, so every layer keeps the scale of
        its input. A number: every entry has standard deviation ``scale``. With
        ``relu_features`` the features start at ``|H_1|``.
        """
        keys = jax.random.split(key, self.L + 1)
        dims = self.dims
        gain = 2.0 if self.activation == "relu" else 1.0
        stds = [np.sqrt(gain / dims[l]) if scale is None else scale for l in range(self.L)]
        Ws = tuple(stds[l] * jax.random.normal(keys[l], (dims[l + 1], dims[l]), dtype=float)
                   for l in range(self.L))
        H = (1.0 if scale is None else scale) * jax.random.normal(keys[-1], (dims[0], self.N), dtype=float)
        if self.relu_features:
            H = jnp.abs(H)
        b = jnp.zeros((self.D,), dtype=float) if self.has_bias else None
        return DeepParams(Ws, H, b)

    def act(self, Z: jax.Array, l: int = 0) -> jax.Array:
        """The activation ``s`` after layer ``l + 1`` (ReLU, the identity, or the fixed pattern)."""
        if self.pattern is not None:
            return self.pattern[l] * Z
        if self.activation == "relu" and self.smoothing is not None:
            beta = self.smoothing
            return jax.nn.softplus(beta * Z) / beta
        return jax.nn.relu(Z) if self.activation == "relu" else Z

    def on_pattern(self, params: DeepParams, rtol: float = 0.0) -> DeepUFM:
        """The smooth piece through ``params``: the same problem with the activation pattern
        ``M_l = 1[Z_l > rtol * max|Z_l|]`` of ``params`` frozen (smaller entries count as off)."""
        if self.activation != "relu":
            raise ValueError(f"on_pattern needs activation='relu', got activation={self.activation!r}")
        pre, _ = self.layers(params)
        masks = tuple((np.asarray(Z) > rtol * np.max(np.abs(np.asarray(Z)))).astype(float) for Z in pre[:-1])
        return dataclasses.replace(self, pattern=masks)

    def layers(self, params: DeepParams) -> tuple[list, list]:
        """``(pre, post)``: ``post = [X_1 = H_1, X_2, ..., X_L]`` and ``pre = [Z_1, ..., Z_L]``
        with ``Z_l = W_l X_l`` and ``X_{l+1} = s(Z_l)``; ``Z_L`` is the logit matrix without bias."""
        post, pre = [params.H], []
        for l, W in enumerate(params.Ws):
            pre.append(W @ post[-1])
            if l < self.L - 1:
                post.append(self.act(pre[-1], l))
        return pre, post

    def logits(self, params: DeepParams) -> jax.Array:
        """``W_L s(... s(W_1 H_1)) + b 1^T``, shape ``(D, N)``."""
        X = params.H
        for l, W in enumerate(params.Ws):
            X = W @ X if l == self.L - 1 else self.act(W @ X, l)
        return X if params.b is None else X + params.b[:, None]

    def data_term(self, params: DeepParams) -> jax.Array:
        """``(1/N) sum_i loss(logits_i, y_i)``."""
        return jnp.mean(self.loss(self.logits(params), jnp.asarray(self.labels)))

    def penalty(self, params: DeepParams) -> jax.Array:
        """``sum_l lam_l/2 ||W_l||^2 + lam_H/2 ||H_1||^2 + lam_b/2 ||b||^2``."""
        lams = self.lams
        pen = 0.5 * self.lam_H * jnp.sum(params.H**2)
        for l, W in enumerate(params.Ws):
            pen = pen + 0.5 * lams[l] * jnp.sum(W**2)
        if params.b is not None:
            pen = pen + 0.5 * self.lam_b * jnp.sum(params.b**2)
        return pen

    def objective(self, params: DeepParams) -> jax.Array:
        """The canonical deep-UFM objective (class docstring)."""
        return self.data_term(params) + self.penalty(params)

    @property
    def constrained(self) -> bool:
        """Whether the features are constrained (``relu_features``: ``H_1 >= 0``)."""
        return self.relu_features

    def box_lower(self, params: DeepParams) -> DeepParams:
        """``H_1 >= 0`` with ``relu_features``; everything else unbounded."""
        return features_lower(params, self.relu_features)

    def smooth_piece(self, params: DeepParams, rtol: float = 1e-3) -> DeepUFM | None:
        """The activation piece through ``params`` (:meth:`on_pattern` with ``rtol``) for a ReLU
        model without a fixed pattern; ``None`` otherwise (the objective is smooth)."""
        if self.activation != "relu" or self.pattern is not None or self.smoothing is not None or self.L < 2:
            return None
        return self.on_pattern(params, rtol)

    def smoothed(self, beta: ArrayLike) -> DeepUFM | None:
        """The same ReLU model with ``relu`` replaced by ``softplus(beta z)/beta`` (``None`` for a
        linear model or a fixed pattern)."""
        if self.activation != "relu" or self.pattern is not None or self.L < 2:
            return None
        return dataclasses.replace(self, smoothing=beta)

    def piece_report(self, piece: DeepUFM, params: DeepParams, tol: float = 1e-8) -> dict:
        r"""Is ``params`` on the activation piece ``piece`` (a problem with a fixed pattern ``M``)?

        With ``Z_l`` the ReLU pre-activations at ``params`` and ``s = max |Z_l|``: ``consistent``
        when every entry with ``M_l = 1`` is ``>= -tol s`` and every entry with ``M_l = 0`` is
        ``<= tol s`` (then ``relu(Z_l) = M_l Z_l`` up to ``tol s``, and ``gap``, the difference
        of the two objectives, is at round-off). ``kinks`` lists ``(layer, unit, sample)`` with
        ``|Z_l| <= tol s``: units exactly at a kink of the ReLU, where the piece is one of the
        adjacent pieces (1-based layer ``l`` of ``W_l``).
        """
        pre, _ = self.layers(params)
        consistent, kinks = True, []
        for l, (M, Z) in enumerate(zip(piece.pattern, pre[:-1])):
            M, Z = np.asarray(M), np.asarray(Z)
            scale = float(np.max(np.abs(Z))) if Z.size else 0.0
            consistent &= bool(np.all(Z[M > 0] >= -tol * scale) and np.all(Z[M == 0] <= tol * scale))
            kinks += [(l + 1, int(i), int(j)) for i, j in np.argwhere(np.abs(Z) <= tol * scale)]
        gap = abs(float(self.objective(params)) - float(piece.objective(params)))
        return {"consistent": consistent, "kinks": kinks, "gap": gap}

    def classifier(self, params: DeepParams) -> tuple[jax.Array, jax.Array]:
        """``(W_L, X_L)``: the last layer and the features it reads (post-activation of layer
        ``L - 1``; ``H_1`` when ``L = 1``), so that the one-layer metrics apply."""
        _, post = self.layers(params)
        return params.Ws[-1], post[-1]

    def symmetry_tangents(self, params: DeepParams) -> PyTree | None:
        r"""Continuous symmetries of the deep objective (derived, not assumed):

        - the input rotation ``H_1 -> Q H_1``, ``W_1 -> W_1 Q^T`` (``Q`` in ``O(d_1)``), for every
          activation: it keeps ``W_1 H_1`` and both norms (``dH = A H_1``, ``dW_1 = -W_1 A``);
        - for linear layers, between layers ``l`` and ``l + 1`` (``Q`` in ``O(d_{l+1})``):
          ``W_l -> Q W_l``, ``W_{l+1} -> W_{l+1} Q^T`` keeps the product and the norms
          (``dW_l = A W_l``, ``dW_{l+1} = -W_{l+1} A``). After a ReLU (or a fixed activation
          pattern) only permutations and positive diagonal rescalings ``D`` commute with the
          activation; permutations are discrete and ``W_l -> D W_l``, ``W_{l+1} -> W_{l+1}
          D^{-1}`` changes ``lam_l ||D W_l||^2 + lam_{l+1} ||W_{l+1} D^{-1}||^2`` (weight decay
          breaks it), so a ReLU hidden layer contributes no continuous symmetry;
        - ``b -> b + s 1`` for a free bias with a shift-invariant loss.
        """
        Ws = list(params.Ws)
        parts = []
        if params.H.shape[0] > 1:
            dW1, dH = rotation_tangents(params, Ws[0], params.H)
            parts.append(stack_tangents(params, H=dH, Ws=tuple(
                dW1 if l == 0 else jnp.zeros((dW1.shape[0],) + W.shape) for l, W in enumerate(Ws))))
        if self.activation == "linear" and self.pattern is None:
            for l in range(self.L - 1):
                p = Ws[l].shape[0]
                if p < 2:
                    continue
                A = skew_basis(p)
                m = A.shape[0]
                dWs = tuple(
                    jnp.einsum("mpq,qr->mpr", A, W) if j == l
                    else -jnp.einsum("rp,mpq->mrq", W, A) if j == l + 1
                    else jnp.zeros((m,) + W.shape) for j, W in enumerate(Ws))
                parts.append(stack_tangents(params, Ws=dWs))
        return concat_tangents(*parts, bias_shift_tangent(self, params))

    def zeros(self) -> DeepParams:
        """The all-zero parameters (a critical point; a local minimum when ``L >= 2`` without bias)."""
        dims = self.dims
        Ws = tuple(jnp.zeros((dims[l + 1], dims[l])) for l in range(self.L))
        b = jnp.zeros((self.D,)) if self.has_bias else None
        return DeepParams(Ws, jnp.zeros((dims[0], self.N)), b)
