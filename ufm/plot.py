r"""Figures: phase diagrams from a sweep, NC metrics along a flow, spectra of a solution.

matplotlib is imported inside each function (the ``plot`` extra); importing ``ufm.plot`` needs
nothing beyond ufm and chooses no backend (a notebook keeps its own). Every drawing function
takes data (a sweep Dataset, a Trajectory, a Solution), draws into ``ax`` (or a new figure),
returns the matplotlib Figure and writes a file only when given ``path``.

The converters (:func:`trajectory_dataset`, :func:`census_dataset`, :func:`verify_table`,
:func:`verify_dataset`) turn a :class:`ufm.Trajectory`, a :class:`ufm.landscape.Census` and the
records of ``ufm verify`` into xarray Datasets or plain tables (lists of flat dicts) to plot
with any tool.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ufm import metrics
from ufm.solvers import Trajectory
from ufm.sweeps import PHASES

if TYPE_CHECKING:
    import xarray
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["phase_diagram", "flow_metrics", "spectra", "figure", "close", "trajectory_dataset", "census_dataset",
           "verify_table", "verify_dataset"]


def _pyplot():
    """matplotlib.pyplot, with whatever backend is current (none is forced here)."""
    import matplotlib.pyplot as plt  # the plot extra: a ModuleNotFoundError names matplotlib

    return plt


def _figure(ax, plt, figsize):
    """``(fig, ax)``: the figure of ``ax``, or a new figure with one Axes."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize)


def figure(**kwargs: Any) -> Figure:
    """A new empty matplotlib Figure (``pyplot.figure(**kwargs)``), in the current backend."""
    return _pyplot().figure(**kwargs)


def close(fig: Figure) -> None:
    """Release a figure made here (after saving it outside a notebook): ``pyplot.close(fig)``."""
    _pyplot().close(fig)


def _phase_grid(phase, seed):
    codes = phase.isel(seed=seed).values.astype(float)
    codes[codes < 0] = np.nan
    return codes, PHASES


def phase_diagram(ds: xarray.Dataset, path: str | os.PathLike | None = None, *, x: str | None = None,
                  y: str | None = None, seed: int = 0, thresholds: Mapping[str, Any] | None = None,
                  boundaries: Sequence[Mapping[str, Any]] | None = None, title: str | None = None,
                  ax: Axes | None = None) -> Figure:
    r"""Draw the atlas phase of every grid point of a sweep (a map, or a strip for one field).

    Points where the random and the warm start disagree are marked with a cross; catalog
    thresholds (``{field: value}``, ``{label: (field, value)}``, or ``{label: (x, f)}`` with
    ``f`` mapping y values to the threshold's x, a curve) are drawn dashed, and
    measured boundaries (:func:`ufm.sweeps.locate_boundary` results) as solid ones.

    .. math:: \text{phase}(x_i, y_j) = \text{atlas}(G_H, G_W) \text{ of the certified minimizer}

    Args:
        ds: a sweep Dataset (:func:`ufm.sweeps.open_sweep`).
        path: also write the figure to this file (PNG, PDF, SVG by extension); None: do not.
        x, y: the grid fields on the axes (default: the first one or two).
        seed: which random seed to draw.
        thresholds: predicted thresholds to overlay.
        boundaries: measured boundaries to overlay.
        title: axes title (default: the problem description).
        ax: draw into this Axes (default: a new figure).

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    new = ax is None
    fields = [str(d) for d in ds["phase"].dims if d != "seed"]
    x = str(x or fields[0])
    y = y or (fields[1] if len(fields) > 1 else None)
    for name, val in (("x", x), ("y", y)):
        if val is not None and val not in fields:
            raise ValueError(f"{name} must be one of the sweep's fields {fields}, got {name}={val!r}")
    others = [f for f in fields if f not in (x, y)]
    sub = ds.isel({f: 0 for f in others}) if others else ds
    codes, phases = _phase_grid(sub["phase"].transpose(*([y] if y else []), x, "seed"), seed)
    cmap = ListedColormap(plt.get_cmap("tab10").colors[: len(phases)])
    norm = BoundaryNorm(np.arange(len(phases) + 1) - 0.5, len(phases))
    fig, ax = _figure(ax, plt, (6.4, 4.8 if y else 2.4))
    xs = sub[x].values
    ys = sub[y].values if y else np.array([0.5])
    grid = codes if y else codes[None, :]
    y_edges = _edges(ys) if y else np.array([0.0, 1.0])
    ax.pcolormesh(_edges(xs), y_edges, grid, cmap=cmap, norm=norm, shading="flat")
    dis = sub["disagree"].isel(seed=seed).transpose(*([y] if y else []), x).values
    if dis.any():
        jj, ii = np.nonzero(dis if y else dis[None, :])
        ax.plot(xs[ii], ys[jj] if y else np.full(ii.size, 0.5), "kx", ms=4, label="random ≠ warm")
    for label, (field, value) in _overlay(thresholds).items():
        if callable(value) and y:  # a curve x = value(y), e.g. the CE zero threshold
            space = np.geomspace if ys.min() > 0 else np.linspace
            yy = space(ys.min(), ys.max(), 200)
            xx = np.asarray(value(yy), dtype=float)
            inside = (xx >= xs.min()) & (xx <= xs.max())
            ax.plot(xx[inside], yy[inside], "k--", lw=1, label=f"predicted {label}")
        else:
            _line(ax, field, value, x, y, "--", f"predicted {label}")
    for b in boundaries or []:
        _line(ax, b["field"], b["boundary"], x, y, "-", f"measured {b['field']}")
    _log_axes(ax, xs, ys if y else None)
    ax.set_xlabel(x)
    if y:
        ax.set_ylabel(y)
    else:
        ax.set_yticks([])
    present = sorted({int(c) for c in np.unique(codes[np.isfinite(codes)])})
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(c)) for c in present]
    leg = ax.legend(handles, [phases[c] for c in present], loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), fontsize=8, title="phase")
    ax.add_artist(leg)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=7)
    ax.set_title(title or ds.attrs.get("problem", "")[:90], fontsize=7)
    return _finish(fig, path, made=new)


def _edges(v):
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] * 0.9, v[0] * 1.1]) if v[0] else np.array([-0.5, 0.5])
    if np.all(v > 0) and v.size > 2 and np.allclose(np.diff(np.log(v)), np.log(v[1] / v[0]), rtol=1e-5, atol=0.0):
        r = np.sqrt(v[1] / v[0])
        return np.concatenate([v / r, [v[-1] * r]])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _log_axes(ax, xs, ys):
    def is_log(v):
        v = np.asarray(v, float)
        return v.size > 2 and np.all(v > 0) and np.allclose(np.diff(np.log(v)), np.log(v[1] / v[0]), rtol=1e-5, atol=0.0)

    if is_log(xs):
        ax.set_xscale("log")
    if ys is not None and is_log(ys):
        ax.set_yscale("log")


def _overlay(thresholds):
    out = {}
    for key, val in (thresholds or {}).items():
        out[key] = val if isinstance(val, tuple) else (key, val if callable(val) else float(val))
    return out


def _line(ax, field, value, x, y, style, label):
    if field == x:
        ax.axvline(value, color="k", ls=style, lw=1, label=label)
    elif field == y:
        ax.axhline(value, color="k", ls=style, lw=1, label=label)


def _finish(fig, path, made):
    """Lay out a figure made here; write it to ``path`` when given; return it."""
    if made:
        fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
    return fig


def flow_metrics(traj: Trajectory, path: str | os.PathLike | None = None, *,
                 names: Sequence[str] | None = None, title: str = "",
                 ax: Axes | Sequence[Axes] | None = None) -> Figure:
    r"""NC metrics and the objective along a gradient flow, on log-log axes.

    .. math:: t \mapsto f(\theta(t)) - \min_s f(\theta(s)),\ \mathrm{NC1}(t),\ \mathrm{NC2}(t),\ \dots

    Args:
        traj: a :class:`ufm.Trajectory` recorded with ``metrics=(...)`` (scalar metrics are drawn).
        path: also write the figure to this file; None: do not.
        names: which of ``traj.metrics`` to draw (default all scalar ones).
        title: figure title.
        ax: None (a new figure, objective and metrics side by side), two Axes ``(objective,
            metrics)``, or one Axes (the metrics only).

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    t = np.asarray(traj.times, dtype=float)
    keep = t > 0
    if ax is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    elif isinstance(ax, Sequence):
        a1, a2 = ax
        fig = a2.figure
    else:
        a1, a2, fig = None, ax, ax.figure
    if a1 is not None:
        v = np.asarray(traj.values, dtype=float)
        a1.plot(t[keep], v[keep] - np.min(v) + 1e-16, "k-")
        a1.set(xscale="log", yscale="log", xlabel="t", ylabel="f(t) - min f", title="objective")
    scalar = [k for k in sorted(traj.metrics) if np.ndim(traj.metrics[k]) == 1]
    for name in names or scalar:
        m = np.abs(np.asarray(traj.metrics[name], dtype=float)) + 1e-300
        a2.plot(t[keep], m[keep], label=name)
    a2.set(xscale="log", yscale="log", xlabel="t", title="neural-collapse metrics")
    if a2.get_lines():
        a2.legend(fontsize=8)
    if ax is None:
        fig.suptitle(title, fontsize=8)
    return _finish(fig, path, made=ax is None)


def spectra(params: Any, labels: ArrayLike, path: str | os.PathLike | None = None, *, title: str = "",
            ax: Axes | None = None) -> Figure:
    r"""Singular values of the classifier ``W`` and of the class means ``Hbar`` (normalized).

    .. math:: \sigma_i(W)/\sigma_1(W), \qquad \sigma_i(\bar H)/\sigma_1(\bar H)

    A simplex ETF shows ``K - 1`` equal values and one zero; an orthogonal frame ``K`` equal values.

    Args:
        params: parameters with ``W`` and ``H`` (for example ``sol.params``).
        labels: ``(N,)`` class of each column of ``H``.
        path: also write the figure to this file; None: do not.
        title: axes title.
        ax: draw into this Axes (default: a new figure).

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    Hbar, _ = metrics.class_means(params.H, labels)
    new = ax is None
    fig, ax = _figure(ax, plt, (5, 3.4))
    for name, X in (("W", params.W), ("class means", Hbar)):
        s = np.linalg.svd(np.asarray(X, dtype=float), compute_uv=False)
        ax.plot(np.arange(1, s.size + 1), s / max(s[0], 1e-300), "o-", label=name)
    ax.set(yscale="log", xlabel="index i", ylabel="sigma_i / sigma_1", title=title)
    ax.legend()
    return _finish(fig, path, made=new)


# ---- converters: results as labelled arrays or plain tables ------------------------------------

def _xarray():
    import xarray  # the sweeps extra: a ModuleNotFoundError names xarray

    return xarray


def _named_leaves(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    """``{name: array}`` of a params pytree (NamedTuple fields by name, sequences by index)."""
    if tree is None:
        return {}
    if hasattr(tree, "_asdict"):
        out: dict[str, np.ndarray] = {}
        for k, v in tree._asdict().items():
            out.update(_named_leaves(f"{prefix}{k}", v))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, v in enumerate(tree):
            out.update(_named_leaves(f"{prefix}_{i}", v))
        return out
    return {prefix: np.asarray(tree)}


def trajectory_dataset(traj: Trajectory) -> xarray.Dataset:
    r"""A :class:`ufm.Trajectory` as an xarray Dataset along the dimension ``time``.

    Contract: ``ds["value"][i] = traj.values[i]`` at ``ds["time"][i] = traj.times[i]``; each
    recorded metric is a variable ``(time, ...)`` (extra axes ``{name}_dim_j``); recorded
    parameters become ``param_W``, ``param_H``, ... (deep layers ``param_Ws_0``, ...) of shape
    ``(time, rows, cols)``; ``attrs`` holds ``result`` (the :class:`ufm.RESULTS` name) and the
    scalar ``stats``. ``ds.to_dataframe()`` gives a table for any plotting tool.

    Args:
        traj: the result of :func:`ufm.gradient_flow`.

    Returns:
        An ``xarray.Dataset`` (the ``sweeps`` extra).
    """
    xr = _xarray()

    def var(name, a):
        a = np.asarray(a)
        return (("time", *[f"{name}_dim_{j}" for j in range(1, a.ndim)]), a)

    data = {"value": var("value", traj.values)}
    data.update({k: var(k, v) for k, v in traj.metrics.items()})
    data.update({f"param_{k}": var(f"param_{k}", v) for k, v in _named_leaves("", traj.params).items()})
    attrs = {"result": getattr(traj.result, "name", str(traj.result))}
    attrs.update({k: v for k, v in (traj.stats or {}).items() if np.ndim(v) == 0 and v is not None})
    return xr.Dataset(data, coords={"time": np.asarray(traj.times, dtype=float)}, attrs=attrs)


_CENSUS_FIELDS = ("init_scale", "value", "kkt", "min_eig", "index", "kind", "gap", "is_global")


def census_dataset(census: Any) -> xarray.Dataset:
    r"""A landscape census (:func:`ufm.landscape.census`) as an xarray Dataset along ``start``.

    Contract: one entry per random start, the variables ``init_scale``, ``value``, ``kkt``,
    ``min_eig``, ``index``, ``kind``, ``gap``, ``is_global`` of the census unchanged, and
    ``attrs`` ``f_best``, ``seconds``, ``mode``. A free function, since the census type lives
    below the plotting layer.

    Args:
        census: a :class:`ufm.landscape.Census`.

    Returns:
        An ``xarray.Dataset`` (the ``sweeps`` extra).
    """
    xr = _xarray()
    data = {k: ("start", np.asarray(getattr(census, k))) for k in _CENSUS_FIELDS}
    size = data["value"][1].shape[0]
    attrs = {"f_best": float(census.f_best), "seconds": float(census.seconds), "mode": str(census.mode)}
    return xr.Dataset(data, coords={"start": np.arange(size)}, attrs=attrs)


def _cell(v: Any) -> Any:
    """A table cell: numbers and strings as they are, size-1 arrays as numbers, the rest as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    a = np.asarray(v) if not isinstance(v, Mapping) else None
    if a is not None and a.dtype.kind in "biuf" and a.size == 1:
        return a.reshape(()).item()
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={val}" for k, val in v.items())
    return str(v)


def verify_table(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    r"""The records of ``ufm verify`` (``proofs_check.verify.run``) as a plain table.

    Contract: one flat row per record and the same keys in every row (the union, ``None`` where a
    record lacks one); scalar ``predicted``/``measured``/``rel_error`` stay numbers (size-1
    arrays become numbers), anything else (a matrix, the ``source`` mapping, the instance)
    becomes text. ``pandas.DataFrame(verify_table(r))`` is the table a user plots.

    Args:
        records: the list of dicts of ``ufm verify --json``.

    Returns:
        A list of dicts of numbers, booleans, strings and ``None``.
    """
    keys = list(dict.fromkeys(k for r in records for k in r))
    return [{k: _cell(r.get(k)) for k in keys} for r in records]


def _numeric(v: Any) -> bool:
    if isinstance(v, (bool, str, Mapping)) or v is None:
        return False
    try:
        return np.asarray(v).dtype.kind in "iuf"
    except (TypeError, ValueError):
        return False


def verify_dataset(records: Sequence[Mapping[str, Any]]) -> xarray.Dataset:
    """The records of ``ufm verify`` as an xarray Dataset along the dimension ``check``.

    Contract: a column whose every entry is numeric (a number, or an array of numbers such as a
    predicted Gram matrix) is float64, holding the number where the entry is one number and NaN
    where it is an array (:func:`verify_table` keeps those as text); booleans stay booleans;
    other columns are text.

    Args:
        records: the list of dicts of ``ufm verify --json``.

    Returns:
        An ``xarray.Dataset`` (the ``sweeps`` extra).
    """
    xr = _xarray()
    rows = verify_table(records)
    cols: dict[str, Any] = {}
    for k in (rows[0] if rows else {}):
        raw = [r.get(k) for r in records]
        if all(_numeric(v) for v in raw):
            vals = [np.asarray(v, dtype=float) for v in raw]
            cols[k] = ("check", np.array([a.reshape(()) if a.size == 1 else np.nan for a in vals]))
        elif all(isinstance(v, bool) for v in raw):
            cols[k] = ("check", np.asarray(raw, dtype=bool))
        else:
            cols[k] = ("check", np.asarray([str(r[k]) for r in rows]))
    return xr.Dataset(cols, coords={"check": np.arange(len(rows))})
