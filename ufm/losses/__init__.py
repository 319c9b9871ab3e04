"""Losses of the logits: the built-in family and user-defined ones.

One concept per private module: :mod:`ufm.losses._builtin` holds cross-entropy, label smoothing,
focal and MSE; :mod:`ufm.losses._custom` turns a user's function into a :class:`CustomLoss`.
"""

from ufm.losses._builtin import LOSS_NAMES as LOSS_NAMES
from ufm.losses._builtin import MSE as MSE
from ufm.losses._builtin import CrossEntropy as CrossEntropy
from ufm.losses._builtin import Focal as Focal
from ufm.losses._builtin import LabelSmoothing as LabelSmoothing
from ufm.losses._builtin import Loss as Loss
from ufm.losses._custom import CustomLoss as CustomLoss

__all__ = ["Loss", "CrossEntropy", "LabelSmoothing", "Focal", "MSE", "CustomLoss", "LOSS_NAMES"]
