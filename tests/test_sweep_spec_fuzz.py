"""Bad ``[sweep]`` specs, fuzzed: every one ends in one line naming the key and its valid range,
exit status 2, before any solve, and nothing stored is touched (a store that does not exist is
not created; a finished store keeps every byte)."""

import contextlib
import hashlib
import io
import pathlib
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ufm
from ufm.cli import main
from ufm.cli._families import dump_toml
from ufm.cli._sweep import SWEEP_KEYS
from ufm.sweeps import MAX_POINTS, sweep

PROBLEM = {"K": 3, "n": 2, "d": 4, "lam_W": 5e-3, "lam_H": 5e-3}  # CE, no bias
GRID = {"lam_W": {"log": [1e-3, 1e-1, 3]}}
NAN, INF = float("nan"), float("inf")

# fields no grid of PROBLEM may name: another family's or loss's fields, a bias the problem does
# not have, words that are not fields (the sizes K, n, d are sweepable, with sizes as values)
NOT_SWEEPABLE = ["loss", "loss.alpha", "loss.gamma", "lam_b", "lam", "eta", "nonneg",
                 "lam_w", "lamW", "lam_W.x"]
NOT_NUMBERS = ["x", "", [True], [1.0, False], ["1e-3"], [[1e-3, 1e-2]], {"exp": [1e-3, 1e-1, 3]},
               {"log": "1e-3:1e-1:3"}, {"log": [1e-3, 1e-1]}, {"log": [1e-3, "a", 3]},
               {"log": [1e-3, 1e-1, 3], "lin": [0, 1, 2]}, {"lin": [0.1, 0.2, True]}, {"log": {}}]


def _no_solve(*a, **k):
    raise AssertionError("a bad spec reached the solver")


@st.composite
def bad_sweep_tables(draw):
    """``(sweep table, words)``: the words the one-line error must contain (the key, and its valid
    range or what is wrong)."""
    table = {"grid": dict(GRID)}
    kind = draw(st.sampled_from(["unknown", "grid_type", "field", "size", "values", "empty", "reversed",
                                 "nonfinite", "huge", "range", "count", "store", "boundary",
                                 "certify", "both_names"]))
    if kind == "unknown":
        key = draw(st.text("abcxyz_", min_size=1, max_size=8).filter(lambda k: k not in SWEEP_KEYS))
        table[key] = draw(st.integers() | st.text(max_size=3))
        return table, [key, "unknown key"]
    if kind == "grid_type":
        table["grid"] = draw(st.sampled_from([1, 1.5, "lam_W=log:1e-3:1:3", True, [1e-3, 1e-2], []]))
        return table, ["grid", "table"]
    if kind == "field":
        field = draw(st.sampled_from(NOT_SWEEPABLE) | st.text("pqrs", min_size=1, max_size=4))
        table["grid"] = {field: [1e-3, 1e-2]}
        return table, [repr(field), "cannot be swept", "sweepable fields"]
    if kind == "size":
        field, values = draw(st.sampled_from([("K", [1, 3]), ("K", [1e-3, 1e-2]), ("d", [0, 2]),
                                              ("n", [2.5, 3]), ("K", [2, -4])]))
        table["grid"] = {field: values}
        return table, [repr(field), "whole numbers", "a size"]
    key = "lam_W"
    if kind == "values":
        table["grid"] = {key: draw(st.sampled_from(NOT_NUMBERS))}
        return table, [f"grid['{key}']"]
    if kind == "empty":
        table["grid"] = {key: draw(st.sampled_from([[], {"log": [1e-3, 1e-1, 0]}, {"lin": [0, 1, -2]},
                                                    {"lin": [0.0, 1.0, 2.5]}, {"log": [1e-3, 1e-1, 1.0e300]}]))}
        return table, [f"grid['{key}']"]
    if kind == "reversed":
        lo, hi = sorted(draw(st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=2, unique=True)))
        num = draw(st.integers(2, 50))
        table["grid"] = {key: {draw(st.sampled_from(["log", "lin"])): [hi, lo, num]}}
        return table, [f"grid['{key}']", "lo < hi"]
    if kind == "nonfinite":
        bad = draw(st.sampled_from([NAN, INF, -INF]))
        table["grid"] = {key: draw(st.sampled_from([[bad], [1e-3, bad], {"lin": [0.0, bad, 3]},
                                                    {"log": [bad, 1.0, 3]}]))}
        return table, [f"grid['{key}']", "finite"]
    if kind == "huge":
        side = draw(st.integers(10**4 + 1, 10**9))
        table["grid"] = {key: {"log": [1e-3, 1.0, side]}, "lam_H": {"log": [1e-3, 1.0, side]}}
        return table, ["grid", f"{MAX_POINTS:.0e}"]
    if kind == "range":  # weight decays are >= 0
        table["grid"] = {key: [1e-3, -draw(st.floats(1e-9, 1e3))]}
        return table, [f"grid['{key}']", "out of range"]
    if kind == "count":
        key = draw(st.sampled_from(["starts", "chunk"]))
        table[key] = draw(st.sampled_from([0, -1, 1.5, "2", True, [], 10**12]))
        return table, [key]
    if kind == "store":
        table["store"] = draw(st.sampled_from([1, 2.5, True, [], {"path": "x"}, "", "  "]))
        return table, ["store", "path or an fsspec URL"]
    if kind == "boundary":
        table["boundary"] = draw(st.sampled_from([
            "lam_W:1e-3:1", [1], ["lam_W"], ["lam_W:a:b"], ["lam_W:1e-3:nan"], ["lam_W:1:1e-3"],
            ["lam_W:1e-3:1:2"], ["K:1:2"], ["loss.alpha:0:0.5"]]))
        return table, ["boundary"]
    if kind == "certify":
        table["certify"] = draw(st.sampled_from(["globl", "", 1, ["auto"], True]))
        return table, ["certify", "auto, global or local"]
    table["seeds"], table["starts"] = 2, 2  # both names of one key
    return table, ["starts"]


def _tree_digest(path: pathlib.Path) -> dict[str, str]:
    return {f.relative_to(path).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def _run(spec_dir: pathlib.Path, table: dict) -> tuple[int, str]:
    path = spec_dir / "spec.toml"
    path.write_text(dump_toml({"problem": PROBLEM, "sweep": table}))
    err = io.StringIO()
    with mock.patch("ufm.sweeps._driver.solve_points", _no_solve), \
         mock.patch("ufm.sweeps._driver.solve_groups", _no_solve), \
         mock.patch("ufm.cli._sweep.locate_boundary", _no_solve), contextlib.redirect_stderr(err):
        code = main(["sweep", str(path), "--no-progress"])
    return code, err.getvalue()


@given(bad_sweep_tables())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bad_sweep_specs_end_in_one_line_before_any_store(tmp_path_factory, bad):
    table, words = bad
    spec_dir = tmp_path_factory.mktemp("spec")
    store = spec_dir / "s.zarr"
    if "store" not in table:
        table = {**table, "store": str(store)}
    code, err = _run(spec_dir, table)
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    assert all(w in err for w in words), (words, err)
    assert not store.exists(), "a bad spec created the store"


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A finished 3-point store, and the digest of every file in it."""
    path = tmp_path_factory.mktemp("finished") / "s.zarr"
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    ds = sweep(prob, {"lam_W": [1e-3, 1e-2, 1e-1]}, store=path, chunk=3)
    assert bool(ds.done.all())
    return path, _tree_digest(path)


@pytest.mark.parametrize("table, words", [
    ({"grid": {"lam_W": {"log": [1e-1, 1e-3, 3]}}}, ["lo < hi"]),
    ({"grid": {"lam_W": [1e-3, NAN]}}, ["finite"]),
    ({"grid": {"K": [1, 3]}}, ["'K'", "size"]),
    ({"grid": {"lam_W": [1e-3, 1e-2, 1e-1]}, "chunk": 0}, ["chunk"]),
    ({"grid": {"lam_W": [1e-3, 1e-2, 1e-1]}, "boundary": ["lam_W:1:1e-3"]}, ["boundary"]),
    ({"grid": {"lam_W": [1e-3, 1e-2, 1e-1]}, "certfy": "auto"}, ["certfy"]),
])
def test_a_bad_spec_leaves_a_finished_store_byte_for_byte(finished_store, tmp_path, table, words):
    path, before = finished_store
    code, err = _run(tmp_path, {**table, "store": str(path)})
    assert code == 2 and err.count("\n") == 1 and all(w in err for w in words), err
    assert _tree_digest(path) == before


@pytest.mark.parametrize("flag, words", [
    ("lam_W=log:1e-1:1e-3:5", ["lo < hi"]),
    ("lam_W=log:1e-3:1e-1:2.5", ["whole number"]),
    ("lam_W=lin:0:inf:3", ["finite"]),
    ("lam_W=log:1e-3:1e-1:1000000000000", [f"{MAX_POINTS:.0e}"]),
    ("lam_W", ["--grid must look like"]),
])
def test_bad_grid_flags_are_one_line(tmp_path, flag, words):
    err = io.StringIO()
    with mock.patch("ufm.sweeps._driver.solve_points", _no_solve), contextlib.redirect_stderr(err):
        code = main(["sweep", "--K", "3", "--n", "2", "--d", "4", "--lam-W", "5e-3", "--lam-H", "5e-3",
                     "--grid", flag, "--store", str(tmp_path / "s.zarr"), "--no-progress"])
    assert code == 2 and err.getvalue().count("\n") == 1, err.getvalue()
    assert all(w in err.getvalue() for w in words), err.getvalue()
    assert not (tmp_path / "s.zarr").exists()


def test_the_grid_limit_is_checked_before_any_value_is_made():
    """A 10^12-point axis is refused from its count, not after allocating it (which would need
    8 TB)."""
    with pytest.raises(ValueError, match=r"num must be in \[1, 1e\+08\]"):
        ufm.sweeps.parse_grid(ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3),
                              {"lam_W": {"log": [1e-3, 1.0, 10**12]}})
