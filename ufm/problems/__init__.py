"""Model families: one module per family."""

from ufm.problems._base import Problem as Problem
from ufm.problems._ufm import UFM as UFM
from ufm.problems._ufm import Params as Params

__all__ = ["Problem", "UFM", "Params"]
