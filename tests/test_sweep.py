"""ufm.sweeps: grids, the chunk kernel, the resumable store, Dask, the atlas and boundaries."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm

for _extra in ("xarray", "zarr", "tqdm"):  # the sweeps extra
    pytest.importorskip(_extra)
from proofs_check import closed_forms as cf
from proofs_check.boundaries import catalog_thresholds, compare
from ufm import geometry
from ufm.sweeps import _phases
from ufm.sweeps import locate_boundary, open_sweep, parse_grid, snake_order, sweep
from ufm.sweeps._grid import replace_path
from tests.helpers import examples

CE = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
# kappa = sqrt(n lam_W lam_H) = 1/K at lam_W = 1/(K^2 n lam_H)
CE_ZERO_AT = 1.0 / (CE.K**2 * CE.n * float(CE.lam_H))
GRID = {"lam_W": [1e-3, 1e-2, 0.1, 0.5 * CE_ZERO_AT, 2.0 * CE_ZERO_AT, 4.0 * CE_ZERO_AT]}
CHUNK = 3  # one compiled kernel shape for every sweep in this file


@pytest.fixture
def no_solve(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a solve ran")

    monkeypatch.setattr("ufm.sweeps._kernel.solve_chunk", boom)


@pytest.mark.parametrize(
    "grid, field",
    [
        ({"lam_X": [1.0]}, "lam_X"),
        ({"K": [1, 3]}, "K"),
        ({"lam_W": []}, "lam_W"),
        ({"lam_W": {"log": [1e-3, 1e-1, 0]}}, "lam_W"),
        ({"lam_W": [1e-3, -1.0]}, "lam_W"),
        ({"lam_H": [np.nan]}, "lam_H"),
        ({"lam_b": [0.1]}, "lam_b"),
        ({"loss.alpha": [0.1]}, "loss.alpha"),
        ({"lam_W": [1e-3, 1e-3]}, "lam_W"),
    ],
)
def test_bad_grid_fails_before_any_solve_naming_the_field(grid, field, no_solve, tmp_path):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        sweep(CE, grid, store=tmp_path / "s.zarr")


def test_out_of_range_nested_field(no_solve):
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(0.1), lam_W=5e-3, lam_H=5e-3)
    assert parse_grid(prob, {"loss.alpha": [0.0, 0.5]})["loss.alpha"].tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match=r"loss\.alpha.*out of range"):
        parse_grid(prob, {"loss.alpha": [0.5, 1.5]})
    with pytest.raises(ValueError, match="grid must be a non-empty"):
        parse_grid(prob, {})


def test_sweep_matches_minimize_and_closed_form(tmp_path):
    ds = sweep(CE, GRID, starts=1, store=tmp_path / "s.zarr", chunk=CHUNK)
    assert ds.value.dims == ("lam_W", "seed")
    assert bool(ds.done.all()) and bool(ds.converged.all())
    assert ds.attrs["ufm_version"] == ufm.__version__ and "UFM(" in ds.attrs["problem"]
    for i, lw in enumerate(GRID["lam_W"]):
        prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=5e-3)
        ref = ufm.minimize(prob, seed=0)  # what a user's loop computes, default arguments
        np.testing.assert_allclose(float(ds.value[i, 0]), ref.value, rtol=1e-9, atol=1e-12)
        if i % CHUNK == 0:  # no neighbour: the run is the random start of minimize(seed=0)
            np.testing.assert_allclose(float(ds.value_random[i, 0]), ref.value, rtol=1e-9)
        pred = cf.ce_family(prob).quantities
        np.testing.assert_allclose(float(ds.value[i, 0]), pred["value"], rtol=1e-9)
        kappa = np.sqrt(prob.n * lw * 5e-3)
        assert str(ds.phase_name[i, 0].item()) == ("simplex_etf" if kappa < 1 / prob.K else "zero")
    # the first point of a chunk has no neighbour; the others were also solved from one
    first = np.arange(len(GRID["lam_W"])) % CHUNK == 0
    warm = ds.value_warm.values[:, 0]
    assert np.isnan(warm[first]).all() and np.isfinite(warm[~first]).all()
    # CE has a proven lower bound: every point is a first-order point with a closed global gap
    value, gap = ds.value.values, ds.global_gap.values
    assert (ds.order.values == 1).all() and bool(ds.global_ok.all())
    assert np.all(gap <= 1e-10 * np.maximum(1.0, np.abs(value)))
    assert np.isnan(ds.min_eig.values).all()  # not computed: the global certificate is stronger
    _check_skip_property(ds)
    assert not bool(ds.disagree.any())


def test_two_axis_grid_lands_every_point_in_place():
    """Points run in the reflected (snake) order; open_sweep puts each back at its grid place."""
    lws, lhs = [1e-3, 0.5 * CE_ZERO_AT, 3.0 * CE_ZERO_AT], [5e-3, 2e-3]
    ds = sweep(CE, {"lam_W": lws, "lam_H": lhs}, chunk=CHUNK)
    assert ds.value.dims == ("lam_W", "lam_H", "seed") and bool(ds.converged.all())
    for i, lw in enumerate(lws):
        for j, lh in enumerate(lhs):
            prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh)
            np.testing.assert_allclose(float(ds.value[i, j, 0]), cf.ce_family(prob).quantities["value"],
                                       rtol=1e-9)
    # storage order (0,0) (0,1) (1,1) | (1,0) (2,0) (2,1): the second row runs right to left, so
    # (1,1) is warm-started from (0,1); only the chunk starts (0,0) and (1,0) have no neighbour
    no_warm = np.isnan(ds.value_warm.values[..., 0])
    np.testing.assert_array_equal(no_warm, [[True, False], [True, False], [False, False]])


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4))
@settings(max_examples=examples(30), deadline=None)
def test_snake_order_is_a_path_of_grid_neighbours(shape):
    order = snake_order(shape)
    assert sorted(order.tolist()) == list(range(int(np.prod(shape))))
    digits = np.array(np.unravel_index(order, shape)).T
    assert np.all(np.abs(np.diff(digits, axis=0)).sum(axis=1) == 1)


def _check_skip_property(ds):
    """The random start is skipped only where the kept warm run closed the global gap."""
    skipped = ds.random_skipped.values
    assert np.all(ds.global_ok.values[skipped]) and np.all(ds.warm_won.values[skipped])
    assert np.isnan(ds.value_random.values[skipped]).all()
    assert np.isfinite(ds.value_random.values[~skipped & ds.converged.values]).all()


def test_open_gap_falls_back_to_second_order(tmp_path):
    """d = 1 < K - 1: the ETF does not fit, the proven bound (every d) is not attained, so no gap
    closes and every point is re-solved with second-order certificates from both starts."""
    prob = ufm.UFM(K=3, n=2, d=1, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)
    ds = sweep(prob, {"lam_W": [1e-3, 2e-3]}, chunk=2)
    assert bool(ds.converged.all()) and not bool(ds.global_ok.any())
    assert (ds.order.values == 2).all() and np.all(ds.min_eig.values >= -1e-8)
    assert np.all(ds.global_gap.values > 1e-10)  # measured and reported, not required
    assert not bool(ds.random_skipped.any()) and np.isfinite(ds.value_random.values).all()
    kept, runs = ds.value.values, np.fmin(ds.value_random.values, ds.value_warm.values)
    np.testing.assert_array_equal(kept, runs)  # the lower certified run is kept
    _check_skip_property(ds)


def test_certify_global_needs_a_bound(no_solve):
    focal = ufm.UFM(K=3, n=2, d=4, loss=ufm.Focal(2.0), lam_W=5e-3, lam_H=5e-3)
    with pytest.raises(ValueError, match="certify='global'.*focal"):
        sweep(focal, {"lam_W": [1e-3]}, certify="global")
    with pytest.raises(ValueError, match="certify must be"):
        sweep(CE, {"lam_W": [1e-3]}, certify="second")


@pytest.mark.slow
def test_local_path_second_order(tmp_path):
    ds = sweep(CE, GRID, starts=1, chunk=CHUNK, certify="local")
    assert bool(ds.converged.all()) and (ds.order.values == 2).all()
    assert np.all(ds.min_eig.values >= -1e-8) and np.isnan(ds.global_gap.values).all()
    assert not bool(ds.random_skipped.any()) and not bool(ds.disagree.any())
    for i, lw in enumerate(GRID["lam_W"]):
        prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=5e-3)
        np.testing.assert_allclose(float(ds.value[i, 0]), cf.ce_family(prob).quantities["value"], rtol=1e-9)


def test_resume_recomputes_nothing_and_bad_specs_keep_the_store(tmp_path, no_solve, monkeypatch):
    monkeypatch.undo()
    path = tmp_path / "s.zarr"
    part = sweep(CE, GRID, store=path, chunk=CHUNK, max_chunks=1)
    assert part.done.sum() == CHUNK and np.isnan(part.value.values[CHUNK:]).all()
    import zarr

    root = zarr.open_group(str(path), mode="r")
    run0, value0 = int(root["run"][0]), np.asarray(root["value"][:CHUNK]).copy()
    # a different spec on the same store is refused without touching it
    with pytest.raises(ValueError, match="different sweep.*axes"):
        sweep(CE, {"lam_W": [1e-3, 2e-3]}, store=path, chunk=CHUNK)
    with pytest.raises(ValueError, match="lam_W"):
        sweep(CE, {"lam_W": [-1.0]}, store=path, chunk=CHUNK)
    full = sweep(CE, GRID, store=path, chunk=CHUNK)
    root = zarr.open_group(str(path), mode="r")
    assert int(root["run"][0]) == run0  # chunk 0 was not recomputed
    assert len({int(r) for r in root["run"][1:]}) == 1 and int(root["run"][1]) != run0
    np.testing.assert_array_equal(np.asarray(root["value"][:CHUNK]), value0)
    assert bool(full.done.all()) and np.isfinite(full.value.values).all()


def test_dask_local_cluster_writes_the_same_store(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = sweep(CE, GRID, store=tmp_path / "a.zarr", chunk=CHUNK)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        ds = sweep(CE, GRID, store=tmp_path / "b.zarr", chunk=CHUNK, client=client)
    assert bool(ds.done.all())
    np.testing.assert_allclose(ds.value.values, local.value.values, rtol=1e-12)
    assert (ds.phase.values == local.phase.values).all()


# ---------------------------------------------------------------- atlas (pure NumPy)


def test_atlas_names_exact_configurations():
    K, d = 4, 6
    M = np.asarray(geometry.simplex_etf(K, d))
    G_etf = M @ M.T
    counts = (3,) * K
    assert _phases.phase_of(G_etf, G_etf, counts, d) == "simplex_etf"
    assert _phases.phase_of(np.eye(K), np.eye(K), counts, d) == "orthogonal_frame"
    assert _phases.phase_of(np.zeros((K, K)), np.zeros((K, K)), counts, d) == "zero"
    # minority collapse: the two minority classifier rows coincide
    W = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 1, 0]])
    assert _phases.phase_of(W @ W.T, W @ W.T, (5, 5, 1, 1), 3) == "minority_collapse"
    # imbalanced, not collapsed, not a frame: SELI-like
    W2 = W + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0.3], [0, 0, -0.3]])
    assert _phases.phase_of(W2 @ W2.T, W2 @ W2.T, (5, 5, 1, 1), 3) == "seli_frame"
    # balanced, rank 2 < K-1 = 3: low rank
    X = np.array([[1.0, 0], [0, 1], [-1, 0], [0, -1]])
    assert _phases.phase_of(X @ X.T, X @ X.T, counts, 2) == "low_rank"
    sig = _phases.gram_signature(X @ X.T)
    assert sig.startswith("rank 2") and "0.500,0.500" in sig
    # the order parameters vanish exactly in their phase
    assert _phases.order_parameter("simplex_etf", G_etf) < 1e-12
    assert _phases.order_parameter("orthogonal_frame", np.eye(K)) < 1e-12
    assert _phases.order_parameter("zero", np.zeros((K, K))) == 0.0


@given(st.integers(2, 5), st.integers(0, 3), st.integers(0, 10**6))
@settings(max_examples=examples(25), deadline=None)
def test_batched_distances_give_the_same_phase(K, kind, seed):
    """phase_of(distances=gram_distances(...)) names the same phase as phase_of alone."""
    rng = np.random.default_rng(seed)
    M = np.asarray(geometry.simplex_etf(K, K + 1))
    base = [M @ M.T, np.eye(K), np.zeros((K, K)), None][kind]
    X = rng.standard_normal((K, 3))
    G = X @ X.T if base is None else base * rng.uniform(0.1, 10.0)
    G_stack = np.stack([G, G + 1e-3 * np.eye(K)])[:, None]  # (2, 1, K, K): points x starts
    etf, orth = _phases.gram_distances(G_stack)
    counts = (2,) * K
    for i in range(2):
        assert _phases.phase_of(G_stack[i, 0], G_stack[i, 0], counts, K + 1,
                               distances=(etf[i, 0], orth[i, 0])) == \
            _phases.phase_of(G_stack[i, 0], G_stack[i, 0], counts, K + 1)


# ---------------------------------------------------------------- boundaries vs the catalog


def test_ce_zero_threshold_matches_the_catalog():
    m = locate_boundary(CE, "lam_W", 0.5 * CE_ZERO_AT, 2.0 * CE_ZERO_AT)
    assert m["phases"] == ("simplex_etf", "zero")
    (row,) = compare(CE, m)
    assert row["transition"] == "zero threshold"
    np.testing.assert_allclose(row["predicted"], CE_ZERO_AT, rtol=1e-12)  # the formula itself
    assert row["rel_error"] < 1e-6, row


@pytest.mark.slow
def test_mse_regularized_bias_transition_matches_the_catalog():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3, lam_b=0.1)
    (pred,) = catalog_thresholds(prob, "lam_b")
    m = locate_boundary(prob, "lam_b", 0.2 * pred["predicted"], 5.0 * pred["predicted"])
    assert m["phases"][0] == "simplex_etf"
    (row,) = compare(prob, m)
    assert row["transition"] == "regularized-bias transition" and row["rel_error"] < 1e-6, row


def test_replace_path_rebuilds_nested_fields():
    prob = ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(0.1), lam_W=5e-3, lam_H=5e-3)
    new = replace_path(prob, "loss.alpha", 0.3)
    assert float(new.loss.alpha) == 0.3 and float(prob.loss.alpha) == 0.1
    with pytest.raises(ValueError, match="alpha"):
        replace_path(prob, "loss.alpha", 1.0)


def test_open_sweep_rejects_other_stores(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "x.zarr"), mode="w").attrs["format"] = "other"
    with pytest.raises(ValueError, match="not a ufm sweep store"):
        open_sweep(tmp_path / "x.zarr")
