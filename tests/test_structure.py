"""The shape of the house, checked by parsing every module (no import is run).

- the import graphs of ``ufm`` and of ``proofs_check`` have no cycle, counting the imports written
  inside functions;
- no module imports a private name (``_x``) from another module, except from ``ufm._internal``;
  a private module (``pkg._mod``) is imported only by its own package (its siblings and
  ``pkg/__init__.py``); everyone else goes through the package's public face;
- no module over 500 lines and no function over 80 lines, except those in :data:`LONG` with the
  reason;
- every name in ``ufm.__all__`` (and in the ``__all__`` of the public modules it re-exports) has a
  docstring, and every public function there is fully annotated.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("ufm", "proofs_check")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# Modules and functions allowed past the limits, each with the reason it stays whole.
LONG: dict[str, str] = {}


def _modules(package: str) -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = {name: path for package in PACKAGES for name, path in _modules(package).items()}
TREES = {name: ast.parse(path.read_text(), filename=str(path)) for name, path in MODULES.items()}


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _owner(name: str) -> str | None:
    """The longest known module that ``name`` (a dotted path) lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str):
    """``(target module, imported name or None, lineno)`` for every import in ``module``, relative
    imports resolved; ``from pkg import sub`` names the submodule when ``sub`` is one."""
    package = _package_of(module)
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                yield (full, None, node.lineno) if full in MODULES else (source, alias.name, node.lineno)


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            owner = _owner(target)
            if owner and owner != module:
                edges[module].add(owner)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_even_inside_functions():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def test_private_names_stay_home():
    bad = []
    for module in MODULES:
        package = _package_of(module)
        for target, name, line in _imports(module):
            if not target.startswith(PACKAGES):
                continue
            if target == "ufm._internal" or target.startswith("ufm._internal."):
                continue
            if name is not None and _private(name):
                bad.append(f"{module}:{line} imports the private name {name} from {target}")
            parts = target.split(".")
            for i, part in enumerate(parts):
                if _private(part):
                    home = ".".join(parts[:i])
                    if package != home:
                        bad.append(f"{module}:{line} reaches into {target}, private to {home}")
                    break
    assert not bad, "\n".join(bad)


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def test_modules_and_functions_are_short():
    bad = []
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and module not in LONG:
            bad.append(f"{module}: {lines} lines > {MAX_MODULE_LINES}")
        for name, node in _functions(TREES[module]):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and f"{module}.{name}" not in LONG:
                bad.append(f"{module}.{name}: {length} lines > {MAX_FUNCTION_LINES}")
    assert not bad, "\n".join(bad)


def test_long_exceptions_are_still_needed():
    """An entry of LONG that no longer exceeds a limit is removed, so the list stays honest."""
    still = set()
    for module, path in MODULES.items():
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES:
            still.add(module)
        for name, node in _functions(TREES[module]):
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                still.add(f"{module}.{name}")
    assert set(LONG) <= still, f"no longer long: {sorted(set(LONG) - still)}"


# ---- the public API ------------------------------------------------------------------------------


def _public_objects():
    import ufm

    seen = {}
    for name in ufm.__all__:
        obj = getattr(ufm, name)
        if isinstance(obj, types.ModuleType):
            for sub in getattr(obj, "__all__", []):
                seen[f"ufm.{name}.{sub}"] = getattr(obj, sub)
        seen[f"ufm.{name}"] = obj
    return seen


PUBLIC = _public_objects()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_a_docstring(name):
    obj = PUBLIC[name]
    if not callable(obj) and not isinstance(obj, types.ModuleType):
        pytest.skip("a constant")
    doc = inspect.getdoc(obj) or ""
    assert len(doc.split()) >= 5, f"{name} needs a docstring with its formula or contract"


def _unannotated(fn) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("name", sorted(n for n, o in PUBLIC.items() if inspect.isfunction(o)))
def test_public_function_is_fully_annotated(name):
    missing = _unannotated(inspect.unwrap(PUBLIC[name]))
    assert not missing, f"{name}: no annotation for {missing}"


def test_py_typed_ships():
    assert (ROOT / "ufm" / "py.typed").exists()


@pytest.mark.slow  # mypy over the package: about 20 s
def test_public_api_type_checks(tmp_path):
    """mypy accepts the typical calls of tests/typecheck/public_api.py against ufm's annotations
    (the command is ``mypy tests/typecheck/public_api.py --follow-imports=silent``)."""
    api = pytest.importorskip("mypy.api")
    out, err, status = api.run([str(ROOT / "tests" / "typecheck" / "public_api.py"), "--follow-imports=silent",
                                "--ignore-missing-imports", "--cache-dir", str(tmp_path / "mypy"),
                                "--no-error-summary"])
    assert status == 0, out + err
