"""The layers of ARCHITECTURE.md, checked by parsing every module's imports (no import is run).

    proofs_check (catalog, verify)     uses only ufm's public names
    ufm.cli, ufm.plot, ufm.testing     the command line, figures, hypothesis strategies
    ufm.sweeps                         drive solvers over grids of problems
    ufm.etf, ufm.landscape             the ETF ansatz and landscape tools, built on the solvers
    ufm.solvers                        minimize, gradient_flow, constrained solves, certificates
    ufm.problems                       models: no solver, no metric
    ufm.losses, ufm.metrics, ufm.geometry, ufm.conventions, ufm.dilation   pure functions of arrays
    ufm._internal                      tree arithmetic, validation, precision, runtime, numerics
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules(package: str):
    base = ROOT / package
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(imported module, names imported from it)`` for every import statement, anywhere in the
    file (function-local imports included), relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.append((name, tuple(a.name for a in node.names)))
    return out


def _all_imports(package):
    return [(mod, path, imp, names) for mod, path in _modules(package) for imp, names in _imports(mod, path)]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_ufm_never_imports_proofs_check():
    bad = [(mod, imp) for mod, _, imp, _ in _all_imports("ufm") if _under(imp, "proofs_check")]
    assert not bad, f"ufm modules import proofs_check: {bad}"


def test_problems_import_neither_solvers_nor_metrics():
    bad = []
    for mod, _, imp, names in _all_imports("ufm"):
        if not _under(mod, "ufm.problems"):
            continue
        targets = [imp] + [f"{imp}.{n}" for n in names if imp == "ufm"]
        for t in targets:
            if any(_under(t, f"ufm.{layer}") for layer in ("solvers", "metrics", "sweeps", "landscape", "etf", "cli", "plot", "testing")):
                bad.append((mod, t))
    assert not bad, f"ufm.problems reaches up the layers: {bad}"


def test_solvers_do_not_import_the_drivers():
    bad = [(mod, imp) for mod, _, imp, _ in _all_imports("ufm")
           if _under(mod, "ufm.solvers") and any(_under(imp, f"ufm.{x}") for x in ("sweeps", "landscape", "etf", "cli", "plot", "testing"))]
    assert not bad, f"ufm.solvers imports a driver module: {bad}"


def test_internal_imports_nothing_above_it():
    bad = [(mod, imp) for mod, _, imp, _ in _all_imports("ufm")
           if _under(mod, "ufm._internal") and _under(imp, "ufm") and not _under(imp, "ufm._internal")]
    assert not bad, f"ufm._internal reaches up the layers: {bad}"


def test_pure_array_layer_imports_no_problem_or_solver():
    lower = ("losses", "metrics", "geometry", "conventions", "dilation")
    upper = ("problems", "solvers", "etf", "landscape", "sweeps", "cli", "plot", "testing")
    bad = [(mod, imp) for mod, _, imp, _ in _all_imports("ufm")
           if any(_under(mod, f"ufm.{x}") for x in lower) and any(_under(imp, f"ufm.{x}") for x in upper)]
    assert not bad, f"a pure function of arrays reaches up the layers: {bad}"


def test_ufm_init_does_not_import_the_cli():
    assert not [imp for mod, _, imp, names in _all_imports("ufm") if mod == "ufm"
                and (_under(imp, "ufm.cli") or (imp == "ufm" and "cli" in names))]


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def test_proofs_check_uses_only_public_ufm_names():
    bad = []
    for mod, _, imp, names in _all_imports("proofs_check"):
        if not _under(imp, "ufm"):
            continue
        if _private(imp) or any(n.startswith("_") for n in names):
            bad.append((mod, imp, names))
    # attribute access such as ufm.solvers._common.grad_norm
    for mod, path in _modules("proofs_check"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                chain, cur = [node.attr], node.value
                while isinstance(cur, ast.Attribute):
                    chain.append(cur.attr)
                    cur = cur.value
                if isinstance(cur, ast.Name) and cur.id == "ufm":
                    bad.append((mod, "ufm." + ".".join(reversed(chain)), ()))
    assert not bad, f"proofs_check reaches into private ufm names: {bad}"


def test_import_ufm_changes_no_global_jax_setting():
    code = "import jax, ufm, ufm.metrics, ufm.testing; print(jax.config.jax_enable_x64)"
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_float64_solve_without_x64_names_the_fix():
    code = ("import ufm\n"
            "p = ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy())\n"
            "try:\n    ufm.minimize(p)\nexcept ValueError as e:\n    print('VE', e)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.stdout.startswith("VE") and "ufm.enable_x64()" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("package", ["ufm", "proofs_check"])
def test_every_module_parses(package):
    assert list(_modules(package))
