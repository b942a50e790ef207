"""A static scan of a submission's own cells for attempts to fool the checks.

The grader does not rely on this scan to be safe: check cells are reset to the lesson's, and a
check counts only if the real check reported a pass through the side channel (see
:mod:`course.grading.checkrun`). The scan is there to *name* what a student tried, and to
withhold points where the code plainly reaches into the checking machinery, including routes
the side channel cannot see (patching the comparison the real check uses).

Findings come in two strengths:

- ``tamper``: rebinding or patching a check, ``print`` or builtins; touching the checking
  internals (``course.checks``, ``course.grading``, ``run_cases``, ``EXERCISES``, ``pass_line``...); printing a pass
  line by hand; reading the grader's environment; reaching into other code's frames, closures or
  the garbage collector's object lists (how a function could read a check's expected answer);
  ``ctypes``. Points for the exercise named (or, if none is named, for the whole notebook) are
  withheld and the row says why.
- ``warning``: things a careful student rarely needs and an attacker often does (importing ``gc``,
  ``inspect``, ``signal`` or ``threading``, killing processes, running programs, writing to absolute
  paths, ``__import__``/``importlib`` or ``getattr``/``setattr`` with a computed name, IPython event
  hooks, a cell too deep or too large to parse). Reported for the instructor to look at; no points
  are taken.

What is *not* evidence (an honest notebook does these): a pass line in a comment or a docstring,
a string that merely mentions "Exercise", and rebinding the name ``check`` or ``print`` (a loop
variable...) in a cell after the last check cell; the grader re-imports ``check`` in every check
cell anyway. Rebinding them *before* a check cell is still flagged.

The scan reads code, so names built at run time (``"_rec" + "order"``) escape it; the runtime
checks (:mod:`.sidechannel`) catch what such code changes, and the notes name the computed access.

Lesson: 00_welcome
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..authoring import notebooks as nbs
from ..checks import env

__all__ = ["Finding", "scan_notebook", "scan_source", "withheld", "USES_REFERENCE"]

USES_REFERENCE = "uses the check's reference answer"      # how a finding names it (the grader flags it)

_GUARDED_BASES = {"check", "course", "checks", "kit", "guard", "grading", "builtins", "__builtins__"}
_INTERNAL_PACKAGES = ("course.checks", "course.grading")   # the checks and the grader: no lesson imports them
_INTERNAL_NAMES = {"EXERCISES", "run_cases", "pass_line", "compare_values", "case_seed", "_recorder", "_guarded",
                   "sidechannel", "unguarded", "_cap_stream", "write_record", "_install_hooks", "_report",
                   "_make_guard", "_make_verifier", "_armed", "_blocked_references", "_guard"}
# reaching into other code's frames, closures and objects: how a function could read a check's expected answer
_TAMPER_ATTRS = {"__closure__", "__globals__", "__code__", "__wrapped__", "f_globals", "f_locals", "f_back",
                 "_getframe", "currentframe", "getouterframes", "settrace", "setprofile", "get_objects",
                 "get_referrers", "get_referents", "cell_contents", "__defaults__", "__kwdefaults__"}
_TAMPER_MODULES = {"ctypes", "builtins"}
_WARN_MODULES = {"gc", "inspect", "signal", "importlib", "resource", "pty", "threading", "_thread"}
_WARN_ATTRS = {"__dict__", "kill", "killpg", "_exit", "register_post_execute", "events"}
_PASS_RE = re.compile(r"PASS\s+([A-Za-z_]\w*)\s*:")
_LESSON_MODULE_RE = re.compile(r"^lesson_\d\d(_[a-z0-9_]+)?$")


@dataclass
class Finding:
    severity: str          # "tamper" or "warning"
    cell: int              # index of the cell in the submitted notebook
    exercise: str | None   # the exercise it concerns, if one is named
    what: str
    rebinds: bool = False  # rebinding the name check/print: harmless after the last check cell

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


def _strip_comments(source: str) -> str:
    """``source`` without its comments (by tokens; line by line if it cannot be tokenized)."""
    import io
    import tokenize

    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type != tokenize.COMMENT]
        return tokenize.untokenize(toks)
    except Exception:  # noqa: BLE001 - unbalanced brackets, odd indentation...
        return "\n".join(re.sub(r"#.*$", "", ln) for ln in source.splitlines())


def _used_strings(tree) -> list[str]:
    """String constants that do something: not docstrings or bare string statements."""
    bare = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in bare]


def _const_str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def scan_source(source: str, cell: int, exercises: list[str]) -> list[Finding]:
    """Findings in one code cell's source."""
    try:
        return _scan_source(source, cell, exercises)
    except (RecursionError, MemoryError):
        return [Finding("warning", cell, None, "the cell is too deeply nested or too large to read; review it by hand")]


def _scan_source(source: str, cell: int, exercises: list[str]) -> list[Finding]:
    found: list[Finding] = []
    names = set(exercises)

    def tamper(what, ex=None, rebinds=False):
        found.append(Finding("tamper", cell, ex, what, rebinds))

    def warn(what):
        found.append(Finding("warning", cell, None, what))

    def pass_lines(texts):
        for text in texts:
            for m in _PASS_RE.finditer(text):
                if m.group(1) in names:
                    tamper(f"writes the pass line of {m.group(1)} by hand", m.group(1))

    if env.PREFIX in source or env.JOB_MARKER in source:
        tamper("reads the grader's environment variables")
    try:
        tree = ast.parse(nbs._strip_magics(source))
    except (SyntaxError, ValueError):
        code = _strip_comments(source)
        pass_lines([code])
        for word in sorted(_INTERNAL_NAMES):
            if re.search(rf"\b{re.escape(word)}\b", code):
                tamper(f"uses the checking internals ({word})")
        if re.search(r"\bcheck\s*\.\s*\w+\s*=(?!=)|\bprint\s*=(?!=)|\bbuiltins\b", code):
            tamper("reassigns a check function, print or builtins")
        return _dedupe(found)
    except (RecursionError, MemoryError):
        warn("the cell is too deeply nested or too large to read; review it by hand")
        return found
    pass_lines(_used_strings(tree))

    def target_findings(t):
        if isinstance(t, (ast.Tuple, ast.List, ast.Starred)):
            for e in (t.elts if not isinstance(t, ast.Starred) else [t.value]):
                target_findings(e)
            return
        parts = _dotted(t)
        if not parts:
            return
        if isinstance(t, ast.Name):
            if t.id in ("print", "check"):
                tamper(f"rebinds the name {t.id!r}", rebinds=True)
            return
        if parts[0] in _GUARDED_BASES or any(_LESSON_MODULE_RE.match(p) for p in parts) or \
                (parts[0] == "sys" and len(parts) > 1 and parts[1] in ("modules", "stdout", "stderr")):
            ex = next((p for p in parts if p in names), None)
            tamper(f"assigns to {'.'.join(parts)}", ex)

    def imported(mod: str, how: str):
        if mod.startswith(_INTERNAL_PACKAGES) or mod.split(".")[0] in _TAMPER_MODULES:
            tamper(f"{how} {mod}")
        elif mod.split(".")[0] in _WARN_MODULES:
            warn(f"{how} {mod}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                target_findings(t)
        elif isinstance(node, ast.NamedExpr):
            target_findings(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            items = [node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else \
                [i.optional_vars for i in node.items if i.optional_vars is not None]
            for t in items:
                target_findings(t)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in ("print", "check"):
                tamper(f"defines its own {node.name!r}", rebinds=True)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for mod in mods:
                imported(mod, "imports")
            if isinstance(node, ast.ImportFrom) and node.module == "course":
                for a in node.names:
                    if a.name in ("checks", "grading"):
                        tamper(f"imports course.{a.name}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course") and \
                    any(a.asname == "print" for a in node.names):
                tamper("imports something as print")
            for a in node.names:
                if a.asname in ("print", "check") and not (isinstance(node, ast.ImportFrom) and
                                                           node.module == "course" and a.name == "check"):
                    tamper(f"imports something as {a.asname!r}", rebinds=True)
        elif isinstance(node, ast.Call):
            fn = _dotted(node.func)
            last = fn[-1] if fn else ""
            if last in ("setattr", "delattr") and node.args:
                base = _dotted(node.args[0])
                if base and (base[0] in _GUARDED_BASES or any(_LESSON_MODULE_RE.match(p) for p in base)):
                    ex = None
                    if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                        ex = node.args[1].value if node.args[1].value in names else None
                    tamper(f"calls {last} on {'.'.join(base)}", ex)
            if last in ("getattr", "setattr", "delattr", "hasattr") and fn == [last] and len(node.args) >= 2 \
                    and _const_str(node.args[1]) is None:
                warn(f"calls {last} with a computed attribute name")
            if last == "__import__" or (last == "import_module" and fn[:1] in (["importlib"], ["import_module"])):
                mod = _const_str(node.args[0]) if node.args else None
                if mod is None:
                    warn(f"imports a module by a computed name ({last})")
                else:
                    imported(mod, "imports")
                    if last == "__import__":
                        warn(f"imports {mod[:60]!r} with __import__")
            if last == "register" and len(fn) >= 2 and fn[-2] == "events":
                warn("registers an IPython event hook (get_ipython().events.register)")
            if last in ("vars", "globals") and node.args and _dotted(node.args[0])[:1] == ["check"]:
                tamper("reaches into the check module's namespace")
            if last == "open" and node.args and isinstance(node.args[0], ast.Constant) and \
                    isinstance(node.args[0].value, str) and node.args[0].value.startswith(("/", "~", "..")):
                warn(f"opens a file outside its folder ({node.args[0].value[:60]!r})")
            if last in ("system", "Popen", "run", "call", "check_output") and fn[0] in ("os", "subprocess"):
                warn(f"runs a program ({'.'.join(fn)})")
        elif isinstance(node, ast.Name) and node.id in _INTERNAL_NAMES:
            tamper(f"uses the checking internals ({node.id})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _INTERNAL_NAMES:
            tamper(f"names the checking internals ({node.value!r})")
        elif isinstance(node, ast.Attribute):
            parts = _dotted(node)
            if node.attr in _INTERNAL_NAMES:
                tamper(f"uses the checking internals ({node.attr})")
            elif node.attr in _TAMPER_ATTRS or (node.attr == "stack" and parts[:1] == ["inspect"]):
                tamper(f"reaches into other code's frames or objects (.{node.attr})")
            elif node.attr.startswith("reference_") and node.attr[len("reference_"):] in names:
                tamper(f"{USES_REFERENCE} (.{node.attr})", node.attr[len("reference_"):])
            elif parts[:1] == ["course"] and node.attr in ("checks", "grading"):
                tamper(f"reaches into course.{node.attr}")
            elif node.attr in _WARN_ATTRS:
                warn(f"uses .{node.attr}")
            elif node.attr in ("modules",) and parts[:1] == ["sys"]:
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


def withheld(findings: list[Finding], exercise: str) -> list[Finding]:
    """The findings for which the grader withholds ``exercise``'s points: tampering aimed at it or at no
    exercise in particular (the same rule for the grader and the self-check)."""
    return [f for f in findings if f.severity == "tamper" and f.exercise in (None, exercise)]


def scan_notebook(nb, exercises: list[str], check_sources: list[str] = ()) -> list[Finding]:
    """Findings in a submission's code cells.

    Skipped: cells that are exactly one of the lesson's check cells (``check_sources``) and the
    standard setup cell (its Colab branch legitimately uses ``sys`` and ``subprocess``). An edited
    check cell is scanned: the grader replaces it, but what was written there still says something.
    """
    unchanged = {s.strip() for s in check_sources}
    found = []
    check_cells = {}
    for i, cell in enumerate(nb.cells):
        try:
            if nbs.is_check_cell(cell):
                check_cells.setdefault(nbs.check_name(cell.get("source", "")), i)
        except Exception:  # noqa: BLE001 - a check cell too odd to read: judged like any cell
            pass
    # rebinding ``check``/``print`` can only matter before a check cell; with a check cell missing
    # (the grader puts it back, after the function it checks) every rebinding counts
    last_check = max(check_cells.values()) if set(exercises) <= set(check_cells) else len(nb.cells)
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if not isinstance(src, str):
            continue
        try:
            if src.strip() in unchanged or (nbs.is_setup_cell(cell) and _is_standard_setup(src)):
                continue
            cell_found = scan_source(src, i, exercises)
        except Exception as e:  # noqa: BLE001 - never let one odd cell stop the grading of the rest
            cell_found = [Finding("warning", i, None, f"the cell could not be scanned ({type(e).__name__}); "
                                                      "review it by hand")]
        found += [f for f in cell_found if not (f.rebinds and i > last_check)]
    return found


def _is_standard_setup(source: str) -> bool:
    from ..authoring.transforms import setup_source

    first = source.splitlines()[0] if source else ""
    m = re.match(r"# SETUP (\S+):", first)
    return bool(m) and source.strip() == setup_source(m.group(1)).strip()
