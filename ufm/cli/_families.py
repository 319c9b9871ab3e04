"""Problem specs: a ``[problem]`` table for every family, validated key by key, and back.

A spec is a plain dict (a TOML table, or the ``problem`` entry of a JSON record): ``family``
picks the model (``ufm`` by default), the other keys are the constructor's arguments as numbers,
strings, booleans and lists. :func:`build_problem` checks every key against its family's schema
before building anything (a :class:`SpecError` names the key and its valid range);
:func:`problem_spec` writes a problem back as such a dict, so that
``build_problem(problem_spec(prob))`` is the same problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from ufm.losses import MSE, CrossEntropy, Focal, LabelSmoothing
from ufm.problems import UFM, DeepUFM, MemorizationDilation, MultiLabelUFM, Problem, RegressionUFM
from ufm.problems import label_set_targets

__all__ = ["SpecError", "FAMILIES", "LOSSES", "KEYS", "REQUIRED", "build_problem", "problem_spec",
           "check_key", "flag_of", "dump_toml"]

LOSSES = ("ce", "ls", "focal", "mse")


class SpecError(ValueError):
    """A bad flag or spec entry; the message names it, its valid range and the fix."""


class Key(NamedTuple):
    """One spec key: ``check(value) -> value`` (or None when the value is out of range) and the
    valid range in words (quoted in every error about the key)."""

    check: Callable[[Any], Any]
    doc: str


def flag_of(key: str) -> str:
    """The command-line flag of a ``[problem]`` key: ``lam_W`` -> ``--lam-W``."""
    return "--" + key.replace("_", "-")


def _where(key: str, table: str = "problem") -> str:
    return f"{table}.{key} ({flag_of(key)})"


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(lo: int) -> Key:
    return Key(lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v >= lo else None,
               f"an integer >= {lo}")


def _num(lo: float, hi: float | None = None, lo_open: bool = False) -> Key:
    def check(v):
        if not _is_num(v) or v < lo or (lo_open and v == lo) or (hi is not None and v >= hi):
            return None
        return float(v)

    left = ">" if lo_open else ">="
    return Key(check, f"a finite number {left} {lo:g}" if hi is None else f"a number in [{lo:g}, {hi:g})")


def _choice(*options: str) -> Key:
    return Key(lambda v: v if isinstance(v, str) and v in options else None,
               "one of " + ", ".join(repr(o) for o in options))


def _bool() -> Key:
    return Key(lambda v: v if isinstance(v, bool) else None, "true or false")


def _ints(lo: int) -> Key:
    def check(v):
        if not isinstance(v, (list, tuple)) or not v:
            return None
        ok = all(isinstance(x, int) and not isinstance(x, bool) and x >= lo for x in v)
        return [int(x) for x in v] if ok else None

    return Key(check, f"a non-empty list of integers >= {lo}")


def _n() -> Key:
    one, many = _int(1), _ints(1)
    return Key(lambda v: one.check(v) if not isinstance(v, (list, tuple)) else many.check(v),
               "an integer >= 1 or a non-empty list of per-class counts >= 1")


def _num_or_nums(lo: float) -> Key:
    one = _num(lo)

    def check(v):
        if isinstance(v, (list, tuple)):
            out = [one.check(x) for x in v]
            return out if out and None not in out else None
        return one.check(v)

    return Key(check, f"a finite number >= {lo:g} or a non-empty list of them (one per layer)")


def _matrix() -> Key:
    def check(v):
        if not isinstance(v, (list, tuple)) or not v or not all(isinstance(r, (list, tuple)) for r in v):
            return None
        if len({len(r) for r in v}) != 1 or not v[0] or not all(_is_num(x) for r in v for x in r):
            return None
        return [[float(x) for x in r] for r in v]

    return Key(check, "a non-empty rectangular list of lists of finite numbers")


def _label_counts() -> Key:
    def check(v):
        if not isinstance(v, Mapping) or not v:
            return None
        out = {}
        for m, c in v.items():
            try:
                m = int(m)
            except (TypeError, ValueError):
                return None
            if m < 1 or not (isinstance(c, int) and not isinstance(c, bool) and c >= 1):
                return None
            out[str(m)] = c
        return out

    return Key(check, 'a non-empty table multiplicity -> copies, e.g. {"1" = 2, "2" = 1}')


def _lam_b() -> Key:
    num = _num(0.0)
    return Key(lambda v: "none" if isinstance(v, str) and v.lower() == "none" else num.check(v),
               "'none' (no bias), 0 (a free bias) or a finite number > 0")


_COMMON = {"family": _choice("ufm", "deep", "md", "multilabel", "regression"),
           "lam_W": _num(0.0), "lam_H": _num(0.0), "lam_b": _lam_b()}
_LOSS = {"loss": _choice(*LOSSES), "alpha": _num(0.0, 1.0), "gamma": _num(0.0)}
KEYS: dict[str, dict[str, Key]] = {
    "ufm": {**_COMMON, **_LOSS, "K": _int(2), "n": _n(), "d": _int(1), "nonneg": _bool()},
    "deep": {**_COMMON, **_LOSS, "K": _int(2), "n": _n(), "widths": _ints(1), "lam_W": _num_or_nums(0.0),
             "activation": _choice("relu", "linear"), "relu_features": _bool()},
    "md": {**_COMMON, "loss": _choice("ce", "ls", "mse"), "alpha": _LOSS["alpha"], "K": _int(2),
           "n": _int(2), "d": _int(1), "lam": _num(0.0), "eta": _num(0.0, 1.0), "noise": _matrix(),
           "variant": _choice("radius", "per_sample"), "eps": _num(0.0, lo_open=True)},
    "multilabel": {**_COMMON, "K": _int(2), "counts": _label_counts(), "Y": _matrix(), "d": _int(1)},
    "regression": {**_COMMON, "Y": _matrix(), "d": _int(1)},
}
FAMILIES = tuple(KEYS)
REQUIRED = {"ufm": ("K", "n", "d", "lam_W", "lam_H"), "deep": ("K", "n", "widths", "lam_W", "lam_H"),
            "md": ("K", "n", "d", "lam_W", "lam_H"), "multilabel": ("d", "lam_W", "lam_H"),
            "regression": ("Y", "d", "lam_W", "lam_H")}


def check_key(family: str, key: str, value: Any) -> Any:
    """``value`` of ``[problem] key`` for ``family``, normalized; a SpecError names the key, its
    valid range (or the family it belongs to) otherwise."""
    schema = KEYS[family]
    if key not in schema:
        owners = [f for f in FAMILIES if key in KEYS[f]]
        if owners:
            raise SpecError(f"{_where(key)} is not a key of family {family!r} (it belongs to "
                            f"family {' or '.join(map(repr, owners))}); remove it or set family")
        raise SpecError(f"problem.{key}: unknown key; the keys of family {family!r} are "
                        f"{', '.join(sorted(schema))}")
    out = schema[key].check(value)
    if out is None:
        raise SpecError(f"{_where(key)} must be {schema[key].doc}, got {value!r}")
    return out


def _checked(table: Mapping[str, Any]) -> tuple[str, dict]:
    family = check_key("ufm", "family", table.get("family", "ufm"))
    t = {k: check_key(family, k, v) for k, v in table.items() if k != "family"}
    for key in REQUIRED[family]:
        if key not in t:
            raise SpecError(f"{_where(key)} is required for family {family!r}: it must be "
                            f"{KEYS[family][key].doc}")
    loss = t.get("loss", "ce")
    for key, needs in (("alpha", "ls"), ("gamma", "focal")):
        if key in t and loss != needs:
            raise SpecError(f"{_where(key)} applies to loss = {needs!r} only, not {loss!r}; "
                            f"remove it or set loss = {needs!r}")
    if family == "multilabel":
        _check_label_sets(t)
    if family == "md" and "eta" in t and "noise" in t:
        raise SpecError("problem.eta (--eta) and problem.noise: give one of them, not both")
    return family, t


def _check_label_sets(t: dict) -> None:
    """Multi-label data: the targets ``Y``, or ``K`` classes with label-set ``counts``."""
    if ("Y" in t) == ("counts" in t):
        raise SpecError("family 'multilabel' needs problem.Y (a K x N 0/1 matrix) or problem.counts "
                        "(--counts, a table multiplicity -> copies) with problem.K: exactly one of them")
    if "counts" in t and "K" not in t:
        raise SpecError(f"problem.K (--K) is required with problem.counts: it must be {KEYS['multilabel']['K'].doc}")
    if "Y" in t and "K" in t and len(t["Y"]) != t["K"]:
        raise SpecError(f"problem.K (--K) = {t['K']} must equal the number of rows of problem.Y "
                        f"({len(t['Y'])}); drop K or fix Y")


def _loss(t: dict):
    name = t.get("loss", "ce")
    make: dict[str, Callable[[], Any]] = {
        "ce": CrossEntropy, "mse": MSE, "ls": lambda: LabelSmoothing(t.get("alpha", 0.1)),
        "focal": lambda: Focal(t.get("gamma", 2.0))}
    return make[name]()


def _n_arg(n):
    return tuple(n) if isinstance(n, list) else n


def _build(family: str, t: dict) -> Problem:
    lams = {"lam_W": t["lam_W"], "lam_H": t["lam_H"], "lam_b": None if t.get("lam_b", "none") == "none"
            else t["lam_b"]}
    if isinstance(lams["lam_W"], list):
        lams["lam_W"] = tuple(lams["lam_W"])
    if family == "ufm":
        return UFM(K=t["K"], n=_n_arg(t["n"]), d=t["d"], loss=_loss(t), nonneg=t.get("nonneg", False), **lams)
    if family == "deep":
        return DeepUFM(K=t["K"], n=_n_arg(t["n"]), widths=tuple(t["widths"]), loss=_loss(t),
                       activation=t.get("activation", "relu"),
                       relu_features=t.get("relu_features", False), **lams)
    if family == "md":
        noise = np.asarray(t["noise"]) if "noise" in t else None
        return MemorizationDilation(K=t["K"], n=t["n"], d=t["d"], loss=_loss(t), lam=t.get("lam", 1e-2),
                                    eta=t.get("eta"), noise=noise, variant=t.get("variant", "radius"),
                                    eps=t.get("eps", 1e-6), **lams)
    if family == "multilabel":
        Y = t["Y"] if "Y" in t else label_set_targets(t["K"], {int(m): c for m, c in t["counts"].items()})
        targets: Any = np.asarray(Y, dtype=float)  # the family checks it and keeps float64
        return MultiLabelUFM(Y=targets, d=t["d"], **lams)
    targets = np.asarray(t["Y"], dtype=float)
    return RegressionUFM(Y=targets, d=t["d"], **lams)


def build_problem(table: Mapping[str, Any]) -> Problem:
    """The problem of a ``[problem]`` table (a TOML table, or flags merged over one).

    Contract: every key is checked against the schema of ``table["family"]`` (default ``"ufm"``,
    see :data:`KEYS`) before any constructor runs; the constructor's own checks (for example
    ``d >= K`` where a family needs it) follow. ``build_problem(problem_spec(p))`` rebuilds ``p``.

    Args:
        table: the spec: ``family`` plus the family's keys (numbers, strings, booleans, lists).

    Returns:
        A :class:`ufm.UFM`, :class:`ufm.DeepUFM`, :class:`ufm.MemorizationDilation`,
        :class:`ufm.MultiLabelUFM` or :class:`ufm.RegressionUFM`.

    Raises:
        SpecError: (a ValueError) naming the key (``problem.K (--K)``) and its valid range.
    """
    if not isinstance(table, Mapping):
        raise SpecError(f"[problem] must be a table of keys, got {table!r}")
    family, t = _checked(table)
    try:
        return _build(family, t)
    except ValueError as e:
        raise SpecError(f"problem ({family}): {e}") from None


def _f(x) -> float:
    return float(np.asarray(x))


def _loss_spec(loss) -> dict:
    if isinstance(loss, LabelSmoothing):
        return {"loss": "ls", "alpha": _f(loss.alpha)}
    if isinstance(loss, Focal):
        return {"loss": "focal", "gamma": _f(loss.gamma)}
    if isinstance(loss, MSE) and loss.encoding is None:
        return {"loss": "mse"}
    if type(loss) is CrossEntropy:
        return {"loss": "ce"}
    raise ValueError(f"problem_spec: the loss {loss!r} has no spec (built-in losses only; "
                     "MSE with an encoding has none)")


def _lams_spec(prob) -> dict:
    out = {"lam_W": _f(prob.lam_W), "lam_H": _f(prob.lam_H)}
    if prob.lam_b is not None:
        out["lam_b"] = _f(prob.lam_b)
    return out


def _n_spec(n):
    return n if isinstance(n, int) else [int(c) for c in n]


def problem_spec(prob: Problem) -> dict[str, Any]:
    """A problem written as its ``[problem]`` table: the inverse of :func:`build_problem`.

    Contract: ``build_problem(problem_spec(p))`` is ``p`` (the same family, sizes, loss and
    hyper-parameters, floats written exactly), and the dict holds only what TOML and JSON carry
    (no ``None``: an absent ``lam_b`` means no bias).

    Args:
        prob: a problem of one of the families of :data:`FAMILIES`.

    Returns:
        The spec dict.

    Raises:
        ValueError: ``prob`` has no spec (another family, a custom loss, a frozen ReLU pattern).
    """
    if isinstance(prob, UFM):
        return {"family": "ufm", "K": prob.K, "n": _n_spec(prob.n), "d": prob.d, **_loss_spec(prob.loss),
                **_lams_spec(prob), "nonneg": bool(prob.nonneg)}
    if isinstance(prob, DeepUFM):
        if prob.pattern is not None or prob.smoothing is not None:
            raise ValueError("problem_spec: a DeepUFM with a frozen pattern or a smoothing has no spec")
        lam_W = np.asarray(prob.lam_W, dtype=float).reshape(-1)
        lams: dict[str, Any] = {"lam_H": _f(prob.lam_H)}
        lams["lam_W"] = float(lam_W[0]) if np.all(lam_W == lam_W[0]) else lam_W.tolist()
        if prob.lam_b is not None:
            lams["lam_b"] = _f(prob.lam_b)
        return {"family": "deep", "K": prob.K, "n": _n_spec(prob.n), "widths": list(prob.widths),
                **_loss_spec(prob.loss), **lams, "activation": prob.activation,
                "relu_features": bool(prob.relu_features)}
    if isinstance(prob, MemorizationDilation):
        noise = {"eta": float(prob.eta or 0.0)} if prob.noise is None else {
            "noise": np.asarray(prob.noise, dtype=float).tolist()}
        return {"family": "md", "K": prob.K, "n": prob.n, "d": prob.d, **_loss_spec(prob.loss),
                **_lams_spec(prob), "lam": _f(prob.lam), **noise, "variant": prob.variant,
                "eps": _f(prob.eps)}
    if isinstance(prob, (MultiLabelUFM, RegressionUFM)):
        family = "multilabel" if isinstance(prob, MultiLabelUFM) else "regression"
        return {"family": family, "Y": np.asarray(prob.Y, dtype=float).tolist(), "d": prob.d,
                **_lams_spec(prob)}
    raise ValueError(f"problem_spec: no spec for {type(prob).__name__} (families: {', '.join(FAMILIES)})")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):  # JSON's escapes are TOML's; TOML also forbids a raw DEL
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise ValueError(f"dump_toml: cannot write {v!r} ({type(v).__name__})")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(str(k))


def dump_toml(spec: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of a spec ``{table: {key: value}}`` (finite numbers, strings, booleans, lists,
    inline tables); ``tomllib.loads(dump_toml(s)) == s`` for such dicts."""
    lines = []
    for table, body in spec.items():
        lines.append(f"[{_toml_key(table)}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"
