"""The check kit and protocol (``course.checks``) and the registry of exercises.

Every registered exercise appears in exactly one check cell of its lesson's solution notebook, and
every check cell checks a registered exercise of that lesson. A check prints exactly one line and
never raises, whatever the student's function does.
"""
import collections
import contextlib
import io
import json
import os
import time

import numpy as np
import pytest

from course import check, music
from course.authoring import notebooks as nbs
from course.checks import EXERCISES, Case, CheckFailure, env, kit, lessons, load_all, pass_line
from course.checks import guard
from course.checks.guard import run_cases as _run_cases
from course.checks.values import compare_values
from course.grading import sidechannel


def one_line(fn, *args, **kwargs) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(*args, **kwargs)
    out = buf.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n"), repr(out)
    return out.strip()


# ------------------------------------------------------------------------------------ registry
def _solution_checks(repo_root):
    found = collections.defaultdict(list)       # lesson -> exercise names of its check cells, in order
    for path in sorted((repo_root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        nb = nbs.read_notebook(path)
        for i, name in nbs.check_cells(nb):
            found[path.stem].append(name)
    return found


def test_every_exercise_has_exactly_one_check_cell_and_vice_versa(repo_root):
    load_all()
    found = _solution_checks(repo_root)
    problems = []
    for name, ex in EXERCISES.items():
        n = found.get(ex.lesson, []).count(name)
        if n != 1:
            problems.append(f"exercise {name} ({ex.lesson}) has {n} check cells in solutions/{ex.lesson}.ipynb")
    for lesson, names in found.items():
        for name in names:
            ex = EXERCISES.get(name)
            if name is None:
                problems.append(f"solutions/{lesson}.ipynb has a check cell that calls no check.NAME(...)")
            elif ex is None:
                problems.append(f"solutions/{lesson}.ipynb checks {name}, which no lesson module registers")
            elif ex.lesson != lesson:
                problems.append(f"solutions/{lesson}.ipynb checks {name}, registered for lesson {ex.lesson}")
    assert not problems, "\n".join(problems)


def test_check_cells_in_solutions_show_their_pass_line_with_an_execution_count(repo_root):
    for path in sorted((repo_root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        nb = nbs.read_notebook(path)
        for i, name in nbs.check_cells(nb):
            cell = nb.cells[i]
            assert cell.execution_count is not None, f"{path.name} cell {i}: nbval skips cells without a count"
            assert nbs.cell_text_output(cell) == pass_line(name) + "\n", f"{path.name} cell {i}"


def _names_used(source: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(nbs._strip_magics(source))
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def test_display_only_cells_define_nothing_later_cells_use(repo_root):
    """The self-check and the grader skip cells tagged display-only, so nothing may depend on them."""
    for path in sorted((repo_root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        cells = [c for c in nbs.read_notebook(path).cells if c.cell_type == "code"]
        for i, cell in enumerate(cells):
            if nbs.DISPLAY_ONLY_TAG not in (cell.metadata.get("tags") or []):
                continue
            assert not nbs.is_check_cell(cell), f"{path.name}: a check cell cannot be display-only"
            defined = nbs.defined_names(cell.source)
            later = set().union(*[_names_used(c.source) for c in cells[i + 1:]]) if cells[i + 1:] else set()
            assert not defined & later, f"{path.name} code cell {i} is display-only but defines {defined & later}"


def test_course_check_exposes_every_exercise():
    load_all()
    for name, ex in EXERCISES.items():
        assert getattr(check, name) is ex.check and ex.check.__name__ == name
        assert ex.name == name and ex.points >= 1
    assert "notebook" in dir(check)
    with pytest.raises(AttributeError):
        check.no_such_exercise


def test_exercise_names_are_unique_across_lessons():
    load_all()

    def pitch_range(r):
        return [Case("x", 1)]
    with pytest.raises(ValueError):
        kit.exercise(lesson="99_other")(pitch_range)


def test_the_index_read_from_source_is_the_registry():
    """``check.NAME`` imports one module, found by reading the check modules' source: it must agree with
    what importing them registers, lesson by lesson and in order."""
    load_all()
    by_lesson = collections.defaultdict(list)
    for name, ex in EXERCISES.items():
        if not ex.lesson.startswith("99_"):
            by_lesson[ex.lesson].append(name)
    assert lessons() == dict(by_lesson)
    for name, (module, lesson) in kit_index().items():
        assert EXERCISES[name].make.__module__ == f"course.checks.{module}" and EXERCISES[name].lesson == lesson


def test_registry_order_is_the_notebooks_order(repo_root):
    """The grader takes a lesson's exercises from the registry and their cells from the notebook."""
    found = _solution_checks(repo_root)
    assert {k: v for k, v in lessons().items()} == dict(found)


def kit_index():
    from course.checks import index

    return index()


def test_looking_up_one_check_imports_only_its_lesson():
    """Lesson 00 starts without torch: ``check.pitch_range`` imports lesson_00 and nothing heavier."""
    import subprocess
    import sys

    code = ("import sys\nfrom course import check\ncheck.pitch_range\n"
            "print(sorted(m for m in sys.modules if m.startswith('course.checks.lesson')), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['course.checks.lesson_00'] False"


def test_an_exercise_is_one_function():
    """The kit's promise to lesson authors: one decorated function, nothing else to register."""
    def kit_demo_double(r):
        """Check ``kit_demo_double(x) -> 2 x``."""
        return [Case("three", 3), Case("random", int(r.integers(4, 9)))]

    def square(x):
        return x * x

    ex = kit.exercise(compare=kit.against(lambda x: 2 * x, mistakes={square: "that is the square"}),
                      hint="double it", lesson="99_tests")(kit_demo_double)
    try:
        assert ex.name == "kit_demo_double" and ex.lesson == "99_tests" and "2 x" in ex.check.__doc__
        assert one_line(ex, lambda x: x + x) == pass_line("kit_demo_double")
        line = one_line(ex, square)
        assert line.startswith("FAIL kit_demo_double: case 'three': wrong value: expected 6, got 9; that is the square.")
        assert line.endswith("Hint: double it")
        assert "that is the square" not in one_line(ex, lambda x: x + 1)
    finally:
        EXERCISES.pop("kit_demo_double", None)


def test_against_names_a_known_mistake():
    compare = kit.against(lambda x: x + 1, mistakes={lambda x: x - 1: "that is what subtracting gives"})
    compare(4, 3)
    with pytest.raises(CheckFailure, match="that is what subtracting gives"):
        compare(2, 3)
    with pytest.raises(CheckFailure) as e:
        compare(7, 3)
    assert "subtracting" not in str(e.value)
    with pytest.raises(CheckFailure, match="returned None"):
        compare(None, 3)


def test_kit_helpers_read_answers_in_any_form():
    import torch

    assert kit.number(torch.tensor([2.5])) == 2.5 and kit.number(np.float32(1.5)) == 1.5
    with pytest.raises(CheckFailure, match="one number"):
        kit.number(np.zeros(3))
    with pytest.raises(CheckFailure, match="one number"):
        kit.number("3")
    assert kit.as_array(torch.ones(2)).dtype == np.float64 and kit.as_array([1, 2]).shape == (2,)
    with pytest.raises(CheckFailure, match="expected a tensor"):
        kit.as_array({"a": 1})
    t = kit.randn(np.random.default_rng(0), 2, 3, scale=0.5)
    assert t.dtype == torch.float32 and t.shape == (2, 3)
    kit.close(1.0 + 1e-7, 1.0)
    with pytest.raises(CheckFailure):
        kit.close(1.1, 1.0)


# ------------------------------------------------------------------------------------ run_cases
def square(x):
    return x * x


def _squared(got, x):
    compare_values(got, x * x)


CASES = [Case("two", 2), Case("minus three", -3)]


def run_cases(name, func, cases, **kwargs):
    return _run_cases(name, func, cases, compare=_squared, **kwargs)


def test_pass_line_format():
    assert pass_line("f") == "PASS f: all cases correct."
    assert one_line(run_cases, "f", square, CASES) == "PASS f: all cases correct."


@pytest.mark.parametrize("func,needle", [
    (lambda x: x + x, "case 'minus three': wrong value: expected 9, got -6"),
    (lambda x: None, "returned None"),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
    (lambda x: [x * x], "got [4]"),
    ("not a function", "expected a function"),
    (lambda x, y: x, "raised TypeError"),
])
def test_fail_lines(func, needle):
    line = one_line(run_cases, "f", func, CASES, hint="square it")
    assert line.startswith("FAIL f: case '") and needle in line and line.endswith("Hint: square it"), line


def test_a_typo_is_named_and_gets_no_hint_about_the_exercise():
    def typo(x):
        value = x
        return valeu * value  # noqa: F821

    line = one_line(run_cases, "f", typo, CASES, hint="square it")
    assert "uses the name 'valeu', which is not defined (did you mean 'value'?)" in line and "Hint" not in line, line
    far_off = one_line(run_cases, "f", lambda x: zzzqqq, CASES, hint="square it")  # noqa: F821
    assert "'zzzqqq', which is not defined (a typo, or a cell above that has not been run?)" in far_off
    missing = one_line(run_cases, "f", lambda x: __import__("no_such_module_here"), CASES, hint="square it")
    assert "ModuleNotFoundError" in missing and "Hint" not in missing
    assert one_line(run_cases, "f", lambda x: 1 / 0, CASES, hint="square it").endswith("Hint: square it")


def test_a_student_function_that_prints_or_warns_does_not_break_the_line():
    def noisy(x):
        import warnings

        print("debug", x)
        warnings.warn("careful")
        print("x" * 1_000_000)
        return x * x
    assert one_line(run_cases, "f", noisy, CASES) == pass_line("f")


def test_time_limit_even_against_a_swallowed_interrupt():
    def stubborn(x):
        try:
            while True:
                pass
        except BaseException:       # swallows the first interrupt...
            pass
        while True:                 # ...but not the next one
            pass
    t0 = time.monotonic()
    line = one_line(run_cases, "f", stubborn, CASES, time_limit_s=0.5)
    assert "longer than 0.5 s" in line and time.monotonic() - t0 < 5


def test_exit_and_interrupt_become_fail_lines():
    def leave(x):
        raise SystemExit(3)

    def interrupted(x):
        raise KeyboardInterrupt
    assert "exit()" in one_line(run_cases, "f", leave, CASES)
    assert "interrupted" in one_line(run_cases, "f", interrupted, CASES)


def test_changed_input_is_caught():
    def sorts_in_place(a):
        a.sort()
        return a
    line = one_line(_run_cases, "f", sorts_in_place, [Case("list", [3, 1, 2])],
                    compare=lambda got, a: compare_values(got, sorted(a)))
    assert "changed its input" in line


def test_an_object_that_claims_to_equal_everything_does_not_pass():
    class Liar:
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False
    m = music.Music(notes=((60, 0.0, 1.0),))
    with pytest.raises(CheckFailure):
        compare_values(Liar(), m)

    class LiarMusic(music.Music):
        def __eq__(self, other):
            return True
    with pytest.raises(CheckFailure):
        compare_values(LiarMusic(notes=()), m)


def test_compare_values_shapes_and_tolerance():
    compare_values(np.array([1.0, 2.0]) + 1e-9, np.array([1.0, 2.0]))
    with pytest.raises(CheckFailure, match="wrong shape"):
        compare_values(np.zeros(3), np.zeros(2))
    with pytest.raises(CheckFailure, match="NaN"):
        compare_values(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(CheckFailure, match="expected a number"):
        compare_values("1.0", 1.0)
    compare_values(music.Note(60, 0.0, 1.0), (60, 0.0, 1.0, 80, 0))


# ------------------------------------------------------------------------------------ the guard
def test_a_registered_check_prints_one_line_and_never_raises():
    def guard_demo_raises(r):
        raise RuntimeError("a bug in the check")

    def chatty(got, x):
        print("first")
        print("FAIL guard_demo_chatty: second.")
        raise CheckFailure("second")

    def guard_demo_chatty(r):
        return [Case("one", 1)]

    def guard_demo_silent(r):
        return [Case("one", 1)]

    broken_check = kit.exercise(lesson="99_tests", compare=_squared)(guard_demo_raises)
    chatty_check = kit.exercise(lesson="99_tests", compare=chatty)(guard_demo_chatty)
    kit.exercise(lesson="99_tests", compare=_squared)(guard_demo_silent)

    def silent_check(f):                         # a check whose body forgets to print its line
        guard._guarded("guard_demo_silent", lambda obj: None, (f,), {})
    try:
        assert one_line(broken_check, square).startswith("FAIL guard_demo_raises: the check stopped")
        assert one_line(chatty_check, square).startswith("FAIL guard_demo_chatty: case 'one': second")
        assert "printed nothing" in one_line(silent_check, square)
        assert "pass your function itself" in one_line(check.pitch_range)
        assert "check.pitch_range takes one argument" in one_line(check.pitch_range)
    finally:
        for n in ("guard_demo_raises", "guard_demo_chatty", "guard_demo_silent"):
            EXERCISES.pop(n, None)


def test_random_cases_depend_on_the_grading_seed(monkeypatch):
    monkeypatch.delenv(env.SEED, raising=False)
    a = kit.case_seed("x")
    assert kit.case_seed("x") == a and kit.case_seed("y") != a
    monkeypatch.setenv(env.SEED, "grading")
    assert kit.case_seed("x") != a


ARMED_SCRIPT = """
import io, contextlib, json, os, sys
from course.grading import sidechannel
from course import check
assert sidechannel.arm() and sidechannel.armed()
print(json.dumps({"token_gone": not os.path.exists(sys.argv[1]),
                  "env_gone": not any(k.startswith("COURSE_GRADING_") and k != "COURSE_GRADING_SEED" for k in os.environ)}))
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    check.pitch_range(lambda m: (0, 0))
print(json.dumps({"line": buf.getvalue(), "again": sidechannel.arm(),
                  "public_record": hasattr(sidechannel, "record") or hasattr(sidechannel, "_recorder")}))
"""


def test_side_channel_records_what_the_real_check_printed(tmp_path):
    """Arming happens once per kernel, so it is tried in a process of its own."""
    import subprocess
    import sys

    token, results = tmp_path / "token", tmp_path / "records.jsonl"
    token.write_text("s3cret")
    job_env = dict(os.environ, **{env.TOKEN_FILE: str(token), env.RESULTS: str(results)})
    out = subprocess.run([sys.executable, "-c", ARMED_SCRIPT, str(token)], env=job_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first == {"token_gone": True, "env_gone": True}, "the secret's file is deleted once read"
    assert second["line"].startswith("FAIL pitch_range:") and second["line"].count("\n") == 1
    assert not second["again"], "arming twice does nothing"
    assert not second["public_record"], "no module global leads to the recorder"
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(recs) == 1 and recs[0]["secret"] == "s3cret" and recs[0]["exercise"] == "pitch_range"
    assert recs[0]["line"].startswith("FAIL pitch_range:") and "tampered" not in recs[0]


def test_without_grading_nothing_is_recorded(monkeypatch):
    monkeypatch.delenv(env.TOKEN_FILE, raising=False)
    assert not sidechannel.arm() and not sidechannel.armed()


# ------------------------------------------------------------------------------------ notebook helpers
@pytest.mark.parametrize("text,needle", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"nbformat": 3, "worksheets": []}', "format 3"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "no list of cells"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "x"}]}', "damaged"),
])
def test_broken_notebooks_get_a_clear_reason(text, needle):
    from course.errors import ExerciseError

    with pytest.raises(ExerciseError, match=needle):
        nbs.parse_notebook(text, "x.ipynb")


def test_check_cell_detection():
    import nbformat

    cell = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\ncheck.pitch_range(pitch_range)")
    assert nbs.is_check_cell(cell) and nbs.check_name(cell.source) == "pitch_range"
    assert not nbs.is_check_cell(nbformat.v4.new_code_cell("check.pitch_range(pitch_range)"))
    assert nbs.check_name("%time check.a(b)") == "a"


def test_lesson_is_found_by_metadata_name_or_check_cells():
    import nbformat

    known = {"00_welcome": ["pitch_range", "transpose_melody"], "01_music_as_data": ["pitch_to_frequency"]}
    nb = nbformat.v4.new_notebook(metadata={"course": {"lesson": "01_music_as_data"}})
    assert nbs.lesson_of(nb, "alice.ipynb", known).lesson == "01_music_as_data"
    nb = nbformat.v4.new_notebook()
    assert nbs.lesson_of(nb, "00_welcome-alice.ipynb", known).lesson == "00_welcome"
    nb.cells.append(nbformat.v4.new_code_cell("check.transpose_melody(f)"))
    assert nbs.lesson_of(nb, "bob.ipynb", known).lesson == "00_welcome"
    assert nbs.lesson_of(nbformat.v4.new_notebook(), "carol.ipynb", known).lesson is None


def test_students_get_a_plain_function_that_leads_nowhere():
    """``check.NAME`` holds its parts in a closure: no attribute leads to the cases, the comparison, the
    references or the lesson's namespace, and setting attributes on it changes nothing."""
    f = check.pitch_range
    for attr in ("make", "compare", "cases", "namespace", "prepare", "run", "unguarded", "__wrapped__"):
        assert not hasattr(f, attr), attr
    f.cases = lambda: []                          # a student's attribute: ignored
    try:
        assert one_line(f, lambda m: (0, 0)).startswith("FAIL pitch_range:")
    finally:
        del f.cases
    with pytest.raises(Exception):
        EXERCISES["pitch_range"].compare = None   # the registry's Exercise is frozen


def test_a_lesson_module_that_cannot_load_gives_one_fail_line(monkeypatch):
    import sys

    from course import checks

    def broken(name):
        raise ModuleNotFoundError("No module named 'torch'")
    monkeypatch.setattr(checks, "load", broken)
    monkeypatch.setitem(sys.modules, "course.check", sys.modules["course.check"])
    import importlib

    facade = importlib.reload(sys.modules["course.check"])
    try:
        line = one_line(facade.rnn_cell_step, lambda *a: None)
        assert line.startswith("FAIL rnn_cell_step: the check could not be loaded (ModuleNotFoundError")
    finally:
        monkeypatch.undo()
        importlib.reload(sys.modules["course.check"])


def test_check_passed_and_choose_follow_the_last_result(capsys):
    from course.checks import lesson_08

    def right(bars):
        return lesson_08.reference_empty_bar_rate(bars)

    def wrong(bars):
        return 1.0 - lesson_08.reference_empty_bar_rate(bars)

    check.empty_bar_rate(wrong)
    assert check.passed("empty_bar_rate") is False
    assert check.choose("empty_bar_rate", wrong, right) is right
    check.empty_bar_rate(right)
    assert check.passed("empty_bar_rate") is True and check.passed("never_checked") is False
    assert check.choose("empty_bar_rate", wrong, right) is wrong
    out = capsys.readouterr().out
    assert "using the course's empty_bar_rate" in out and "using your empty_bar_rate" in out
