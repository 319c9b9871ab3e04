"""Compile-time machinery of ``ufm.minimize``: the compiled random start, the jit cache across lams,
and the opt-in persistent compilation cache (``ufm.enable_compilation_cache``)."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ufm
from ufm.solvers._common import random_start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@given(K=st.integers(2, 4), n=st.integers(1, 3), d=st.integers(1, 5), seed=st.integers(0, 2**20),
       scale=st.one_of(st.none(), st.floats(0.1, 2.0)), bias=st.booleans())
def test_random_start_is_prob_init(K, n, d, seed, scale, bias):
    """One compiled call draws the start of ``prob.init(PRNGKey(seed), scale)`` (same draws; a fused
    product may round the last bit differently)."""
    prob = ufm.UFM(K=K, n=n, d=d, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2, lam_b=0.0 if bias else None)
    want = prob.init(jax.random.PRNGKey(seed), scale)
    got = random_start(prob, seed, scale)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=4 * np.finfo(float).eps, atol=0)


def test_new_lams_do_not_recompile():
    """A problem with the same shapes and other lams reuses the compiled solve (lams are traced)."""
    events = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: events.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)
    ufm.minimize(ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2, lam_b=None), seed=0)
    events.clear()
    sol = ufm.minimize(ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=3e-2, lam_H=2e-3, lam_b=None), seed=1)
    assert sol.converged
    assert events == []


@pytest.mark.parametrize("bad", [None, "", 3, True, b"dir"])
def test_enable_compilation_cache_rejects_bad_path(bad):
    with pytest.raises(ValueError, match="path"):
        ufm.enable_compilation_cache(bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "x", True])
def test_enable_compilation_cache_rejects_bad_threshold(bad, tmp_path):
    with pytest.raises(ValueError, match="min_compile_time_secs"):
        ufm.enable_compilation_cache(tmp_path, min_compile_time_secs=bad)


_CHILD = r"""
import json, sys, jax
import ufm
before = jax.config.jax_compilation_cache_dir
ufm.enable_x64()
hits = []
jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None)
path = ufm.enable_compilation_cache(sys.argv[1])
sol = ufm.minimize(ufm.UFM(K=3, n=2, d=3, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2, lam_b=None), seed=0)
print("RESULT " + json.dumps(dict(before=before, after=jax.config.jax_compilation_cache_dir, path=path,
                                  hits=len(hits), value=float(sol.value), kkt=float(sol.grad_norm))))
"""


def _child(path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    p = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def test_compilation_cache_is_opt_in_and_reused(tmp_path):
    """Importing ufm sets no cache; opting in writes executables that a second process loads
    (cache hits), with the same solution."""
    # a fresh process that imported ufm has no cache until it opts in (first["before"]); this
    # process may have run the command line in-process, which opts in by design
    cache = tmp_path / "cache"
    first = _child(cache)
    assert first["before"] is None and first["after"] == first["path"] == str(cache)
    assert first["hits"] == 0 and len(os.listdir(cache)) > 0
    second = _child(cache)
    assert second["hits"] >= 1
    assert second["value"] == first["value"] and second["kkt"] == first["kkt"]


_linux = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc (Linux)")


@_linux
def test_compiled_solves_hold_memory_mappings_that_the_guard_returns():
    """Each compiled shape holds hundreds of memory mappings (XLA:CPU loads every kernel on its own);
    past the fraction of vm.max_map_count the guard frees them (``clear_cache`` of ufm's own jitted
    functions)."""
    from ufm._internal import runtime as _common
    from ufm.solvers._core import solve as _solve

    ufm.minimize(ufm.UFM(K=3, n=2, d=7, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2), seed=0)
    before = _common._mapped_regions()
    ufm.minimize(ufm.UFM(K=3, n=2, d=9, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2), seed=0)
    held = _common._mapped_regions() - before
    assert held > 50, held  # a new shape maps its kernels (measured ~450-700)
    assert not _common.release_compiled_near_map_limit(fraction=1.0)
    assert _solve._cache_size() > 0
    assert _common.release_compiled_near_map_limit(fraction=0.0)
    assert _solve._cache_size() == 0
    assert _common._mapped_regions() < before + held  # the mappings came back


@_linux
def test_minimize_checks_the_map_limit_after_a_new_shape_only(monkeypatch):
    """A new shape near the limit empties the caches; a warm call never reads /proc."""
    from ufm._internal import runtime as _common
    from ufm.solvers._core import solve as _solve

    prob = ufm.UFM(K=2, n=3, d=5, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2)
    ufm.minimize(prob, seed=0)
    user = jax.jit(lambda x: 2.0 * x)  # the caller's own compiled function
    user(np.arange(3.0))
    reads = []
    real = _common._mapped_regions
    monkeypatch.setattr(_common, "_mapped_regions", lambda: reads.append(1) or real())
    ufm.minimize(prob, seed=1)  # warm: no read
    assert reads == []
    monkeypatch.setattr(_common, "_map_limit", lambda: 1)  # every process is "near the limit"
    sol = ufm.minimize(ufm.UFM(K=2, n=3, d=6, loss=ufm.CrossEntropy(), lam_W=1e-2, lam_H=1e-2), seed=0)
    assert reads and sol.converged
    assert _solve._cache_size() == 0  # freed after the solve; its result stays valid
    assert np.isfinite(float(sol.value))
    assert user._cache_size() == 1  # the caller's cache is not ufm's to free


def _user_cache_survives_releases(monkeypatch, new_shapes):
    """Near the map limit ufm empties only its own jitted functions (registered in
    ``ufm._internal.runtime``), never ``jax.clear_caches``: a caller's jitted function keeps its
    executable (same cache size, no compilation on the next call) while each of ``new_shapes``
    (callables that compile one new shape of a registered function and return that function)
    is compiled and released."""
    from ufm._internal import runtime

    compiles = []
    watching = [False]
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name)
        if watching[0] and name == "/jax/core/compile/backend_compile_duration" else None)
    user = jax.jit(lambda x: jnp.sin(x) * 2.0)
    x = jnp.arange(3.0)
    want = np.asarray(user(x))
    assert user._cache_size() == 1
    monkeypatch.setattr(jax, "clear_caches", lambda: pytest.fail("jax.clear_caches called"))
    monkeypatch.setattr(runtime, "_map_limit", lambda: 100)  # every process is "near the limit"
    monkeypatch.setattr(runtime, "_mapped_regions", lambda: 100)
    for new_shape in new_shapes:
        fn = new_shape()
        assert fn in runtime._COMPILED and fn._cache_size() >= 1
        assert runtime.release_compiled_near_map_limit()
        assert fn._cache_size() == 0
    assert user._cache_size() == 1
    watching[0] = True
    got = np.asarray(user(x))
    watching[0] = False
    assert compiles == []  # no recompilation
    np.testing.assert_array_equal(got, want)


def _random_start_shape(d):
    from ufm.solvers._common import _random_start

    def new_shape():
        random_start(ufm.UFM(K=2, n=1, d=d, loss=ufm.MSE(), lam_W=1e-2, lam_H=1e-2), 0)
        return _random_start

    return new_shape


def test_release_keeps_the_callers_cache_across_200_new_shapes(monkeypatch):
    """200 new shapes of a cheap registered function (a one-line jit, ~20 ms a compile, standing in
    for ufm's), then three of ufm's compiled random start; ``-m slow`` runs 200 of the latter."""
    from ufm._internal import runtime

    cheap = runtime.register_compiled(jax.jit(lambda v: v * 2.0 + 1.0))

    def cheap_shape(n):
        def new_shape():
            cheap(jnp.zeros(n))
            return cheap

        return new_shape

    try:
        _user_cache_survives_releases(monkeypatch, [cheap_shape(n) for n in range(1, 201)]
                                      + [_random_start_shape(d) for d in (1, 2, 3)])
    finally:
        runtime._COMPILED.remove(cheap)


@pytest.mark.slow
def test_release_keeps_the_callers_cache_across_200_new_ufm_shapes(monkeypatch):
    """200 new shapes of ufm's compiled random start (~1 s a compile on two CPU cores)."""
    _user_cache_survives_releases(monkeypatch, [_random_start_shape(d) for d in range(1, 201)])


def test_register_compiled_takes_jitted_functions_once():
    from ufm._internal import runtime

    f = jax.jit(lambda x: x + 1.0)
    n = len(runtime._COMPILED)
    try:
        assert runtime.register_compiled(f) is f and runtime.register_compiled(f) is f
        assert len(runtime._COMPILED) == n + 1
        f(1.0)
        runtime.release_compiled()
        assert f._cache_size() == 0
    finally:
        runtime._COMPILED.remove(f)
    with pytest.raises(TypeError, match="jax.jit"):
        runtime.register_compiled(lambda x: x)
