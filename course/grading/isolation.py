"""An OS sandbox for each grading job, with bubblewrap (``bwrap``) where it is installed.

:func:`wrap` turns a job's command into ``bwrap ... -- command``, which gives the job

- a read-only view of the system (``/usr``, ``/etc``), the Python environment and the course package
  (its ``course/`` and ``datasets/`` folders only): never the lesson solutions, the other submissions,
  the grader's output folder or its private files, which are simply not in its view;
- one writable folder, its own scratch, at the same path as outside; a private ``/tmp`` and ``/dev/shm``;
- no network (a network namespace of its own with nothing in it);
- its own PID namespace: it sees and can signal only its own processes, and when the job's first
  process ends (or the grader kills it, or the grader dies: ``--die-with-parent``) the kernel ends
  every process the job started;
- its own IPC, UTS and cgroup namespaces, and a new session (no terminal to inject keystrokes into).

bwrap is a Debian/Ubuntu/Fedora package (``apt install bubblewrap``); macOS, Windows and Colab have
none. Without it, :func:`available` says why, the grader still grades, and ``grading.json`` and the
summary say loudly that jobs were not isolated (see :mod:`.sandbox` for the weaker containment then).

What the sandbox does not limit: CPU time (the judge's time limits end a job that runs too long), the
number of processes inside the job (a fork bomb is ended with the job, but slows the machine until
then), and memory beyond ``RLIMIT_AS`` per process. For those, run the grader in a container or a
cgroup of its own.

Lesson: 00_welcome
"""
from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

__all__ = ["available", "wrap", "visible_paths", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
_SYSTEM = ("/usr", "/etc", "/opt/conda")


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def visible_paths() -> list[str]:
    """The folders a job sees (read-only): the system, the Python environment, the course package."""
    want: list[str] = []

    def add(p) -> None:
        if not p:
            return
        real = os.path.realpath(str(p))
        if os.path.isdir(real) and real not in want:
            want.append(real)

    for p in _SYSTEM:
        add(p)
    add(sys.base_prefix)
    add(sys.prefix)
    try:
        for p in site.getsitepackages():
            add(p)
    except AttributeError:  # pragma: no cover - an old virtualenv
        pass
    course_dir = Path(__file__).resolve().parents[1]
    add(course_dir)
    add(course_dir.parent / "datasets")
    for p in sys.path:          # other installed packages' folders only: never a working folder such as /tmp
        if p and os.path.isdir(p) and os.path.basename(os.path.realpath(p)) in ("site-packages", "dist-packages"):
            add(p)
    # a folder inside another one is already seen; keep the outermost, in a stable order
    out = []
    for p in sorted(want, key=len):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def _links() -> list[str]:
    """``/bin``, ``/lib``, ... as in the real root: symlinks into ``/usr`` on merged-/usr systems, else binds."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = f"/{name}"
        if os.path.islink(p):
            args += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            args += ["--ro-bind", p, p]
    return args


def wrap(command: list[str], scratch: Path) -> list[str]:
    """``command`` run inside the sandbox, with ``scratch`` its only writable folder and working directory."""
    bwrap = _bwrap()
    if bwrap is None:
        raise RuntimeError("bwrap is not installed")
    scratch = os.path.realpath(str(scratch))
    # the private /tmp first: what is bound below it afterwards (a virtual environment in /tmp) stays visible
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]
    for p in visible_paths():
        if scratch == p or scratch.startswith(p.rstrip("/") + "/"):
            continue            # a folder that holds the scratch folders would show the other jobs' ones
        args += ["--ro-bind", p, p]
    args += _links()
    args += ["--bind", scratch, scratch, "--chdir", scratch, "--"]
    return args + command


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """``(True, "")`` when jobs can be sandboxed here, else ``(False, why)``; tried once per process."""
    if sys.platform != "linux":
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    if os.environ.get("COURSE_GRADING_NO_SANDBOX"):
        return False, "COURSE_GRADING_NO_SANDBOX is set"
    if _bwrap() is None:
        return False, "bwrap (bubblewrap) is not installed"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="course-bwrap-") as d:
        try:
            probe = subprocess.run(wrap([sys.executable, "-c", "print('ok')"], Path(d)), capture_output=True,
                                   timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"bwrap could not start ({type(e).__name__})"
    if probe.returncode != 0 or probe.stdout.strip() != b"ok":
        why = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, f"bwrap cannot make a sandbox here ({why[-1][:120] if why else probe.returncode})"
    return True, ""
