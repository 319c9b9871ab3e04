"""Model families: one module per family."""

from ufm._validate import as_float_array as as_float_array
from ufm.problems._base import Problem as Problem
from ufm.problems._deep import DeepParams as DeepParams
from ufm.problems._deep import DeepUFM as DeepUFM
from ufm.problems._md import MDParams as MDParams
from ufm.problems._md import MemorizationDilation as MemorizationDilation
from ufm.problems._md import smoothed_norm as smoothed_norm
from ufm.problems._ufm import UFM as UFM
from ufm.problems._ufm import Params as Params

__all__ = ["Problem", "UFM", "Params", "DeepUFM", "DeepParams", "MemorizationDilation", "MDParams", "smoothed_norm", "as_float_array"]
