"""Streaming, mergeable float64 statistics of a labelled feature set (host-side, NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ufm.metrics._checks import PINV_RTOL, check_global_mean, check_layout, num_classes
from ufm.metrics._host import (
    host_classifier,
    host_features,
    host_labels,
    mbar_pinv,
    nearest_centre,
    predict,
    set_metrics,
)

__all__ = ["StreamingNC"]


class StreamingNC:
    r"""Streaming, mergeable sufficient statistics of a labelled feature set; NC metrics at the end.

    ``acc = StreamingNC(K=K, d=d)``; ``acc.update(H_batch, labels_batch)`` with ``H_batch: (d, B)``
    (or ``(B, d)`` with ``layout="Nd"``) any number of times, in any order and batch sizes;
    ``acc.merge(other)`` combines accumulators filled on different shards (data-parallel);
    ``acc.result()`` returns the metrics of the whole set, equal to the in-memory ones
    (:func:`nc1`, :func:`all_metrics`, :func:`collapse_report`) up to float64 rounding.

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
        layout: how every batch given to :meth:`update` is laid out: ``"dN"`` (default,
            ``H_batch: (d, B)``, one sample per column) or ``"Nd"`` (``(B, d)``, one sample per
            row, as networks give them). ``W`` and ``centres`` are ``(K, d)`` either way.

    References:
        Chan, Golub & LeVeque, "Updating formulae and a pairwise algorithm for computing sample
        variances", 1979; Papyan, Han & Donoho, PNAS 2020; Hui, Belkin & Nakkiran,
        arXiv 2202.08384.
    """

    def __init__(
        self,
        K: int,
        d: int,
        *,
        W: Any = None,
        b: Any = None,
        centres: Any = None,
        global_mean: str = "weighted",
        rtol: float = PINV_RTOL,
        layout: str = "dN",
    ) -> None:
        K = num_classes(None, K)
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"d must be an integer >= 1, got d={d!r}")
        check_global_mean(global_mean)
        self.layout = check_layout(layout)
        if not (np.isfinite(rtol) and 0 <= rtol < 1):
            raise ValueError(f"rtol must lie in [0, 1), got rtol={rtol!r}")
        self.K, self.d, self.global_mean, self.rtol = K, int(d), global_mean, float(rtol)
        self.W, self.b = host_classifier(W, b, K, self.d)
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

    def _combine(
        self, counts: np.ndarray, means: np.ndarray, scatter: np.ndarray, class_ss: np.ndarray
    ) -> None:
        """Fold in the statistics of another sample set (Chan, Golub & LeVeque's pairwise update)."""
        n = self.counts + counts
        safe = np.where(n > 0, n, 1.0)
        delta = means - self.means
        c = self.counts * counts / safe
        self.means = self.means + delta * (counts / safe)[:, None]
        self.scatter = self.scatter + scatter + (delta * c[:, None]).T @ delta
        self.class_ss = self.class_ss + class_ss + c * np.sum(delta**2, axis=1)
        self.counts = n

    def update(self, H_batch: Any, labels_batch: Any) -> StreamingNC:
        """Add a batch ``H_batch: (d, B)`` (``(B, d)`` with ``layout="Nd"``) with labels ``(B,)``
        (float32 accepted); returns self."""
        H = host_features("H_batch", H_batch, self.d, self.layout)
        y = host_labels("labels_batch", labels_batch, H.shape[1], self.K)
        if y.size == 0:
            return self
        counts = np.bincount(y, minlength=self.K).astype(np.float64)
        onehot = np.zeros((y.size, self.K))
        onehot[np.arange(y.size), y] = 1.0
        means = (H @ onehot).T / np.where(counts > 0, counts, 1.0)[:, None]
        Z = H - means.T[:, y]
        self._combine(counts, means, Z @ Z.T, np.sum(Z**2, axis=0) @ onehot)
        pred = predict(self.W, self.b, H) if self.W is not None else None
        ncc = nearest_centre(H, self.centres) if self.centres is not None else None
        if pred is not None:
            self.n_correct += int(np.sum(pred == y))
        if ncc is not None:
            self.n_ncc_correct += int(np.sum(ncc == y))
        if pred is not None and ncc is not None:
            self.n_disagree += int(np.sum(pred != ncc))
        return self

    def merge(self, other: StreamingNC) -> StreamingNC:
        """Fold another accumulator (same K, d, W, b, centres; any layout) into this one; returns
        self."""
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

    def result(self, reference: StreamingNC | None = None) -> dict[str, float]:
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
        out = set_metrics(self.counts, self.means, self.class_ss,
                          lambda A: float(np.sum((A @ S) * A)), self.W, self.global_mean, self.rtol)
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
            _, A = mbar_pinv(reference.means, reference.counts, self.global_mean, self.rtol)
            D = self.means - reference.means
            AS = np.sum((A @ S) * A) + np.sum((A @ (D.T * self.counts)) * (A @ D.T))
            out["nc1_vs_train"] = float(AS / N)
        return out
