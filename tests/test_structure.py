"""The house rules that keep the package readable, checked on its source (no imports run).

- no import cycle inside ``batch_widget`` (every import counts: top level, in a function, or
  for type checking only);
- data flows one way: the client, models, pollers, jobs and frames import no widget module and
  no widget library; the simulator imports nothing of the client side;
- no module over 700 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "batch_widget"
MAX_LINES = 700

# the drawing layer: only these may import anywidget / ipywidgets / traitlets or each other
WIDGET_MODULES = {"batch_widget.views", "batch_widget.widget", "batch_widget.job_widget", "batch_widget.summary"}
WIDGET_LIBRARIES = {"anywidget", "ipywidgets", "traitlets"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module (of the package, or outside it) that ``path`` imports, resolved to a name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from . import summary` imports a module
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = set()
        for target in imports_of(name, path, known):
            # importing a.b.c runs a/__init__ and a/b/__init__ too; an edge to the package
            # itself (the public face, `import batch_widget`) is left out: it is the top
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "batch_widget" and not name.startswith(target + "."):
                targets.add(target)
        edges[name] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_imports_and_finds_a_cycle() -> None:
    edges = graph()
    # it resolves relative imports, package-level ones included
    assert "batch_widget.client" in edges["batch_widget.poller"]
    assert "batch_widget.jobs.manifest" in edges["batch_widget.jobs.job"]
    assert "batch_widget.jobs" in edges["batch_widget.job_widget"]
    # and it finds a cycle when there is one
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_the_package() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(n for n in modules() if n not in WIDGET_MODULES and not n.endswith("_widget")))
def test_lower_layers_import_no_widget(name: str) -> None:
    mods = modules()
    found = imports_of(name, mods[name], set(mods))
    drawn = {m for m in found if m in WIDGET_MODULES or m.split(".")[0] in WIDGET_LIBRARIES}
    allowed = {"batch_widget"}  # the package's public face is the top, never imported below
    assert not drawn - allowed, f"{name} imports the drawing layer: {sorted(drawn)}"
    assert "batch_widget" not in found, f"{name} imports the package's public face (an upward import)"


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("batch_widget.simulator")))
def test_the_simulator_shares_nothing_with_the_client_side(name: str) -> None:
    mods = modules()
    outside = {
        m for m in imports_of(name, mods[name], set(mods))
        if m.startswith("batch_widget") and not m.startswith("batch_widget.simulator")
    }  # fmt: skip
    assert not outside, f"{name} imports {sorted(outside)}: the simulator is written from the spec alone"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_700_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by concern (docs/architecture.md)"
