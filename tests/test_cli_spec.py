"""Problem specs on the command line: every family round-trips through its spec (JSON and TOML),
and every bad spec ends in one line naming the key and its valid range, exit 2, before any solve."""

import contextlib
import io
import json
import math
import tomllib
from unittest import mock

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ufm
from ufm.cli import main
from ufm.cli._commands import _flow_parser, _solve_parser
from ufm.cli._families import KEYS, REQUIRED, SpecError, build_problem, dump_toml, problem_spec
from ufm.cli._spec import FLOW_KEYS, SOLVE_KEYS, problem_from

lams = st.floats(1e-4, 1.0)


@st.composite
def specs(draw, family=None):
    """A valid ``[problem]`` table of a random family (small sizes)."""
    family = family or draw(st.sampled_from(sorted(KEYS)))
    K = draw(st.integers(2, 4))
    t = {"family": family, "lam_W": draw(lams), "lam_H": draw(lams)}
    if draw(st.booleans()):
        t["lam_b"] = draw(st.sampled_from([0.0, 1e-3, 0.5]))
    loss = draw(st.sampled_from(["ce", "ls", "focal", "mse"] if family != "md" else ["ce", "ls", "mse"]))
    loss_keys = {"loss": loss}
    if loss == "ls":
        loss_keys["alpha"] = draw(st.floats(0.0, 0.9))
    if loss == "focal":
        loss_keys["gamma"] = draw(st.floats(0.0, 4.0))
    n = draw(st.integers(1, 3) | st.lists(st.integers(1, 3), min_size=K, max_size=K))
    if family == "ufm":
        t.update(K=K, n=n, d=draw(st.integers(1, 6)), nonneg=draw(st.booleans()), **loss_keys)
    elif family == "deep":
        L = draw(st.integers(1, 3))
        lam_W = draw(lams | st.lists(lams, min_size=L, max_size=L))
        t.update(K=K, n=n, widths=draw(st.lists(st.integers(1, 5), min_size=L, max_size=L)),
                 activation=draw(st.sampled_from(["relu", "linear"])), lam_W=lam_W,
                 relu_features=draw(st.booleans()), **loss_keys)
    elif family == "md":
        n = draw(st.integers(4, 6))
        t.update(K=K, n=n, d=draw(st.integers(1, 5)), lam=draw(lams), eta=draw(st.floats(0.0, 0.25)),
                 variant=draw(st.sampled_from(["radius", "per_sample"])), **loss_keys)
    elif family == "multilabel":
        t.update(K=K, counts={"1": draw(st.integers(1, 2)), "2": draw(st.integers(1, 2))},
                 d=draw(st.integers(1, 5)))
    else:
        D, N = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        Y = draw(st.lists(st.lists(st.floats(-3, 3), min_size=N, max_size=N), min_size=D, max_size=D))
        t.update(Y=Y, d=draw(st.integers(1, 4)))
    return t


def _objective(prob, params) -> float:
    return float(jax.jit(lambda p, x: p.objective(x))(prob, params))  # one compile, not op by op


def _objective_at_a_point(prob, seed=0):
    params = prob.init(jax.random.PRNGKey(seed))
    return _objective(prob, params), params


@given(specs())
@settings(max_examples=30)
def test_every_family_round_trips_through_its_spec(table):
    prob = build_problem(table)
    spec = problem_spec(prob)
    assert spec["family"] == table["family"]
    via_json = json.loads(json.dumps(spec))
    via_toml = tomllib.loads(dump_toml({"problem": spec}))["problem"]
    assert via_json == spec and via_toml == spec
    again = build_problem(via_toml)
    assert type(again) is type(prob) and problem_spec(again) == spec


@given(specs())
@settings(max_examples=6)
def test_the_rebuilt_problem_has_the_same_objective(table):
    prob = build_problem(table)
    again = build_problem(json.loads(json.dumps(problem_spec(prob))))
    f, params = _objective_at_a_point(prob)  # equal values at the same point
    assert np.isclose(_objective(again, params), f, rtol=1e-12, atol=1e-14)


@given(st.sampled_from(sorted(KEYS)).flatmap(lambda f: specs(f)))
@settings(max_examples=10)
def test_a_spec_holds_only_what_toml_and_json_carry(table):
    spec = problem_spec(build_problem(table))

    def plain(v):
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))

    assert plain(spec)


# ---- bad specs, fuzzed -------------------------------------------------------------------------

_BASE = {"ufm": {"K": 3, "n": 2, "d": 4, "lam_W": 5e-3, "lam_H": 5e-3},
         "deep": {"family": "deep", "K": 3, "n": 2, "widths": [4, 4], "lam_W": 5e-3, "lam_H": 5e-3},
         "md": {"family": "md", "K": 3, "n": 4, "d": 4, "lam_W": 5e-3, "lam_H": 5e-3},
         "multilabel": {"family": "multilabel", "K": 3, "counts": {"1": 1}, "d": 4, "lam_W": 5e-3,
                        "lam_H": 5e-3},
         "regression": {"family": "regression", "Y": [[1.0, 2.0]], "d": 2, "lam_W": 5e-3, "lam_H": 5e-3}}

# values no key of any family accepts (each key's check rejects them)
_NEVER = [float("nan"), float("inf"), -float("inf"), -1, -0.5, "", "x", [], {}, [[]], [1, "a"],
          {"0": 1}, True]
_anything = st.one_of(
    st.sampled_from(_NEVER), st.floats(), st.integers(-10**6, 10**6), st.text(max_size=4), st.booleans(),
    st.lists(st.integers(-3, 3) | st.floats(), max_size=3),
    st.lists(st.lists(st.floats(-2, 2) | st.text(max_size=1), max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(-2, 2), max_size=2))
_OWN = {k: f for f in KEYS for k in KEYS[f]}


@st.composite
def bad_problem_tables(draw):
    """``(table, key, words)``: a base table with one key made invalid; ``words`` must appear in
    the error (the key, and its valid range or the family it belongs to)."""
    family = draw(st.sampled_from(sorted(_BASE)))
    table = dict(_BASE[family])
    kind = draw(st.sampled_from(["unknown", "bad_value", "other_family", "missing"]))
    schema = KEYS[family]
    if kind == "unknown":
        key = draw(st.text("abcxyz_", min_size=1, max_size=8).filter(lambda k: k not in _OWN))
        table[key] = draw(st.integers() | st.text(max_size=3))
        return table, key, ["unknown key"]
    if kind == "other_family":
        key = draw(st.sampled_from(sorted(k for k in _OWN if k not in schema)))
        table[key] = 1
        return table, key, ["not a key of family"]
    if kind == "missing":
        key = draw(st.sampled_from(REQUIRED[family]))
        del table[key]
        return table, key, ["is required", schema[key].doc]
    key = draw(st.sampled_from(sorted(k for k in schema if k != "family")))
    value = draw(_anything.filter(lambda v: schema[key].check(v) is None))
    table[key] = value
    return table, key, [schema[key].doc]


def _no_solve(*a, **k):
    raise AssertionError("a bad spec reached the solver")


def _run_spec(tmp_path_factory, command, spec):
    path = tmp_path_factory.mktemp("spec") / "spec.toml"
    path.write_text(dump_toml(spec))
    err = io.StringIO()
    with mock.patch("ufm.cli._commands.minimize", _no_solve), \
         mock.patch("ufm.cli._commands.gradient_flow", _no_solve), contextlib.redirect_stderr(err):
        code = main([command, str(path)])
    return code, err.getvalue()


@given(bad_problem_tables(), st.sampled_from(["solve", "flow"]))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bad_problem_specs_end_in_one_line_naming_the_key(tmp_path_factory, bad, command):
    table, key, words = bad
    code, err = _run_spec(tmp_path_factory, command, {"problem": table})
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err  # one line
    assert key in err and all(w in err for w in words), err
    assert "Traceback" not in err


@st.composite
def bad_option_tables(draw):
    command = draw(st.sampled_from(["solve", "flow"]))
    keys = SOLVE_KEYS if command == "solve" else FLOW_KEYS
    if draw(st.booleans()):
        key = draw(st.text("qrstuvw", min_size=1, max_size=6).filter(lambda k: k not in keys))
        return command, {key: 1}, key, ["unknown key"]
    key = draw(st.sampled_from(sorted(keys)))
    value = draw((_anything | st.sampled_from([0, 0.0, -1e-300, 1.5, "nc9", ["nc9"], 1e30]))
                 .filter(lambda v: keys[key].check(v) is None))
    return command, {key: value}, key, [keys[key].doc]


@given(bad_option_tables())
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bad_solve_and_flow_tables_end_in_one_line_naming_the_key(tmp_path_factory, bad):
    command, body, key, words = bad
    code, err = _run_spec(tmp_path_factory, command, {"problem": _BASE["ufm"], command: body})
    assert code == 2, err
    assert err.count("\n") == 1 and key in err and all(w in err for w in words), err


@pytest.mark.parametrize("spec, named", [
    ({"problem": _BASE["ufm"], "problme": {"K": 3}}, "[problme]"),
    ({"problem": {**_BASE["ufm"], "alpha": 0.1}}, "alpha"),  # alpha belongs to loss = "ls"
    ({"problem": {**_BASE["ufm"], "loss": "focal", "alpha": 0.1}}, "alpha"),
    ({"problem": {**_BASE["ufm"], "n": [2, 2]}}, "n"),  # K counts needed
    ({"problem": {**_BASE["ufm"], "d": 4.5}}, "problem.d"),
    ({"problem": {**_BASE["ufm"], "family": "ufn"}}, "family"),
    ({"problem": {**_BASE["deep"], "widths": []}}, "widths"),
    ({"problem": {**_BASE["md"], "eta": 0.1, "noise": [[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]}}, "eta"),
    ({"problem": {**_BASE["regression"], "Y": [[1.0], [2.0, 3.0]]}}, "Y"),
    ({"problem": {**_BASE["multilabel"], "Y": [[1.0, 0.0], [0.0, 1.0]]}}, "exactly one"),
    ({"problem": {k: v for k, v in _BASE["multilabel"].items() if k != "K"}}, "problem.K (--K) is required"),
    ({"problem": {**{k: v for k, v in _BASE["multilabel"].items() if k != "counts"},
                  "Y": [[1.0, 0.0], [0.0, 1.0]]}}, "number of rows"),
    ({"problem": _BASE["ufm"], "flow": {"t1": -10.0}}, "t1"),  # the interval [0, t1] reversed
    ({"problem": _BASE["ufm"], "flow": {"momentum": 0.5}}, "--dt"),
    ({"problem": _BASE["ufm"], "flow": {"dt": 2.0, "t1": 1.0}}, "must be <= flow.t1"),
])
def test_named_bad_specs(tmp_path_factory, spec, named):
    for command in ("solve", "flow") if "flow" not in spec else ("flow",):
        code, err = _run_spec(tmp_path_factory, command, spec)
        assert code == 2 and err.count("\n") == 1 and named in err, err


def test_invalid_toml_and_missing_file_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[problem\nK = 3\n")
    assert main(["solve", str(bad)]) == 2
    assert main(["solve", str(tmp_path / "missing.toml")]) == 2
    bad.write_text("problem = 3\n")
    assert main(["solve", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "not valid TOML" in err[0] and "cannot read" in err[1]
    assert "[problem] must be a table" in err[2]


# ---- flags over the spec -----------------------------------------------------------------------

def test_booleans_switch_both_ways_over_the_spec(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(dump_toml({"problem": {**_BASE["ufm"], "nonneg": True}}))
    on, _ = problem_from(_solve_parser().parse_args([str(path)]))
    off, _ = problem_from(_solve_parser().parse_args([str(path), "--no-nonneg"]))
    assert on.nonneg and not off.nonneg
    plain, _ = problem_from(_flow_parser().parse_args([*_flags(_BASE["ufm"]), "--nonneg"]))
    assert plain.nonneg
    deep = {**_BASE["deep"], "relu_features": True}
    path.write_text(dump_toml({"problem": deep}))
    p, _ = problem_from(_solve_parser().parse_args([str(path), "--no-relu-features"]))
    assert isinstance(p, ufm.DeepUFM) and not p.relu_features


def _flags(table):
    out = []
    for k, v in table.items():
        out += [f"--{k.replace('_', '-')}", ",".join(map(str, v)) if isinstance(v, list) else str(v)]
    return out


@given(specs(family="ufm") | specs(family="deep") | specs(family="md"))
@settings(max_examples=15)
def test_flags_build_the_same_problem_as_the_spec(table):
    table = {k: v for k, v in table.items() if not isinstance(v, bool)}
    flags = _flags({k: v for k, v in table.items()})
    prob, _ = problem_from(_solve_parser().parse_args(flags))
    assert problem_spec(prob) == problem_spec(build_problem(table))


def test_spec_error_is_a_value_error():
    with pytest.raises(ValueError, match="lam_W"):
        build_problem({"K": 3, "n": 2, "d": 4, "lam_W": -1.0, "lam_H": 1e-3})
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize("command", ["solve", "flow"])
def test_json_records_the_problem_as_its_spec(command, tmp_path, capsys):
    """``--json`` writes the problem as a spec a user can put back in a TOML file."""
    table = {"family": "regression", "Y": [[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]], "d": 2, "lam_W": 1e-2,
             "lam_H": 1e-2, "lam_b": 0.0}
    path = tmp_path / "s.toml"
    path.write_text(dump_toml({"problem": table, "flow": {"t1": 1.0, "points": 2}}))
    assert main([command, str(path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    back = tmp_path / "back.toml"
    back.write_text(dump_toml({"problem": rec["problem"]}))
    prob, _ = problem_from(_solve_parser().parse_args([str(back)]))
    assert problem_spec(prob) == problem_spec(build_problem(table)) == rec["problem"]


_scalars = st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.dictionaries(
    st.text(min_size=1, max_size=5), _scalars | st.lists(_scalars.filter(lambda v: not isinstance(v, str)),
                                                          max_size=3)
    | st.dictionaries(st.text(min_size=1, max_size=3), _scalars, max_size=2), max_size=4), max_size=3))
@settings(max_examples=50)
def test_dump_toml_round_trips(spec):
    assert tomllib.loads(dump_toml(spec)) == spec
