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

from ufm._validate import is_concrete

__all__ = [
    "all_metrics",
    "layer_metrics",
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
    return jnp.linalg.norm(_unit(W @ Mbar) - _simplex_target(Mbar.shape[1]))


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
