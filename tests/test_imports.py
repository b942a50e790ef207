"""The package's import graph: arrows run one way (no cycles, function-level imports included), and
the three rooms of the exercise system keep to their audiences."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "course"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: dict) -> set[str]:
    """Every ``course`` module that ``name`` imports, anywhere in its source (functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known}
            out |= subs
            if len(subs) < len(node.names) and mod in known:    # names from the module itself
                out.add(mod)
    out.discard(name)
    return out - _ancestors(name)


def _ancestors(name: str) -> set[str]:
    """A module's own packages: always initialised before it, so an import of one is no cycle."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _dynamic(name: str, path: Path, known: dict) -> set[str]:
    """What a module loads by name (``importlib.import_module``): a package's lazy submodules, and every
    module named in a string (``course.cli``'s commands)."""
    source = path.read_text(encoding="utf-8")
    if "import_module" not in source:
        return set()
    strings = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    out = strings & set(known)
    if path.name == "__init__.py":
        children = {m for m in known if m.rpartition(".")[0] == name}
        named = {c for c in children if c.rpartition(".")[2] in strings}
        out |= named or children            # the names a package lists, or else any child it may be asked for
    out.discard(name)
    return out - _ancestors(name)


def graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) | _dynamic(name, path, known) for name, path in known.items()}


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_walk_sees_function_level_and_dynamic_imports():
    g = graph()
    assert "course.grading.selfcheck" in g["course.check"]          # inside check.__getattr__
    assert "course.checks.kit" in g["course.checks"]
    assert "course.checks.lesson_00" in g["course.checks"]          # loaded by name, from the index
    assert "course.listen.synth" in g["course.listen"] and "course.grading.grade" in g["course.cli"]


def test_no_import_cycle_anywhere_in_the_package():
    cycle = _cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_would_be_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _room(name: str) -> str | None:
    for room in ("checks", "grading", "authoring"):
        if name == f"course.{room}" or name.startswith(f"course.{room}."):
            return room
    return None


@pytest.mark.parametrize("room,never", [
    ("checks", {"grading", "authoring"}),      # what student kernels load knows nothing of the grader or the build
    ("authoring", {"grading"}),                # the build never imports the grader
])
def test_the_rooms_import_one_way(room, never):
    bad = [(a, b) for a, targets in graph().items() if _room(a) == room for b in targets if _room(b) in never]
    assert not bad, bad


def test_no_lesson_module_or_layer_below_imports_the_grader():
    bad = [(a, b) for a, targets in graph().items() if _room(a) != "grading" and a not in ("course.check", "course.cli")
           for b in targets if _room(b) == "grading"]
    assert not bad, bad
