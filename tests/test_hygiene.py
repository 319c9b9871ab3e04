"""No test in ``tests/`` can pass whatever the code computes: an AST check of every test file.

It fails on these kinds of assertion, each of which holds (or never runs) whatever the code does:

- ``assert <expr> or True`` (a truthy constant in an ``or``), ``assert True``, ``assert 1 == 1``,
  ``assert (cond, "message")`` (a non-empty tuple is true), and any assertion made only of
  constants;
- a comparison of an expression with itself (``assert a == a``, ``assert f(x) <= f(x)``: the same
  AST on both sides), also inside ``np.testing.assert_*``, ``np.isclose``/``np.allclose``,
  ``math.isclose`` and ``x == pytest.approx(x)``;
- ``len(...) >= 0`` and ``abs(...) >= 0``;
- ``np.isclose``/``np.allclose`` (NumPy's or ``jax.numpy``'s) without ``atol``: their default
  ``atol = 1e-8`` turns an asserted ``rtol = 1e-12`` on a value of size 1e-3 into 1e-5, so every
  call states its ``atol`` (``0`` or a value with its reason); ``pytest.approx`` likewise states
  its ``abs`` (default 1e-12);
- assertions that never run: inside ``if False:`` / ``if 0:``, or inside a ``try`` whose handler
  catches ``AssertionError`` (or ``Exception``, ``BaseException``, a bare ``except``) and does not
  raise again;
- two test functions of the same name in one module (the second hides the first, which never runs).

The ``atol`` rule is also checked over the library (``ufm``, ``proofs_check``). What an AST cannot
see, such as a function compared with itself under another name, is left to review. The checker
itself is tested on small snippets below (each rule on a case it must flag and on a
close case it must accept).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_FILES = sorted((ROOT / "tests").rglob("*.py"))

LIBRARY_FILES = sorted(p for package in ("ufm", "proofs_check") for p in (ROOT / package).rglob("*.py"))

# Lines that still break a rule and await their fix: the exact source line (stripped), by file.
# An entry leaves the list with its fix (test_allowed_lines_still_break_their_rule fails on an entry
# whose line is gone, so the list cannot outlive its reason).
ALLOWED: dict[str, tuple[str, ...]] = {}

NUMPY_MODULES = {"np", "numpy", "jnp", "onp"}
CLOSE_FUNCTIONS = {"isclose", "allclose"}
CATCH_ALL = {"AssertionError", "Exception", "BaseException"}


def _dump(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def _dotted(node: ast.AST) -> str | None:
    """``"np.testing.assert_allclose"`` for that attribute chain, ``None`` for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _numpy_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to NumPy-like modules, and bare names bound to their ``isclose``/``allclose``."""
    modules, functions = set(NUMPY_MODULES), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in ("numpy", "jax.numpy"):
                    modules.add(a.asname or a.name)
        elif isinstance(node, ast.ImportFrom) and node.module in ("numpy", "jax.numpy", "jax"):
            for a in node.names:
                if a.name in CLOSE_FUNCTIONS:
                    functions.add(a.asname or a.name)
                if a.name == "numpy":
                    modules.add(a.asname or a.name)
    return modules, functions


def _is_constant(node: ast.AST) -> bool:
    """An expression made only of literals and operators (its value does not depend on the code)."""
    allowed = (ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.BoolOp, ast.UnaryOp, ast.BinOp,
               ast.Compare, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)
    return all(isinstance(n, allowed) for n in ast.walk(node))


def _always_true(test: ast.expr) -> str | None:
    if isinstance(test, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and (
            test.elts if not isinstance(test, ast.Dict) else test.keys):
        return "asserts a non-empty literal (always true; a tuple `(cond, msg)` is not `cond, msg`)"
    if _is_constant(test):
        return "asserts a constant expression"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        for v in test.values:
            if isinstance(v, ast.Constant) and v.value:
                return "`or` with a truthy constant (always true)"
    return None


def _self_compare(node: ast.Compare) -> str | None:
    left = node.left
    for op, right in zip(node.ops, node.comparators):
        if _dump(left) == _dump(right):
            return "compares an expression with itself"
        if (isinstance(right, ast.Call) and (_dotted(right.func) or "").endswith("approx") and right.args
                and _dump(right.args[0]) == _dump(left)):
            return "compares an expression with pytest.approx of itself"
        if (isinstance(op, ast.GtE) and isinstance(right, ast.Constant) and right.value == 0
                and isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id in ("len", "abs")):
            return f"`{left.func.id}(...) >= 0` always holds"
        left = right
    return None


def _call_problems(node: ast.Call, modules: set[str], functions: set[str]) -> list[str]:
    out = []
    name = _dotted(node.func) or ""
    head, _, last = name.rpartition(".")
    keywords = {k.arg for k in node.keywords}
    close = (last in CLOSE_FUNCTIONS and head in modules) or (not head and last in functions)
    if close and "atol" not in keywords and None not in keywords and len(node.args) < 4:
        out.append(f"{name} without atol (its default atol=1e-8 overrides a small rtol): pass atol=0 or "
                   "an atol with its reason")
    if last == "approx" and head in ("pytest", "") and "abs" not in keywords and None not in keywords \
            and len(node.args) < 3:
        out.append("pytest.approx without abs (its default abs=1e-12): pass abs=0.0 or an abs with its reason")
    compares = (close or (head.endswith("testing") and last.startswith("assert_"))
                or name in ("math.isclose", "isclose"))
    if compares and len(node.args) >= 2 and _dump(node.args[0]) == _dump(node.args[1]):
        out.append(f"{name} compares an expression with itself")
    return out


def _swallows_assertions(node: ast.Try) -> bool:
    body_asserts = any(isinstance(n, ast.Assert) for stmt in node.body for n in ast.walk(stmt))
    if not body_asserts:
        return False
    for h in node.handlers:
        types = [] if h.type is None else (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])
        names = {_dotted(t) for t in types}
        catches = h.type is None or names & CATCH_ALL
        if catches and not any(isinstance(n, ast.Raise) for stmt in h.body for n in ast.walk(stmt)):
            return True
    return False


def _dead_branch(node: ast.If) -> bool:
    return (isinstance(node.test, ast.Constant) and not node.test.value
            and any(isinstance(n, ast.Assert) for stmt in node.body for n in ast.walk(stmt)))


def problems(source: str, filename: str = "<snippet>") -> list[tuple[int, str]]:
    """``(line, reason)`` for every assertion in ``source`` that holds (or never runs) whatever the
    code computes, sorted by line."""
    tree = ast.parse(source, filename=filename)
    modules, functions = _numpy_aliases(tree)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            why = _always_true(node.test)
            if why:
                out.append((node.lineno, why))
        elif isinstance(node, ast.Compare):
            why = _self_compare(node)
            if why:
                out.append((node.lineno, why))
        elif isinstance(node, ast.Call):
            out.extend((node.lineno, why) for why in _call_problems(node, modules, functions))
        elif isinstance(node, ast.Try) and _swallows_assertions(node):
            out.append((node.lineno, "a try whose handler swallows AssertionError around assertions"))
        elif isinstance(node, ast.If) and _dead_branch(node):
            out.append((node.lineno, "assertions inside a branch that never runs"))
    seen: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            if node.name in seen:
                out.append((node.lineno, f"{node.name} redefined (the one at line {seen[node.name]} never runs)"))
            seen[node.name] = node.lineno
    return sorted(out)


# ---- the suite --------------------------------------------------------------------------------

def _unexpected(path, found):
    rel = str(path.relative_to(ROOT))
    lines = path.read_text().splitlines()
    allowed = ALLOWED.get(rel, ())
    return [f"{rel}:{line}: {why}" for line, why in found if lines[line - 1].strip() not in allowed]


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_tautological_assertion(path):
    bad = _unexpected(path, problems(path.read_text(), str(path)))
    assert not bad, "\n".join(bad)


def test_library_close_calls_state_atol():
    """The ``atol`` rule holds in the library too (``ufm``, ``proofs_check``): a tolerance the code
    relies on is stated, not NumPy's default."""
    bad = []
    for path in LIBRARY_FILES:
        found = [(line, why) for line, why in problems(path.read_text(), str(path)) if "atol" in why]
        bad += _unexpected(path, found)
    assert not bad, "\n".join(bad)


def test_allowed_lines_still_break_their_rule():
    """Each allow-list entry is a line that still breaks a rule (a fixed line leaves the list)."""
    stale = []
    for rel, entries in ALLOWED.items():
        path = ROOT / rel
        lines = path.read_text().splitlines()
        flagged = {lines[line - 1].strip() for line, _ in problems(path.read_text(), rel)}
        stale += [f"{rel}: {entry}" for entry in entries if entry not in flagged]
    assert not stale, "fixed (or changed) lines still in ALLOWED:\n" + "\n".join(stale)


# ---- the checker on snippets ------------------------------------------------------------------

FLAGGED = {
    "or True": "assert f(x) == 1 or True",
    "assert True": "assert True",
    "assert constant compare": "assert 1 == 1",
    "assert tuple": "assert (f(x) == 1, 'message')",
    "assert string": "assert 'never empty'",
    "self compare": "assert a == a",
    "self compare call": "assert f(x, k=1) <= f(x, k=1)",
    "self compare chained": "assert 0 <= g(y) <= g(y)",
    "self compare in testing": "import numpy as np\nnp.testing.assert_allclose(f(x), f(x), rtol=1e-9)",
    "self compare in array_equal": "import numpy as np\nnp.testing.assert_array_equal(a.b, a.b)",
    "self isclose": "import math\nassert math.isclose(f(x), f(x))",
    "self approx": "import pytest\nassert f(x) == pytest.approx(f(x), abs=0.0)",
    "len >= 0": "assert len(xs) >= 0",
    "isclose without atol": "import numpy as np\nassert np.isclose(a, b, rtol=1e-12)",
    "allclose without atol": "import numpy as np\nassert np.allclose(a, b)",
    "jnp allclose without atol": "import jax.numpy as jnp\nassert jnp.allclose(a, b, rtol=1e-9)",
    "aliased numpy": "import numpy as xp\nassert xp.allclose(a, b, rtol=1e-9)",
    "bare isclose from numpy": "from numpy import isclose\nassert isclose(a, b, rtol=1e-9)",
    "approx without abs": "import pytest\nassert f(x) == pytest.approx(0.5, rel=1e-9)",
    "dead branch": "if False:\n    assert f(x) == 1",
    "swallowed assertion": "try:\n    assert f(x) == 1\nexcept AssertionError:\n    pass",
    "bare except": "try:\n    assert f(x) == 1\nexcept:\n    print('no')",
    "redefined test": "def test_a():\n    assert f(1)\n\ndef test_a():\n    assert f(2)",
}

ACCEPTED = {
    "or of two conditions": "assert f(x) == 1 or g(x) == 2",
    "or False": "assert f(x) or False",
    "empty-tuple-free": "assert f(x), (x, 'message')",
    "different sides": "assert f(x) == f(y)",
    "different keywords": "assert f(x, k=1) <= f(x, k=2)",
    "testing different": "import numpy as np\nnp.testing.assert_allclose(f(x), g(x), rtol=1e-9)",
    "isclose with atol": "import numpy as np\nassert np.isclose(a, b, rtol=1e-12, atol=0)",
    "allclose positional atol": "import numpy as np\nassert np.allclose(a, b, 1e-9, 0.0)",
    "math isclose": "import math\nassert math.isclose(a, b, rel_tol=1e-12)",
    "other module's isclose": "import torch\nassert torch.isclose(a, b)",
    "approx with abs": "import pytest\nassert f(x) == pytest.approx(0.5, rel=1e-9, abs=0.0)",
    "len > 0": "assert len(xs) > 0",
    "live branch": "if flag:\n    assert f(x) == 1",
    "try that re-raises": "try:\n    assert f(x) == 1\nexcept AssertionError:\n    log()\n    raise",
    "try catching another error": "try:\n    assert f(x) == 1\nexcept ValueError:\n    pass",
    "raise AssertionError": "def check():\n    raise AssertionError('reached')",
    "two tests": "def test_a():\n    assert f(1)\n\ndef test_b():\n    assert f(2)",
    "non-numpy compare": "assert a is not b",
}


@pytest.mark.parametrize("name", FLAGGED)
def test_checker_flags(name):
    assert problems(FLAGGED[name]), name


@pytest.mark.parametrize("name", ACCEPTED)
def test_checker_accepts(name):
    assert problems(ACCEPTED[name]) == [], name


def test_checker_reports_the_line():
    source = "import numpy as np\n\n\ndef test_x():\n    assert np.isclose(f(1), 2.0)\n"
    assert [line for line, _ in problems(source)] == [5]
