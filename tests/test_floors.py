"""The floors of docs/design.md ("Layout"), read from the source: no import runs up a floor.

Every import statement of the toolkit's own modules is read with :mod:`ast` (module
level and inside functions alike, since a lazy import is still a dependency) and
checked against the table below, which is the one written copy of docs/design.md's
floor table. The same reading finds import circles between modules.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NS = "unlearn_audit"

# floor -> the floors it may import (besides itself). "" is the namespace's own top
# floor (unlearn_audit/: the public API and the command line), which may import all.
FLOORS: dict[str, set[str]] = {
    "runfiles": set(),
    "learning": set(),
    "unlearners": {"learning"},
    "attacks": {"learning", "unlearners"},
    "difficulty": {"learning", "unlearners", "attacks", "runfiles"},
    "audit": {"learning", "unlearners", "attacks", "difficulty", "runfiles"},
    "reports": {"runfiles"},
    "": {"learning", "unlearners", "attacks", "difficulty", "audit", "reports", "runfiles"},
}
# import circles that exist today, each to be removed (the test fails when one is gone
# too, so that this list only shrinks)
KNOWN_CYCLES: set[frozenset[str]] = set()

# no module longer than this; the files over it today, each to be split (this list
# only shrinks: the test fails when one of them is back under the limit)
MAX_LINES = 400
KNOWN_LONG: set[str] = set()


def _package_dirs() -> dict[str, Path]:
    """Floor name -> its folder, from pyproject.toml's package-dir (one place)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = cfg["package-dir"]
    assert sorted(cfg["packages"]) == sorted(dirs), "packages and package-dir disagree"
    return {name.removeprefix(NS).lstrip("."): ROOT / path for name, path in dirs.items()}


def _modules() -> dict[str, Path]:
    """Dotted module name (unlearn_audit.audit.pipeline) -> file, for every module."""
    found = {}
    for floor, folder in _package_dirs().items():
        prefix = f"{NS}.{floor}" if floor else NS
        for path in sorted(folder.glob("*.py")):
            name = prefix if path.stem == "__init__" else f"{prefix}.{path.stem}"
            found[name] = path
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement of one file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            # `from unlearn_audit import audit` imports the subpackage unlearn_audit.audit
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _floor(module: str) -> str | None:
    """The floor of one of our modules ('' for the top), None for a third-party one."""
    if module != NS and not module.startswith(NS + "."):
        return None
    head = module.split(".")[1] if "." in module else ""
    return head if head in FLOORS else ""


def test_every_package_folder_is_installed():
    """A folder of the namespace with an __init__.py that pyproject.toml does not list
    would work from a source tree and be missing from the installed package."""
    dirs = _package_dirs()
    listed = {p.resolve() for p in dirs.values()}
    for folder in dirs.values():
        for init in folder.rglob("__init__.py"):
            assert init.parent.resolve() in listed, f"{init.parent} is not in pyproject.toml"
    assert set(dirs) == set(FLOORS), "a package without a floor in this test's table"


def test_no_import_runs_up_a_floor():
    bad = []
    for module, path in _modules().items():
        own = _floor(module)
        for line, imported in _imports(path):
            floor = _floor(imported)
            if floor is None or floor == own or imported == NS:
                continue
            if floor not in FLOORS[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({own or 'top'}) imports {imported}")
    assert not bad, "imports that run up a floor:\n" + "\n".join(bad)


def test_no_top_level_package_names_in_imports():
    """Every import of our code goes through the namespace (`import audit` must fail
    after `pip install`, so nothing may rely on it)."""
    old = {"learning", "unlearners", "attacks", "difficulty", "audit", "reports", "runfiles"}
    files = [*_modules().values(), *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    files += [*ROOT.glob("examples/*.py")]
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {m}"
        for p in files
        for line, m in _imports(p)
        if m.split(".")[0] in old
    ]
    assert not bad, "\n".join(bad)


def test_no_module_is_longer_than_the_limit():
    lengths = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    long = {m for m, n in lengths.items() if n > MAX_LINES}
    assert not long - KNOWN_LONG, {m: lengths[m] for m in long - KNOWN_LONG}
    assert not KNOWN_LONG - long, f"now short, remove from KNOWN_LONG: {KNOWN_LONG - long}"


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.add(frozenset(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for _, imported in _imports(path):
            if imported in mods and imported != module:
                # a package's __init__ re-exporting its own modules is not a circle
                if not (mods[imported].stem == "__init__" and module.startswith(imported + ".")):
                    graph[module].add(imported)
    return graph


def test_no_import_circle():
    cycles = _cycles(_graph())
    new = cycles - KNOWN_CYCLES
    assert not new, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)
    assert not KNOWN_CYCLES - cycles, "a known circle is gone: remove it from KNOWN_CYCLES"


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, {frozenset({"a", "b"})}),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, set()),
    ],
)
def test_the_circle_finder_finds_circles(graph, expected):
    assert _cycles(graph) == expected
