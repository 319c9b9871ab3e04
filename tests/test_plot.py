"""Figures that work in a notebook (no forced backend, ``ax=``, a returned Figure, a file only when
asked) and the converters of results to xarray Datasets and plain tables."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ufm
import ufm.plot
from ufm.landscape import Census
from ufm.solvers import RESULTS, Trajectory
from ufm.sweeps import PHASES

_missing = [m for m in ("matplotlib", "xarray") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"needs the plot and sweeps extras ({_missing})")

ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MPLBACKEND", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_importing_ufm_plot_chooses_no_backend():
    code = ("import sys, ufm.plot; print('matplotlib' in sys.modules); import matplotlib; "
            "matplotlib.use('svg'); import numpy as np; from ufm.solvers import Trajectory, RESULTS; "
            "t = Trajectory(np.array([1., 2.]), np.array([2., 1.]), None, {'nc1': np.array([1., .5])}, "
            "None, RESULTS.successful, {}); ufm.plot.flow_metrics(t); print(matplotlib.get_backend())")
    imported, backend = _fresh(code).split()
    assert imported == "False" and backend == "svg"


def _traj(S=5, params=None, seed=0):
    rng = np.random.default_rng(seed)
    t = np.geomspace(1e-2, 10.0, S)
    return Trajectory(times=t, values=np.sort(rng.random(S))[::-1], params=params,
                      metrics={"nc1": rng.random(S), "nc3": rng.random(S)}, final=None,
                      result=RESULTS.successful, stats={"num_steps": 7, "dt": None})


def _sweep_ds():
    import xarray as xr

    lw = np.geomspace(1e-3, 1.0, 4)
    phase = np.array([[1], [1], [0], [0]])
    return xr.Dataset({"phase": (("lam_W", "seed"), phase),
                       "disagree": (("lam_W", "seed"), np.array([[False], [True], [False], [False]]))},
                      coords={"lam_W": lw, "seed": [0]}, attrs={"problem": "UFM(...)"})


def _draw(kind, ax, path=None):
    if kind == "flow":
        return ufm.plot.flow_metrics(_traj(), path, ax=ax)
    if kind == "spectra":
        prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2)
        return ufm.plot.spectra(prob.init(__import__("jax").random.PRNGKey(0)), prob.labels, path, ax=ax)
    return ufm.plot.phase_diagram(_sweep_ds(), path, ax=ax, thresholds={"lam_W": 0.05})


@pytest.mark.parametrize("kind", ["flow", "spectra", "phase"])
def test_each_function_draws_into_the_given_axes_and_writes_nothing(kind, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    fig, ax = plt.subplots()
    n_before = len(ax.get_lines()) + len(ax.collections)
    out = _draw(kind, ax)
    assert out is fig
    assert len(ax.get_lines()) + len(ax.collections) > n_before  # it drew there
    assert list(tmp_path.iterdir()) == []  # no path, no file
    plt.close(fig)


@pytest.mark.parametrize("kind", ["flow", "spectra", "phase"])
def test_without_ax_a_new_figure_and_a_file_only_when_asked(kind, tmp_path):
    from matplotlib.figure import Figure

    fig = _draw(kind, None)
    assert isinstance(fig, Figure) and fig.axes
    png = tmp_path / "out.png"
    fig2 = _draw(kind, None, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ufm.plot.close(fig)
    ufm.plot.close(fig2)


def test_flow_metrics_on_two_axes_draws_objective_and_metrics():
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2)
    traj = _traj()
    ufm.plot.flow_metrics(traj, ax=(a1, a2))
    assert len(a1.get_lines()) == 1 and len(a2.get_lines()) == len(traj.metrics)
    # the objective panel shows f - min f at the recorded times
    x, y = a1.get_lines()[0].get_data()
    np.testing.assert_allclose(x, traj.times, rtol=0, atol=0)
    np.testing.assert_allclose(y, traj.values - traj.values.min() + 1e-16, rtol=1e-15, atol=1e-15)
    plt.close(fig)


# ---- converters ----------------------------------------------------------------------------------

@given(st.integers(1, 6), st.integers(0, 10_000))
@settings(max_examples=10)
def test_trajectory_dataset_keeps_every_recorded_value(S, seed):
    rng = np.random.default_rng(seed)
    params = ufm.Params(W=rng.random((S, 3, 4)), H=rng.random((S, 4, 6)), b=None)
    traj = _traj(S, params, seed)
    ds = ufm.plot.trajectory_dataset(traj)
    np.testing.assert_array_equal(ds["time"].values, traj.times)
    np.testing.assert_array_equal(ds["value"].values, traj.values)
    for k, v in traj.metrics.items():
        np.testing.assert_array_equal(ds[k].values, v)
    np.testing.assert_array_equal(ds["param_W"].values, params.W)
    assert ds["param_H"].dims[0] == "time" and "param_b" not in ds
    assert ds.attrs["result"] == "successful" and ds.attrs["num_steps"] == 7
    assert len(ds.to_dataframe()) >= S  # a table for any plotting tool


def test_trajectory_dataset_of_a_real_flow():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
    traj = ufm.gradient_flow(prob, t1=5.0, saveat=ufm.SaveAt(ts=np.linspace(0.0, 5.0, 4)), metrics=("nc1",))
    ds = ufm.plot.trajectory_dataset(traj)
    assert ds.sizes["time"] == 4 and ds["param_W"].shape == (4, 3, 4)
    np.testing.assert_allclose(ds["value"].values, np.asarray(traj.values), rtol=0, atol=0)


@given(st.integers(1, 8).flatmap(lambda S: st.tuples(
    hnp.arrays(float, S, elements=st.floats(-5, 5)), hnp.arrays(np.int64, S, elements=st.integers(0, 3)),
    st.lists(st.sampled_from(["minimum", "saddle", "degenerate"]), min_size=S, max_size=S))))
@settings(max_examples=10)
def test_census_dataset_keeps_every_start(arrays):
    value, index, kind = arrays
    S = value.size
    c = Census(init_scale=np.full(S, np.nan), value=value, kkt=np.abs(value) * 1e-12, min_eig=value,
               index=index, kind=np.asarray(kind), gap=np.full(S, np.nan), is_global=np.zeros(S, bool),
               f_best=float(value.min()), seconds=1.0, mode="map")
    ds = ufm.plot.census_dataset(c)
    assert ds.sizes["start"] == S
    np.testing.assert_array_equal(ds["value"].values, value)
    np.testing.assert_array_equal(ds["index"].values, index)
    assert list(ds["kind"].values) == list(kind)
    assert ds.attrs["f_best"] == float(value.min()) and ds.attrs["mode"] == "map"


records = st.lists(st.fixed_dictionaries({
    "theorem": st.text("abc", min_size=1, max_size=4),
    "source": st.fixed_dictionaries({"authors": st.text("xy", max_size=3), "year": st.integers(1990, 2030)}),
    "instance": st.text("UFM(K=3)", max_size=8),
    "quantity": st.sampled_from(["value", "gram"]),
    "predicted": st.floats(-1e3, 1e3) | hnp.arrays(float, (2, 2), elements=st.floats(-1, 1))
    | hnp.arrays(float, (1,), elements=st.floats(-1, 1)),
    "measured": st.floats(-1e3, 1e3),
    "rel_error": st.floats(0, 1),
    "passed": st.booleans(),
}), min_size=1, max_size=5)


@given(records)
@settings(max_examples=15)
def test_verify_table_is_flat_and_keeps_the_scalars(recs):
    rows = ufm.plot.verify_table(recs)
    assert len(rows) == len(recs) and all(list(r) == list(recs[0]) for r in rows)
    for r, rec in zip(rows, recs):
        assert all(v is None or isinstance(v, (bool, int, float, str)) for v in r.values())
        assert r["measured"] == rec["measured"] and r["passed"] == rec["passed"]
        p = np.asarray(rec["predicted"])
        if p.size == 1:
            assert r["predicted"] == float(p.reshape(()))
        else:
            assert isinstance(r["predicted"], str)
    ds = ufm.plot.verify_dataset(recs)
    assert ds.sizes["check"] == len(recs) and ds["passed"].dtype == bool
    np.testing.assert_array_equal(ds["rel_error"].values, [r["rel_error"] for r in recs])
    for i, rec in enumerate(recs):  # a number where the entry is one, NaN where it is a matrix
        p = np.asarray(rec["predicted"], dtype=float)
        got = float(ds["predicted"].values[i])
        assert got == float(p.reshape(())) if p.size == 1 else np.isnan(got)


@pytest.mark.slow  # about 18 s on a warm 2-core machine: a real catalog check compiles a solve
def test_verify_converters_on_real_records():
    from proofs_check import verify
    from proofs_check.catalog import zhu2021

    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    small = zhu2021.CE_ETF.__class__(**{**zhu2021.CE_ETF.__dict__, "instances": lambda: [prob]})
    rows = verify.run([small], prove=False)
    table = ufm.plot.verify_table(rows)
    ds = ufm.plot.verify_dataset(rows)
    assert [r["quantity"] for r in table] == [r["quantity"] for r in rows]
    np.testing.assert_array_equal(ds["rel_error"].values, [r["rel_error"] for r in rows])
    assert ds["passed"].values.tolist() == [r["passed"] for r in rows]
    value = [i for i, r in enumerate(rows) if r["quantity"] == "value"][0]
    assert ds["predicted"].values[value] == rows[value]["predicted"]
