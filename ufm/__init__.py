"""ufm: a JAX laboratory for the mathematics of neural collapse.

Importing ``ufm`` changes no global JAX setting. The certified solver works in float64: call
``ufm.enable_x64()`` once (or set ``JAX_ENABLE_X64=1``) before building problems; a float64 solve
without it raises a ValueError that says so.
"""

from ufm._precision import enable_x64 as enable_x64  # noqa: E402
from ufm import cli as cli  # noqa: E402
from ufm import conventions as conventions  # noqa: E402
from ufm import dilation as dilation  # noqa: E402
from ufm import geometry as geometry  # noqa: E402
from ufm import metrics as metrics  # noqa: E402
from ufm.losses import MSE as MSE  # noqa: E402
from ufm.losses import CrossEntropy as CrossEntropy  # noqa: E402
from ufm.losses import Focal as Focal  # noqa: E402
from ufm.losses import LabelSmoothing as LabelSmoothing  # noqa: E402
from ufm.losses import Loss as Loss  # noqa: E402
from ufm._custom_loss import CustomLoss as CustomLoss  # noqa: E402
from ufm._prediction import ETFPrediction as ETFPrediction  # noqa: E402
from ufm._prediction import etf_params as etf_params  # noqa: E402
from ufm._prediction import etf_prediction as etf_prediction  # noqa: E402
from ufm._verdict import ETFVerdict as ETFVerdict  # noqa: E402
from ufm._verdict import etf_verdict as etf_verdict  # noqa: E402
from ufm.problems import UFM as UFM  # noqa: E402
from ufm.problems import DeepParams as DeepParams  # noqa: E402
from ufm.problems import DeepUFM as DeepUFM  # noqa: E402
from ufm.metrics import layer_metrics as layer_metrics  # noqa: E402
from ufm.solvers import polish_relu as polish_relu  # noqa: E402
from ufm.problems import MDParams as MDParams  # noqa: E402
from ufm.problems import MemorizationDilation as MemorizationDilation  # noqa: E402
from ufm.solvers import minimize_md as minimize_md  # noqa: E402
from ufm.problems import Params as Params  # noqa: E402
from ufm.problems import Problem as Problem  # noqa: E402
from ufm.problems import FixedFrame as FixedFrame  # noqa: E402
from ufm.problems import FFParams as FFParams  # noqa: E402
from ufm.problems import GraphCandidate as GraphCandidate  # noqa: E402
from ufm.problems import graph_params as graph_params  # noqa: E402
from ufm.problems import MultiLabelUFM as MultiLabelUFM  # noqa: E402
from ufm.problems import RegressionUFM as RegressionUFM  # noqa: E402
from ufm.problems import label_set_targets as label_set_targets  # noqa: E402
from ufm.solvers import RESULTS as RESULTS  # noqa: E402
from ufm.solvers import SaveAt as SaveAt  # noqa: E402
from ufm.solvers import Solution as Solution  # noqa: E402
from ufm.solvers import SolveError as SolveError  # noqa: E402
from ufm.solvers import Trajectory as Trajectory  # noqa: E402
from ufm.solvers import gradient_flow as gradient_flow  # noqa: E402
from ufm.solvers import hessian_extreme_eigs as hessian_extreme_eigs  # noqa: E402
from ufm.solvers import hessian_spectrum as hessian_spectrum  # noqa: E402
from ufm.solvers import symmetry_basis as symmetry_basis  # noqa: E402
from ufm.solvers import Certificate as Certificate  # noqa: E402
from ufm import landscape as landscape  # noqa: E402
from ufm.solvers import minimize as minimize  # noqa: E402
from ufm.solvers._common import enable_compilation_cache as enable_compilation_cache  # noqa: E402
from ufm.solvers import global_certificate as global_certificate  # noqa: E402
from ufm.solvers import GlobalCertificate as GlobalCertificate  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "enable_x64",
    "enable_compilation_cache",
    "UFM",
    "Params",
    "Problem",
    "Loss",
    "CustomLoss",
    "ETFPrediction",
    "etf_prediction",
    "etf_params",
    "ETFVerdict",
    "etf_verdict",
    "CrossEntropy",
    "LabelSmoothing",
    "Focal",
    "MSE",
    "minimize",
    "global_certificate",
    "landscape",
    "GlobalCertificate",
    "gradient_flow",
    "hessian_extreme_eigs",
    "hessian_spectrum",
    "symmetry_basis",
    "Certificate",
    "Solution",
    "Trajectory",
    "SaveAt",
    "RESULTS",
    "SolveError",
    "metrics",
    "geometry",
    "conventions",
    "dilation",
    "DeepUFM",
    "DeepParams",
    "layer_metrics",
    "polish_relu",
    "MemorizationDilation",
    "MDParams",
    "minimize_md",
    "FixedFrame",
    "FFParams",
    "GraphCandidate",
    "graph_params",
    "MultiLabelUFM",
    "RegressionUFM",
    "label_set_targets",
]
