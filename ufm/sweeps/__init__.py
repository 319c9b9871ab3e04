"""Phase diagrams: certified solves over grids of hyper-parameters, resumable, on every core.

:func:`sweep` solves the product grid (times the random starts) with the certified minimizer and
returns an ``xarray.Dataset``; with ``store=PATH`` the results go to a Zarr store chunk by chunk
as they finish, and a later call with the same arguments resumes where an interrupted one
stopped (:func:`open_sweep` reads a store). :func:`locate_boundary` places a phase boundary by
bisection, and :func:`compare_thresholds` holds measured boundaries against predicted ones.

One idea per module: ``_grid`` (sweepable fields, grid values, the snake order of the points),
``_lease`` (one call writes a store at a time; a crashed one's lease expires), ``_sizes`` (grid
axes over the sizes K, n, d: each chunk padded to its bucket, one compile per bucket),
``_kernel`` (the compiled solve of a chunk of points and its host fallback), ``_phases`` (the
phase name of a solution), ``_store`` (the Zarr store), ``_boundaries`` (boundaries and
thresholds), ``_driver`` (:func:`sweep`: plan the chunks, run them, write them). The top-level
name ``ufm.sweep`` is the function :func:`ufm.sweeps.sweep`.

Layers: ``ufm.sweeps`` drives ``ufm.solvers``; it never imports ``proofs_check``. Predicted
thresholds come in as numbers (``proofs_check.boundaries`` computes them from the catalog).
"""

from ufm.sweeps._boundaries import compare_thresholds as compare_thresholds
from ufm.sweeps._boundaries import locate_boundary as locate_boundary
from ufm.sweeps._driver import sweep as sweep
from ufm.sweeps._grid import MAX_POINTS as MAX_POINTS
from ufm.sweeps._grid import parse_grid as parse_grid
from ufm.sweeps._grid import snake_order as snake_order
from ufm.sweeps._grid import sweepable_fields as sweepable_fields
from ufm.sweeps._lease import StoreBusyError as StoreBusyError
from ufm.sweeps._phases import PHASES as PHASES
from ufm.sweeps._phases import gram_signature as gram_signature
from ufm.sweeps._phases import order_parameter as order_parameter
from ufm.sweeps._phases import phase_of as phase_of
from ufm.sweeps._store import StoreWriteError as StoreWriteError
from ufm.sweeps._store import open_sweep as open_sweep

__all__ = ["sweep", "open_sweep", "parse_grid", "sweepable_fields", "snake_order", "locate_boundary",
           "compare_thresholds", "PHASES", "phase_of", "gram_signature", "order_parameter", "StoreBusyError",
           "StoreWriteError", "MAX_POINTS"]
