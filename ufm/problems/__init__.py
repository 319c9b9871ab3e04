"""Model families: one module per family.

Besides the families, the package exports the pieces other layers build on: the :class:`Problem`
contract, :func:`affine_logits` and :func:`weight_decay` (the one-layer model's logits and
penalty, used by the written-out gradient of :func:`ufm.gradient_flow`) and
:func:`normalize_counts` (class counts as the families store them).
"""

from ufm._internal.validation import as_float_array as as_float_array
from ufm.problems._base import Problem as Problem
from ufm.problems._base import affine_logits as affine_logits
from ufm.problems._base import normalize_counts as normalize_counts
from ufm.problems._base import weight_decay as weight_decay
from ufm.problems._deep import DeepParams as DeepParams
from ufm.problems._deep import DeepUFM as DeepUFM
from ufm.problems._fixed_frame import FFParams as FFParams
from ufm.problems._fixed_frame import FixedFrame as FixedFrame
from ufm.problems._graph import GraphCandidate as GraphCandidate
from ufm.problems._graph import graph_params as graph_params
from ufm.problems._md import MDParams as MDParams
from ufm.problems._md import MemorizationDilation as MemorizationDilation
from ufm.problems._md import smoothed_norm as smoothed_norm
from ufm.problems._padded import PaddedUFM as PaddedUFM
from ufm.problems._padded import active_params as active_params
from ufm.problems._padded import bucket_of as bucket_of
from ufm.problems._padded import bucket_size as bucket_size
from ufm.problems._padded import embed_params as embed_params
from ufm.problems._padded import pad as pad
from ufm.problems._padded import unsupported_reason as unsupported_reason
from ufm.problems._targets import MultiLabelUFM as MultiLabelUFM
from ufm.problems._targets import RegressionUFM as RegressionUFM
from ufm.problems._targets import label_set_targets as label_set_targets
from ufm.problems._ufm import UFM as UFM
from ufm.problems._ufm import Params as Params

__all__ = ["Problem", "UFM", "Params", "DeepUFM", "DeepParams", "MemorizationDilation", "MDParams",
           "smoothed_norm", "as_float_array", "FixedFrame", "FFParams", "GraphCandidate", "graph_params",
           "MultiLabelUFM", "RegressionUFM", "label_set_targets", "affine_logits", "weight_decay",
           "normalize_counts", "PaddedUFM", "pad", "bucket_size", "bucket_of", "embed_params",
           "active_params", "unsupported_reason"]
