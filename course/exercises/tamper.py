"""A static scan of a submission's own cells for attempts to fool the checks.

The grader does not rely on this scan to be safe: check cells are reset to the lesson's, and a
check counts only if the real check reported a pass through the side channel (see
:mod:`course.exercises.checkrun`). The scan is there to *name* what a student tried, and to
withhold points where the code plainly reaches into the checking machinery, including routes
the side channel cannot see (patching the comparison the real check uses).

Findings come in two strengths:

- ``tamper``: rebinding or patching a check, ``print`` or builtins; touching the checking
  internals (``course.exercises``, ``run_cases``, ``EXERCISES``, ``pass_line``...); printing a pass
  line by hand; reading the grader's environment; reaching into other code's frames, closures or
  the garbage collector's object lists (how a function could read a check's expected answer);
  ``ctypes``. Points for the exercise named (or, if none is named, for the whole notebook) are
  withheld and the row says why.
- ``warning``: things a careful student rarely needs and an attacker often does (importing ``gc``,
  ``inspect`` or ``signal``, killing processes, running programs, writing to absolute paths).
  Reported for the instructor to look at; no points are taken.

Lesson: 00_welcome
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from . import notebooks as nbs

__all__ = ["Finding", "scan_notebook", "scan_source"]

_GUARDED_BASES = {"check", "course", "checking", "exercises", "builtins", "__builtins__"}
_INTERNAL_NAMES = {"EXERCISES", "run_cases", "pass_line", "compare_values", "case_seed", "_recorder", "_guarded",
                   "sidechannel", "unguarded", "Exercise", "_cap_stream", "write_record"}
# reaching into other code's frames, closures and objects: how a function could read a check's expected answer
_TAMPER_ATTRS = {"__closure__", "__globals__", "__code__", "__wrapped__", "f_globals", "f_locals", "f_back",
                 "_getframe", "currentframe", "getouterframes", "settrace", "setprofile", "get_objects",
                 "get_referrers", "get_referents"}
_TAMPER_MODULES = {"ctypes", "builtins"}
_WARN_MODULES = {"gc", "inspect", "signal", "importlib", "resource", "pty"}
_WARN_ATTRS = {"__dict__", "kill", "killpg", "_exit", "register_post_execute", "events"}
_PASS_RE = re.compile(r"PASS\s+([A-Za-z_]\w*)\s*:")
_LESSON_MODULE_RE = re.compile(r"^lesson_\d\d$")


@dataclass
class Finding:
    severity: str          # "tamper" or "warning"
    cell: int              # index of the cell in the submitted notebook
    exercise: str | None   # the exercise it concerns, if one is named
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.what}"


def _dotted(node) -> list[str]:
    """``a.b.c`` -> ``["a", "b", "c"]``; subscripts and calls are looked through."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            break
        else:
            break
    return parts[::-1]


def scan_source(source: str, cell: int, exercises: list[str]) -> list[Finding]:
    """Findings in one code cell's source."""
    found: list[Finding] = []
    names = set(exercises)

    def tamper(what, ex=None):
        found.append(Finding("tamper", cell, ex, what))

    def warn(what):
        found.append(Finding("warning", cell, None, what))

    for m in _PASS_RE.finditer(source):
        if m.group(1) in names:
            tamper(f"writes the pass line of {m.group(1)} by hand", m.group(1))
    if "COURSE_GRADING" in source or "COURSE_JOB_MARKER" in source:
        tamper("reads the grader's environment variables")
    try:
        tree = ast.parse(nbs._strip_magics(source))
    except SyntaxError:
        for word in sorted(_INTERNAL_NAMES):
            if re.search(rf"\b{re.escape(word)}\b", source):
                tamper(f"uses the checking internals ({word})")
        if re.search(r"\bcheck\s*\.\s*\w+\s*=(?!=)|\bprint\s*=(?!=)|\bbuiltins\b", source):
            tamper("reassigns a check function, print or builtins")
        return found

    def target_findings(t):
        if isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                target_findings(e)
            return
        parts = _dotted(t)
        if not parts:
            return
        if isinstance(t, ast.Name):
            if t.id in ("print", "check"):
                tamper(f"rebinds the name {t.id!r}")
            return
        if parts[0] in _GUARDED_BASES or any(_LESSON_MODULE_RE.match(p) for p in parts) or \
                (parts[0] == "sys" and len(parts) > 1 and parts[1] in ("modules", "stdout", "stderr")):
            ex = next((p for p in parts if p in names), None)
            tamper(f"assigns to {'.'.join(parts)}", ex)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                target_findings(t)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            items = [node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else \
                [i.optional_vars for i in node.items if i.optional_vars is not None]
            for t in items:
                target_findings(t)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in ("print", "check"):
                tamper(f"defines its own {node.name!r}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for mod in mods:
                if mod.startswith("course.exercises") or mod.split(".")[0] in _TAMPER_MODULES:
                    tamper(f"imports {mod}")
                elif mod.split(".")[0] in _WARN_MODULES:
                    warn(f"imports {mod}")
            if isinstance(node, ast.ImportFrom) and node.module == "course":
                for a in node.names:
                    if a.name == "exercises":
                        tamper("imports course.exercises")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course") and \
                    any(a.asname == "print" for a in node.names):
                tamper("imports something as print")
        elif isinstance(node, ast.Call):
            fn = _dotted(node.func)
            if fn and fn[-1] in ("setattr", "delattr") and node.args:
                base = _dotted(node.args[0])
                if base and (base[0] in _GUARDED_BASES or any(_LESSON_MODULE_RE.match(p) for p in base)):
                    ex = None
                    if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                        ex = node.args[1].value if node.args[1].value in names else None
                    tamper(f"calls {fn[-1]} on {'.'.join(base)}", ex)
            if fn and fn[-1] in ("vars", "globals") and node.args and _dotted(node.args[0])[:1] == ["check"]:
                tamper("reaches into the check module's namespace")
            if fn and fn[-1] == "open" and node.args and isinstance(node.args[0], ast.Constant) and \
                    isinstance(node.args[0].value, str) and node.args[0].value.startswith(("/", "~", "..")):
                warn(f"opens a file outside its folder ({node.args[0].value[:60]!r})")
            if fn and fn[-1] in ("system", "Popen", "run", "call", "check_output") and fn[0] in ("os", "subprocess"):
                warn(f"runs a program ({'.'.join(fn)})")
        elif isinstance(node, ast.Name) and node.id in _INTERNAL_NAMES:
            tamper(f"uses the checking internals ({node.id})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _INTERNAL_NAMES:
            tamper(f"names the checking internals ({node.value!r})")
        elif isinstance(node, ast.Attribute):
            if node.attr in _INTERNAL_NAMES:
                tamper(f"uses the checking internals ({node.attr})")
            elif node.attr in _TAMPER_ATTRS or (node.attr == "stack" and _dotted(node)[:1] == ["inspect"]):
                tamper(f"reaches into other code's frames or objects (.{node.attr})")
            elif node.attr in _WARN_ATTRS:
                warn(f"uses .{node.attr}")
            elif node.attr in ("modules",) and _dotted(node)[:1] == ["sys"]:
                warn("touches sys.modules")
    return _dedupe(found)


def _dedupe(found: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in found:
        key = (f.severity, f.cell, f.exercise, f.what)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def scan_notebook(nb, exercises: list[str], check_sources: list[str] = ()) -> list[Finding]:
    """Findings in a submission's code cells.

    Skipped: cells that are exactly one of the lesson's check cells (``check_sources``) and the
    standard setup cell (its Colab branch legitimately uses ``sys`` and ``subprocess``). An edited
    check cell is scanned: the grader replaces it, but what was written there still says something.
    """
    unchanged = {s.strip() for s in check_sources}
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if src.strip() in unchanged or (nbs.is_setup_cell(cell) and _is_standard_setup(src)):
            continue
        found += scan_source(src, i, exercises)
    return found


def _is_standard_setup(source: str) -> bool:
    from .build import setup_source

    first = source.splitlines()[0] if source else ""
    m = re.match(r"# SETUP (\S+):", first)
    return bool(m) and source.strip() == setup_source(m.group(1)).strip()
