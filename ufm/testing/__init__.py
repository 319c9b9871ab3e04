r"""Hypothesis strategies for ufm's objects: losses, regularization strengths, class counts, whole
:class:`ufm.UFM` problems (optionally inside a closed form's assumptions, on a chosen side of the
zero-solution threshold) and feature matrices for metric tests.

Modelled on ``xarray.testing.strategies``: every strategy takes keyword-only arguments with small
defaults, and whole problems are built by ``@st.composite`` functions. This package imports
`hypothesis <https://hypothesis.readthedocs.io>`_, a test-only dependency: install ufm with the
``test`` extra (``pip install ufm[test]``).

.. warning:: **Shapes are a compile-time cost.** A problem's sizes (``K``, the class counts, ``d``,
   the encoding's ``D``) are static, so every new shape makes :func:`ufm.minimize` compile again
   (several seconds each), while new hyper-parameters reuse the compiled solver. The default size
   ranges are therefore tiny; in a test suite pass ``sizes=[(3, 2, 4)]`` (one or two explicit
   ``(K, n, d)`` triples) and draw only the hyper-parameters.

Notation (``docs/theory.md#canonical-objective, #ce-etf, #mse-no-bias``: balanced classes with ``n`` samples each,
``kappa = sqrt(n lam_W lam_H)``. Each loss has a *zero-solution threshold* ``kappa*``: the global
minimizer is nonzero iff ``kappa < kappa*`` (:func:`kappa_threshold`). A ``regime`` places
``kappa`` relative to it:

- ``"nonzero"``: ``kappa`` in ``[0.05, 0.9] kappa*`` (for MSE encodings also at least 10% away
  from every singular value of the code, where the factored problem is degenerate);
- ``"zero"``: ``kappa`` in ``[1.1, 2] kappa*``;
- ``"near_threshold"``: ``kappa = (1 +- u) kappa*`` with ``u`` in ``[1e-3, 0.05]``, never exactly
  at it. At ``kappa*`` itself the minimizer is degenerate (zero curvature along the emerging
  direction) and first-order certificates pin the point only to about ``1e-4``; close to it the
  solvers converge slowly, so expect looser agreement there;
- ``"any"``: one of the three above.

Example:

    >>> import ufm.testing
    >>> from hypothesis import given, settings
    >>> @settings(deadline=None, max_examples=5)
    ... @given(ufm.testing.ufm_problems(regime="nonzero", sizes=[(3, 2, 4)]))
    ... def test_minimize_converges(prob):
    ...     assert ufm.minimize(prob).converged
"""

from ufm.testing._features import features as features
from ufm.testing._problems import bias_of as bias_of
from ufm.testing._problems import closed_form_problems as closed_form_problems
from ufm.testing._problems import ufm_problems as ufm_problems
from ufm.testing._strategies import BIAS_MODES as BIAS_MODES
from ufm.testing._strategies import LOSS_KINDS as LOSS_KINDS
from ufm.testing._strategies import REGIMES as REGIMES
from ufm.testing._strategies import class_counts as class_counts
from ufm.testing._strategies import encodings as encodings
from ufm.testing._strategies import kappas as kappas
from ufm.testing._strategies import lams as lams
from ufm.testing._strategies import losses as losses
from ufm.testing._thresholds import kappa as kappa
from ufm.testing._thresholds import kappa_threshold as kappa_threshold

__all__ = [
    "LOSS_KINDS",
    "REGIMES",
    "bias_of",
    "class_counts",
    "closed_form_problems",
    "encodings",
    "features",
    "kappa",
    "kappa_threshold",
    "kappas",
    "lams",
    "losses",
    "ufm_problems",
]
