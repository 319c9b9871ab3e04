"""The simplex-ETF ansatz of a balanced UFM: its one-dimensional reduction, the prediction it
makes for ``W``, ``H`` and ``b``, and the verdict that holds a certified solve against it."""

from ufm.etf._prediction import ETFPrediction as ETFPrediction
from ufm.etf._prediction import etf_params as etf_params
from ufm.etf._prediction import etf_prediction as etf_prediction
from ufm.etf._reduction import BIAS_MODES as BIAS_MODES
from ufm.etf._reduction import ETFSolve as ETFSolve
from ufm.etf._reduction import check_permutation_symmetric as check_permutation_symmetric
from ufm.etf._reduction import etf_logit_gap as etf_logit_gap
from ufm.etf._reduction import etf_loss as etf_loss
from ufm.etf._reduction import etf_phi as etf_phi
from ufm.etf._reduction import etf_solve as etf_solve
from ufm.etf._reduction import etf_zero_threshold as etf_zero_threshold
from ufm.etf._reduction import is_shift_invariant as is_shift_invariant
from ufm.etf._verdict import ETFVerdict as ETFVerdict
from ufm.etf._verdict import etf_verdict as etf_verdict

__all__ = ["ETFPrediction", "etf_prediction", "etf_params", "ETFVerdict", "etf_verdict", "ETFSolve",
           "etf_phi", "etf_logit_gap", "etf_solve", "etf_zero_threshold", "etf_loss", "is_shift_invariant",
           "check_permutation_symmetric", "BIAS_MODES"]
