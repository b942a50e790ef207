"""Notebook helpers shared by the build, the self-check and the grader.

Reading and writing notebooks deterministically, finding solution regions, setup cells and
check cells, the pass-line output a check cell must show, and cleaning outputs (audio, widget
state, oversized HTML) before a notebook is committed.

Lesson: 00_welcome
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExerciseError
from ..checks.guard import pass_line

__all__ = ["BEGIN", "END", "CHECK_MARKER", "SETUP_MARKER", "read_notebook", "parse_notebook", "dumps",
           "is_check_cell", "check_name", "check_cells", "is_setup_cell", "stub_source",
           "has_solution", "pass_output", "cell_text_output", "defined_names", "lesson_id_from_path",
           "lesson_of", "sanitize_outputs", "LESSON_FILE_RE", "source_hash", "syntax_error"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
SETUP_MARKER = "# SETUP"
DISPLAY_ONLY_TAG = "display-only"    # a cell that only shows or plays something; checking runs skip it
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = "*Write your answer here.*"
LESSON_FILE_RE = re.compile(r"^(\d\d)_[A-Za-z0-9_]+$")
_CHECK_CALL_RE = re.compile(r"\bcheck\.([A-Za-z_]\w*)\s*\(")

HTML_LIMIT = 50_000          # bytes of text/html kept in a committed output
SVG_LIMIT = 250_000          # bytes of SVG kept (a few measures of engraved score)
NOTEBOOK_WARN_BYTES = 1_000_000


# ------------------------------------------------------------------------------------ I/O
def skip_slow_optional_imports() -> None:
    """Called by the ``build``/``check``/``grade`` commands before nbformat loads.

    nbformat imports jsonschema, which builds an IRI grammar (about 1.5 s) when the optional
    ``rfc3987_syntax`` package is installed; notebook schemas never use it. Marking it absent
    keeps a command from paying that on every run. Never done on import, only by commands.
    """
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def parse_notebook(text: str | bytes, where: str = "notebook"):
    """Parse notebook JSON into an ``nbformat`` v4 node, or raise :class:`ExerciseError` saying why not."""
    import nbformat
    import nbformat.v4.nbjson

    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise ExerciseError(f"{where} is not a notebook: not valid JSON ({str(e)[:80]}).") from None
    if not isinstance(data, dict):
        raise ExerciseError(f"{where} is not a notebook: the JSON is a {type(data).__name__}, not an object.")
    major = data.get("nbformat")
    if major is None:
        raise ExerciseError(f"{where} is not a notebook: it has no 'nbformat' version.")
    if not isinstance(major, int) or major < 4:
        raise ExerciseError(f"{where} is in notebook format {major!r}; open it in JupyterLab and save it again "
                            "(format 4 is needed).")
    if major > 4:
        raise ExerciseError(f"{where} is in notebook format {major}, newer than this course understands (4).")
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise ExerciseError(f"{where} is not a notebook: it has no list of cells.")
    try:
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
                raise ValueError("a cell of unknown type")
            if not isinstance(cell.get("source", ""), (str, list)):
                raise ValueError("a cell's source is not text")
            if cell["cell_type"] == "code":
                if not isinstance(cell.get("outputs", []), list):
                    raise ValueError("a cell's outputs are not a list")
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
            cell.setdefault("source", "")
            cell.setdefault("metadata", {})
        data.setdefault("metadata", {})
        nb = nbformat.v4.nbjson.JSONReader().to_notebook(data)
        for cell in nb.cells:
            if not isinstance(cell.source, str):
                raise ValueError("a cell's source is not text")
    except (ValueError, TypeError, AttributeError, KeyError) as e:
        raise ExerciseError(f"{where} is a damaged notebook ({str(e)[:80]}).") from None
    return nb


def read_notebook(path: str | Path):
    """Read a notebook file (see :func:`parse_notebook`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExerciseError(f"Cannot read {path}: {e.strerror or e}.") from None
    return parse_notebook(raw, where=path.name)


def dumps(nb) -> str:
    """The notebook as stable JSON text: sorted keys, one-space indent, a final newline."""
    import nbformat

    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def source_hash(source: str) -> str:
    """The short hash the grading side channel records for a cell's source."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


# ------------------------------------------------------------------------------------ cells
def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_check_cell(cell) -> bool:
    """A code cell marked ``# NBVAL_CHECK_OUTPUT`` (comment line or ``nbval-check-output`` tag)."""
    if cell.get("cell_type") != "code":
        return False
    tags = cell.get("metadata", {}).get("tags", []) or []
    if isinstance(tags, list) and "nbval-check-output" in tags:
        return True
    return any(line.strip().lstrip("#").strip() == "NBVAL_CHECK_OUTPUT" and line.strip().startswith("#")
               for line in cell.get("source", "").splitlines())


def check_name(source: str) -> str | None:
    """The exercise a check cell checks: the ``NAME`` in its ``check.NAME(...)`` call."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        m = _CHECK_CALL_RE.search(source)
        return m.group(1) if m else None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "check"):
            return node.func.attr
    m = _CHECK_CALL_RE.search(source)       # e.g. inside a magic such as %time
    return m.group(1) if m else None


def check_cells(nb) -> list[tuple[int, str | None]]:
    """``(cell index, exercise name)`` for every check cell, in order."""
    return [(i, check_name(c.source)) for i, c in enumerate(nb.cells) if is_check_cell(c)]


def is_setup_cell(cell) -> bool:
    """The setup cell: a code cell whose first line starts with ``# SETUP``."""
    return cell.get("cell_type") == "code" and _first_line(cell.get("source", "")).startswith(SETUP_MARKER)


def has_solution(source: str) -> bool:
    return any(line.strip() == BEGIN for line in source.splitlines())


def stub_source(source: str, cell_type: str = "code", where: str = "a cell") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region (markers included).

    In code the region becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` indented like
    the BEGIN line; in markdown it becomes an invitation to answer.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped == END:
            raise ExerciseError(f"{where}: '{END}' without a '{BEGIN}' before it.")
        if stripped != BEGIN:
            out.append(line)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            if lines[j].strip() == BEGIN:
                raise ExerciseError(f"{where}: a '{BEGIN}' inside another solution region.")
            j += 1
        if j == len(lines):
            raise ExerciseError(f"{where}: '{BEGIN}' is never closed by '{END}'.")
        indent = line[: len(line) - len(line.lstrip())]
        if cell_type == "code":
            out += [f"{indent}{STUB_LINES[0]}\n", f"{indent}{STUB_LINES[1]}\n"]
        else:
            out.append(f"{indent}{MARKDOWN_STUB}\n")
        i = j + 1
    text = "".join(out)
    if not source.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


def _strip_magics(source: str) -> str:
    """Source with IPython magics and shell escapes commented out, so ``ast`` can read it."""
    return "\n".join("#" + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def defined_names(source: str) -> set[str]:
    """Names a code cell defines at top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return set(re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", source, flags=re.M))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def syntax_error(source: str) -> str | None:
    """Why a code cell is not valid Python, with the line (``"IndentationError on line 3: ..."``), or None.

    IPython's magics and shell escapes are left out as IPython runs them, top-level ``await`` is
    allowed as IPython allows it, and a cell magic (``%%bash``...) is not Python, so never an error.
    """
    if _first_line(source).startswith("%%"):
        return None
    try:
        compile(_strip_magics(source), "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as e:
        where = f" on line {e.lineno}" if e.lineno else ""
        text = (e.text or "").strip()
        return f"{type(e).__name__}{where}: {e.msg}" + (f" (`{text[:80]}`)" if text else "")
    except (ValueError, RecursionError, MemoryError, OverflowError):    # null bytes, a cell nested too deeply
        return None
    return None


# ------------------------------------------------------------------------------------ outputs
def pass_output(name: str):
    """The output a passing check cell shows: one stdout line."""
    import nbformat

    return nbformat.v4.new_output("stream", name="stdout", text=pass_line(name) + "\n")


def cell_text_output(cell) -> str:
    """All stream text and plain-text results of a code cell, joined (errors as ``Name: value``)."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}\n")
    return "".join(parts)


def _mime_text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def sanitize_outputs(nb, html_limit: int = HTML_LIMIT, svg_limit: int = SVG_LIMIT) -> list[str]:
    """Make executed outputs fit for git, in place; return notes on what was removed.

    Drops outputs that carry audio or widget views (they are huge, and useless without a live
    kernel), drops JavaScript, drops HTML over ``html_limit`` and SVG over ``svg_limit`` bytes
    (keeping the other representations, e.g. the plain-text fallback), and strips widget state
    from the notebook's metadata. PNG figures stay.
    """
    notes: list[str] = []
    nb.metadata.pop("widgets", None)
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("widgets", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") not in ("display_data", "execute_result"):
                kept.append(out)
                continue
            data = out.get("data", {})
            if any(k.startswith("audio/") for k in data) or "<audio" in _mime_text(data.get("text/html", "")):
                notes.append(f"cell {index}: removed an audio player")
                continue
            if "application/vnd.jupyter.widget-view+json" in data:
                notes.append(f"cell {index}: removed a widget view")
                continue
            for key in ("application/javascript", "text/javascript"):
                if data.pop(key, None) is not None:
                    notes.append(f"cell {index}: removed JavaScript output")
            for key, limit in (("text/html", html_limit), ("image/svg+xml", svg_limit)):
                if key in data and len(_mime_text(data[key]).encode("utf-8")) > limit:
                    size = len(_mime_text(data.pop(key)).encode("utf-8")) // 1000
                    notes.append(f"cell {index}: removed {size} kB of {key}")
            out.metadata = {k: v for k, v in out.get("metadata", {}).items() if not k.startswith("application/vnd")}
            if not data:
                continue
            kept.append(out)
        cell.outputs = kept
    return notes


# ------------------------------------------------------------------------------------ lessons
def lesson_id_from_path(path: str | Path) -> str | None:
    """``"00_welcome"`` for ``.../00_welcome.ipynb``; None if the name is not a lesson's."""
    stem = Path(path).stem
    return stem if LESSON_FILE_RE.match(stem) else None


@dataclass
class LessonMatch:
    lesson: str | None
    how: str


def lesson_of(nb, path: str | Path | None, known: dict[str, list[str]]) -> LessonMatch:
    """Which lesson a (possibly submitted) notebook belongs to.

    Tries, in order: the ``course.lesson`` metadata the build writes; the file name
    (``NN_topic.ipynb`` or ``NN_...``); the exercises its check cells call. ``known`` maps each
    lesson id to its exercise names.
    """
    meta = nb.get("metadata", {}).get("course", {})
    lesson = meta.get("lesson") if isinstance(meta, dict) else None
    if isinstance(lesson, str) and lesson in known:
        return LessonMatch(lesson, "metadata")
    if path is not None:
        stem = Path(path).stem
        if stem in known:
            return LessonMatch(stem, "file name")
        m = re.match(r"^(\d\d)(?:_|$)", stem)
        if m:
            hits = [k for k in known if k.startswith(m.group(1) + "_")]
            if len(hits) == 1:
                return LessonMatch(hits[0], "file name")
    called: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            called |= set(_CHECK_CALL_RE.findall(cell.get("source", "")))
    scores = {k: len(called & set(v)) for k, v in known.items()}
    if scores:
        best = max(scores, key=lambda k: scores[k])
        if scores[best] > 0 and list(scores.values()).count(scores[best]) == 1:
            return LessonMatch(best, "check cells")
    return LessonMatch(None, "none")
