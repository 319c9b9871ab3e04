r"""Neural-collapse metrics: one canonical definition each, every variant named.

Conventions (see ``docs/theory.md#metrics``. ``labels: (N,)`` holds integers in
``0..K-1``, ``W: (K, d)`` holds one classifier row ``w_k`` per class and ``b: (K,)`` is an optional
bias. The features ``H`` hold one sample per column, ``H: (d, N)``, unless the call says
``layout="Nd"``: then ``H: (N, d)`` holds one sample per row, as networks give them, and is used as
is, without a copy on the caller's side. From these,

.. math::

    h_k = \frac{1}{n_k} \sum_{y_i = k} h_i, \qquad \bar H = [h_1, \dots, h_K] \in
    \mathbb{R}^{d \times K}, \qquad \bar M = \bar H - h_G 1^T, \qquad P = I_K - 11^T / K.

The global mean ``h_G`` is, by default (``global_mean="weighted"``), the mean of all N samples;
``global_mean="unweighted"`` takes the mean of the K class means instead. The two agree for
balanced classes. Every function says whether it depends on this choice.

Features layout: every function that takes features (:func:`class_means`, :func:`nc1`,
:func:`nc3`, :func:`nc4`, :func:`all_metrics`, :func:`collapse_report`, :class:`StreamingNC`, ...)
accepts the keyword ``layout="dN"`` (default) or ``layout="Nd"``; it is never guessed from the
shape, and any other value raises a ValueError naming ``layout``. It only says how the argument
is laid out: the values, and the arrays returned (``Hbar: (d, K)``, ``Mbar: (d, K)``), are the same
for ``f(H, ..., layout="Nd")`` and ``f(H.T, ...)``.

Argument order: a function that takes the classifier and the features takes
``(W, H, labels, b=None, K=None, *, ...)``: the classifier, then the features, then the labels,
the bias optional (:func:`nc3`, :func:`nc3_duality`, :func:`nc4`, :func:`all_metrics`). Where the
classifier is optional (:func:`collapse_report`, :class:`StreamingNC`) ``W`` and ``b`` are
keyword-only. Deprecated for one release, each with a DeprecationWarning: ``nc4(W, b, H, labels)``
(recognised exactly: its second argument, the bias, is None or 1-D where ``H`` is 2-D) and ``W``,
``b`` passed to :func:`collapse_report` positionally.

The jitted functions return float64 JAX scalars (call ``float(...)`` for a Python number) and can
be traced by ``jax.jit`` with respect to ``H``, ``W`` and ``b`` as long as ``labels`` is a
concrete array (for example a NumPy constant closed over by the jitted function): the number of
classes ``K`` must be static. It is ``int(max(labels)) + 1`` unless passed as ``K=``.
Every class must have at least one sample. :func:`collapse_report` and :class:`StreamingNC`
accumulate in NumPy float64 on the host whatever JAX's x64 setting.

References:
    Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of deep
    learning training", PNAS 2020 (NC1-NC4).
    Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer learning", ICLR 2022
    (CDNV).
    Nguyen, Levie, Lienen, Kutyniok & Hullermeier, "Memorization-dilation: modeling neural
    collapse under noise", ICLR 2023, arXiv 2206.05530 (orthogonal frames of nonnegative features).
"""

# isort: skip_file
# ---- conventions --------------------------------------------------------------------------------
from ufm.metrics._checks import LAYOUTS as LAYOUTS
from ufm.metrics._checks import PINV_RTOL as PINV_RTOL

# ---- class means --------------------------------------------------------------------------------
from ufm.metrics._class_means import centred_means as centred_means
from ufm.metrics._class_means import class_means as class_means
from ufm.metrics._class_means import class_means_unchecked as class_means_unchecked

# ---- NC1: within-class variability --------------------------------------------------------------
from ufm.metrics._nc1 import cdnv as cdnv
from ufm.metrics._nc1 import nc1 as nc1
from ufm.metrics._nc1 import nc1_trace_ratio as nc1_trace_ratio

# ---- NC2: simplex ETF, orthogonal frame, equinorm, angles ---------------------------------------
from ufm.metrics._nc2 import cosines as cosines
from ufm.metrics._nc2 import equiangularity as equiangularity
from ufm.metrics._nc2 import equinorm as equinorm
from ufm.metrics._nc2 import equinorm_H as equinorm_H
from ufm.metrics._nc2 import equinorm_W as equinorm_W
from ufm.metrics._nc2 import max_angle_deviation as max_angle_deviation
from ufm.metrics._nc2 import nc2_H as nc2_H
from ufm.metrics._nc2 import nc2_W as nc2_W
from ufm.metrics._nc2 import nc2_etf as nc2_etf
from ufm.metrics._nc2 import nc2_orth_H as nc2_orth_H
from ufm.metrics._nc2 import nc2_orth_W as nc2_orth_W
from ufm.metrics._nc2 import orthogonal_frame_distance as orthogonal_frame_distance

# ---- NC3, NC4: the classifier against the means, and everything at once -------------------------
from ufm.metrics._classifier import nc3 as nc3
from ufm.metrics._classifier import nc3_duality as nc3_duality
from ufm.metrics._classifier import nc4 as nc4
from ufm.metrics._all import all_metrics as all_metrics

# ---- deep models --------------------------------------------------------------------------------
from ufm.metrics._layers import layer_metrics as layer_metrics

# ---- real feature sets: host float64, in memory or streamed -------------------------------------
from ufm.metrics._host import TEST_NC1_CONVENTION as TEST_NC1_CONVENTION
from ufm.metrics._report import collapse_report as collapse_report
from ufm.metrics._streaming import StreamingNC as StreamingNC

# ---- deprecated names (kept for one release) ----------------------------------------------------
from ufm._internal.deprecation import moved_attribute as _moved_attribute

__all__ = [
    "LAYOUTS",
    "PINV_RTOL",
    "StreamingNC",
    "TEST_NC1_CONVENTION",
    "all_metrics",
    "cdnv",
    "centred_means",
    "class_means",
    "class_means_unchecked",
    "collapse_report",
    "cosines",
    "equiangularity",
    "equinorm",
    "equinorm_H",
    "equinorm_W",
    "layer_metrics",
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

_RENAMED = {"_means": "class_means_unchecked"}


def __getattr__(name: str) -> object:
    """Old names (kept for one release) resolve to the new ones with a DeprecationWarning."""
    if name in _RENAMED:
        return _moved_attribute("ufm.metrics", name, "ufm.metrics", _RENAMED[name])
    raise AttributeError(f"module 'ufm.metrics' has no attribute {name!r}")
