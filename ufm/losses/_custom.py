r"""A user-defined per-sample loss that every ufm solver, metric and sweep takes like a built-in.

``ufm.CustomLoss(fn, name=None, **params)`` wraps ``fn(z, y, **params)``, the loss of ONE logit
vector ``z`` of shape ``(K,)`` and its integer label ``y``, written with ``jax.numpy``. ufm vmaps
it over the columns of the ``(D, N)`` logit matrix, as :class:`ufm.losses.Loss` requires.

Each distinct ``(fn, name, parameter names)`` gets its own frozen dataclass (a subclass of
:class:`CustomLoss`) whose fields are the hyper-parameters, registered as a pytree with those
fields as float64 leaves. So ``loss.eps`` reads a parameter, ``dataclasses.replace(loss, eps=0.3)``
(or :func:`ufm.losses.replace`) changes one, ``jax.vmap`` runs over them, and a jitted solver is not
recompiled when they change: two instances with the same ``fn`` and parameter names share one
class, hence one pytree structure.

The definition is checked when a problem is built (:meth:`CustomLoss.check`, called with the
number of classes ``K``), before anything is compiled: ``fn`` must trace with JAX, return a real
scalar, and have a finite value and gradient at the origin ``z = 0`` for every label.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ufm._internal.validation import as_float_array, is_concrete
from ufm.losses._builtin import Loss

__all__ = ["CustomLoss"]

_CLASSES: dict = {}  # (fn, name, parameter names) -> generated subclass


def _class_name(name: str) -> str:
    """A valid Python identifier for the generated class (``"poly-1"`` -> ``"Poly_1"``)."""
    ident = re.sub(r"\W", "_", name) or "Custom"
    if ident[0].isdigit() or keyword.iskeyword(ident):
        ident = "Loss_" + ident
    return ident[0].upper() + ident[1:]


def _as_param(fn_name: str, key: str, value):
    """Hyper-parameters are numbers or numeric arrays (float64 leaves); anything else is refused."""
    if isinstance(value, (bool, str, bytes)) or callable(value):
        raise ValueError(f"CustomLoss({fn_name}): parameter {key} must be a number or a numeric array, "
                         f"got {key}={value!r}")
    if not is_concrete(value) and not isinstance(value, (list, tuple)):
        return value  # a tracer or placeholder while JAX rebuilds the pytree
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"CustomLoss({fn_name}): parameter {key} must be a number or a numeric array, "
                         f"got {key}={value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"CustomLoss({fn_name}): parameter {key} must be finite, got {key}={value!r}")
    return as_float_array(arr if isinstance(value, (list, tuple)) else value)


class _CustomLossMeta(type):
    """``CustomLoss(fn, name, **params)`` builds an instance of the generated subclass; calling a
    generated subclass (``dataclasses.replace``, JAX unflatten) is the plain dataclass call."""

    def __call__(cls, *args, **kwargs):
        if cls is not CustomLoss:
            return super().__call__(*args, **kwargs)
        fn, name, params = _split_args(args, kwargs)
        return _subclass(fn, name, tuple(sorted(params)))(**params)


class CustomLoss(Loss, metaclass=_CustomLossMeta):
    r"""A loss written by the user: ``fn(z, y, **params)`` for one logit vector, vmapped by ufm.

    .. math:: \ell(Z, y)_i = \mathrm{fn}(Z_{:, i},\ y_i,\ \text{params}), \qquad i = 1, \dots, N

    so the UFM objective is ``(1/N) sum_i fn(W h_i + b, y_i) + lam_W/2 ||W||^2 + ...`` exactly as
    for the built-in losses (the canonical objective of Zhu et al. 2021, mean over samples).

    Example (PolyLoss-1, Leng et al. 2022, arXiv 2204.12511)::

        def poly1(z, y, eps):
            logp = jax.nn.log_softmax(z)[y]
            return -logp + eps * (1.0 - jnp.exp(logp))

        loss = ufm.CustomLoss(poly1, eps=1.0)
        prob = ufm.UFM(K=4, n=5, d=8, loss=loss, lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)

    Args:
        fn: ``fn(z, y, **params) -> scalar``: ``z`` a ``(K,)`` float array (one sample's logits),
            ``y`` an int scalar in ``0..K-1``; written with ``jax.numpy`` (traceable: no Python
            ``if`` on values, no NumPy calls on ``z``).
        name: short name (default ``fn.__name__``); also names the generated class.
        **params: hyper-parameters, numbers or numeric arrays; stored as float64 pytree leaves.

    Raises:
        ValueError: ``fn`` is not callable, a parameter is not numeric or not finite; and, when a
            problem is built with ``K`` classes (:meth:`check`), ``fn`` does not trace, does not
            return a real scalar, or its value or gradient is not finite at ``z = 0``.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the canonical UFM objective; Zhou et al.,
        NeurIPS 2022 (arXiv 2210.02192), losses whose UFM minimizers are simplex ETFs.
    """

    fn = None  # set on each generated subclass
    name = "custom"
    param_names: tuple = ()

    # ---- the Loss contract ---------------------------------------------------------------------
    @property
    def params(self) -> dict:
        """The hyper-parameters as a dict ``{name: value}``."""
        return {k: getattr(self, k) for k in self.param_names}

    def per_sample(self, z: jax.Array, y: jax.Array) -> jax.Array:
        """``fn(z, y, **params)`` for one logit vector ``z: (D,)`` and one label ``y``."""
        return type(self).fn(z, y, **self.params)

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **params: Any) -> None:
        """The call signature: ``CustomLoss(fn, name=None, **params)`` (see the class docstring).

        The metaclass answers that call with an instance of a generated dataclass subclass, whose
        own ``__init__`` takes the parameters; this one is never run.
        """
        raise TypeError("CustomLoss instances are built by its metaclass")  # pragma: no cover

    def __call__(self, logits, labels):
        """Per-sample losses of ``logits: (D, N)`` with ``labels: (N,)``: ``fn`` vmapped over columns."""
        return jax.vmap(self.per_sample, in_axes=(1, 0))(logits, labels)

    def __reduce__(self):
        """Pickle as ``CustomLoss(fn, name, **params)`` (the generated class is rebuilt on load)."""
        params = {k: np.asarray(v) for k, v in self.params.items()}
        return _rebuild, (type(self).fn, self.name, params)

    def check(self, K: int) -> None:
        """Trace ``fn`` on a ``(K,)`` vector and evaluate it (and its gradient) at ``z = 0``.

        Skipped while JAX rebuilds the pytree with tracers. Results are cached per class, ``K`` and
        parameter values, so rebuilding a problem does not re-evaluate ``fn``.
        """
        params = self.params
        if not all(is_concrete(v) for v in params.values()):
            return
        key = (K, tuple(np.asarray(v).tobytes() for v in params.values()))
        cache = type(self)._checked
        if key not in cache:
            _check_definition(self, K)
            cache.add(key)


def _rebuild(fn, name, params):
    return CustomLoss(fn, name, **params)


def _split_args(args, kwargs):
    if not args and "fn" not in kwargs:
        raise ValueError("CustomLoss needs fn: CustomLoss(fn, name=None, **params) with "
                         "fn(z, y, **params) the loss of one logit vector z: (K,) and its label y")
    fn = args[0] if args else kwargs.pop("fn")
    if len(args) > 2:
        raise ValueError("CustomLoss(fn, name=None, **params): hyper-parameters are keyword arguments, "
                         f"got {len(args) - 1} extra positional argument(s)")
    name = args[1] if len(args) == 2 else kwargs.pop("name", None)
    if not callable(fn):
        raise ValueError(f"fn must be callable as fn(z, y, **params), got fn={fn!r}")
    if name is None:
        name = getattr(fn, "__name__", "custom")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got name={name!r}")
    for key in kwargs:
        if key in ("fn", "name", "params", "param_names", "check", "per_sample", "out_dim", "identity"):
            raise ValueError(f"CustomLoss: {key!r} is reserved and cannot name a hyper-parameter")
    return fn, name, dict(kwargs)


def _subclass(fn, name: str, names: tuple):
    """The frozen pytree dataclass for ``(fn, name, names)``, created once and reused."""
    key = (fn, name, names)
    if key in _CLASSES:
        return _CLASSES[key]
    fn_name = name

    def __post_init__(self):
        for k in names:
            object.__setattr__(self, k, _as_param(fn_name, k, getattr(self, k)))

    # ``identity`` is static pytree metadata: JAX compares tree structures of dataclass nodes by
    # their metadata, so without it two parameter-free custom losses would share one structure
    # (and one compiled solver).
    ns = {"fn": staticmethod(fn), "name": name, "param_names": names, "_checked": set(),
          "__post_init__": __post_init__,
          "__annotations__": {**{k: "jax.Array" for k in names}, "identity": "tuple"},
          "identity": dataclasses.field(default=key, repr=False, compare=False, metadata=dict(static=True)),
          "__module__": "ufm", "__doc__": f"CustomLoss {name!r} with parameters {list(names)}."}
    sub = type(_class_name(name), (CustomLoss,), ns)
    sub = jax.tree_util.register_dataclass(dataclasses.dataclass(frozen=True)(sub))
    _CLASSES[key] = sub
    return sub


def _check_definition(loss: CustomLoss, K: int) -> None:
    """The three checks of the class docstring, each with a message that says what was wrong."""
    what = f"CustomLoss {loss.name!r}"
    z_spec = jax.ShapeDtypeStruct((K,), jnp.zeros(()).dtype)
    y_spec = jax.ShapeDtypeStruct((), jnp.int32)
    try:
        out = jax.eval_shape(loss.per_sample, z_spec, y_spec)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is a bad definition
        raise ValueError(
            f"{what}: fn(z, y, **params) is not traceable by JAX for z of shape ({K},) and an int "
            f"label ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); write it "
            "with jax.numpy (jnp.where instead of Python if, no NumPy calls on z)"
        ) from exc
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"{what}: fn must return a scalar (the loss of one sample), got shape {shape} "
                         f"for z of shape ({K},); reduce over classes inside fn")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"{what}: fn must return a real floating-point scalar, got dtype {out.dtype}")
    z0 = jnp.zeros((K,))
    ys = jnp.arange(K, dtype=jnp.int32)
    values = jax.vmap(loss.per_sample, in_axes=(None, 0))(z0, ys)
    grads = jax.vmap(jax.grad(loss.per_sample), in_axes=(None, 0))(z0, ys)
    bad = np.flatnonzero(~np.isfinite(np.asarray(values)))
    if bad.size:
        raise ValueError(f"{what}: fn(z=0, y={int(bad[0])}) = {float(values[bad[0]])} is not finite at "
                         "the origin (the zero solution of every UFM); guard logs and divisions")
    bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(grads)), axis=1))
    if bad.size:
        raise ValueError(f"{what}: the gradient of fn at z=0 (y={int(bad[0])}) is not finite "
                         f"({np.asarray(grads[bad[0]]).tolist()}); avoid sqrt/norm/abs-powers that are "
                         "not differentiable at 0 (use jnp.sqrt(x + eps) or a squared form)")
