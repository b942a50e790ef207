"""The solution -> student transforms: stub the solutions, standard setup cell, badge, clean metadata.

Pure functions of a notebook (no files, no kernels), shared by the build (:mod:`.build`), the
re-execution of solutions (:mod:`.execute`) and the grader's tamper scan, which recognises the
standard setup cell.

Lesson: 00_welcome
"""
from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

from . import notebooks as nbs

__all__ = ["REPO_URL", "COLAB_URL", "repository", "setup_source", "badge_line", "normalize", "build_notebook"]

DEFAULT_REPO_URL = "https://github.com/musicgen-course/course"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _setting(text: str, table: str, key: str) -> str | None:
    """``key = "value"`` inside ``[table]`` of a TOML text (a small reader: Python 3.10 has no tomllib)."""
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == f"[{table}]"
        elif inside:
            m = re.match(rf'{re.escape(key)}\s*=\s*"([^"]*)"', stripped)
            if m:
                return m.group(1)
    return None


def repository(pyproject: str | Path = PYPROJECT) -> tuple[str, str]:
    """``(repository URL, branch)`` from ``[project.urls] Repository`` and ``[tool.course] colab-branch``.

    A fork of the course changes those two settings and runs ``python -m course build``; every badge and
    setup cell then points at the fork. Without a readable pyproject (an installed wheel), the course's own.
    """
    try:
        text = Path(pyproject).read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_REPO_URL, "main"
    url = (_setting(text, "project.urls", "Repository") or DEFAULT_REPO_URL).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{pyproject}: [project.urls] Repository must be https://github.com/OWNER/NAME for Colab, "
                         f"got {url!r}.")
    branch = _setting(text, "tool.course", "colab-branch") or "main"
    return url, branch


REPO_URL, _BRANCH = repository()
COLAB_URL = f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}/blob/{_BRANCH}"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_CELL_METADATA_DROP = ("execution", "collapsed", "scrolled", "ExecuteTime", "widgets", "vscode", "papermill")


def setup_source(notebook: str) -> str:
    """The standard first code cell of ``notebook`` (e.g. ``"notebooks/00_welcome.ipynb"``).

    On Colab it clones the course and installs it, then makes it importable in this kernel
    without a restart (the one place the course touches ``sys.path``); elsewhere it does nothing.
    """
    return f'''# SETUP {notebook}: on Colab this installs the course (about a minute); elsewhere it does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "--depth", "1", "{REPO_URL}", "/content/course"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/course"], check=True)
    sys.path.insert(0, "/content/course")  # import the fresh install now, without restarting the runtime'''


def badge_line(notebook: str) -> str:
    """The "Open in Colab" badge, in markdown, for ``notebook`` (a path inside the repository)."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({COLAB_URL}/{notebook})"


def _with_badge(markdown: str, notebook: str) -> str:
    badge = badge_line(notebook)
    if _BADGE_RE.search(markdown):
        return _BADGE_RE.sub(lambda m: badge, markdown, count=1)
    lines = markdown.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "\n".join(lines[: i + 1] + ["", badge] + lines[i + 1:])
    return "\n".join([badge, ""] + lines)


def _cell_id(lesson: str, index: int) -> str:
    return hashlib.sha1(f"{lesson}:{index}".encode()).hexdigest()[:8]


def normalize(nb, lesson: str, notebook: str, *, student: bool):
    """Setup cell, badge, cell ids and metadata made standard, in a copy of ``nb``.

    ``notebook`` is the path the badge and the setup cell name (``notebooks/NN_x.ipynb`` or
    ``solutions/NN_x.ipynb``). With ``student=True`` also stub solutions and clear outputs.
    """
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor", 5)))
    badge_done = False
    seen_ids: set[str] = set()
    for i, cell in enumerate(nb.cells):
        where = f"{lesson} cell {i}"
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen_ids:
            cell["id"] = _cell_id(lesson, i)
        seen_ids.add(cell["id"])
        for key in _CELL_METADATA_DROP:
            cell.metadata.pop(key, None)
        if cell.cell_type == "markdown" and not badge_done:
            cell.source = _with_badge(cell.source, notebook)
            badge_done = True
        if cell.cell_type == "code":
            if nbs.is_setup_cell(cell):
                cell.source = setup_source(notebook)
            if student:
                cell.source = nbs.stub_source(cell.source, "code", where)
                cell.outputs = []
                cell.execution_count = None
                if nbs.is_check_cell(cell):
                    cell.metadata["editable"] = False
                    cell.metadata["deletable"] = False
        elif student and cell.cell_type == "markdown":
            cell.source = nbs.stub_source(cell.source, "markdown", where)
    if not badge_done:
        import nbformat

        nb.cells.insert(0, nbformat.v4.new_markdown_cell(badge_line(notebook), id=_cell_id(lesson, -1)))
    meta = {k: v for k, v in nb.metadata.items() if k in ("colab", "accelerator", "course")}
    meta["kernelspec"] = dict(KERNELSPEC)
    meta["language_info"] = {"name": "python"}
    meta["course"] = {**(meta.get("course") or {}), "lesson": lesson}
    nb.metadata = meta
    return nb


def build_notebook(solution_nb, lesson: str, notebooks_dirname: str = "notebooks"):
    """The student notebook made from a solution notebook (a new object; the input is unchanged)."""
    return normalize(solution_nb, lesson, f"{notebooks_dirname}/{lesson}.ipynb", student=True)
