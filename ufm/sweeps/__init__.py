"""Phase diagrams: certified solves over grids of hyper-parameters, resumable, on every core.

The driver (:func:`sweep`, :func:`open_sweep`), the compiled kernel that solves one chunk of grid
points, the phases a point is named by, and boundary location. The top-level name
``ufm.sweep`` is the function :func:`ufm.sweeps.sweep`.
"""

from ufm.sweeps._driver import PHASES as PHASES
from ufm.sweeps._driver import compare_thresholds as compare_thresholds
from ufm.sweeps._driver import locate_boundary as locate_boundary
from ufm.sweeps._driver import open_sweep as open_sweep
from ufm.sweeps._driver import parse_grid as parse_grid
from ufm.sweeps._driver import snake_order as snake_order
from ufm.sweeps._driver import sweep as sweep
from ufm.sweeps._driver import sweepable_fields as sweepable_fields

__all__ = ["sweep", "open_sweep", "parse_grid", "sweepable_fields", "snake_order", "locate_boundary",
           "compare_thresholds", "PHASES"]
