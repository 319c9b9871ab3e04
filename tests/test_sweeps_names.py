"""ufm.sweeps names: ``starts`` is the number of random starts (``seeds=`` still works and warns),
and every public verb is reachable where users look for it."""

import warnings

import pytest

import ufm
import ufm.sweeps

for _extra in ("xarray", "zarr", "tqdm"):  # the sweeps extra
    pytest.importorskip(_extra)
import xarray as xr

CE = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
GRID = {"lam_W": [1e-3, 1e-2, 0.1]}
CHUNK = 3  # the kernel shape of tests/test_sweep.py


def test_public_verbs_are_reachable():
    assert callable(ufm.sweep) and ufm.sweep is ufm.sweeps.sweep
    assert ufm.open_sweep is ufm.sweeps.open_sweep
    for name in ufm.sweeps.__all__:
        assert getattr(ufm.sweeps, name) is not None


def test_old_module_name_warns():
    with pytest.warns(DeprecationWarning, match="ufm.sweeps"):
        from ufm.sweep import open_sweep
    assert open_sweep is ufm.sweeps.open_sweep


def test_deprecated_seeds_keyword_warns_and_gives_the_same_dataset():
    new = ufm.sweep(CE, GRID, starts=1, chunk=CHUNK, progress=False)
    with pytest.warns(DeprecationWarning, match=r"seeds=.*starts="):
        old = ufm.sweep(CE, GRID, seeds=1, chunk=CHUNK, progress=False)
    xr.testing.assert_identical(old, new)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name does not warn
        positional = ufm.sweep(CE, GRID, 1, chunk=CHUNK, progress=False)
    xr.testing.assert_identical(positional, new)


def test_seeds_and_starts_together_are_refused():
    with pytest.raises(ValueError, match="starts"):
        ufm.sweep(CE, GRID, seeds=1, starts=1)
    with pytest.raises(ValueError, match="starts"):
        ufm.sweeps.locate_boundary(CE, "lam_W", 1e-3, 1.0, seeds=1, starts=1)


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_starts_is_validated_before_any_solve(bad):
    with pytest.raises(ValueError, match=r"starts must be an integer >= 1"):
        ufm.sweep(CE, GRID, starts=bad)


def test_locate_boundary_seeds_keyword_warns():
    # a bad field fails before any solve, after the keyword was renamed
    with pytest.warns(DeprecationWarning, match=r"seeds=.*starts="), pytest.raises(ValueError, match="lam_X"):
        ufm.sweeps.locate_boundary(CE, "lam_X", 1e-3, 1.0, seeds=2)
