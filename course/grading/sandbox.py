"""Resource limits and containment for running untrusted notebooks (self-check and grading).

A checked notebook runs as a *job*: one launcher process (pytest with nbval, see
:mod:`course.grading.nbval_runner`) that starts one kernel. The job

- starts in a session and process group of its own, carries a random marker in its environment,
  and is killed as a whole (process group, then every process carrying the marker) when it ends
  or runs out of time, so a student's code cannot outlive it or stop the parent;
- limits itself at start-up (:func:`apply_limits`, inherited by the kernel and anything it starts):
  address space (``RLIMIT_AS``), the size of any file it writes (``RLIMIT_FSIZE``), core dumps, and
  with ``run_as`` the number of processes of that user (``RLIMIT_NPROC``);
- runs in a scratch folder: a fresh temporary directory that is the working directory, ``HOME``
  and ``TMPDIR``, with a minimal environment (no secrets of the parent's leak in);
- optionally runs as another user (``run_as``, only when the grader runs as root), which is what
  actually stops writes outside the scratch folder.

What this does **not** do, and cannot do without OS-level isolation (a container or VM): without
``run_as``, code in a notebook runs as the grader's user and can read or write any file that user
can, open network connections, signal the grader's other processes, and fork without limit. The
kill-by-marker sweep misses a process that both starts a session of its own and replaces its
environment before the job ends. The grader detects changes to the submissions folder and flags
suspicious code, but for untrusted classes run it in a container, or as root with
``--run-as nobody``. Limits rely on Linux (``/proc``, ``RLIMIT_AS``); on macOS they are weaker, and
Windows is not supported for grading.

``run_as`` is **one** user for every job, not a user per job. It stops writes to the submissions,
the course's files and the grader's reports, but jobs running at the same time share that uid: one
student's code can signal (kill) another job's kernel, and delete or overwrite another job's
scratch files, including its results file (``private/records.jsonl``: the secret stops a forged
*pass*, not a deleted or truncated file, which shows up as an ``error`` for the victim), and the
per-user process limit is shared. Grading with ``--jobs 1`` removes the cross-job part; a container
per submission (or a uid per job, which this module does not do) removes all of it. For untrusted
classes, run each submission in a container of its own.

Lesson: 00_welcome
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..checks import env

__all__ = ["Limits", "Scratch", "JobResult", "apply_limits", "make_scratch", "job_env", "run_job", "kill_job",
           "MARKER_ENV", "resolve_user"]

MARKER_ENV = env.JOB_MARKER
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH",
             "SYSTEMROOT", "LD_LIBRARY_PATH")


@dataclass
class Limits:
    """What one job may use.

    Attributes:
        memory_mb: address space of each process, in MB (``RLIMIT_AS``; None: no limit).
        file_mb: the largest file any process may write, in MB (``RLIMIT_FSIZE``).
        run_as: ``(uid, gid)`` to drop to before anything runs (needs root; None: stay).
    """

    memory_mb: int | None = 4096
    file_mb: int | None = 256
    run_as: tuple[int, int] | None = None

    def to_args(self) -> list[str]:
        out = []
        if self.memory_mb:
            out += ["--memory-mb", str(int(self.memory_mb))]
        if self.file_mb:
            out += ["--file-mb", str(int(self.file_mb))]
        if self.run_as:
            out += ["--uid", str(self.run_as[0]), "--gid", str(self.run_as[1])]
        return out


def resolve_user(name: str | None) -> tuple[int, int] | None:
    """``(uid, gid)`` of a user name (or ``"uid:gid"``); None for None. Only root can switch users."""
    if not name:
        return None
    from ..errors import ExerciseError

    if os.name != "posix" or os.geteuid() != 0:
        raise ExerciseError("--run-as needs the grader to run as root (it switches each job to that user).")
    if ":" in name and all(p.isdigit() for p in name.split(":", 1)):
        uid, gid = name.split(":", 1)
        return int(uid), int(gid)
    import pwd

    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ExerciseError(f"No user named {name!r} on this machine.") from None
    return pw.pw_uid, pw.pw_gid


def apply_limits(memory_mb: int | None = None, file_mb: int | None = None, uid: int | None = None,
                 gid: int | None = None) -> None:
    """Limit this process (and everything it starts); called first thing in a job's launcher."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix: no limits
        return

    def lower(kind, value):  # soft and hard limit both: the student's code cannot raise it again
        try:
            hard = resource.getrlimit(kind)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass
    if memory_mb:
        lower(resource.RLIMIT_AS, int(memory_mb) * 1024 * 1024)
    if file_mb:
        lower(resource.RLIMIT_FSIZE, int(file_mb) * 1024 * 1024)
    lower(resource.RLIMIT_CORE, 0)
    if uid is not None and uid != 0:
        lower(resource.RLIMIT_NPROC, 4096)      # per user: a fork bomb stops here (root is exempt)
    if uid is not None:
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)


@dataclass
class Scratch:
    """A job's folders: ``work`` (cwd, HOME, TMPDIR; the student can see it) and ``private`` (the grader's)."""

    root: Path
    work: Path
    private: Path

    def remove(self) -> None:
        def unlock(func, path, _exc):
            try:
                os.chmod(path, 0o700)
                func(path)
            except OSError:
                pass
        shutil.rmtree(self.root, onerror=unlock)


def make_scratch(prefix: str = "course-job-", base: str | Path | None = None, owner: tuple[int, int] | None = None) -> Scratch:
    """A fresh scratch area; with ``owner`` the work folder is handed to that user."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    work, private = root / "work", root / "private"
    for d in (work, work / "tmp", private):
        d.mkdir()
    os.chmod(root, 0o711)
    if owner is not None:
        for d in (work, work / "tmp"):
            os.chown(d, *owner)
        os.chown(private, *owner)     # the kernel appends its results there; the secret protects them
    return Scratch(root, work, private)


def job_env(scratch: Scratch, extra: dict | None = None) -> dict:
    """A minimal environment for a job: a few system variables, then everything pointed into scratch."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    work = str(scratch.work)
    env.update({
        "HOME": work, "TMPDIR": str(scratch.work / "tmp"), "TEMP": str(scratch.work / "tmp"),
        "TMP": str(scratch.work / "tmp"), "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1", "COURSE_FAST": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1",
        MARKER_ENV: uuid.uuid4().hex,
    })
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class JobResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    log_tail: str


def run_job(cmd: list[str], *, cwd: Path, env: dict, timeout: float, log_path: Path) -> JobResult:
    """Run ``cmd`` as a contained job; kill it and all it started when it ends or after ``timeout`` s."""
    t0 = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_job(proc.pid, env.get(MARKER_ENV))
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
                pass
    return JobResult(proc.returncode, timed_out, time.monotonic() - t0, _tail(log_path))


def _tail(path: Path, size: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            n = f.tell()
            f.seek(max(0, n - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def kill_job(pgid: int, marker: str | None) -> int:
    """Kill a job: its process group, then every process whose environment carries ``marker``.

    Returns how many processes were signalled. The kernel runs in a session of its own (that is
    how Jupyter starts kernels), so the marker is what finds it and anything it started.
    """
    killed = 0
    own_pgrp = os.getpgrp() if hasattr(os, "getpgrp") else None
    if hasattr(os, "killpg") and pgid != own_pgrp:
        try:
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    if not marker or not os.path.isdir("/proc"):
        return killed
    needle = f"{MARKER_ENV}={marker}".encode()
    me = os.getpid()
    for _ in range(3):        # a second pass catches children forked while we were killing
        found = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    if needle not in f.read():
                        continue
                os.kill(int(entry.name), signal.SIGKILL)
                found += 1
            except (OSError, ValueError):
                continue
        killed += found
        if not found:
            break
        time.sleep(0.05)
    return killed


def python_command(module: str) -> list[str]:
    """``[python, -m, module]`` with this interpreter (the course's environment)."""
    return [sys.executable, "-m", module]
