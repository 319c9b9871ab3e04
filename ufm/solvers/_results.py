"""Named outcomes of a solve, carried as an int32 code inside jit and explained on the host."""

from __future__ import annotations

import enum


class RESULTS(enum.IntEnum):
    """How a solve ended. ``sol.result`` holds one member; ``.message`` explains it.

    Inside the compiled loop the code is an int32 array; failure is data, not an exception.
    After the loop the host raises :class:`SolveError` for anything but ``successful`` unless the
    solver was called with ``throw=False`` (as :func:`ufm.sweep`-style uses and ``vmap`` need).
    """

    successful = 0
    max_steps_reached = 1
    nonfinite = 2
    diverged = 3
    step_size_too_small = 4
    linesearch_failed = 5
    saddle = 6

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    RESULTS.successful: "converged",
    RESULTS.max_steps_reached: (
        "stopped at max_steps before grad_norm <= gtol (or before t1); increase max_steps or check "
        "that the problem has a minimizer"
    ),
    RESULTS.nonfinite: "non-finite values (NaN or inf) in the parameters or the objective",
    RESULTS.diverged: "the objective grew without bound (more than 1e12 times its starting size)",
    RESULTS.step_size_too_small: (
        "the adaptive step size fell below its minimum; the error tolerance cannot be met"
    ),
    RESULTS.linesearch_failed: (
        "no step along the search direction decreased the objective or the KKT residual; "
        "the iterate is as accurate as float64 allows here"
    ),
    RESULTS.saddle: (
        "a first-order point with negative curvature outside the symmetry directions (a strict "
        "saddle), and the escapes along the negative-curvature direction did not leave it"
    ),
}


class SolveError(RuntimeError):
    """A solve failed; the message names the solver, what was tried and what to change."""
