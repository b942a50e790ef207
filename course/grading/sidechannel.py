"""The self-check's side channel: how the real checks report from inside a kernel.

Grading does not use it any more: the grader's judge (:mod:`course.grading.judge`) decides every
verdict in its own process, so nothing inside a student's kernel has to be trusted. What is left here
serves the self-check (``python -m course check``, ``check.notebook()``), a student's own feedback on
their own notebook, where catching an accidental redefinition matters and deliberate forgery only
fools the student.

The self-check runs a notebook whose first cell (added before any student code) calls :func:`arm`. It

1. reads the grader's secret from a file named in the environment and deletes that file, and
   opens the results file;
2. imports the graded lesson's check module (named by ``course.checks.env.LESSON``; every lesson
   module imports what its reference answers need at the top: ``torch``, ``course.nn...``),
   then takes a *snapshot*: the identity of every attribute of every loaded ``course.*`` module
   (and the code, defaults and closure of the functions and classes they define), of ``numpy``,
   ``math``, ``builtins``, ``torch`` and a few of their submodules, and of the registry of exercises;
3. hands the checks' guard (:mod:`course.checks.guard`) a recorder and a tamper check, both
   closures over this call's locals, once: later calls cannot replace them and no module global
   leads to them;
4. registers an IPython ``pre_run_cell`` hook that notes a hash of each cell's source as the cell
   starts and re-applies the output cap (below), and makes a cell too deeply nested to parse fail
   with its error instead of hanging the kernel's reply (:func:`_harden_shell`).

From then on every registered check appends ``{secret, exercise, line, cell, tampered}`` to the
results file, and before and after each check the guard asks the tamper check whether anything in
the snapshot was replaced since (``lesson_00.reference_pitch_range = ...``, ``music.transpose = ...``,
``builtins.print = ...``, a module swapped in ``sys.modules``...); if so the check prints a FAIL line
naming what changed and its record says ``tampered``.

The grader counts a check cell as passed only if nbval saw it print exactly the pass line *and*
the results file holds exactly one record carrying the secret, from that very cell, in which the
real check printed the pass line and found nothing tampered with. Rebinding ``check.NAME``,
replacing ``print``, rewriting stdout or writing the pass line by hand changes what the cell shows,
but not the record.

Limits (honest ones): the student's code runs in the same process. Code that digs the secret or the
guard's state out of closures, frames or the garbage collector, or that runs in a thread of its
own, can still forge a result; the grader's static scan (:mod:`course.grading.tamper`) flags the
usual ways in and leaves notes for computed names. Modules first imported *after* the arm cell
and not preloaded (a ``course`` module the lesson's checks do not use) are snapshotted at the first
check after their import, so a change made before that is not seen; those modules do not take part
in computing expected answers. Without ``--run-as``, a notebook can also write to the course's own
files on disk (see :mod:`course.grading.sandbox`).

:func:`arm` also caps what each cell may print (``course.checks.env.MAX_OUTPUT`` characters per
stream). IPython (9.x) restores ``sys.stdout.write`` at the end of every cell, so the cap is put
back at the start of each cell by the ``pre_run_cell`` hook.

Lesson: 00_welcome
"""
from __future__ import annotations

import os
import sys
import types

from ..checks import env

__all__ = ["arm", "armed"]

# Modules outside the course whose attributes the reference answers rely on.
_WATCHED = ("builtins", "math", "operator", "copy", "numpy", "numpy.random", "numpy.linalg",
            "torch", "torch.nn", "torch.nn.functional", "torch.linalg")
_WATCHED_CLASSES = (("numpy", "ndarray"), ("torch", "Tensor"), ("torch.nn", "Module"))
# Names IPython and ipykernel switch in builtins around every cell, and entries Python itself updates.
_IPYTHON_BUILTINS = {"exit", "quit", "get_ipython", "display", "_", "__", "___", "__IPYTHON__", "dreload", "input",
                     "copyright", "credits", "license", "help"}
_VOLATILE = {"__warningregistry__"}


def armed() -> bool:
    """Whether this kernel is being checked or graded (the side channel is open)."""
    from ..checks.guard import _armed

    return _armed()


def arm() -> bool:
    """Open the side channel in a checking kernel (see the module docstring); False anywhere else."""
    token_file = os.environ.pop(env.TOKEN_FILE, None)
    results = os.environ.pop(env.RESULTS, None)
    max_output = int(os.environ.pop(env.MAX_OUTPUT, "0") or 0)
    lesson = os.environ.pop(env.LESSON, "")
    from ..checks import exercises_of, guard, load_all

    if not token_file or not results or guard._armed():
        return False
    import hashlib
    import json

    with open(token_file, encoding="utf-8") as f:
        secret = f.read().strip()
    os.remove(token_file)
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    write, dumps, sha = os.write, json.dumps, hashlib.sha256
    state = {"cell": "", "budget": {}}
    caps: dict = {}

    try:                       # a lesson module that fails to import fails its checks, not the arming
        if not exercises_of(lesson):   # loads the graded lesson's module (and what it imports) only
            load_all()
    except Exception:  # noqa: BLE001
        pass
    verify = _make_verifier()

    def write_record(exercise_name: str, line: str, tampered: str | None = None) -> None:
        rec = {"secret": secret, "exercise": exercise_name, "line": line[:1000], "cell": state["cell"]}
        if tampered:
            rec["tampered"] = str(tampered)[:500]
        write(fd, (dumps(rec) + "\n").encode("utf-8"))

    def before_cell(info=None):
        raw = getattr(info, "raw_cell", "") or ""
        state["cell"] = sha(raw.encode("utf-8")).hexdigest()[:16]
        state["budget"] = {}
        if max_output > 0:
            _apply_caps(caps, max_output, state)

    if not guard._install_hooks(write_record, verify):
        return False
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:  # pragma: no cover - grading always runs in a kernel
        ip = None
    if ip is not None:
        ip.events.register("pre_run_cell", before_cell)
        _harden_shell(ip)
    if max_output > 0:
        _apply_caps(caps, max_output, state)
    return True


def _harden_shell(ip) -> None:
    """A cell too deeply nested to parse (``x = ---...-1``) makes IPython's ``should_run_async`` raise
    RecursionError out of the kernel's execute handler: no reply, so the cell hangs until its time
    limit and nbval marks every later cell as expected to fail. Answering "not async" instead lets
    the cell fail with its RecursionError like any other error."""
    original = getattr(ip, "should_run_async", None)
    if original is None:
        return

    def should_run_async(raw_cell, *args, **kwargs):
        try:
            return original(raw_cell, *args, **kwargs)
        except (RecursionError, MemoryError):
            return False

    try:
        ip.should_run_async = should_run_async
    except (AttributeError, TypeError):  # pragma: no cover
        pass


# ------------------------------------------------------------------------------------ output cap
def _apply_caps(caps: dict, limit: int, state: dict) -> None:
    """Cap ``sys.stdout``/``sys.stderr`` unless our cap is still the stream's ``write``."""
    for key in ("stdout", "stderr"):
        stream = getattr(sys, key, None)
        if stream is None:
            continue
        current = getattr(stream, "write", None)
        if current is None or current is caps.get(key):
            continue
        wrapper = _cap(current, key, limit, state)
        try:
            stream.write = wrapper
            caps[key] = wrapper
        except (AttributeError, TypeError):  # pragma: no cover - a stream that cannot be patched
            pass


def _cap(original, key: str, limit: int, state: dict):
    """A ``write`` that drops what a cell prints to one stream beyond ``limit`` characters."""
    def write(s, *args, **kwargs):
        s = str(s)
        used = state["budget"].get(key, 0)
        state["budget"][key] = used + len(s)
        if used + len(s) <= limit:
            return original(s, *args, **kwargs)
        if used < limit:
            original(s[: limit - used])
            original(f"\n[output cut by the grader after {limit // 1000} kB]\n")
        return len(s)
    return write


# ------------------------------------------------------------------------------------ the snapshot
def _watched(name: str) -> bool:
    return name == "course" or name.startswith("course.") or name in _WATCHED


def _cells(fn) -> tuple:
    out = []
    for c in fn.__closure__ or ():
        try:
            out.append(c.cell_contents)
        except ValueError:  # an empty cell
            out.append(None)
    return tuple(out)


def _function_print(fn) -> tuple:
    """What a function is made of: replacing any of it changes what the function does."""
    return (fn.__code__, fn.__defaults__, fn.__kwdefaults__, fn.__globals__) + _cells(fn)


def _class_print(cls) -> dict:
    """A class's own attributes, and the makeup of the functions among them."""
    out = {}
    for key, value in list(vars(cls).items()):
        if key in _VOLATILE:
            continue
        out[key] = value
        func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if isinstance(func, types.FunctionType):
            out[(key, "code")] = _function_print(func)
    return out


def _exercise_prints(ex) -> tuple:
    """The makeup of the functions an exercise's check runs: the check students call, its body, the
    cases builder, the comparison and the preparation, with what their closures hold (tolerances,
    references, hints)."""
    fields = vars(ex)
    return tuple(_function_print(f) if isinstance(f, types.FunctionType) else f
                 for f in (fields.get(k) for k in ("check", "run", "make", "compare", "prepare")))


def _same_print(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    return a is b


def _package_dir(module) -> str | None:
    """The folder of the top-level package ``module`` belongs to (None for built-in modules)."""
    top = sys.modules.get(module.__name__.split(".")[0])
    path = getattr(top, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) + os.sep if isinstance(path, str) else None


def _own_wrapper(new, old, package_dir: str | None) -> bool:
    """Whether ``new`` is the library's own wrapper of ``old`` (``torch._dynamo`` wraps
    ``torch.manual_seed`` when it is first imported): a plain function whose ``__wrapped__`` is
    ``old`` and whose code lives in the same package."""
    if not package_dir or type(new) is not types.FunctionType:
        return False
    return new.__dict__.get("__wrapped__") is old and new.__code__.co_filename.startswith(package_dir)


class _ModuleSnapshot:
    __slots__ = ("name", "module", "namespace", "entries", "prints", "package_dir")

    def __init__(self, name: str, module):
        self.name, self.module = name, module
        self.namespace = module.__dict__
        self.package_dir = None if _watched_course(name) else _package_dir(module)
        skip = _IPYTHON_BUILTINS if name == "builtins" else _VOLATILE
        self.entries = {k: v for k, v in list(self.namespace.items()) if k not in skip}
        self.prints: dict = {}
        if _watched_course(name):
            for key, value in self.entries.items():
                if isinstance(value, types.FunctionType) and getattr(value, "__module__", None) == name:
                    self.prints[key] = _function_print(value)
                elif isinstance(value, type) and value.__dict__.get("__module__") == name:
                    self.prints[key] = _class_print(value)

    def changes(self, modules: dict, out: list) -> None:
        if dict.get(modules, self.name) is not self.module:
            out.append(f"sys.modules[{self.name!r}] was replaced")
            return
        ns, missing = self.namespace, object()
        for key, value in list(self.entries.items()):
            now = dict.get(ns, key, missing)
            if now is not value:
                if _own_wrapper(now, value, self.package_dir):
                    self.entries[key] = now        # from now on, the wrapper is what must not change
                    continue
                out.append(f"{self.name}.{key} was {'removed' if now is missing else 'replaced'}")
        for key, before in self.prints.items():
            value = self.entries[key]
            if isinstance(before, tuple):
                if not _same_print(_function_print(value), before):
                    out.append(f"the code of {self.name}.{key} was changed")
                continue
            now = _class_print(value)
            for attr, was in before.items():
                if not _same_print(now.get(attr, missing), was):
                    label = attr if isinstance(attr, str) else f"{attr[0]} (its code)"
                    out.append(f"{self.name}.{key}.{label} was changed")


def _watched_course(name: str) -> bool:
    return name == "course" or name.startswith("course.")


def _make_verifier():
    """Snapshot what the checks rely on now; return a function naming what changed since (or None)."""
    from ..checks.kit import EXERCISES, Exercise

    exercise_type = Exercise
    modules = sys.modules                  # the interpreter's own dict, even if sys.modules is rebound
    snaps: dict[str, object] = {}
    classes: dict[str, tuple] = {}

    def take_new() -> None:
        for name in list(dict.keys(modules)):
            if name not in snaps and _watched(name):
                mod = dict.get(modules, name)
                if isinstance(mod, types.ModuleType):
                    snaps[name] = _ModuleSnapshot(name, mod)
        for mod_name, cls_name in _WATCHED_CLASSES:
            key = f"{mod_name}.{cls_name}"
            mod = dict.get(modules, mod_name)
            if key not in classes and mod is not None:
                cls = getattr(mod, cls_name, None)
                if isinstance(cls, type):
                    classes[key] = (cls, dict(vars(cls)))

    take_new()
    registry = EXERCISES
    exercises = {name: (ex, dict(vars(ex)), _exercise_prints(ex)) for name, ex in dict.items(registry)}

    def verify() -> str | None:
        found: list[str] = []
        for snap in list(snaps.values()):
            snap.changes(modules, found)
        missing = object()
        for key, (cls, attrs) in list(classes.items()):
            now = vars(cls)
            for attr, value in attrs.items():
                if attr not in _VOLATILE and now.get(attr, missing) is not value:
                    found.append(f"{key}.{attr} was replaced")
        for name, (ex, fields, prints) in exercises.items():
            now = dict.get(registry, name)
            if now is not ex or type(ex) is not exercise_type or dict(vars(ex)).keys() != fields.keys() \
                    or any(vars(ex).get(k, missing) is not v for k, v in fields.items()):
                found.append(f"the registered check {name} was replaced")
            elif any(not _same_print(a, b) for a, b in zip(_exercise_prints(ex), prints)):
                found.append(f"the code of the check {name} was changed")
        take_new()                         # modules imported since: snapshotted from now on
        if not found:
            return None
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        return "; ".join(found[:3]) + more

    return verify
