"""The package layout holds: imports point down DESIGN.md's layers, never up and never in a circle, and torch stays
inside the encoders.

Every import statement counts, at the top of a module, inside a function or under TYPE_CHECKING, because each is a
dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import embedscope

PACKAGE = Path(embedscope.__file__).parent
# Top to bottom. A module may import its own package, any package of a lower layer, and a package of its own layer
# as long as no circle results (the circle tests below). The top-level __init__ is the public face over all of them.
LAYERS = (
    ("cli", "server", "__init__", "__main__"),
    ("pipeline",),
    ("atlas", "sources", "encoders", "maps", "clusters", "metrics", "figures", "datasets"),
    ("formats",),
    ("errors", "progress"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT_METADATA = {"__version__"}  # `from embedscope import __version__` reads the package's version, no layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Each embedscope module that `path` imports, with the line, resolved to the module (or package) imported."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "embedscope"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "embedscope":
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            if node.module == "embedscope":
                found += [(node.lineno, f"embedscope.{alias.name}") for alias in node.names
                          if alias.name not in ROOT_METADATA]
            else:
                found += [(node.lineno, _deepest_module(node.module, alias.name)) for alias in node.names]
    return found


def _deepest_module(module: str, name: str) -> str:
    """`from a.b import c` imports module a.b.c when c is a module of a.b, else a.b."""
    candidate = PACKAGE.parent.joinpath(*f"{module}.{name}".split("."))
    return f"{module}.{name}" if candidate.with_suffix(".py").exists() or candidate.is_dir() else module


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = sorted(PACKAGE.rglob("*.py"))
EDGES = [(module_name(path), line, target) for path in SOURCES for line, target in imported_modules(path)]


def test_every_package_and_top_level_module_has_a_layer():
    tops = {path.stem if path.suffix else path.name for path in PACKAGE.iterdir()
            if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists())}
    assert tops == set(RANK), f"give these a layer in DESIGN.md and here: {sorted(tops ^ set(RANK))}"


def test_the_top_level_holds_only_packages_and_the_shared_modules():
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py", "progress.py"]


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{source} (line {line}) imports {target}" for source, line, target in EDGES
              if RANK[layer_of(target)] < RANK[layer_of(source)]]
    assert not upward, "imports must point down the layers:\n" + "\n".join(upward)


def test_packages_do_not_import_each_other_in_a_circle():
    graph: dict[str, set[str]] = {}
    for source, _, target in EDGES:
        if layer_of(source) != layer_of(target):
            graph.setdefault(layer_of(source), set()).add(layer_of(target))
    assert find_circle(graph) is None, f"packages in a circle: {' -> '.join(find_circle(graph))}"


def test_modules_do_not_import_each_other_in_a_circle():
    graph: dict[str, set[str]] = {}
    for source, _, target in EDGES:
        if source != target:
            graph.setdefault(source, set()).add(target)
    assert find_circle(graph) is None, f"modules in a circle: {' -> '.join(find_circle(graph))}"


@pytest.mark.parametrize("path", [path for path in SOURCES if "encoders" not in path.parts],
                         ids=lambda path: module_name(path))
def test_torch_is_imported_at_module_level_only_in_the_encoders(path):
    tree = ast.parse(path.read_text())
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [alias.name for node in top_level for alias in node.names if isinstance(node, ast.Import)]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module]
    assert not [name for name in names if name.split(".")[0] == "torch"], f"{path} imports torch at load time"


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the directed graph as a path that ends where it starts, or None when there is none."""
    finished: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in finished:
            return None
        for step in sorted(graph.get(node, ())):
            circle = visit(step, [*path, node])
            if circle:
                return circle
        finished.add(node)
        return None

    return next((circle for node in sorted(graph) if (circle := visit(node, []))), None)


@pytest.mark.parametrize(
    ("graph", "circle"),
    [
        ({"a": {"b"}, "b": {"c"}}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b", "c"}, "c": {"d"}, "d": {"c"}}, ["c", "d", "c"]),
        ({"a": {"a"}}, ["a", "a"]),
    ],
)
def test_find_circle_finds_circles_and_only_circles(graph, circle):
    assert find_circle(graph) == circle
