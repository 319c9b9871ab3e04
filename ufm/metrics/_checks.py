"""Argument checks shared by the metrics: labels, classes, features layout, classifier, Gram.

Everything here runs on the host before compilation (or at trace time on concrete values) and
raises a ``ValueError`` that names the argument and its valid values.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.deprecation import classifier_first as deprecated_order
from ufm._internal.runtime import register_compiled
from ufm._internal.validation import is_concrete

__all__ = [
    "GLOBAL_MEANS",
    "LAYOUTS",
    "PINV_RTOL",
    "as_dN",
    "check_W",
    "check_bias",
    "check_global_mean",
    "check_gram",
    "check_labels",
    "check_layout",
    "classifier_first",
    "jit_with_labels",
    "keyword_only_after",
    "num_classes",
]

GLOBAL_MEANS = ("weighted", "unweighted")
"""Valid values of ``global_mean``."""

LAYOUTS = ("dN", "Nd")
"""Valid values of ``layout``: ``"dN"`` one sample per column, ``"Nd"`` one sample per row."""

PINV_RTOL = 1e-10
"""Default relative tolerance of the pseudo-inverse in :func:`ufm.metrics.nc1`: singular values of
``Mbar`` below ``PINV_RTOL * sigma_max(Mbar)`` are treated as zero."""

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_SHAPES = {"dN": "(d, N) (one sample per column)", "Nd": "(N, d) (one sample per row)"}


def check_layout(layout: str) -> str:
    """``layout`` itself, after checking that it is one of :data:`LAYOUTS`."""
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(
            f"layout must be one of {LAYOUTS} ('dN': features H of shape (d, N), one sample per "
            f"column; 'Nd': shape (N, d), one sample per row, as networks give them), "
            f"got layout={layout!r}"
        )
    return layout


def as_dN(H: Any, layout: str, name: str = "H") -> Any:
    """Features in the ``(d, N)`` layout: ``H`` for ``layout="dN"``, ``H.T`` for ``"Nd"``.

    Raises:
        ValueError: if ``layout`` is unknown or ``H`` is not 2-D (the message gives the shape the
            layout expects).
    """
    check_layout(layout)
    if np.ndim(H) != 2:
        raise ValueError(
            f"{name} must have shape {_SHAPES[layout]}, got {name}.shape={np.shape(H)}"
        )
    if layout == "dN":
        return H
    return H.T if isinstance(H, (jax.Array, np.ndarray)) else np.asarray(H).T


def check_global_mean(global_mean: str) -> None:
    """Raise a ValueError unless ``global_mean`` is one of :data:`GLOBAL_MEANS`."""
    if global_mean not in GLOBAL_MEANS:
        raise ValueError(f"global_mean must be one of {GLOBAL_MEANS}, got {global_mean!r}")


def num_classes(labels: Any, K: int | None) -> int:
    """Static K: the given one, or ``max(labels) + 1`` from concrete labels."""
    if K is None:
        if not is_concrete(labels) and not isinstance(labels, (list, tuple)):
            raise ValueError(
                "K must be given (K=<number of classes>) when labels is a traced array; "
                "or pass labels as a concrete NumPy array"
            )
        K = int(np.max(np.asarray(labels))) + 1
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got K={K!r}")
    return int(K)


def _check_label_values(labels: Any, K: int) -> None:
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integers in 0..K-1, got dtype {lab.dtype}")
    if lab.min() < 0 or lab.max() >= K:
        raise ValueError(
            f"labels must lie in 0..K-1 = 0..{K - 1}, got values in {lab.min()}..{lab.max()}"
        )
    missing = np.flatnonzero(np.bincount(lab, minlength=K) == 0)
    if missing.size:
        raise ValueError(
            f"labels must contain every class 0..K-1 at least once; "
            f"classes {missing.tolist()} have no samples"
        )


def check_labels(
    H: Any, labels: Any, K: int | None, layout: str = "dN"
) -> tuple[jax.Array, jax.Array, int]:
    """Validate features against ``labels: (N,)``; return ``(H: (d, N) float64, labels int32, K)``.

    ``H`` is ``(d, N)`` for ``layout="dN"`` and ``(N, d)`` for ``layout="Nd"``; the returned ``H``
    is always ``(d, N)``. Concrete labels are checked to lie in ``0..K-1`` with every class present.
    """
    H = jnp.asarray(as_dN(H, layout), dtype=jnp.float64)
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    if np.ndim(labels) != 1 or np.shape(labels)[0] != H.shape[1]:
        axis = "H.shape[1]" if layout == "dN" else "H.shape[0]"
        raise ValueError(
            f"labels must have shape (N,) with N = {axis} = {H.shape[1]}, "
            f"got labels.shape={np.shape(labels)}"
        )
    K = num_classes(labels, K)
    if is_concrete(labels):
        _check_label_values(labels, K)
    return H, jnp.asarray(labels).astype(jnp.int32), K


def jit_with_labels(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Validate ``H``, ``labels``, ``K`` (and ``layout``, ``global_mean``) on the host, then run
    ``fn`` jitted with ``K``, ``global_mean`` and ``layout`` static.

    The features reach ``fn`` in the ``(d, N)`` layout whatever ``layout`` the caller gave, so one
    compilation serves both layouts. Labels are a traced argument: a new permutation of the same
    sizes reuses the compiled code. ``wrapper.__wrapped__`` is ``fn`` itself (no jit, no host
    checks beyond those ``fn`` makes).
    """
    sig = inspect.signature(fn)
    static = [name for name in ("K", "global_mean", "layout") if name in sig.parameters]
    jitted = register_compiled(jax.jit(fn, static_argnames=static))

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        layout = arguments.get("layout", "dN")
        arguments["H"], arguments["labels"], arguments["K"] = check_labels(
            arguments["H"], arguments["labels"], arguments["K"], layout
        )
        if "layout" in arguments:
            arguments["layout"] = "dN"
        if "global_mean" in arguments:
            check_global_mean(arguments["global_mean"])
        return jitted(**arguments)

    return wrapper


def check_W(W: Any, K: int | None = None, d: int | None = None) -> jax.Array:
    """``W: (K, d)`` as float64, with optional shape checks against the features."""
    W = jnp.asarray(W, dtype=jnp.float64)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (K, d) (one classifier row per class), got {W.shape}")
    if K is not None and W.shape[0] != K:
        raise ValueError(f"W must have K={K} rows (one per class), got W.shape={W.shape}")
    if d is not None and W.shape[1] != d:
        raise ValueError(f"W must have d={d} columns (the feature dimension), got W.shape={W.shape}")
    return W


def check_bias(b: Any, K: int) -> jax.Array | None:
    """``b: (K,)`` as float64, or None."""
    if b is None:
        return None
    b = jnp.asarray(b, dtype=jnp.float64)
    if b.shape != (K,):
        raise ValueError(f"b must have shape (K,) = ({K},) or be None, got b.shape={b.shape}")
    return b


def check_gram(G: Any) -> jax.Array:
    """``G: (K, K)`` as float64, ``K >= 2``."""
    G = jnp.asarray(G, dtype=jnp.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ValueError(
            f"G must be a square (K, K) Gram matrix with K >= 2, got G.shape={G.shape}"
        )
    return G


def classifier_first(old_order: Sequence[str]) -> Decorator:
    """Decorator: accept, for one release and with a DeprecationWarning, the old positional order
    ``old_order`` (for example ``("W", "b", "H", "labels", "K")``) of a function whose order is now
    ``(W, H, labels, b=None, ...)`` (:func:`ufm._internal.deprecation.classifier_first`)."""
    return deprecated_order(tuple(old_order), "W, H, labels, b=b, ...")


def keyword_only_after(n: int, names: Sequence[str]) -> Decorator:
    """Decorator: arguments ``names`` are keyword-only now; passing them positionally (after the
    first ``n``) still works for one release, with a DeprecationWarning."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n:
                extra = args[n:]
                if len(extra) > len(names):
                    raise TypeError(
                        f"{fn.__name__}() takes at most {n + len(names)} positional arguments"
                    )
                given = names[: len(extra)]
                warnings.warn(
                    f"passing {', '.join(given)} to {fn.__name__} positionally is deprecated; "
                    f"pass {', '.join(f'{x}=' for x in given)}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                for name, value in zip(given, extra):
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for argument {name!r}")
                    kwargs[name] = value
                args = args[:n]
            return fn(*args, **kwargs)

        return inner

    return wrap
