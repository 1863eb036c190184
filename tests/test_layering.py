"""Import layering of the library: lower floors never import higher ones, and no module imports itself
through others (no cycles), counting imports inside functions too (they are dependencies as well).

Floors, bottom to top, by data flow: the shared helpers (errors, atomic writes, JSON reading, paths,
processes, mirror flips, the heap setting), events, simulate, models, pipelines, evaluation, training,
the API (``api.py``, ``demo.py``), the CLI.
Evaluation sits below training because training validates with its metrics and protocol; nothing in
evaluation needs training. The root package ``lase_e2v`` only defines ``__version__`` and lazy
re-exports of the API, so it is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lase_e2v

PACKAGE_DIR = Path(lase_e2v.__file__).parent
FLOORS = (
    ("errors", "atomic", "jsonfile", "paths", "processes", "flips", "heap"),
    ("events",),
    ("simulate",),
    ("models",),
    ("pipelines",),
    ("evaluation",),
    ("training",),
    ("api", "demo"),
    ("cli",),
)
FLOOR_OF = {name: level for level, names in enumerate(FLOORS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The library modules ``path`` imports anywhere in its code (``from a import b`` counts a.b if
    b is a module, else a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules and name != "lase_e2v")
    return found


def floor(module: str) -> int:
    return FLOOR_OF[module.split(".")[1]]


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items() if name != "lase_e2v"}


def test_every_module_has_a_floor():
    assert {module.split(".")[1] for module in import_graph()} <= set(FLOOR_OF)


def test_lower_floors_never_import_higher_ones():
    upward = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                    for target in targets if floor(target) > floor(module))
    assert upward == []


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative-free for this small graph (recursion depth = module count)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    graph = import_graph()
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    assert cycles == []


def test_the_checks_can_fail():
    assert strongly_connected_components({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"], ["c"]]
    assert floor("lase_e2v.pipelines.lase") > floor("lase_e2v.models.video_unet")


def test_pipelines_are_importable_from_their_package():
    import lase_e2v.pipelines as pipelines
    from lase_e2v.pipelines.output import ReconstructionPipeline

    assert all(getattr(pipelines, name) is not None for name in pipelines.__all__)
    assert issubclass(pipelines.LaSeE2VPipeline, ReconstructionPipeline)
    assert issubclass(pipelines.IntegratorPipeline, ReconstructionPipeline)
