"""Solvers that take any Problem: gradient flow (dynamics) and a certified minimizer.

Modules (private; this package is their public face): ``_results`` (RESULTS, SolveError, the
certificates, Solution), ``_descent`` (L-BFGS, SPG, CG, Newton-CG kernels), ``_core`` (the
compiled local solve and its SolveOptions), ``_local`` (starts, polish hook, pick, Solution),
``_minimize`` (the front door), ``_constrained``, ``_relu``, ``_global``, ``_certify`` (Hessian
spectra), ``_argmin`` (derivatives of minimizers), ``_flow`` (gradient flow; its loops in
``_flow_loops``, many flows in ``_flow_ensemble``), ``_common`` (shared pieces).
"""

from ufm.solvers._argmin import implicit_invariant as implicit_invariant
from ufm.solvers._certify import hessian_extreme_eigs as hessian_extreme_eigs
from ufm.solvers._certify import hessian_spectrum as hessian_spectrum
from ufm.solvers._certify import symmetry_basis as symmetry_basis
from ufm.solvers._common import grad_norm as grad_norm
from ufm.solvers._common import kkt_residual as kkt_residual
from ufm.solvers._constrained import AugmentedLagrangian as AugmentedLagrangian
from ufm.solvers._constrained import minimize_constrained as minimize_constrained
from ufm.solvers._flow import SaveAt as SaveAt
from ufm.solvers._flow import Trajectory as Trajectory
from ufm.solvers._flow import gradient_flow as gradient_flow
from ufm.solvers._flow_ensemble import flow_ensemble as flow_ensemble
from ufm.solvers._global import global_certificate as global_certificate
from ufm.solvers._global import global_gap_ok as global_gap_ok
from ufm.solvers._global import global_unsupported_reason as global_unsupported_reason
from ufm.solvers._minimize import minimize as minimize
from ufm.solvers._minimize import minimize_md as minimize_md
from ufm.solvers._relu import polish_relu as polish_relu
from ufm.solvers._results import RESULTS as RESULTS
from ufm.solvers._results import Certificate as Certificate
from ufm.solvers._results import GlobalCertificate as GlobalCertificate
from ufm.solvers._results import Solution as Solution
from ufm.solvers._results import SolveError as SolveError

__all__ = ["gradient_flow", "flow_ensemble", "SaveAt", "Trajectory", "minimize", "Solution", "Certificate",
           "GlobalCertificate", "RESULTS", "SolveError", "hessian_spectrum", "hessian_extreme_eigs",
           "symmetry_basis", "grad_norm", "kkt_residual", "global_certificate", "global_gap_ok",
           "global_unsupported_reason", "polish_relu", "minimize_constrained", "AugmentedLagrangian",
           "minimize_md", "implicit_invariant"]
