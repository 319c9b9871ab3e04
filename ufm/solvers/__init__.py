"""Solvers that take any Problem: gradient flow (dynamics) and a certified minimizer."""

import warnings

from ufm.solvers._certify import hessian_extreme_eigs as hessian_extreme_eigs
from ufm.solvers._certify import hessian_spectrum as hessian_spectrum
from ufm.solvers._certify import symmetry_basis as symmetry_basis
from ufm.solvers._minimize import Certificate as Certificate
from ufm.solvers._common import grad_norm as grad_norm
from ufm.solvers._flow import SaveAt as SaveAt
from ufm.solvers._flow import Trajectory as Trajectory
from ufm.solvers._flow import gradient_flow as gradient_flow
from ufm.solvers._minimize import Solution as Solution
from ufm.solvers._minimize import minimize as minimize
from ufm.solvers._constrained import AugmentedLagrangian as AugmentedLagrangian
from ufm.solvers._constrained import minimize_constrained as minimize_constrained
from ufm.solvers._relu import polish_relu as polish_relu


def minimize_md(prob, **kwargs):
    """Deprecated alias of :func:`ufm.minimize` for the M-D model (kept for one release): the
    model's radius constraints are solved by the augmented Lagrangian inside ``minimize``."""
    warnings.warn("minimize_md is deprecated; use ufm.minimize (it solves the M-D model's radius "
                  "constraints itself)", DeprecationWarning, stacklevel=2)
    return minimize(prob, **kwargs)

from ufm.solvers._results import RESULTS as RESULTS
from ufm.solvers._results import SolveError as SolveError

from ufm.solvers._global import GlobalCertificate as GlobalCertificate
from ufm.solvers._global import global_certificate as global_certificate
from ufm.solvers._global import global_gap_ok as global_gap_ok
from ufm.solvers._global import global_unsupported_reason as global_unsupported_reason

__all__ = ["gradient_flow", "minimize", "hessian_extreme_eigs", "hessian_spectrum", "symmetry_basis", "Certificate", "SaveAt", "Trajectory", "Solution",
           "RESULTS", "SolveError", "AugmentedLagrangian", "minimize_constrained", "minimize_md", "polish_relu", "grad_norm",
           "global_certificate", "GlobalCertificate", "global_gap_ok", "global_unsupported_reason"]
