r"""Neural-collapse metrics: one canonical definition each, every variant named.

Conventions (see ``shared/theory/README.md`` section 9). ``H: (d, N)`` holds one sample per column,
``labels: (N,)`` holds integers in ``0..K-1``, ``W: (K, d)`` holds one classifier row ``w_k`` per
class and ``b: (K,)`` is an optional bias. From these,

.. math::

    h_k = \frac{1}{n_k} \sum_{y_i = k} h_i, \qquad \bar H = [h_1, \dots, h_K] \in
    \mathbb{R}^{d \times K}, \qquad \bar M = \bar H - h_G 1^T, \qquad P = I_K - 11^T / K.

The global mean ``h_G`` is, by default (``global_mean="weighted"``), the mean of all N samples;
``global_mean="unweighted"`` takes the mean of the K class means instead. The two agree for
balanced classes. Every function says whether it depends on this choice.

All functions are pure, return float64 JAX scalars (call ``float(...)`` for a Python number) and
can be traced by ``jax.jit`` with respect to ``H``, ``W`` and ``b`` as long as ``labels`` is a
concrete array (for example a NumPy constant closed over by the jitted function): the number of
classes ``K`` must be static. It is ``int(max(labels)) + 1`` unless passed as ``K=``.
Every class must have at least one sample.

References:
    Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
    learning training", PNAS 2020 (NC1-NC4).
    Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer learning", ICLR 2022
    (CDNV).
    Nguyen, Levie, Lienen, Kutyniok & Hullermeier, "Memorization-dilation: modeling neural
    collapse under noise", ICLR 2023, arXiv 2206.05530 (orthogonal frames of nonnegative features).
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.validation import is_concrete

__all__ = [
    "StreamingNC",
    "TEST_NC1_CONVENTION",
    "all_metrics",
    "layer_metrics",
    "collapse_report",
    "cdnv",
    "centred_means",
    "class_means",
    "cosines",
    "equiangularity",
    "equinorm",
    "equinorm_H",
    "equinorm_W",
    "max_angle_deviation",
    "nc1",
    "nc1_trace_ratio",
    "nc2_H",
    "nc2_W",
    "nc2_etf",
    "nc2_orth_H",
    "nc2_orth_W",
    "nc3",
    "nc3_duality",
    "nc4",
    "orthogonal_frame_distance",
]

_GLOBAL_MEANS = ("weighted", "unweighted")
PINV_RTOL = 1e-10
"""Default relative tolerance of the pseudo-inverse in :func:`nc1`: singular values of ``Mbar``
below ``PINV_RTOL * sigma_max(Mbar)`` are treated as zero."""


# ---------------------------------------------------------------- input handling


def _num_classes(labels, K: int | None) -> int:
    """Static K: the given one, or ``max(labels) + 1`` from concrete labels."""
    if K is None:
        if not is_concrete(labels) and not isinstance(labels, (list, tuple)):
            raise ValueError(
                "K must be given (K=<number of classes>) when labels is a traced array; "
                "or pass labels as a concrete NumPy array"
            )
        K = int(np.max(np.asarray(labels))) + 1
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got K={K!r}")
    return int(K)


def _check_labels(H, labels, K: int | None):
    """Validate ``H: (d, N)`` against ``labels: (N,)``; return (H float64, labels int, K)."""
    H = jnp.asarray(H, dtype=jnp.float64)
    if H.ndim != 2:
        raise ValueError(f"H must have shape (d, N) (one sample per column), got H.shape={H.shape}")
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    if np.ndim(labels) != 1 or np.shape(labels)[0] != H.shape[1]:
        raise ValueError(
            f"labels must have shape (N,) with N = H.shape[1] = {H.shape[1]}, "
            f"got labels.shape={np.shape(labels)}"
        )
    K = _num_classes(labels, K)
    if is_concrete(labels):
        lab = np.asarray(labels)
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"labels must be integers in 0..K-1, got dtype {lab.dtype}")
        if lab.min() < 0 or lab.max() >= K:
            raise ValueError(
                f"labels must lie in 0..K-1 = 0..{K - 1}, got values in {lab.min()}..{lab.max()}"
            )
        missing = np.flatnonzero(np.bincount(lab, minlength=K) == 0)
        if missing.size:
            raise ValueError(
                f"labels must contain every class 0..K-1 at least once; "
                f"classes {missing.tolist()} have no samples"
            )
    return H, jnp.asarray(labels).astype(jnp.int32), K


def _check_global_mean(global_mean: str) -> None:
    if global_mean not in _GLOBAL_MEANS:
        raise ValueError(f"global_mean must be one of {_GLOBAL_MEANS}, got {global_mean!r}")


def _jit_with_labels(fn):
    """Validate ``H``, ``labels``, ``K`` on the host, then run ``fn`` jitted with ``K`` static.

    One compilation per shape replaces the many small ones of eager execution; labels are a
    traced argument, so a new permutation of the same sizes reuses the compiled code.
    """
    sig = inspect.signature(fn)
    static = [name for name in ("K", "global_mean") if name in sig.parameters]
    jitted = jax.jit(fn, static_argnames=static)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        arguments["H"], arguments["labels"], arguments["K"] = _check_labels(
            arguments["H"], arguments["labels"], arguments["K"]
        )
        if "global_mean" in arguments:
            _check_global_mean(arguments["global_mean"])
        return jitted(**arguments)

    return wrapper


def _check_W(W, K: int | None = None, d: int | None = None):
    """``W: (K, d)`` as float64, with optional shape checks against the features."""
    W = jnp.asarray(W, dtype=jnp.float64)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (K, d) (one classifier row per class), got {W.shape}")
    if K is not None and W.shape[0] != K:
        raise ValueError(f"W must have K={K} rows (one per class), got W.shape={W.shape}")
    if d is not None and W.shape[1] != d:
        raise ValueError(f"W must have d={d} columns (= H.shape[0]), got W.shape={W.shape}")
    return W


def _check_gram(G):
    G = jnp.asarray(G, dtype=jnp.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ValueError(
            f"G must be a square (K, K) Gram matrix with K >= 2, got G.shape={G.shape}"
        )
    return G


def _simplex_target(K: int) -> jax.Array:
    """P / sqrt(K-1): the simplex-ETF Gram normalized to unit Frobenius norm."""
    return (jnp.eye(K) - jnp.ones((K, K)) / K) / jnp.sqrt(K - 1.0)


def _unit(X) -> jax.Array:
    """X / ||X||_F (NaN when X = 0)."""
    return X / jnp.linalg.norm(X)


# ---------------------------------------------------------------- means


@_jit_with_labels
def class_means(H, labels, K: int | None = None, *, global_mean: str = "weighted"):
    r"""Class means and the global mean.

    .. math::

        h_k = \frac{1}{n_k} \sum_{i: y_i = k} h_i, \qquad
        h_G = \frac{1}{N} \sum_i h_i \ (\text{weighted}) \quad\text{or}\quad
        h_G = \frac{1}{K} \sum_k h_k \ (\text{unweighted}).

    Args:
        H: (d, N) features, one sample per column.
        labels: (N,) integer labels in ``0..K-1``; concrete (NumPy or JAX) unless ``K`` is given.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (mean of all samples, default) or ``"unweighted"`` (mean of
            the class means).

    Returns:
        ``(Hbar, h_G)`` with ``Hbar: (d, K)`` and ``h_G: (d,)``.

    Raises:
        ValueError: if ``H`` is not 2-D, ``labels`` does not have length ``N``, ``K < 2``, a label
            is outside ``0..K-1``, a class is empty, or ``global_mean`` is unknown.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    H, labels, K = _check_labels(H, labels, K)
    return _means(H, labels, K, global_mean)


@_jit_with_labels
def centred_means(H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r"""Centred class means.

    .. math::

        \bar M = \bar H - h_G 1^T.

    Args:
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``; see :func:`class_means`.

    Returns:
        ``Mbar: (d, K)``.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    Hbar, h_G = class_means(H, labels, K, global_mean=global_mean)
    return Hbar - h_G[:, None]


def _means(H, labels, K: int, global_mean: str):
    """(Hbar, h_G) from validated inputs."""
    _check_global_mean(global_mean)
    sums = jax.ops.segment_sum(H.T, labels, num_segments=K)  # (K, d)
    counts = jax.ops.segment_sum(jnp.ones(H.shape[1]), labels, num_segments=K)  # (K,)
    Hbar = (sums / counts[:, None]).T
    h_G = jnp.mean(H, axis=1) if global_mean == "weighted" else jnp.mean(Hbar, axis=1)
    return Hbar, h_G


def _within_class(H, labels, K, global_mean):
    """(H, labels, K, Z, Mbar): Z = H - Hbar[:, labels] holds the within-class deviations."""
    H, labels, K = _check_labels(H, labels, K)
    Hbar, h_G = _means(H, labels, K, global_mean)
    return H, labels, K, H - Hbar[:, labels], Hbar - h_G[:, None]


# ---------------------------------------------------------------- NC1


@_jit_with_labels
def nc1(
    H, labels, K: int | None = None, *, global_mean: str = "weighted", rtol: float = PINV_RTOL
) -> jax.Array:
    r"""Within-class variability collapse NC1, canonical form.

    .. math::

        \mathrm{NC1} = \frac{1}{K} \operatorname{Tr}(\Sigma_W \Sigma_B^+), \qquad
        \Sigma_W = \frac{1}{N} \sum_i (h_i - h_{y_i})(h_i - h_{y_i})^T, \qquad
        \Sigma_B = \frac{1}{K} \sum_k (h_k - h_G)(h_k - h_G)^T.

    Computed without any d x d matrix: with ``Z = H - Hbar[:, labels]`` and
    :math:`\Sigma_B = \bar M \bar M^T / K`, so that :math:`\Sigma_B^+ = K (\bar M^+)^T \bar M^+`,

    .. math::

        \mathrm{NC1} = \frac{1}{N} \|\bar M^+ Z\|_F^2 \ \ge 0.

    Variant choices: the 1/K factor is included; Sigma_W averages over all N samples (not per
    class); ``h_G`` is the weighted global mean by default. The pseudo-inverse drops singular
    values of ``Mbar`` below ``rtol * sigma_max(Mbar)`` (``Mbar`` always has rank <= K-1).
    If all class means coincide (``Mbar = 0``) the pseudo-inverse is 0 and so is NC1.

    Args:
        H: (d, N) features, one sample per column.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``.
        rtol: relative tolerance of ``jnp.linalg.pinv(Mbar, rtol=rtol)``; default ``1e-10``.

    Returns:
        Scalar NC1.

    References:
        Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
        learning training", PNAS 2020.
    """
    H, labels, K, Z, Mbar = _within_class(H, labels, K, global_mean)
    Mbar_pinv = jnp.linalg.pinv(Mbar, rtol=rtol)  # (K, d)
    return jnp.sum((Mbar_pinv @ Z) ** 2) / H.shape[1]


@_jit_with_labels
def nc1_trace_ratio(H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r"""NC1 variant: ratio of traces of the within- and between-class covariances.

    .. math::

        \frac{\operatorname{Tr} \Sigma_W}{\operatorname{Tr} \Sigma_B}
        = \frac{\|Z\|_F^2 / N}{\|\bar M\|_F^2 / K}

    with ``Sigma_W``, ``Sigma_B`` as in :func:`nc1` (no 1/K in front, no pseudo-inverse).

    Args:
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``.

    Returns:
        Scalar ``Tr(Sigma_W) / Tr(Sigma_B)`` (inf or NaN if all class means coincide).

    References:
        Papyan, Han & Donoho, PNAS 2020 (the trace form is a common simplification).
    """
    H, labels, K, Z, Mbar = _within_class(H, labels, K, global_mean)
    tr_Sigma_W = jnp.sum(Z**2) / H.shape[1]
    tr_Sigma_B = jnp.sum(Mbar**2) / K
    return tr_Sigma_W / tr_Sigma_B


@_jit_with_labels
def cdnv(H, labels, K: int | None = None) -> jax.Array:
    r"""Class-distance normalized variance, averaged over ordered pairs of distinct classes.

    .. math::

        \mathrm{CDNV} = \frac{1}{K(K-1)} \sum_{k \ne l}
        \frac{V_k + V_l}{2 \|h_k - h_l\|^2}, \qquad
        V_k = \frac{1}{n_k} \sum_{i: y_i = k} \|h_i - h_k\|^2.

    The mean over ordered pairs equals the mean over unordered pairs (the summand is symmetric).
    Independent of the global mean. Infinite if two class means coincide.

    Args:
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.

    Returns:
        Scalar CDNV.

    References:
        Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer learning",
        ICLR 2022.
    """
    H, labels, K, Z, Mbar = _within_class(H, labels, K, "unweighted")
    counts = jax.ops.segment_sum(jnp.ones(H.shape[1]), labels, num_segments=K)
    V = jax.ops.segment_sum(jnp.sum(Z**2, axis=0), labels, num_segments=K) / counts  # (K,)
    return _cdnv_from(V, Mbar)


@jax.jit
def _cdnv_from(V, Mbar) -> jax.Array:
    """CDNV from per-class variances ``V: (K,)`` and centred means ``Mbar: (d, K)``."""
    K = Mbar.shape[1]
    G = Mbar.T @ Mbar  # centred Gram: same distances, less cancellation
    sq = jnp.diag(G)
    dist2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0)
    off = ~jnp.eye(K, dtype=bool)
    ratio = (V[:, None] + V[None, :]) / (2.0 * jnp.where(off, dist2, 1.0))
    return jnp.sum(jnp.where(off, ratio, 0.0)) / (K * (K - 1))


# ---------------------------------------------------------------- NC2 and friends


@jax.jit
def nc2_etf(G) -> jax.Array:
    r"""Distance of a normalized Gram matrix to the simplex ETF.

    .. math::

        \left\| \frac{G}{\|G\|_F} - \frac{P}{\sqrt{K-1}} \right\|_F,
        \qquad P = I_K - \frac{1}{K} 11^T.

    Zero iff ``G`` is a positive multiple of ``P``: K equal-norm vectors with pairwise cosines
    ``-1/(K-1)``. NaN if ``G = 0``.

    Args:
        G: (K, K) Gram matrix, K >= 2.

    Returns:
        Scalar distance in ``[0, 2]``.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    G = _check_gram(G)
    return jnp.linalg.norm(_unit(G) - _simplex_target(G.shape[0]))


@jax.jit
def nc2_W(W) -> jax.Array:
    r"""NC2 of the classifier: :func:`nc2_etf` of ``G = W W^T`` (uncentred rows).

    .. math::

        \left\| \frac{W W^T}{\|W W^T\|_F} - \frac{P}{\sqrt{D-1}} \right\|_F

    Args:
        W: (D, d) any matrix with D >= 2 rows (usually D = K classifier rows).

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    W = _check_W(W)
    return nc2_etf(W @ W.T)


@_jit_with_labels
def nc2_H(H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r"""NC2 of the features: :func:`nc2_etf` of the centred-means Gram ``G = Mbar^T Mbar``.

    .. math::

        \left\| \frac{\bar M^T \bar M}{\|\bar M^T \bar M\|_F}
        - \frac{P}{\sqrt{K-1}} \right\|_F

    Args:
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean)
    return nc2_etf(Mbar.T @ Mbar)


@jax.jit
def equinorm(X) -> jax.Array:
    r"""Equinorm deviation of the columns of ``X``: coefficient of variation of their norms.

    .. math::

        \frac{\operatorname{std}_k \|x_k\|}{\operatorname{mean}_k \|x_k\|}

    (population standard deviation, ``ddof=0``).

    Args:
        X: (d, K) vectors as columns.

    Returns:
        Scalar, 0 iff all columns have equal norm.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 2).
    """
    X = jnp.asarray(X, dtype=jnp.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (d, K), got X.shape={X.shape}")
    norms = jnp.linalg.norm(X, axis=0)
    return jnp.std(norms) / jnp.mean(norms)


@jax.jit
def equinorm_W(W) -> jax.Array:
    r""":func:`equinorm` of the classifier rows ``w_k`` (``W: (K, d)``).

    .. math::

        \operatorname{std}_k \|w_k\| / \operatorname{mean}_k \|w_k\|

    Args:
        W: (K, d) classifier.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    return equinorm(_check_W(W).T)


@_jit_with_labels
def equinorm_H(H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r""":func:`equinorm` of the centred class means ``h_k - h_G``.

    .. math::

        \operatorname{std}_k \|h_k - h_G\| / \operatorname{mean}_k \|h_k - h_G\|

    Args:
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    return equinorm(centred_means(H, labels, K, global_mean=global_mean))


@jax.jit
def cosines(G) -> jax.Array:
    r"""Cosine matrix of a Gram matrix.

    .. math::

        \cos_{kl} = \frac{G_{kl}}{\sqrt{G_{kk} G_{ll}}}

    Args:
        G: (K, K) Gram matrix with positive diagonal.

    Returns:
        (K, K) cosines (ones on the diagonal).
    """
    G = _check_gram(G)
    s = jnp.sqrt(jnp.diag(G))
    return G / (s[:, None] * s[None, :])


def _off_diagonal(A) -> jax.Array:
    K = A.shape[0]
    return A[~np.eye(K, dtype=bool)]


@jax.jit
def equiangularity(G) -> jax.Array:
    r"""Equiangularity: standard deviation of the off-diagonal cosines.

    .. math::

        \operatorname{std}_{k \ne l} \cos_{kl}, \qquad
        \cos_{kl} = \frac{G_{kl}}{\sqrt{G_{kk} G_{ll}}}

    (population standard deviation over the K(K-1) ordered pairs). Zero for any equiangular set,
    not only a simplex ETF; see :func:`max_angle_deviation` for the ETF angle.

    Args:
        G: (K, K) Gram matrix, e.g. ``W @ W.T`` or ``Mbar.T @ Mbar``.

    Returns:
        Scalar.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 3).
    """
    return jnp.std(_off_diagonal(cosines(G)))


@jax.jit
def max_angle_deviation(G) -> jax.Array:
    r"""Largest deviation of a pairwise cosine from the simplex-ETF value ``-1/(K-1)``.

    .. math::

        \max_{k \ne l} \left| \cos_{kl} + \frac{1}{K-1} \right|

    Args:
        G: (K, K) Gram matrix.

    Returns:
        Scalar, 0 iff all pairwise cosines equal ``-1/(K-1)``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 4, "maximal-angle equiangularity").
    """
    G = _check_gram(G)
    K = G.shape[0]
    return jnp.max(jnp.abs(_off_diagonal(cosines(G)) + 1.0 / (K - 1)))


@jax.jit
def orthogonal_frame_distance(G) -> jax.Array:
    r"""Distance of a normalized Gram matrix to an orthogonal frame.

    .. math::

        \left\| \frac{G}{\|G\|_F} - \frac{I_K}{\sqrt{K}} \right\|_F

    Zero iff ``G`` is a positive multiple of the identity (K orthogonal vectors of equal norm).
    Meant for uncentred Grams (e.g. ``Hbar^T Hbar`` of nonnegative features): centring an
    orthogonal frame turns it into a simplex ETF. NaN if ``G = 0``.

    Args:
        G: (K, K) Gram matrix.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., "Memorization-dilation: modeling neural collapse under noise", ICLR 2023,
        arXiv 2206.05530 (orthogonal frames of nonnegative features).
    """
    G = _check_gram(G)
    K = G.shape[0]
    return jnp.linalg.norm(_unit(G) - jnp.eye(K) / jnp.sqrt(float(K)))


@_jit_with_labels
def nc2_orth_H(H, labels, K: int | None = None) -> jax.Array:
    r""":func:`orthogonal_frame_distance` of the uncentred class means, ``G = Hbar^T Hbar``.

    .. math::

        \left\| \frac{\bar H^T \bar H}{\|\bar H^T \bar H\|_F} - \frac{I_K}{\sqrt{K}}
        \right\|_F

    Independent of the global mean (no centring).

    Args:
        H: (d, N) features (typically nonnegative, after a ReLU).
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    Hbar, _ = class_means(H, labels, K)
    return orthogonal_frame_distance(Hbar.T @ Hbar)


@jax.jit
def nc2_orth_W(W) -> jax.Array:
    r""":func:`orthogonal_frame_distance` of the classifier rows, ``G = W W^T``.

    .. math::

        \left\| \frac{W W^T}{\|W W^T\|_F} - \frac{I_K}{\sqrt{K}} \right\|_F

    Args:
        W: (K, d) classifier.

    Returns:
        Scalar distance.

    References:
        Nguyen et al., ICLR 2023, arXiv 2206.05530.
    """
    W = _check_W(W)
    return orthogonal_frame_distance(W @ W.T)


# ---------------------------------------------------------------- NC3, NC4


@_jit_with_labels
def nc3(W, H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r"""NC3 (alignment of classifier and features) via the class logit matrix ``W Mbar``.

    .. math::

        \left\| \frac{W \bar M}{\|W \bar M\|_F} - \frac{P}{\sqrt{K-1}} \right\|_F

    Zero when ``w_k`` is a positive multiple of ``h_k - h_G`` and both form a simplex ETF.

    Args:
        W: (K, d) classifier.
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.

    Returns:
        Scalar distance.

    References:
        Papyan, Han & Donoho, PNAS 2020; Zhu et al., NeurIPS 2021 (arXiv 2105.02375).
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean)
    W = _check_W(W, *Mbar.shape[::-1])
    return nc2_etf(W @ Mbar)


@_jit_with_labels
def nc3_duality(W, H, labels, K: int | None = None, *, global_mean: str = "weighted") -> jax.Array:
    r"""NC3 as self-duality: distance between the normalized classifier and centred means.

    .. math::

        \left\| \frac{W^T}{\|W\|_F} - \frac{\bar M}{\|\bar M\|_F} \right\|_F

    Args:
        W: (K, d) classifier.
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.

    Returns:
        Scalar distance in ``[0, 2]``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (Figure 5).
    """
    Mbar = centred_means(H, labels, K, global_mean=global_mean)
    W = _check_W(W, *Mbar.shape[::-1])
    return _duality_from(W, Mbar)


@jax.jit
def _duality_from(W, Mbar) -> jax.Array:
    """``|| W^T/||W||_F - Mbar/||Mbar||_F ||_F`` (see :func:`nc3_duality`)."""
    return jnp.linalg.norm(_unit(W.T) - _unit(Mbar))


@_jit_with_labels
def nc4(W, b, H, labels, K: int | None = None) -> jax.Array:
    r"""NC4: disagreement between the classifier and the nearest-class-mean rule.

    .. math::

        \frac{1}{N} \sum_i \mathbf{1}\left[\arg\max_k (W h_i + b)_k \ne
        \arg\min_k \|h_i - h_k\|\right]

    The classifier includes the bias ``b`` (``b=None`` means no bias); the nearest mean uses the
    uncentred class means (the global mean plays no role). Ties go to the lowest index.

    Args:
        W: (K, d) classifier.
        b: (K,) bias or None.
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1`` (used only for the class means).
        K: number of classes; default ``max(labels) + 1``.

    Returns:
        Scalar fraction in ``[0, 1]``.

    References:
        Papyan, Han & Donoho, PNAS 2020.
    """
    Hbar, _ = class_means(H, labels, K)
    d, K = Hbar.shape
    W = _check_W(W, K, d)
    H = jnp.asarray(H, dtype=jnp.float64)
    logits = W @ H  # (K, N)
    if b is not None:
        b = jnp.asarray(b, dtype=jnp.float64)
        if b.shape != (K,):
            raise ValueError(f"b must have shape (K,) = ({K},) or be None, got b.shape={b.shape}")
        logits = logits + b[:, None]
    # ||h_i - h_k||^2 up to the term ||h_i||^2, which does not depend on k.
    dist2 = jnp.sum(Hbar**2, axis=0)[:, None] - 2.0 * Hbar.T @ H  # (K, N)
    disagree = jnp.argmax(logits, axis=0) != jnp.argmin(dist2, axis=0)
    return jnp.mean(disagree.astype(jnp.float64))


@_jit_with_labels
def all_metrics(
    W, H, labels, b=None, K: int | None = None, *, global_mean: str = "weighted"
) -> dict[str, jax.Array]:
    """Every metric of this module, by name.

    Keys: ``nc1``, ``nc1_trace_ratio``, ``cdnv``, ``nc2_W``, ``nc2_H``, ``equinorm_W``,
    ``equinorm_H``, ``equiangularity_W``, ``equiangularity_H``, ``max_angle_deviation_W``,
    ``max_angle_deviation_H``, ``nc2_orth_W``, ``nc2_orth_H``, ``nc3``, ``nc3_duality``, ``nc4``.
    ``_W`` metrics use ``W W^T``; ``_H`` metrics use the centred means ``Mbar^T Mbar``, except
    ``nc2_orth_H`` which uses the uncentred ``Hbar^T Hbar``.

    Args:
        W: (K, d) classifier.
        H: (d, N) features.
        labels: (N,) integer labels in ``0..K-1``.
        b: (K,) bias or None (used by ``nc4`` only).
        K: number of classes; default ``max(labels) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``, passed to every metric that
            centres.

    Returns:
        Dict of float64 JAX scalars (jit-compatible; ``{k: float(v) for k, v in d.items()}`` for
        Python floats).

    References:
        Papyan, Han & Donoho, PNAS 2020; Galanti et al., ICLR 2022; Nguyen et al., ICLR 2023.
    """
    gm = {"global_mean": global_mean}
    Mbar = centred_means(H, labels, K, **gm)
    K = Mbar.shape[1]
    W = _check_W(W, K, Mbar.shape[0])
    G_W, G_H = W @ W.T, Mbar.T @ Mbar
    return {
        "nc1": nc1(H, labels, K, **gm),
        "nc1_trace_ratio": nc1_trace_ratio(H, labels, K, **gm),
        "cdnv": cdnv(H, labels, K),
        "nc2_W": nc2_etf(G_W),
        "nc2_H": nc2_etf(G_H),
        "equinorm_W": equinorm_W(W),
        "equinorm_H": equinorm(Mbar),
        "equiangularity_W": equiangularity(G_W),
        "equiangularity_H": equiangularity(G_H),
        "max_angle_deviation_W": max_angle_deviation(G_W),
        "max_angle_deviation_H": max_angle_deviation(G_H),
        "nc2_orth_W": orthogonal_frame_distance(G_W),
        "nc2_orth_H": nc2_orth_H(H, labels, K),
        "nc3": nc3(W, H, labels, K, **gm),
        "nc3_duality": nc3_duality(W, H, labels, K, **gm),
        "nc4": nc4(W, b, H, labels, K),
    }


def layer_metrics(prob, params, *, rank_rtol: float = 1e-6) -> dict:
    r"""Per-layer neural-collapse measurements of a deep UFM (host-side, NumPy values).

    For the post-activation features ``X_1 = H_1, X_2, ..., X_L`` and the pre-activations
    ``Z_1, ..., Z_L`` (``Z_L`` the logits without bias), with uncentred class means
    ``Xbar_l = [x_{l,1}, ..., x_{l,K}]``:

    - ``nc1``, ``nc1_pre``: :func:`ufm.metrics.nc1` of ``X_l`` and ``Z_l`` (``(L,)`` each),
      ``(1/K) Tr(Sigma_W Sigma_B^+)``;
    - ``gram``, ``gram_pre``: ``Xbar_l^T Xbar_l`` and ``Zbar_l^T Zbar_l``, ``(L, K, K)``;
      an orthogonal frame is ``c I`` (:func:`ufm.metrics.orthogonal_frame_distance`, reported as
      ``orth`` and ``orth_pre``);
    - ``rank``, ``rank_pre``: the number of singular values of ``Xbar_l`` (``Zbar_l``) above
      ``rank_rtol * sigma_max``;
    - ``sigma_W``: the singular values of each ``W_l`` (a list of ``L`` arrays, descending).

    With ``activation="linear"`` pre- and post-activation features coincide (``Z_l = X_{l+1}``).
    Which of these are determined at a minimizer is stated in ``proofs_check.catalog.deep``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (NC1); Súkeník, Mondelli & Lampert, NeurIPS 2023 (per-layer
        DNC1-DNC3) and 2024 (class-mean rank per layer).
    """
    pre, post = prob.layers(params)
    labels, K = prob.labels, prob.K

    def means(X):
        X = np.asarray(X)
        return np.stack([X[:, labels == k].mean(axis=1) for k in range(K)], axis=1)

    def rank(M):
        s = np.linalg.svd(M, compute_uv=False)
        return int(np.sum(s > rank_rtol * s[0])) if s[0] > 0 else 0

    out = {}
    for tag, feats in (("", post), ("_pre", pre)):
        bars = [means(X) for X in feats]
        grams = np.stack([B.T @ B for B in bars])
        out["nc1" + tag] = np.array([float(nc1(X, labels, K=K)) for X in feats])
        out["gram" + tag] = grams
        out["orth" + tag] = np.array([float(orthogonal_frame_distance(G)) for G in grams])
        out["rank" + tag] = np.array([rank(B) for B in bars])
    out["sigma_W"] = [np.linalg.svd(np.asarray(W), compute_uv=False) for W in params.Ws]
    return out
# ---------------------------------------------------------------- real feature sets, streaming
#
# Everything below accumulates in NumPy float64 on the host, so it is exact to float64 whether or
# not JAX's x64 mode is on (float32 features are accepted and promoted); the K x K Gram metrics
# above are then evaluated on the float64 statistics inside a local ``jax.enable_x64(True)``
# context, which changes no global setting.

TEST_NC1_CONVENTION = (
    "nc1_vs_train: (1/K) Tr(Sigma_W^test Sigma_B^{train,+}) with Sigma_W^test = (1/N_test) "
    "sum_i (h_i - mu^train_{y_i})(h_i - mu^train_{y_i})^T: test features centred at the TRAIN "
    "class means, between-class covariance of the TRAIN means (Hui, Belkin & Nakkiran, "
    "arXiv 2202.08384, 'test collapse'); pseudo-inverse cut at rtol * sigma_max(Mbar_train)"
)
"""The convention of the test-set NC1 in :func:`collapse_report` and :meth:`StreamingNC.result`."""


def _host_features(name: str, H, d: int | None = None) -> np.ndarray:
    """``H: (d, N)`` as a finite float64 NumPy array (float32 accepted)."""
    H = np.asarray(H)
    if H.ndim != 2:
        raise ValueError(
            f"{name} must have shape (d, N) (one sample per column), got shape {H.shape}"
        )
    if not (np.issubdtype(H.dtype, np.floating) or np.issubdtype(H.dtype, np.integer)):
        raise ValueError(f"{name} must be a real array, got dtype {H.dtype}")
    if d is not None and H.shape[0] != d:
        raise ValueError(f"{name} must have d={d} rows, got shape {H.shape}")
    H = H.astype(np.float64, copy=False)
    if not np.all(np.isfinite(H)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return H


def _host_labels(name: str, labels, N: int, K: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != N:
        raise ValueError(f"{name} must have shape (N,) with N = {N}, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integers in 0..K-1, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"{name} must lie in 0..K-1 = 0..{K - 1}, got {y.min()}..{y.max()}")
    return y.astype(np.int64)


def _host_classifier(W, b, K: int, d: int):
    if W is None:
        if b is not None:
            raise ValueError("b was given without W; pass W (K, d) as well")
        return None, None
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (K, d):
        raise ValueError(f"W must have shape (K, d) = ({K}, {d}), got {W.shape}")
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        if b.shape != (K,):
            raise ValueError(f"b must have shape (K,) = ({K},) or be None, got {b.shape}")
    return W, b


def _nearest_centre(H: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``argmin_k ||h_i - c_k||`` for ``H: (d, N)``, ``centres: (K, d)`` (ties: lowest index)."""
    return np.argmin(np.sum(centres**2, axis=1)[:, None] - 2.0 * centres @ H, axis=0)


def _predict(W, b, H: np.ndarray) -> np.ndarray:
    logits = W @ H
    return np.argmax(logits if b is None else logits + b[:, None], axis=0)


def _mbar_pinv(means: np.ndarray, counts: np.ndarray, global_mean: str, rtol: float):
    """``(Mbar (d, K), Mbar^+ (K, d))`` from class means ``(K, d)`` and counts ``(K,)``."""
    if global_mean == "weighted":
        h_G = counts @ means / counts.sum()
    else:
        h_G = means.mean(axis=0)
    Mbar = (means - h_G).T
    return Mbar, np.linalg.pinv(Mbar, rcond=rtol)


def _set_metrics(counts, means, class_ss, quad, W, b, global_mean, rtol) -> dict[str, float]:
    """Every label-based metric of one feature set from its sufficient statistics.

    ``quad(A)`` returns ``sum_i ||A z_i||^2`` for the within-class deviations ``z_i`` (through the
    deviations themselves in memory, through the d x d scatter when streaming).
    """
    K = counts.size
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"every class needs a sample; classes {empty} are empty")
    N = counts.sum()
    Mbar, A = _mbar_pinv(means, counts, global_mean, rtol)
    out = {
        "n": float(N),
        "nc1": quad(A) / N,
        "nc1_trace_ratio": (class_ss.sum() / N) / (np.sum(Mbar**2) / K),
        "pinv_rank": float(np.linalg.matrix_rank(Mbar, tol=rtol * np.linalg.norm(Mbar, 2))),
    }
    Mu = means - means.mean(axis=0)  # CDNV is independent of the centre; unweighted as in cdnv()
    with jax.enable_x64(True):
        G_H = jnp.asarray(Mbar.T @ Mbar)
        res = {
            "cdnv": _cdnv_from(jnp.asarray(class_ss / counts), jnp.asarray(Mu.T)),
            "nc2_H": nc2_etf(G_H),
            "equinorm_H": equinorm(jnp.asarray(Mbar)),
            "equiangularity_H": equiangularity(G_H),
            "max_angle_deviation_H": max_angle_deviation(G_H),
            "nc2_orth_H": orthogonal_frame_distance(jnp.asarray(means @ means.T)),
        }
        if W is not None:
            G_W = jnp.asarray(W @ W.T)
            res |= {
                "nc2_W": nc2_etf(G_W),
                "equinorm_W": equinorm_W(jnp.asarray(W)),
                "equiangularity_W": equiangularity(G_W),
                "max_angle_deviation_W": max_angle_deviation(G_W),
                "nc2_orth_W": orthogonal_frame_distance(G_W),
                "nc3": nc2_etf(jnp.asarray(W @ Mbar)),
                "nc3_duality": _duality_from(jnp.asarray(W), jnp.asarray(Mbar)),
            }
        out |= {k: float(v) for k, v in res.items()}
    return {k: float(v) for k, v in out.items()}


def collapse_report(
    H_train,
    y_train,
    H_test=None,
    y_test=None,
    W=None,
    b=None,
    *,
    K: int | None = None,
    global_mean: str = "weighted",
    rtol: float = PINV_RTOL,
) -> dict[str, dict[str, float]]:
    r"""Every NC metric of a network's train and test features, in float64, in one call.

    For each set ``s`` (train, test) with its own class means :math:`\mu^s_k`, centred means
    :math:`\bar M^s` and deviations :math:`z_i = h_i - \mu^s_{y_i}`, the keys of :func:`all_metrics`
    that need only features (``nc1`` in the dual form :math:`\frac1N\|\bar M^{s+} Z\|_F^2`,
    ``nc1_trace_ratio``, ``cdnv``, ``nc2_H``, ``equinorm_H``, ``equiangularity_H``,
    ``max_angle_deviation_H``, ``nc2_orth_H``), with ``W`` also ``nc2_W``, ``equinorm_W``,
    ``equiangularity_W``, ``max_angle_deviation_W``, ``nc2_orth_W``, ``nc3``, ``nc3_duality``,
    and, per sample,

    .. math::

        \mathrm{ncc\_acc} = \frac1N \sum_i \mathbf 1[\arg\min_k \|h_i - \mu^{\rm train}_k\| = y_i],
        \qquad \mathrm{acc} = \frac1N \sum_i \mathbf 1[\arg\max_k (W h_i + b)_k = y_i],

    ``nc4`` (disagreement of the two rules; the nearest-centre rule of the *train* means on both
    sets). The test set gets in addition the train-referenced NC1 (:data:`TEST_NC1_CONVENTION`):

    .. math::

        \mathrm{nc1\_vs\_train} = \frac1K \operatorname{Tr}\big(\Sigma_W^{\rm test|train}
        \Sigma_B^{{\rm train}+}\big) = \frac1{N_{\rm test}} \big\|\bar M^{{\rm train}+}
        (H_{\rm test} - \mu^{\rm train}_{y})\big\|_F^2 .

    On the train set ``nc1`` and ``nc4`` equal :func:`nc1` and :func:`nc4`. No d x d matrix is
    formed (the pseudo-inverse is of the d x K matrix ``Mbar``, cut at ``rtol * sigma_max``; the
    resulting rank is reported as ``pinv_rank``). Features may be float32; all accumulation is
    NumPy float64 regardless of JAX's x64 setting, and no global setting is changed.

    Args:
        H_train: (d, N_train) train features. y_train: (N_train,) labels in ``0..K-1``.
        H_test: (d, N_test) test features or None. y_test: (N_test,) labels or None.
        W: (K, d) last-layer classifier or None. b: (K,) bias or None.
        K: number of classes; default ``max(y_train) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        rtol: pseudo-inverse cut, default :data:`PINV_RTOL`.

    Returns:
        ``{"train": {...}, "test": {...}}`` of Python floats (``"test"`` only with test data).

    Raises:
        ValueError: on mismatched shapes, labels outside ``0..K-1``, an empty train class, a
            non-finite feature or an unknown ``global_mean``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (NC1-NC4); Hui, Belkin & Nakkiran, "Limitations of neural
        collapse for understanding generalization in deep learning", arXiv 2202.08384 (train vs
        test collapse).
    """
    _check_global_mean(global_mean)
    H_tr = _host_features("H_train", H_train)
    d = H_tr.shape[0]
    if K is None:
        y0 = np.asarray(y_train)
        if y0.size == 0:
            raise ValueError("y_train must not be empty")
        K = int(np.max(y0)) + 1
    K = _num_classes(None, K)
    sets = {"train": (H_tr, _host_labels("y_train", y_train, H_tr.shape[1], K))}
    if (H_test is None) != (y_test is None):
        raise ValueError("H_test and y_test must be given together")
    if H_test is not None:
        H_te = _host_features("H_test", H_test, d)
        sets["test"] = (H_te, _host_labels("y_test", y_test, H_te.shape[1], K))
    W, b = _host_classifier(W, b, K, d)

    report, train_means, train_pinv = {}, None, None
    for name, (H, y) in sets.items():
        counts = np.bincount(y, minlength=K).astype(np.float64)
        if np.any(counts == 0):
            raise ValueError(
                f"every class must have a sample in the {name} set; "
                f"classes {np.flatnonzero(counts == 0).tolist()} are empty"
            )
        onehot = np.zeros((y.size, K))
        onehot[np.arange(y.size), y] = 1.0
        means = (H @ onehot / counts).T  # (K, d)
        Z = H - means.T[:, y]
        class_ss = np.sum(Z**2, axis=0) @ onehot
        r = _set_metrics(counts, means, class_ss, lambda A, Z=Z: float(np.sum((A @ Z) ** 2)),
                         W, b, global_mean, rtol)
        if name == "train":
            train_means = means
            _, train_pinv = _mbar_pinv(means, counts, global_mean, rtol)
        else:
            Z_ref = H - train_means.T[:, y]  # test deviations from the TRAIN class means
            r["nc1_vs_train"] = float(np.sum((train_pinv @ Z_ref) ** 2) / y.size)
        ncc = _nearest_centre(H, train_means)
        r["ncc_acc"] = float(np.mean(ncc == y))
        if W is not None:
            pred = _predict(W, b, H)
            r["acc"] = float(np.mean(pred == y))
            r["nc4"] = float(np.mean(pred != ncc))
        report[name] = r
    return report


class StreamingNC:
    r"""Streaming, mergeable sufficient statistics of a labelled feature set; NC metrics at the end.

    ``acc = StreamingNC(K=K, d=d)``; ``acc.update(H_batch, labels_batch)`` with ``H_batch: (d, B)``
    any number of times, in any order and batch sizes; ``acc.merge(other)`` combines accumulators
    filled on different shards (data-parallel); ``acc.result()`` returns the metrics of the whole
    set, equal to the in-memory ones (:func:`nc1`, :func:`all_metrics`, :func:`collapse_report`)
    up to float64 rounding.

    Statistics (all NumPy float64): counts :math:`n_k`, class means :math:`\mu_k` (K x d), the
    pooled within-class scatter :math:`S = \sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^T` (d x d)
    and the per-class scatter traces :math:`s_k`. Batches and shards are combined by the pairwise
    update of Chan, Golub & LeVeque (1979), per class:

    .. math::

        n = n_A + n_B, \quad \delta_k = \mu_{k,B} - \mu_{k,A}, \quad
        \mu_k = \mu_{k,A} + \tfrac{n_{k,B}}{n_k}\delta_k, \quad
        S = S_A + S_B + \sum_k \tfrac{n_{k,A} n_{k,B}}{n_k} \delta_k \delta_k^T,

    each batch's own scatter taken about its own class means (no sum-of-squares cancellation).
    Then :math:`\mathrm{NC1} = \frac1N \operatorname{Tr}(\bar M^+ S \bar M^{+T})`, the same
    quantity as the dual form of :func:`nc1`.

    Why a d x d matrix: NC1 projects the deviations onto the span of the centred means, which is
    known only after the last sample, so a one-pass method must keep the second moments of the
    deviations in every direction (``d^2`` numbers, independent of N). A second pass over the data
    with the final means would need only ``K x K`` (the dual form of :func:`collapse_report`).
    Everything else is K x d or K x K.

    Per-sample rules (NC4, accuracies) need the decision rule while the samples stream past: give
    ``W`` (and ``b``) for the classifier accuracy, and ``centres`` (K, d) (e.g. the train class
    means, :attr:`means` of a train accumulator) for the nearest-centre accuracy and ``nc4``
    (disagreement of the classifier with the nearest-centre rule of those centres). With the
    set's own final means as ``centres`` (a second pass), ``nc4`` equals :func:`nc4`.

    Args:
        K: number of classes, ``>= 2``. d: feature dimension, ``>= 1``.
        W: optional (K, d) classifier; b: optional (K,) bias. centres: optional (K, d) centres.
        global_mean: ``"weighted"`` (default) or ``"unweighted"``.
        rtol: pseudo-inverse cut: singular values of ``Mbar`` below ``rtol * sigma_max(Mbar)`` are
            dropped (default :data:`PINV_RTOL`, as in :func:`nc1`).

    References:
        Chan, Golub & LeVeque, "Updating formulae and a pairwise algorithm for computing sample
        variances", 1979; Papyan, Han & Donoho, PNAS 2020; Hui, Belkin & Nakkiran,
        arXiv 2202.08384.
    """

    def __init__(self, K: int, d: int, *, W=None, b=None, centres=None,
                 global_mean: str = "weighted", rtol: float = PINV_RTOL):
        K = _num_classes(None, K)
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"d must be an integer >= 1, got d={d!r}")
        _check_global_mean(global_mean)
        if not (np.isfinite(rtol) and 0 <= rtol < 1):
            raise ValueError(f"rtol must lie in [0, 1), got rtol={rtol!r}")
        self.K, self.d, self.global_mean, self.rtol = K, int(d), global_mean, float(rtol)
        self.W, self.b = _host_classifier(W, b, K, self.d)
        if centres is not None:
            centres = np.asarray(centres, dtype=np.float64)
            if centres.shape != (K, self.d):
                raise ValueError(
                    f"centres must have shape (K, d) = ({K}, {self.d}), got {centres.shape}"
                )
        self.centres = centres
        self.counts = np.zeros(K)
        self.means = np.zeros((K, self.d))
        self.scatter = np.zeros((self.d, self.d))
        self.class_ss = np.zeros(K)
        self.n_correct = 0  # classifier agrees with label (needs W)
        self.n_ncc_correct = 0  # nearest centre agrees with label (needs centres)
        self.n_disagree = 0  # classifier vs nearest centre (needs W and centres)

    def _combine(self, counts, means, scatter, class_ss):
        n = self.counts + counts
        safe = np.where(n > 0, n, 1.0)
        delta = means - self.means
        c = self.counts * counts / safe
        self.means = self.means + delta * (counts / safe)[:, None]
        self.scatter = self.scatter + scatter + (delta * c[:, None]).T @ delta
        self.class_ss = self.class_ss + class_ss + c * np.sum(delta**2, axis=1)
        self.counts = n

    def update(self, H_batch, labels_batch) -> "StreamingNC":
        """Add a batch ``H_batch: (d, B)`` with labels ``(B,)`` (float32 accepted); returns self."""
        H = _host_features("H_batch", H_batch, self.d)
        y = _host_labels("labels_batch", labels_batch, H.shape[1], self.K)
        if y.size == 0:
            return self
        counts = np.bincount(y, minlength=self.K).astype(np.float64)
        onehot = np.zeros((y.size, self.K))
        onehot[np.arange(y.size), y] = 1.0
        means = (H @ onehot).T / np.where(counts > 0, counts, 1.0)[:, None]
        Z = H - means.T[:, y]
        self._combine(counts, means, Z @ Z.T, np.sum(Z**2, axis=0) @ onehot)
        pred = _predict(self.W, self.b, H) if self.W is not None else None
        ncc = _nearest_centre(H, self.centres) if self.centres is not None else None
        if pred is not None:
            self.n_correct += int(np.sum(pred == y))
        if ncc is not None:
            self.n_ncc_correct += int(np.sum(ncc == y))
        if pred is not None and ncc is not None:
            self.n_disagree += int(np.sum(pred != ncc))
        return self

    def merge(self, other: "StreamingNC") -> "StreamingNC":
        """Fold another accumulator (same K, d, W, b, centres) into this one; returns self."""
        if not isinstance(other, StreamingNC):
            raise ValueError(f"other must be a StreamingNC, got {type(other).__name__}")
        if (other.K, other.d) != (self.K, self.d):
            raise ValueError(f"cannot merge (K, d) = {(other.K, other.d)} into {(self.K, self.d)}")
        for name in ("W", "b", "centres"):
            a, c = getattr(self, name), getattr(other, name)
            if (a is None) != (c is None) or (a is not None and not np.array_equal(a, c)):
                raise ValueError(f"cannot merge accumulators with different {name}")
        self._combine(other.counts, other.means, other.scatter, other.class_ss)
        self.n_correct += other.n_correct
        self.n_ncc_correct += other.n_ncc_correct
        self.n_disagree += other.n_disagree
        return self

    def result(self, reference: "StreamingNC | None" = None) -> dict[str, float]:
        r"""The metrics of everything seen so far.

        Keys: ``n``, ``nc1``, ``nc1_trace_ratio``, ``pinv_rank``, ``cdnv``, ``nc2_H``,
        ``equinorm_H``, ``equiangularity_H``, ``max_angle_deviation_H``, ``nc2_orth_H``; with
        ``W``: ``nc2_W``, ``equinorm_W``, ``equiangularity_W``, ``max_angle_deviation_W``,
        ``nc2_orth_W``, ``nc3``, ``nc3_duality``, ``acc``; with ``centres``: ``ncc_acc``; with both:
        ``nc4``. With ``reference`` (the train set's accumulator) also ``nc1_vs_train``
        (:data:`TEST_NC1_CONVENTION`), from the identity

        .. math::

            \sum_i (h_i - \mu^{\rm ref}_{y_i})(\cdot)^T = S + \sum_k n_k
            (\mu_k - \mu^{\rm ref}_k)(\mu_k - \mu^{\rm ref}_k)^T .

        Raises:
            ValueError: if a class has no sample (here, or in ``reference``).
        """
        S = self.scatter
        out = _set_metrics(self.counts, self.means, self.class_ss,
                           lambda A: float(np.sum((A @ S) * A)), self.W, self.b,
                           self.global_mean, self.rtol)
        N = self.counts.sum()
        if self.W is not None:
            out["acc"] = self.n_correct / N
        if self.centres is not None:
            out["ncc_acc"] = self.n_ncc_correct / N
            if self.W is not None:
                out["nc4"] = self.n_disagree / N
        if reference is not None:
            if not isinstance(reference, StreamingNC) or (reference.K, reference.d) != (
                self.K,
                self.d,
            ):
                raise ValueError("reference must be a StreamingNC with the same K and d")
            if np.any(reference.counts == 0):
                raise ValueError("reference: every class needs a sample")
            _, A = _mbar_pinv(reference.means, reference.counts, self.global_mean, self.rtol)
            D = self.means - reference.means
            AS = np.sum((A @ S) * A) + np.sum((A @ (D.T * self.counts)) * (A @ D.T))
            out["nc1_vs_train"] = float(AS / N)
        return out
