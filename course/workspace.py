"""``python -m course start [DIR]``: your own copies of the lessons, in a folder nothing else writes to.

The student notebooks in ``notebooks/`` belong to the course: ``python -m course build`` makes them
and ``git pull`` updates them, so work saved there can be lost. ``start`` copies them into a
workspace and opens JupyterLab on it. The default workspace is ``work/`` in the course's folder
(git ignores it) when the course runs from its repository, and ``~/musicgen-course`` otherwise.

``start`` never replaces a file. A notebook already in the workspace stays as it is. When the
course's own version of a notebook has changed since it was copied (a newer course), the new
version arrives beside yours as ``NN_topic (course YYYY-MM-DD).ipynb``, dated the day it
arrived. ``DIR/.course-start.json`` records which versions were delivered, so running ``start``
again copies nothing twice.

Lesson: 00_welcome
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .errors import ExerciseError
from .files import atomic_write, create_new

__all__ = ["default_workspace", "copy_notebooks", "Delivery", "MANIFEST", "WORK_FOLDER", "add_arguments", "run"]

ROOT = Path(__file__).resolve().parents[1]          # the repository, for an editable install
MANIFEST = ".course-start.json"
WORK_FOLDER = "work"                                # the workspace inside the repository (git ignores it)
HOME_WORKSPACE = "musicgen-course"                  # the workspace in the home folder, without a repository


def default_workspace(root: str | Path | None = None) -> Path:
    """``work/`` in the course's repository (git ignores it), or ``~/musicgen-course`` without one."""
    root = Path(root) if root is not None else ROOT
    if (root / "notebooks").is_dir() and (root / "solutions").is_dir():
        return root / WORK_FOLDER
    return Path.home() / HOME_WORKSPACE


@dataclass
class Delivery:
    """What ``start`` did with one course notebook.

    ``how`` is ``"copied"`` (new in the workspace), ``"present"`` (the same file is already there),
    ``"yours"`` (the workspace's file differs, and this version of the course's was delivered
    before: your work, left alone) or ``"update"`` (a newer course version, written beside yours
    as ``path``).
    """

    source: Path
    path: Path
    how: str


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(workspace: Path) -> dict[str, list[str]]:
    try:
        data = json.loads((workspace / MANIFEST).read_text(encoding="utf-8"))
        delivered = data["delivered"]
        return {str(k): [str(h) for h in v] for k, v in delivered.items() if isinstance(v, list)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _beside(workspace: Path, name: str, today: date) -> Path:
    """A free name for a newer course version of ``name``: ``NN_topic (course YYYY-MM-DD[ k]).ipynb``."""
    stem = Path(name).stem
    for k in range(1, 1000):
        label = f"{today:%Y-%m-%d}" + (f" {k}" if k > 1 else "")
        candidate = workspace / f"{stem} (course {label}).ipynb"
        if not candidate.exists():
            return candidate
    raise ExerciseError(f"{workspace} holds a thousand updates of {name}; clear some out first.")


def copy_notebooks(source: str | Path, workspace: str | Path, *, today: date | None = None) -> list[Delivery]:
    """Copy every ``*.ipynb`` of ``source`` into ``workspace`` without replacing any file there.

    A course notebook whose exact version was delivered before is not copied again; a changed one
    arrives beside the student's file (see the module docstring). Returns one :class:`Delivery` per
    course notebook.
    """
    source, workspace = Path(source), Path(workspace)
    files = sorted(p for p in source.glob("*.ipynb") if p.is_file())
    if not files:
        raise ExerciseError(f"There are no student notebooks in {source}. They come with the course's repository: "
                            "clone it, install it (see its README), and run `python -m course start` there; "
                            "or pass the folder that holds them with --notebooks.")
    if workspace.exists() and not workspace.is_dir():
        raise ExerciseError(f"{workspace} is a file, not a folder; choose another workspace folder.")
    workspace.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    delivered = _read_manifest(workspace)
    out = []
    for src in files:
        data = src.read_bytes()
        digest = _sha(data)
        known = delivered.setdefault(src.name, [])
        dest = workspace / src.name
        if not dest.exists():
            create_new(dest, data)
            how = "copied"
        elif _sha(dest.read_bytes()) == digest:
            how = "present"
        elif digest in known:
            how = "yours"
        else:
            dest = _beside(workspace, src.name, today)
            create_new(dest, data)
            how = "update"
        if digest not in known:
            known.append(digest)
        out.append(Delivery(src, dest, how))
    atomic_write(workspace / MANIFEST, json.dumps(
        {"about": "course notebook versions that `python -m course start` copied here (sha256 per file); "
                  "delete this file and `start` may copy updates that you already have",
         "delivered": delivered}, indent=1, sort_keys=True) + "\n")
    return out


def report(deliveries: list[Delivery], workspace: Path) -> str:
    """What ``start`` did, for the terminal."""
    counts = {how: sum(d.how == how for d in deliveries) for how in ("copied", "present", "yours", "update")}
    lines = [f"Your workspace: {workspace} ({len(deliveries)} lesson notebook(s): {counts['copied']} copied, "
             f"{counts['present'] + counts['yours']} already there, {counts['update']} update(s))."]
    for d in deliveries:
        if d.how == "update":
            lines.append(f"  a newer course version of {d.source.name} arrived as {d.path.name!r}; "
                         f"your {d.source.name} is untouched")
    if counts["yours"] + counts["present"]:
        lines.append("  Notebooks already in the workspace are never replaced.")
    return "\n".join(lines)


def lab_command(workspace: Path) -> list[str]:
    """The command that opens JupyterLab on ``workspace``."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}"]
    if os.name == "posix" and hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")          # JupyterLab refuses to start as root without it
    return cmd


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("workspace", nargs="?", type=Path, default=None, metavar="DIR",
                        help=f"your work folder (default: {default_workspace()})")
    parser.add_argument("--no-lab", action="store_true", help="only copy the notebooks; do not open JupyterLab")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                        help="where the course's student notebooks are (default: the course's notebooks/)")


def run(args) -> int:
    workspace = Path(args.workspace) if args.workspace is not None else default_workspace()
    workspace = workspace.expanduser().resolve()
    deliveries = copy_notebooks(args.notebooks, workspace)
    print(report(deliveries, workspace))
    check_line = f"Self-check a saved notebook with `python -m course check {workspace / deliveries[0].source.name}`."
    if args.no_lab:
        print(f"Open the notebooks in {workspace} with JupyterLab, VS Code or classic Notebook. {check_line}")
        return 0
    if importlib.util.find_spec("jupyterlab") is None:
        raise ExerciseError(f"JupyterLab is not installed in this environment (`python -m pip install -r "
                            f"requirements.txt` installs it). Your notebooks are in {workspace}: open them with any "
                            "notebook app, or pass --no-lab.")
    print(f"Opening JupyterLab on {workspace} (stop it with Ctrl+C). {check_line}", flush=True)
    return subprocess.call(lab_command(workspace), cwd=str(workspace))
