"""Every NC metric of a network's train and test features, in float64 on the host, in one call."""

from __future__ import annotations

from typing import Any

import numpy as np

from ufm.metrics._checks import (
    PINV_RTOL,
    check_global_mean,
    check_layout,
    keyword_only_after,
    num_classes,
)
from ufm.metrics._host import (
    host_classifier,
    host_features,
    host_labels,
    mbar_pinv,
    nearest_centre,
    predict,
    set_metrics,
)

__all__ = ["collapse_report", "report_inputs", "set_report"]


def report_inputs(
    H_train: Any, y_train: Any, H_test: Any, y_test: Any, W: Any, b: Any, K: int | None,
    layout: str,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray | None, np.ndarray | None, int]:
    """Validated ``({"train": (H, y)[, "test": (H, y)]}, W, b, K)``; every ``H`` as ``(d, N)``."""
    check_layout(layout)
    H_tr = host_features("H_train", H_train, layout=layout)
    d = H_tr.shape[0]
    if K is None:
        y0 = np.asarray(y_train)
        if y0.size == 0:
            raise ValueError("y_train must not be empty")
        K = int(np.max(y0)) + 1
    K = num_classes(None, K)
    sets = {"train": (H_tr, host_labels("y_train", y_train, H_tr.shape[1], K))}
    if (H_test is None) != (y_test is None):
        raise ValueError("H_test and y_test must be given together")
    if H_test is not None:
        H_te = host_features("H_test", H_test, d, layout)
        sets["test"] = (H_te, host_labels("y_test", y_test, H_te.shape[1], K))
    W, b = host_classifier(W, b, K, d)
    return sets, W, b, K


def set_report(
    name: str, H: np.ndarray, y: np.ndarray, K: int, W: np.ndarray | None, b: np.ndarray | None,
    global_mean: str, rtol: float, train: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray]]:
    r"""The report of one set ``H: (d, N)``, ``y: (N,)``, and ``(train means, train Mbar^+)``.

    ``train`` is None for the train set itself (its own means are then the reference, and are
    returned); for the test set it adds ``nc1_vs_train``,
    :math:`\frac1N \|\bar M^{{\rm train}+} (H - \mu^{\rm train}_y)\|_F^2`.
    """
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
    quad = lambda A: float(np.sum((A @ Z) ** 2))  # noqa: E731
    r = set_metrics(counts, means, class_ss, quad, W, global_mean, rtol)
    if train is None:
        train = (means, mbar_pinv(means, counts, global_mean, rtol)[1])
    else:
        Z_ref = H - train[0].T[:, y]  # test deviations from the TRAIN class means
        r["nc1_vs_train"] = float(np.sum((train[1] @ Z_ref) ** 2) / y.size)
    ncc = nearest_centre(H, train[0])
    r["ncc_acc"] = float(np.mean(ncc == y))
    if W is not None:
        pred = predict(W, b, H)
        r["acc"] = float(np.mean(pred == y))
        r["nc4"] = float(np.mean(pred != ncc))
    return r, train


@keyword_only_after(4, ("W", "b"))
def collapse_report(
    H_train: Any,
    y_train: Any,
    H_test: Any = None,
    y_test: Any = None,
    *,
    W: Any = None,
    b: Any = None,
    K: int | None = None,
    global_mean: str = "weighted",
    rtol: float = PINV_RTOL,
    layout: str = "dN",
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

    .. warning::
        ``W`` and ``b`` are keyword-only; passing them positionally after ``y_test`` still works
        for one release, with a DeprecationWarning.

    Args:
        H_train: train features, ``(d, N_train)`` or, with ``layout="Nd"``, ``(N_train, d)``.
        y_train: (N_train,) labels in ``0..K-1``.
        H_test: test features in the same layout, or None. y_test: (N_test,) labels or None.
        W: (K, d) last-layer classifier or None. b: (K,) bias or None.
        K: number of classes; default ``max(y_train) + 1``.
        global_mean: ``"weighted"`` (default) or ``"unweighted"`` centring.
        rtol: pseudo-inverse cut, default :data:`PINV_RTOL`.
        layout: ``"dN"`` (default, one sample per column) or ``"Nd"`` (one sample per row, as
            networks give them), for both ``H_train`` and ``H_test``.

    Returns:
        ``{"train": {...}, "test": {...}}`` of Python floats (``"test"`` only with test data).

    Raises:
        ValueError: on mismatched shapes, labels outside ``0..K-1``, an empty train class, a
            non-finite feature or an unknown ``global_mean`` or ``layout``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (NC1-NC4); Hui, Belkin & Nakkiran, "Limitations of neural
        collapse for understanding generalization in deep learning", arXiv 2202.08384 (train vs
        test collapse).
    """
    check_global_mean(global_mean)
    sets, W, b, K = report_inputs(H_train, y_train, H_test, y_test, W, b, K, layout)
    report, train = {}, None
    for name, (H, y) in sets.items():
        report[name], train = set_report(name, H, y, K, W, b, global_mean, rtol, train)
    return report
