r"""The grid of a sweep: which fields can be swept, their values, and the order points run in.

A grid maps sweepable fields of a problem (scalar hyper-parameters, dotted for nested ones:
``"lam_W"``, ``"loss.alpha"``; and the sizes ``"K"``, ``"d"``, ``"n"`` of a UFM that pads exactly,
:mod:`ufm.sweeps._sizes`) to values; the points are the product of the axes. Points are solved
and stored in the reflected order of :func:`snake_order`, a path of grid neighbours, cut into
chunks of consecutive points (one compiled call each).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from ufm._internal.tree import replace_path
from ufm.problems import Problem
from ufm.sweeps._sizes import SIZE_FIELDS, check_size_axis, size_fields, size_refusal

__all__ = ["GridSpec", "sweepable_fields", "parse_grid", "replace_path", "snake_order", "grid_size",
           "chunk_points", "MAX_POINTS"]

# ``{field: [v1, v2, ...]}`` or ``{field: {"log" | "lin": [lo, hi, num]}}``
GridSpec = Mapping[str, Union[Sequence[float], Mapping[str, Sequence[float]]]]


def sweepable_fields(prob: Problem) -> list[str]:
    """Dotted names of the scalar hyper-parameters of ``prob`` (``lam_W``, ``loss.alpha``, ...),
    then the sizes it can sweep: ``K``, ``d`` and (balanced) ``n`` of a :class:`ufm.UFM` whose
    family pads exactly (:mod:`ufm.sweeps._sizes`: one compile per bucket of sizes).

    Other static fields are not sweepable: each value would compile anew.
    """
    out = []
    for f in dataclasses.fields(prob):
        if f.metadata.get("static"):
            continue
        v = getattr(prob, f.name)
        if dataclasses.is_dataclass(v):
            out += [f"{f.name}.{sub}" for sub in sweepable_fields(v)]
        elif v is not None and np.ndim(v) == 0 and not isinstance(v, bool):
            out.append(f.name)
    return out + [s for s in size_fields(prob) if s not in out]


def _check_field(prob, path: str) -> None:
    fields = sweepable_fields(prob)
    if path in fields:
        return
    head = path.split(".")[0]
    names = {f.name: f for f in dataclasses.fields(prob)}
    refusal = size_refusal(prob, path)
    if refusal is not None:
        why = refusal
    elif head in names and names[head].metadata.get("static"):
        why = "it is a size (static): each value compiles anew; loop over sweeps instead"
    elif head == "lam_b" and prob.lam_b is None:
        why = "the problem has no bias (lam_b=None); build it with lam_b=0.0 to sweep lam_b"
    else:
        why = "it is not a scalar hyper-parameter of this problem"
    raise ValueError(f"grid field {path!r} cannot be swept: {why}; sweepable fields: {fields}")


MAX_POINTS = 10**8  # grid points of one sweep (times starts, see ufm.sweeps.sweep): a store's limit


def _count_of(where: str, num: Any) -> int:
    """The ``num`` of a ``log``/``lin`` axis: a whole number in ``[1, MAX_POINTS]``."""
    whole = (isinstance(num, (int, np.integer)) and not isinstance(num, bool)) or (
        isinstance(num, (float, np.floating)) and np.isfinite(num) and float(num).is_integer())
    if not whole:
        raise ValueError(f"{where}: num must be a whole number in [1, {MAX_POINTS:.0e}], got {num!r}")
    num = int(num)
    if not 1 <= num <= MAX_POINTS:
        raise ValueError(f"{where}: num must be in [1, {MAX_POINTS:.0e}], got num={num}"
                         + ("; an empty axis has no points" if num < 1 else ""))
    return num


def _range_of(where: str, kind: str, args: Any) -> tuple[float, float, int]:
    """``[lo, hi, num]`` of a ``log``/``lin`` axis: finite ``lo < hi`` (``lo == hi`` for one
    point), positive for ``log``."""
    if isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Sequence) or len(args) != 3:
        raise ValueError(f"{where}: {kind} needs [lo, hi, num], got {args!r}")
    lo, hi, num = args
    if any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) for v in (lo, hi)):
        raise ValueError(f"{where}: {kind} needs numbers lo, hi, got lo={lo!r}, hi={hi!r}")
    lo, hi, num = float(lo), float(hi), _count_of(where, num)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{where}: lo and hi must be finite numbers, got lo={lo}, hi={hi}")
    if kind == "log" and (lo <= 0 or hi <= 0):
        raise ValueError(f"{where}: a log grid needs lo, hi > 0, got lo={lo}, hi={hi}")
    if lo > hi or (lo == hi and num > 1):
        raise ValueError(f"{where}: the range is reversed or empty (lo={lo:g}, hi={hi:g}, num={num}); "
                         f"give lo < hi (lo == hi only with num = 1)")
    return lo, hi, num


def _not_numbers(v: Any) -> bool:
    """Whether a list of values holds something other than real numbers: NumPy would silently read
    a boolean as 0 or 1 and a string such as ``"1e-3"`` as a number."""
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating))
                   for x in v)
    return isinstance(v, (bool, np.bool_, str, bytes))


def _axis(path: str, spec: Any) -> tuple[int, Any]:
    """``(size, make)``: an axis's number of points, and a function that builds its values (so
    that a huge grid is refused before any array is allocated)."""
    where = f"grid[{path!r}]"
    if isinstance(spec, Mapping):
        if len(spec) != 1 or next(iter(spec)) not in ("log", "lin"):
            raise ValueError(f"{where} must be a list of values or {{'log'|'lin': [lo, hi, num]}}, "
                             f"got {dict(spec)!r}")
        kind, args = next(iter(spec.items()))
        lo, hi, num = _range_of(where, kind, args)
        return num, lambda: (np.geomspace if kind == "log" else np.linspace)(lo, hi, num)
    if _not_numbers(spec):
        raise ValueError(f"{where} must be numbers (a list, or {{'log'|'lin': [lo, hi, num]}}), got {spec!r}")
    try:
        arr = np.atleast_1d(np.asarray(spec, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be numbers, got {spec!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{where} must be a 1-D list of values, got shape {arr.shape}")
    return arr.size, lambda: arr


def parse_grid(prob: Problem, grid: GridSpec) -> dict[str, np.ndarray]:
    """Validate a grid against ``prob`` before anything is solved.

    Args:
        prob: the base problem; grid values replace its fields.
        grid: mapping from a sweepable field (:func:`sweepable_fields`, e.g. ``"lam_W"``,
            ``"loss.alpha"``) to a list of values or ``{"log": [lo, hi, num]}``.

    Returns:
        ``{field: float64 values}`` in the given order.

    Raises:
        ValueError: naming the field, for an unknown or static field, an empty or non-finite
            list, non-numbers (booleans included), repeated values, a reversed ``log``/``lin``
            range or a ``num`` that is not a whole number >= 1, more than :data:`MAX_POINTS`
            points in all (refused before any value is made), or a value outside the field's
            range (checked by building the problem with that value).
    """
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty mapping field -> values, e.g. "
                         f"{{'lam_W': [1e-3, 1e-2]}}; sweepable fields: {sweepable_fields(prob)}")
    sizes, makers = {}, {}
    for path, spec in grid.items():
        _check_field(prob, str(path))
        sizes[path], makers[path] = _axis(path, spec)
    total = int(np.prod([float(v) for v in sizes.values()]))
    if total > MAX_POINTS:
        raise ValueError(f"grid: {' x '.join(map(str, sizes.values()))} = {total:.3g} points, more than "
                         f"{MAX_POINTS:.0e} in one sweep; split it into sweeps over sub-ranges")
    axes = {}
    for path in grid:
        arr = makers[path]()
        if arr.size == 0:
            raise ValueError(f"grid[{path!r}] is empty: give at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"grid[{path!r}] must be finite numbers, got {arr.tolist()}")
        if np.unique(arr).size != arr.size:
            raise ValueError(f"grid[{path!r}] repeats values: {arr.tolist()}")
        sized = path in SIZE_FIELDS and path in size_fields(prob)
        if sized:
            check_size_axis(path, arr, sweepable_fields(prob))
        for v in (arr.min(), arr.max()):
            try:
                replace_path(prob, path, int(v) if sized else float(v))
            except ValueError as e:
                raise ValueError(f"grid[{path!r}]: value {v:g} is out of range: {e}") from None
        axes[path] = arr
    return axes


def snake_order(shape: Sequence[int]) -> np.ndarray:
    """Grid point (C-order index) stored at each position: a reflected (boustrophedon) order.

    Position ``p`` has C-order digits ``c``; digit ``j >= 1`` is reflected (``n_j - 1 - c_j``)
    when the prefix ``c_0 .. c_{j-1}``, read as one C-order number, is odd. Consecutive prefixes
    differ by one, so consecutive positions are grid neighbours (one digit changes by one): a
    chunk's warm starts never jump across the grid (in C order every row start would).
    """
    shape = tuple(int(s) for s in shape)
    c = np.unravel_index(np.arange(int(np.prod(shape))), shape)
    g = [c[0]]
    for j in range(1, len(shape)):
        q = np.ravel_multi_index(c[:j], shape[:j])
        g.append(np.where(q % 2 == 1, shape[j] - 1 - c[j], c[j]))
    return np.ravel_multi_index(tuple(g), shape)


def grid_size(axes: Mapping[str, np.ndarray]) -> int:
    """Number of grid points ``P``: the product of the axis lengths."""
    return int(np.prod([len(v) for v in axes.values()]))


def chunk_points(axes: Mapping[str, np.ndarray], chunk: int, c: int) -> tuple[int, int, np.ndarray]:
    """Chunk ``c`` of ``chunk`` consecutive positions in :func:`snake_order`.

    Returns:
        ``(start, stop, values)``: the positions ``start .. stop - 1`` it covers and the field
        values of its points, shape ``(chunk, len(axes))``; a short last chunk is padded by
        repeating its last point, so every chunk has the same compiled shape.
    """
    shape = tuple(len(v) for v in axes.values())
    start, stop = c * chunk, min((c + 1) * chunk, grid_size(axes))
    flat = np.minimum(np.arange(start, start + chunk), stop - 1)
    idx = np.unravel_index(snake_order(shape)[flat], shape)
    return start, stop, np.stack([v[i] for v, i in zip(axes.values(), idx)], axis=1)
