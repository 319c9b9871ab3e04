"""The layout of the certified solver: typed options into the compiled core, one name per idea
(``starts``, the KKT residual stored once, ``kkt_residuals``), and a global scope that says what
``converged`` says."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ufm
import ufm.solvers
from ufm.solvers import _core, _local

PROB = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3)
PUBLIC = ["minimize", "gradient_flow", "SaveAt", "Trajectory", "Solution", "Certificate", "GlobalCertificate",
          "RESULTS", "SolveError", "hessian_spectrum", "hessian_extreme_eigs", "symmetry_basis", "grad_norm",
          "global_certificate", "global_gap_ok", "global_unsupported_reason", "polish_relu",
          "minimize_constrained", "AugmentedLagrangian", "minimize_md", "kkt_residual", "flow_ensemble",
          "implicit_invariant"]


def test_public_names_stay_importable():
    for name in PUBLIC:
        assert getattr(ufm.solvers, name) is not None and name in ufm.solvers.__all__


# ---- SolveOptions: what the compiled core receives ------------------------------------------------
def test_solve_options_is_a_frozen_pytree_whose_tolerances_and_caps_are_the_leaves():
    opts = _core.SolveOptions(gtol=1e-9, max_steps=50)
    leaves, treedef = jax.tree_util.tree_flatten(opts)
    # gtol, eig_tol, max_steps, max_newton, cg_max, max_escapes: traced; second and num_iters
    # select the compiled code
    assert leaves == [1e-9, 1e-8, 50, 100, _core.CG_MAX, 10]
    assert jax.tree_util.tree_structure(dataclasses.replace(opts, gtol=1e-7)) == treedef
    assert jax.tree_util.tree_structure(dataclasses.replace(opts, max_steps=60, max_newton=3)) == treedef
    assert jax.tree_util.tree_structure(dataclasses.replace(opts, second="dense")) != treedef
    assert jax.tree_util.tree_structure(dataclasses.replace(opts, num_iters=7)) != treedef
    assert not isinstance(opts, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.gtol = 1.0


def test_the_core_receives_solve_options_and_a_new_gtol_reuses_it(monkeypatch):
    seen = []
    real = _local.solve

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    spy._cache_size = real._cache_size
    monkeypatch.setattr(_local, "solve", spy)
    sol = ufm.minimize(PROB, seed=0, starts=2, gtol=1e-11)
    assert sol.converged and len(seen) == 2
    size = sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(sol.params))
    for args, kwargs in seen:
        assert len(args) == 4 and kwargs == {}  # (prob, x0, key, opts): the options are one argument
        opts = args[3]
        assert type(opts) is _core.SolveOptions
        assert (opts.gtol, opts.max_steps, opts.second, opts.num_iters) == (1e-11, 10_000, "dense", min(100, size))
    before = real._cache_size()
    ufm.minimize(PROB, seed=0, gtol=1e-9)  # a tolerance is a leaf: no new compilation
    assert real._cache_size() == before


@settings(max_examples=6, deadline=None)
@given(max_steps=st.integers(1, 40), max_newton=st.integers(0, 3), max_escapes=st.integers(0, 2))
def test_a_new_step_cap_reuses_the_compiled_solve_and_bounds_the_steps(max_steps, max_newton, max_escapes):
    ufm.minimize(PROB, seed=0, throw=False)
    before = _core.solve._cache_size()
    sol = ufm.minimize(PROB, seed=0, max_steps=max_steps, max_newton=max_newton, max_escapes=max_escapes,
                       throw=False)
    assert _core.solve._cache_size() == before  # the caps are leaves: the executable is reused
    rounds = sol.stats["escapes"] + 1  # each round runs the first stage and Newton once
    assert sol.stats["escapes"] <= max_escapes
    assert sol.stats["first_order_steps"] <= rounds * max_steps
    assert sol.stats["newton_steps"] <= rounds * max_newton


# ---- deprecated names: same results, a warning ----------------------------------------------------
def test_restarts_keyword_warns_and_gives_the_same_solution():
    new = ufm.minimize(PROB, seed=1, starts=2)
    with pytest.warns(DeprecationWarning, match="starts="):
        old = ufm.minimize(PROB, seed=1, restarts=2)
    assert old.value == new.value and old.stats["seed"] == new.stats["seed"]
    for a, b in zip(jax.tree_util.tree_leaves(old.params), jax.tree_util.tree_leaves(new.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(new.stats["start_values"]) == 2
    assert new.stats["start_values"] == old.stats["start_values"] == new.stats["restart_values"]
    assert new.stats["start_results"] == new.stats["restart_results"]
    with pytest.raises(ValueError, match="starts="):
        ufm.minimize(PROB, starts=2, restarts=2)
    md = ufm.MemorizationDilation(K=2, n=4, d=2, loss=ufm.CrossEntropy(), eta=0.25, lam=0.5)
    with pytest.warns(DeprecationWarning, match="starts="), pytest.raises(ValueError, match="starts"):
        ufm.solvers.minimize_constrained(md, restarts=0)


def test_traced_starts_report_both_key_names():
    sol = jax.jit(lambda p: ufm.minimize(p, starts=2, throw=False))(PROB)
    assert sol.stats["start_values"].shape == (2,)
    np.testing.assert_array_equal(sol.stats["start_values"], sol.stats["restart_values"])
    np.testing.assert_array_equal(sol.stats["start_results"], sol.stats["restart_results"])


def test_the_kkt_residual_is_stored_once():
    sol = ufm.minimize(PROB, seed=0)
    assert "grad_norm" not in {f.name for f in dataclasses.fields(sol)}
    assert sol.grad_norm is sol.certificate.kkt
    assert sol.kkt_residuals["stationarity"] is sol.certificate.kkt
    with pytest.warns(DeprecationWarning, match="kkt_residuals"):
        old = sol.kkt
    assert old == sol.kkt_residuals


# ---- scope and converged: one rule -----------------------------------------------------------------
def test_scope_is_global_only_when_global_ok():
    gc = ufm.GlobalCertificate(value=0.5, lower_bound=0.5 - 5e-10, gap=5e-10, method="class-level dual")
    # a gap of 5e-10 is below an absolute 1e-9 but above gtol max(1, |f|) = 1e-10: not global
    assert not ufm.solvers.global_gap_ok(gc.gap, gc.value, 1e-10)
    cert = ufm.Certificate(kkt=0.0, min_eig=1.0, order_code=2, global_certificate=gc, global_ok=False)
    assert cert.scope == "local" and cert.global_gap == gc.gap
    assert cert._replace(global_ok=True).scope == "global"
    assert ufm.Certificate(kkt=0.0, min_eig=1.0, order_code=2).scope == "local"


def test_scope_agrees_with_converged_for_certify_global():
    tight = ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)
    narrow = ufm.UFM(K=3, n=2, d=1, loss=ufm.MSE(), lam_W=5e-3, lam_H=5e-3)  # d < K: the bound is not tight
    outcomes = []
    for prob in (tight, narrow):
        sol = ufm.minimize(prob, certify="global", throw=False)
        cert = sol.certificate
        assert (cert.scope == "global") == sol.converged == cert.global_ok
        assert isinstance(cert.global_certificate, ufm.GlobalCertificate) and cert.global_gap == cert.global_certificate.gap
        assert sol.converged == (sol.result == ufm.RESULTS.successful)
        assert bool(ufm.solvers.global_gap_ok(cert.global_gap, sol.value, 1e-10)) or not sol.converged
        outcomes.append(sol.converged)
    assert outcomes == [True, False]
    traced = jax.jit(lambda p: ufm.minimize(p, certify="global", throw=False))(tight)
    assert (traced.certificate.scope == "global") == bool(traced.converged) == bool(traced.certificate.global_ok)
