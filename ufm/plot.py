r"""Figures: phase diagrams from a sweep, NC metrics along a flow, spectra of a solution.

matplotlib is imported inside each function (the ``plot`` extra); importing ``ufm.plot`` needs
nothing beyond ufm. Every function takes data (a sweep Dataset, a Trajectory, a Solution) and a
file name, draws with the Agg backend and returns the path it wrote.
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

__all__ = ["phase_diagram", "flow_metrics", "spectra"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("ufm.plot needs matplotlib: pip install 'ufm[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _phase_grid(phase, seed):
    codes = phase.isel(seed=seed).values.astype(float)
    codes[codes < 0] = np.nan
    return codes, PHASES


def phase_diagram(ds: xarray.Dataset, path: str | os.PathLike, *, x: str | None = None,
                  y: str | None = None, seed: int = 0, thresholds: Mapping[str, Any] | None = None,
                  boundaries: Sequence[Mapping[str, Any]] | None = None, title: str | None = None) -> str:
    r"""Draw the atlas phase of every grid point of a sweep (a map, or a strip for one field).

    Points where the random and the warm start disagree are marked with a cross; catalog
    thresholds (``{field: value}``, ``{label: (field, value)}``, or ``{label: (x, f)}`` with
    ``f`` mapping y values to the threshold's x, a curve) are drawn dashed, and
    measured boundaries (:func:`ufm.sweeps.locate_boundary` results) as solid ones.

    .. math:: \text{phase}(x_i, y_j) = \text{atlas}(G_H, G_W) \text{ of the certified minimizer}

    Args:
        ds: a sweep Dataset (:func:`ufm.sweeps.open_sweep`).
        path: output image file (PNG, PDF, SVG by extension).
        x, y: the grid fields on the axes (default: the first one or two).
        seed: which random seed to draw.
        thresholds: predicted thresholds to overlay.
        boundaries: measured boundaries to overlay.
        title: figure title (default: the problem description).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    fields = [d for d in ds["phase"].dims if d != "seed"]
    x = x or fields[0]
    y = y or (fields[1] if len(fields) > 1 else None)
    for name, val in (("x", x), ("y", y)):
        if val is not None and val not in fields:
            raise ValueError(f"{name} must be one of the sweep's fields {fields}, got {name}={val!r}")
    others = [f for f in fields if f not in (x, y)]
    sub = ds.isel({f: 0 for f in others}) if others else ds
    codes, phases = _phase_grid(sub["phase"].transpose(*([y] if y else []), x, "seed"), seed)
    cmap = ListedColormap(plt.get_cmap("tab10").colors[: len(phases)])
    norm = BoundaryNorm(np.arange(len(phases) + 1) - 0.5, len(phases))
    fig, ax = plt.subplots(figsize=(6.4, 4.8 if y else 2.4))
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
    return _save(fig, plt, path)


def _edges(v):
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] * 0.9, v[0] * 1.1]) if v[0] else np.array([-0.5, 0.5])
    if np.all(v > 0) and v.size > 2 and np.allclose(np.diff(np.log(v)), np.log(v[1] / v[0])):
        r = np.sqrt(v[1] / v[0])
        return np.concatenate([v / r, [v[-1] * r]])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _log_axes(ax, xs, ys):
    def is_log(v):
        v = np.asarray(v, float)
        return v.size > 2 and np.all(v > 0) and np.allclose(np.diff(np.log(v)), np.log(v[1] / v[0]))

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


def _save(fig, plt, path):
    path = os.fspath(path)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def flow_metrics(traj: Trajectory, path: str | os.PathLike, *, names: Sequence[str] | None = None,
                 title: str = "") -> str:
    r"""NC metrics and the objective along a gradient flow, on log-log axes.

    .. math:: t \mapsto f(\theta(t)),\ \mathrm{NC1}(t),\ \mathrm{NC2}(t),\ \dots

    Args:
        traj: a :class:`ufm.Trajectory` recorded with ``metrics=(...)``.
        path: output image file.
        names: which of ``traj.metrics`` to draw (default all).
        title: figure title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    t = np.asarray(traj.times, dtype=float)
    keep = t > 0
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    v = np.asarray(traj.values, dtype=float)
    a1.plot(t[keep], v[keep] - np.min(v) + 1e-16, "k-")
    a1.set(xscale="log", yscale="log", xlabel="t", ylabel="f(t) - min f", title="objective")
    for name in names or sorted(traj.metrics):
        m = np.abs(np.asarray(traj.metrics[name], dtype=float)) + 1e-300
        a2.plot(t[keep], m[keep], label=name)
    a2.set(xscale="log", yscale="log", xlabel="t", title="neural-collapse metrics")
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=8)
    return _save(fig, plt, path)


def spectra(params: Any, labels: ArrayLike, path: str | os.PathLike, *, title: str = "") -> str:
    r"""Singular values of the classifier ``W`` and of the class means ``Hbar`` (normalized).

    .. math:: \sigma_i(W)/\sigma_1(W), \qquad \sigma_i(\bar H)/\sigma_1(\bar H)

    A simplex ETF shows ``K - 1`` equal values and one zero; an orthogonal frame ``K`` equal values.

    Args:
        params: parameters with ``W`` and ``H`` (for example ``sol.params``).
        labels: ``(N,)`` class of each column of ``H``.
        path: output image file.
        title: figure title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    Hbar, _ = metrics.class_means(params.H, labels)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, X in (("W", params.W), ("class means", Hbar)):
        s = np.linalg.svd(np.asarray(X, dtype=float), compute_uv=False)
        ax.plot(np.arange(1, s.size + 1), s / max(s[0], 1e-300), "o-", label=name)
    ax.set(yscale="log", xlabel="index i", ylabel="sigma_i / sigma_1", title=title)
    ax.legend()
    return _save(fig, plt, path)
