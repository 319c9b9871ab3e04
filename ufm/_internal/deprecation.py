"""Old names that keep working for one release, each with a DeprecationWarning naming the new one."""

from __future__ import annotations

import functools
import importlib
import sys
import types
import warnings

import numpy as np


def moved_attribute(owner: str, name: str, module: str, attribute: str | None):
    """``module.attribute`` (the module itself when ``attribute`` is None), after a
    DeprecationWarning that ``owner.name`` moved there."""
    new = module if attribute is None else f"{module}.{attribute}"
    warnings.warn(f"{owner}.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
    target = importlib.import_module(module)
    return target if attribute is None else getattr(target, attribute)


class _ModuleAlias(types.ModuleType):
    """A module name kept as an alias of another: each attribute read warns, then forwards."""

    def __init__(self, old: str, new: str):
        super().__init__(old, f"Deprecated alias of {new}.")
        self._ufm_new = new

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        new = object.__getattribute__(self, "_ufm_new")
        return moved_attribute(self.__name__, name, new, name)


def install_module_alias(old: str, new: str) -> None:
    """Make ``import old`` / ``from old import x`` resolve to ``new`` with a DeprecationWarning.

    Only ufm's own module names are registered in ``sys.modules``; nothing else is touched.
    """
    if not old.startswith("ufm."):
        raise ValueError(f"old must name a ufm module, got old={old!r}")
    sys.modules.setdefault(old, _ModuleAlias(old, new))


def renamed_keywords(**old_to_new: str):
    """Decorator: keyword arguments renamed for one release. A call with an old name warns and
    passes the value under the new name; passing both raises a ValueError naming both."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ValueError(f"{fn.__name__}: pass {new}= only ({old}= is its deprecated name)")
                    warnings.warn(f"{fn.__name__}({old}=...) is deprecated; use {new}=", DeprecationWarning,
                                  stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap


def classifier_first(old_order: tuple[str, ...], new_call: str):
    """Decorator: accept, for one release and with a DeprecationWarning, the old positional order
    ``old_order`` (the bias second, e.g. ``("W", "b", "H", "labels", "K")``) of a function whose
    order is now classifier, features, labels, then ``b=None``; ``new_call`` is the call the
    warning recommends (``"W, H, labels, b=b, ..."``).

    The old form is recognised exactly: its second positional argument is the bias, ``None`` or
    an array of at most one dimension, where the new form has the 2-D features.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            if len(args) >= 2 and (args[1] is None or np.ndim(args[1]) < 2):
                warnings.warn(f"{fn.__name__}({', '.join(old_order[: len(args)])}) with the bias second is "
                              f"deprecated; call {fn.__name__}({new_call})", DeprecationWarning, stacklevel=2)
                for name, value in zip(old_order, args):
                    if name in kwargs:
                        raise TypeError(f"{fn.__name__}() got multiple values for argument {name!r}")
                    kwargs[name] = value
                args = ()
            return fn(*args, **kwargs)

        return inner

    return wrap
