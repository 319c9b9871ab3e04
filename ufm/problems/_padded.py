r"""A UFM padded to a bucket of sizes: one compiled solve for every problem that fits the bucket.

A :class:`PaddedUFM` has static *bucket* sizes ``K_max, n_max, d_max`` (the array shapes: ``W`` is
``(K_max, d_max)``, ``H`` is ``(d_max, K_max n_max)``, ``b`` is ``(K_max,)``) and *true* sizes
``K``, ``n``, ``d`` that are array leaves, like the hyper-parameters: a jitted solver compiled for
the bucket runs every problem that fits it, and ``jax.vmap``/``lax.scan`` run over the sizes.

What is padding, and how it is made exact. Column ``j`` of ``H`` belongs to class ``j // n_max``
and is sample ``j % n_max`` of it; the active entries are

- classes ``k < K`` (rows of ``W``, entries of ``b``),
- samples ``s < n_k`` of an active class (columns of ``H``),
- feature coordinates ``i < d`` (columns of ``W``, rows of ``H``).

The objective reads the parameters through the masks, ``W_a = W * (c d^T)``,
``H_a = H * (d s^T)``, ``b_a = b * c`` (``c``, ``d``, ``s`` the 0/1 class, feature and sample
masks), so every padded entry has exactly zero gradient and zero Hessian row and column, and it
stays where the start put it (at zero). A masked sample weighs nothing (its loss is dropped by a
``where``, the mean divides by the true ``N = sum_k n_k``); a masked class never enters a softmax
(its logit is excluded from the log-sum-exp by a ``where``, so it neither wins nor takes
probability mass) nor the label-smoothing sum, nor the MSE residual. Hence

.. math:: f_{\mathrm{pad}}(\theta) = f(\theta_a),

with ``f`` the objective of the :class:`ufm.UFM` of the true sizes and ``theta_a`` the active
block. The certificate of :func:`ufm.minimize` excludes the padded entries (:meth:`active_mask`,
held like components at an active bound) and removes the feature rotations of the active ``d``
block only (:meth:`symmetry_tangents`; the structured projection of :mod:`ufm.solvers._symmetry`
does the same), so ``min_eig`` is that of the unpadded problem. :meth:`init` draws the unpadded
problem's start exactly (JAX's default partitionable Threefry makes the value at a flat index
independent of the array's shape), so ``minimize(pad(prob), seed=s)`` and
``minimize(prob, seed=s)`` start from the same point.

Which families pad. :class:`ufm.UFM` with the built-in losses ``CrossEntropy``,
``LabelSmoothing``, ``Focal`` and one-hot ``MSE``, balanced or imbalanced, with or without a bias.
Refused with a ValueError: ``MSE(encoding=E)`` (the ``(D, K)`` code matrix is data of one ``K``; a
padded class would need a code column that does not exist), custom losses (how a masked class
enters them is unknown), ``nonneg=True`` (the objective pads exactly, but the spectral projected
gradient's active-set steps amplify the last-bit differences between the padded and unpadded
arithmetic: the solutions agree only to the solve tolerance, ``2e-10`` measured in ``W W^T``, not
to ``1e-12``; the class still accepts ``nonneg`` for callers who accept that), and the other families (:class:`ufm.DeepUFM`: the
ReLU piece polish runs on the host per shape; the memorization-dilation, fixed-frame, graph and
target models have no padded form here).

Buckets (:func:`bucket_size`): each size is rounded up to the ladder
``1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ...`` (powers of two and three times powers of two), so a
padded problem is at most 1.5 times (``d``, ``n``) or 1.5 times (``K``) as wide as the true one,
and the sizes up to ``2^k`` fall in ``2k`` buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ufm._internal.validation import check_int, is_concrete, to_numeric
from ufm.losses import MSE, CrossEntropy, Focal, LabelSmoothing, Loss
from ufm.problems._base import (Problem, affine_logits, concat_tangents, rotation_tangents, stack_tangents,
                               weight_decay)
from ufm.problems._ufm import UFM, Params, SignedOrNonnegative, check_penalties

__all__ = ["PaddedUFM", "pad", "bucket_size", "bucket_of", "embed_params", "active_params",
           "unsupported_reason"]


def bucket_size(size: int) -> int:
    """The smallest ladder size ``>= size``: ``1, 2, 3, 4, 6, 8, 12, 16, 24, ...`` (``2^k`` and
    ``3 * 2^k``)."""
    size = check_int("size", size, 1)
    p = 1
    while True:
        for c in (p, 3 * p // 2 if p >= 2 else p):
            if c >= size:
                return c
        p *= 2


def bucket_of(K: int, n: int | tuple[int, ...], d: int) -> tuple[int, int, int]:
    """``(K_max, n_max, d_max)``: each true size rounded up by :func:`bucket_size` (``n`` an int or
    per-class counts: the largest count is rounded)."""
    n_top = max(n) if isinstance(n, tuple) else n
    return bucket_size(K), bucket_size(n_top), bucket_size(d)


def _loss_reason(loss: Loss) -> str | None:
    """Why ``loss`` cannot be padded exactly (``None`` when it can: the built-in losses, MSE one-hot)."""
    if type(loss) not in (CrossEntropy, LabelSmoothing, Focal, MSE):
        return f"loss {type(loss).__name__}: a custom loss does not say how a padded class enters it"
    if isinstance(loss, MSE) and loss.encoding is not None:
        return ("MSE with an encoding: the (D, K) code matrix belongs to one K; a padded class has no "
                "code column (use one-hot MSE, encoding=None)")
    return None


def unsupported_reason(prob: Problem) -> str | None:
    """Why ``prob`` cannot be padded exactly (``None`` when it can; module docstring)."""
    if not isinstance(prob, UFM):
        return (f"{type(prob).__name__} has no padded form (only ufm.UFM pads: the deep model's ReLU "
                f"piece polish runs per shape on the host, and the other families are not covered)")
    if _loss_reason(prob.loss) is not None:
        return _loss_reason(prob.loss)
    if prob.nonneg:
        return ("nonneg=True: the objective pads exactly, but the projected-gradient solve's active-set "
                "steps amplify the last-bit differences of the padded arithmetic, so the padded solution "
                "agrees only to the solve tolerance (2e-10 measured in W W^T), not to 1e-12")
    return None


def _size(name: str, value: Any, lo: int, hi: int) -> jax.Array:
    """A true size as a float64 array leaf; checked (a whole number in ``[lo, hi]``) when concrete."""
    value = to_numeric(name, value)
    if not is_concrete(value):
        return value
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name} must be whole numbers in [{lo}, {hi}] (the bucket), got {name}={value!r}")
    return jnp.asarray(arr)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PaddedUFM(SignedOrNonnegative, Problem):
    r"""A :class:`ufm.UFM` of true sizes ``(K, n, d)`` stored in a bucket ``(K_max, n_max, d_max)``.

    Same objective as :class:`ufm.UFM` on the active block (module docstring):

    .. math:: f(W, H, b) = \frac1N \sum_{i\ \mathrm{active}} \ell(W_a h_i + b_a, y_i)
        + \frac{\lambda_W}2 \lVert W_a\rVert_F^2 + \frac{\lambda_H}2 \lVert H_a\rVert_F^2
        + \frac{\lambda_b}2 \lVert b_a\rVert_2^2

    Build one with :func:`pad`. ``K``, ``n`` (a number, or ``K_max`` per-class counts) and ``d``
    are array leaves: replace them (``dataclasses.replace(p, K=5.0)``) and a compiled solve runs
    again without compiling.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the regularized UFM.
    """

    K_max: int = field(metadata=dict(static=True))
    n_max: int = field(metadata=dict(static=True))
    d_max: int = field(metadata=dict(static=True))
    loss: Loss
    K: ArrayLike
    n: ArrayLike
    d: ArrayLike
    lam_W: ArrayLike = 5e-3
    lam_H: ArrayLike = 5e-3
    lam_b: ArrayLike | None = None
    nonneg: bool = field(default=False, metadata=dict(static=True))

    def __post_init__(self):
        for name, lo in (("K_max", 2), ("n_max", 1), ("d_max", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo))
        object.__setattr__(self, "K", _size("K", self.K, 2, self.K_max))
        object.__setattr__(self, "n", _size("n", self.n, 1, self.n_max))
        object.__setattr__(self, "d", _size("d", self.d, 1, self.d_max))
        if np.ndim(self.n) not in (0,) and np.shape(self.n) != (self.K_max,):
            raise ValueError(f"n must be a number or K_max={self.K_max} per-class counts, got shape "
                             f"{np.shape(self.n)}")
        if _loss_reason(self.loss) is not None:
            raise ValueError(f"loss must be ufm.CrossEntropy(), ufm.LabelSmoothing(alpha), ufm.Focal(gamma) "
                             f"or one-hot ufm.MSE() to be padded, got loss={self.loss!r}")
        check_penalties(self)

    # ---- sizes and masks -------------------------------------------------------------------
    @property
    def D(self) -> int:
        """Rows of ``W`` (the bucket's ``K_max``)."""
        return self.K_max

    @property
    def N(self) -> int:
        """Columns of ``H`` (the bucket's ``K_max n_max``)."""
        return self.K_max * self.n_max

    @property
    def has_bias(self) -> bool:
        """Whether the model has a bias ``b``."""
        return self.lam_b is not None

    @property
    def labels(self) -> np.ndarray:
        """Class of each column of ``H``: ``n_max`` zeros, ``n_max`` ones, ... (padded columns too)."""
        return np.repeat(np.arange(self.K_max), self.n_max)

    def counts_array(self) -> jax.Array:
        """``(K_max,)`` true per-class counts, 0 on padded classes."""
        n = jnp.broadcast_to(jnp.asarray(self.n, float), (self.K_max,))
        return jnp.where(self.class_mask(), n, 0.0)

    def class_mask(self) -> jax.Array:
        """``(K_max,)`` 1.0 on the classes ``k < K``."""
        return (jnp.arange(self.K_max) < self.K).astype(float)

    def feature_mask(self) -> jax.Array:
        """``(d_max,)`` 1.0 on the coordinates ``i < d``."""
        return (jnp.arange(self.d_max) < self.d).astype(float)

    def sample_mask(self) -> jax.Array:
        """``(K_max n_max,)`` 1.0 on the columns of active samples."""
        slot = jnp.asarray(np.tile(np.arange(self.n_max), self.K_max), float)
        return (slot < jnp.repeat(self.counts_array(), self.n_max)).astype(float)

    def active_mask(self, params: Params) -> Params:
        """1.0 on the active entries of ``params``, 0.0 on the padding (a pytree like ``params``)."""
        c, dm, s = self.class_mask(), self.feature_mask(), self.sample_mask()
        b = None if params.b is None else c.astype(params.b.dtype)
        return Params((c[:, None] * dm[None, :]).astype(params.W.dtype),
                      (dm[:, None] * s[None, :]).astype(params.H.dtype), b)

    def active(self, params: Params) -> Params:
        """``params`` with the padding set to zero (what the objective reads)."""
        return jax.tree_util.tree_map(jnp.multiply, params, self.active_mask(params))

    # ---- the Problem contract ----------------------------------------------------------------
    def init(self, key: jax.Array, scale: float | None = None) -> Params:
        """The start of the unpadded ``UFM.init(key, scale)``, embedded (module docstring)."""
        d = jnp.round(jnp.asarray(self.d)).astype(jnp.int32)
        scale = 1.0 / jnp.sqrt(jnp.asarray(self.d, float)) if scale is None else scale
        kW, kH = jax.random.split(key)
        i, j = np.meshgrid(np.arange(self.K_max), np.arange(self.d_max), indexing="ij")
        W = jax.random.normal(kW, (self.K_max * self.d_max,), dtype=float)[jnp.asarray(i) * d + j]
        counts = jnp.round(self.counts_array()).astype(jnp.int32)
        offsets = jnp.cumsum(counts) - counts
        cls, slot = self.labels, np.tile(np.arange(self.n_max), self.K_max)
        col = offsets[cls] + jnp.asarray(slot)  # the column of each sample in the unpadded H
        N = jnp.sum(counts)
        r = np.arange(self.d_max)[:, None]
        H = jax.random.normal(kH, (self.d_max * self.N,), dtype=float)[jnp.asarray(r) * N + col[None, :]]
        W, H = scale * W, scale * H
        if self.nonneg:
            H = jnp.abs(H)
        b = jnp.zeros((self.K_max,), dtype=float) if self.has_bias else None
        return self.active(Params(W, H, b))

    def logits(self, params: Params) -> jax.Array:
        """``Z = W_a H_a + b_a 1^T``, shape ``(K_max, K_max n_max)``."""
        a = self.active(params)
        return affine_logits(a.W, a.H, a.b)

    def data_term(self, params: Params) -> jax.Array:
        """``(1/N) sum`` over the active samples of the loss on the active classes."""
        Z = self.logits(params)
        c = self.class_mask() > 0
        s = self.sample_mask() > 0
        y = jnp.asarray(self.labels)
        per = _masked_loss(self.loss, Z, y, c, jnp.sum(c))
        return jnp.sum(jnp.where(s, per, 0.0)) / jnp.sum(self.counts_array())

    def penalty(self, params: Params) -> jax.Array:
        """``lam_W/2 ||W_a||^2 + lam_H/2 ||H_a||^2 + lam_b/2 ||b_a||^2``."""
        return weight_decay(self, self.active(params))

    def objective(self, params: Params) -> jax.Array:
        """The objective of the unpadded UFM on the active block (class docstring)."""
        return self.data_term(params) + self.penalty(params)

    def classifier(self, params: Params) -> tuple[jax.Array, jax.Array]:
        """``(W_a, H_a)``: the active classifier and features (padding zero)."""
        a = self.active(params)
        return a.W, a.H

    def project(self, params: Params) -> Params:
        """Projection onto the feasible set: the padding set to zero, then ``H >= 0`` when
        ``nonneg`` (a warm start from a neighbouring size is cut to this problem's block)."""
        a = self.active(params)
        return a._replace(H=jnp.maximum(a.H, 0.0)) if self.nonneg else a

    def symmetry_tangents(self, params: Params) -> Params | None:
        r"""Rotations of the active feature block (generators ``E_ij - E_ji`` with ``i, j < d``;
        the others are zero vectors) and, for a free bias under a shift-invariant loss, the shift
        of the active bias entries."""
        a = self.active(params)
        dW, dH = rotation_tangents(a, a.W, a.H)
        dm = self.feature_mask()
        iu, ju = np.triu_indices(self.d_max, k=1)
        on = (dm[iu] * dm[ju])
        rot = stack_tangents(a, W=on[:, None, None] * dW, H=on[:, None, None] * dH) if self.d_max > 1 else None
        shift = None
        if a.b is not None and getattr(self.loss, "shift_invariant", False):
            one = jnp.where(self.lam_b == 0, 1.0, 0.0) * self.class_mask()
            shift = stack_tangents(a, b=one[None, :])
        return concat_tangents(rot, shift)


def _masked_loss(loss: Loss, Z: jax.Array, y: jax.Array, c: jax.Array, K: jax.Array) -> jax.Array:
    """Per-sample loss on the active classes ``c`` (``(K_max,)`` bool) only; ``K = sum(c)``."""
    if isinstance(loss, MSE):
        T = (jnp.arange(Z.shape[0])[:, None] == y[None, :]).astype(Z.dtype)
        r = jnp.where(c[:, None], Z - T, 0.0)
        return 0.5 * jnp.sum(r * r, axis=0)
    cc = c[:, None]
    m = jnp.max(jnp.where(cc, Z, -jnp.inf), axis=0, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    E = jnp.where(cc, jnp.exp(jnp.where(cc, Z - m, 0.0)), 0.0)
    logp = jnp.where(cc, Z - m - jnp.log(jnp.sum(E, axis=0, keepdims=True)), 0.0)
    logp_y = jnp.take_along_axis(logp, y[None, :], axis=0)[0]
    if isinstance(loss, LabelSmoothing):
        return -(1.0 - loss.alpha) * logp_y - (loss.alpha / K) * jnp.sum(logp, axis=0)
    if isinstance(loss, Focal):
        return -((-jnp.expm1(logp_y)) ** loss.gamma) * logp_y
    return -logp_y


def pad(prob: UFM, bucket: tuple[int, int, int] | None = None) -> PaddedUFM:
    """``prob`` as a :class:`PaddedUFM` in ``bucket = (K_max, n_max, d_max)`` (default
    :func:`bucket_of` its sizes).

    Raises:
        ValueError: a family that cannot be padded exactly (:func:`unsupported_reason`), or a
            bucket smaller than the problem (naming the size).
    """
    why = unsupported_reason(prob)
    if why is not None:
        raise ValueError(f"cannot pad: {why}")
    Km, nm, dm = bucket_of(prob.K, prob.n, prob.d) if bucket is None else bucket
    if prob.K > Km or max(prob.counts) > nm or prob.d > dm:
        raise ValueError(f"bucket (K_max, n_max, d_max)={Km, nm, dm} is smaller than the problem "
                         f"(K={prob.K}, n={max(prob.counts)}, d={prob.d}); pass a larger bucket")
    n = float(prob.n) if prob.balanced else np.asarray(prob.counts + (1,) * (Km - prob.K), float)
    return PaddedUFM(K_max=Km, n_max=nm, d_max=dm, loss=prob.loss, K=float(prob.K), n=n, d=float(prob.d),
                     lam_W=prob.lam_W, lam_H=prob.lam_H, lam_b=prob.lam_b, nonneg=prob.nonneg)


def _active_columns(padded: PaddedUFM, prob: UFM) -> np.ndarray:
    """The columns of the padded ``H`` that hold the samples of ``prob``, in its column order."""
    return np.concatenate([k * padded.n_max + np.arange(c) for k, c in enumerate(prob.counts)])


def embed_params(padded: PaddedUFM, prob: UFM, params: Params) -> Params:
    """Parameters of the unpadded ``prob`` placed in the padded layout (padding zero)."""
    W = jnp.zeros((padded.K_max, padded.d_max)).at[:prob.K, :prob.d].set(params.W)
    cols = _active_columns(padded, prob)
    H = jnp.zeros((padded.d_max, padded.N)).at[:prob.d, cols].set(params.H)
    b = None if params.b is None else jnp.zeros((padded.K_max,)).at[:prob.K].set(params.b)
    return Params(W, H, b)


def active_params(padded: PaddedUFM, prob: UFM, params: Params) -> Params:
    """The active block of padded ``params``, in the unpadded layout of ``prob`` (host side)."""
    cols = _active_columns(padded, prob)
    b = None if params.b is None else params.b[:prob.K]
    return Params(params.W[:prob.K, :prob.d], params.H[:prob.d, cols], b)
