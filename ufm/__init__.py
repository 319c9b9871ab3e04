"""ufm: a JAX laboratory for the mathematics of neural collapse.

Importing ``ufm`` changes no global JAX setting. The certified solver works in float64: call
``ufm.enable_x64()`` once (or set ``JAX_ENABLE_X64=1``) before building problems; a float64 solve
without it raises a ValueError that says so.

What a user calls is re-exported here; research internals live in their submodules
(``ufm.solvers``, ``ufm.problems``, ``ufm.etf``, ``ufm.sweeps``).
"""

# isort: skip_file
# ---- process settings (each one is opt-in) ------------------------------------------------------
from ufm._internal.precision import enable_x64 as enable_x64
from ufm._internal.runtime import enable_compilation_cache as enable_compilation_cache
from ufm._internal.runtime import package_version as _package_version

# ---- pure functions of arrays -------------------------------------------------------------------
from ufm import conventions as conventions
from ufm import dilation as dilation
from ufm import geometry as geometry
from ufm import metrics as metrics
from ufm.metrics import layer_metrics as layer_metrics

# ---- losses -------------------------------------------------------------------------------------
from ufm.losses import MSE as MSE
from ufm.losses import CrossEntropy as CrossEntropy
from ufm.losses import CustomLoss as CustomLoss
from ufm.losses import Focal as Focal
from ufm.losses import LabelSmoothing as LabelSmoothing
from ufm.losses import Loss as Loss

# ---- problems -----------------------------------------------------------------------------------
from ufm.problems import UFM as UFM
from ufm.problems import DeepParams as DeepParams
from ufm.problems import DeepUFM as DeepUFM
from ufm.problems import FixedFrame as FixedFrame
from ufm.problems import MDParams as MDParams
from ufm.problems import MemorizationDilation as MemorizationDilation
from ufm.problems import MultiLabelUFM as MultiLabelUFM
from ufm.problems import Params as Params
from ufm.problems import Problem as Problem
from ufm.problems import RegressionUFM as RegressionUFM
from ufm.problems import label_set_targets as label_set_targets

# ---- solvers and what they return ---------------------------------------------------------------
from ufm.solvers import RESULTS as RESULTS
from ufm.solvers import Certificate as Certificate
from ufm.solvers import GlobalCertificate as GlobalCertificate
from ufm.solvers import SaveAt as SaveAt
from ufm.solvers import Solution as Solution
from ufm.solvers import SolveError as SolveError
from ufm.solvers import Trajectory as Trajectory
from ufm.solvers import flow_ensemble as flow_ensemble
from ufm.solvers import global_certificate as global_certificate
from ufm.solvers import gradient_flow as gradient_flow
from ufm.solvers import hessian_extreme_eigs as hessian_extreme_eigs
from ufm.solvers import hessian_spectrum as hessian_spectrum
from ufm.solvers import implicit_invariant as implicit_invariant
from ufm.solvers import minimize as minimize
from ufm.solvers import symmetry_basis as symmetry_basis

# ---- the simplex-ETF ansatz ---------------------------------------------------------------------
from ufm.etf import ETFPrediction as ETFPrediction
from ufm.etf import ETFVerdict as ETFVerdict
from ufm.etf import etf_params as etf_params
from ufm.etf import etf_prediction as etf_prediction
from ufm.etf import etf_verdict as etf_verdict

# ---- drivers: many problems at once -------------------------------------------------------------
from ufm import landscape as landscape
from ufm.sweeps import open_sweep as open_sweep
from ufm.sweeps import sweep as sweep

# ---- deprecated names (kept for one release) ----------------------------------------------------
from ufm._internal.deprecation import install_module_alias as _install_module_alias
from ufm._internal.deprecation import moved_attribute as _moved_attribute

__version__ = _package_version()

__all__ = [
    # process settings
    "enable_x64", "enable_compilation_cache",
    # pure functions of arrays
    "metrics", "geometry", "conventions", "dilation", "layer_metrics",
    # losses
    "Loss", "CrossEntropy", "LabelSmoothing", "Focal", "MSE", "CustomLoss",
    # problems
    "Problem", "UFM", "Params", "DeepUFM", "DeepParams", "MemorizationDilation", "MDParams",
    "FixedFrame", "MultiLabelUFM", "RegressionUFM", "label_set_targets",
    # solvers
    "minimize", "gradient_flow", "flow_ensemble", "global_certificate", "hessian_spectrum",
    "hessian_extreme_eigs", "symmetry_basis", "implicit_invariant", "Solution", "Certificate",
    "GlobalCertificate", "Trajectory", "SaveAt",
    "RESULTS", "SolveError",
    # the simplex-ETF ansatz
    "etf_prediction", "etf_params", "ETFPrediction", "etf_verdict", "ETFVerdict",
    # drivers
    "sweep", "open_sweep", "landscape",
]

# ``ufm.sweep`` was the module ``ufm.sweeps`` before it became the function: ``from ufm.sweep
# import X`` keeps working for one release and warns.
_install_module_alias("ufm.sweep", "ufm.sweeps")

_MOVED = {
    "polish_relu": ("ufm.solvers", "polish_relu"),
    "minimize_md": ("ufm.solvers", "minimize_md"),
    "FFParams": ("ufm.problems", "FFParams"),
    "GraphCandidate": ("ufm.problems", "GraphCandidate"),
    "graph_params": ("ufm.problems", "graph_params"),
    "cli": ("ufm.cli", None),
}


def __getattr__(name: str):
    """Names that moved to a submodule: found there, with a DeprecationWarning."""
    if name in _MOVED:
        return _moved_attribute("ufm", name, *_MOVED[name])
    raise AttributeError(f"module 'ufm' has no attribute {name!r}")
