"""A student's and an instructor's first hour: no one loses work, and every message names its cause.

The first test does what a student does after following the README: ``course start``, edit and save a
notebook in the workspace, run the test suite's freshness check and ``course build``, pull a newer course
and ``start`` again; the student's edits are still there. The others cover what the build does with work
saved in ``notebooks/`` itself, the self-check cell that Run All skips (in a real kernel, with requests sent
the way front ends send them), messages that name the cause (a syntax error with its line, a typo's name, no
unrelated hint), and the grader's summary, history and "not attempted" status.
"""
import csv
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import nbformat
import pytest

import hostile
from course import workspace
from course.authoring import notebooks as nbs
from course.checks import exercises_of
from course.cli import main
from course.grading import grade as grading
from course.grading import selfcheck

LESSON = "00_welcome"


@pytest.fixture
def course_tree(tmp_path, repo_root):
    """A copy of the course's lesson 00 as a repository lays it out: solutions/, notebooks/ (and no work/ yet)."""
    root = tmp_path / "course"
    for folder in ("solutions", "notebooks"):
        (root / folder).mkdir(parents=True)
        shutil.copy(repo_root / folder / f"{LESSON}.ipynb", root / folder)
    return root


def _tree_args(root: Path) -> list[str]:
    return ["--solutions", str(root / "solutions"), "--notebooks", str(root / "notebooks")]


def _new_edition(root: Path, text: str) -> None:
    """The course's author adds ``text`` to the lesson's first cell (a later edition of the solution)."""
    sol = root / "solutions" / f"{LESSON}.ipynb"
    nb = nbs.read_notebook(sol)
    nb.cells[0].source += f"\n\n{text}"
    sol.write_text(nbs.dumps(nb), encoding="utf-8")


def _save_as_a_student(path: Path) -> bytes:
    """What a student does in JupyterLab: answer the first exercise, run cells, save (outputs, counts, kernel info)."""
    nb = nbformat.read(path, as_version=4)
    stub = next(c for c in nb.cells if c.cell_type == "code" and "def pitch_range(" in c.source)
    stub.source = ("def pitch_range(melody):\n    pitches = [n.pitch for n in melody.notes]\n"
                   "    return min(pitches), max(pitches)   # my answer")
    stub.execution_count = 7
    check_cell = next(c for c in nb.cells if nbs.is_check_cell(c) and "pitch_range" in c.source)
    check_cell.execution_count = 8
    check_cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                 text="PASS pitch_range: all cases correct.\n")]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    nbformat.write(nb, path)            # as the Jupyter server saves it
    return path.read_bytes()


# ------------------------------------------------------------------------------------ the student's hour
def test_a_students_edits_survive_start_the_freshness_check_build_and_a_course_update(course_tree, monkeypatch,
                                                                                   capsys):
    monkeypatch.setattr(workspace, "ROOT", course_tree)         # `course start` as run inside this repository
    assert main(["start", "--no-lab", "--notebooks", str(course_tree / "notebooks")]) == 0
    work = course_tree / "work"
    assert workspace.default_workspace() == work and "Your workspace" in capsys.readouterr().out
    mine = work / f"{LESSON}.ipynb"
    assert mine.read_bytes() == (course_tree / "notebooks" / f"{LESSON}.ipynb").read_bytes()
    saved = _save_as_a_student(mine)

    # the README's test command checks that notebooks/ is what the build makes: the workspace is not in its way
    assert main(["build", "--check", *_tree_args(course_tree)]) == 0, capsys.readouterr().out
    assert main(["build", *_tree_args(course_tree)]) == 0
    assert main(["start", "--no-lab", "--notebooks", str(course_tree / "notebooks")]) == 0
    assert mine.read_bytes() == saved, "start, build and the freshness check must leave the student's work alone"
    assert sorted(p.name for p in work.glob("*.ipynb")) == [mine.name], "nothing was delivered twice"

    # a newer course: the lesson changes, the build remakes notebooks/, start delivers it beside the student's file
    _new_edition(course_tree, "A sentence added in a later edition.")
    assert main(["build", *_tree_args(course_tree)]) == 0
    capsys.readouterr()
    assert main(["start", "--no-lab", "--notebooks", str(course_tree / "notebooks")]) == 0
    out = capsys.readouterr().out
    assert mine.read_bytes() == saved
    update = [p for p in work.glob("*.ipynb") if p != mine]
    assert [p.name for p in update] == [f"{LESSON} (course {date.today():%Y-%m-%d}).ipynb"], update
    assert "later edition" in update[0].read_text() and "untouched" in out and update[0].name in out
    assert main(["start", "--no-lab", "--notebooks", str(course_tree / "notebooks")]) == 0
    assert len(list(work.glob("*.ipynb"))) == 2, "the same update is never delivered twice"


def test_start_never_replaces_a_file_and_names_updates_by_day(tmp_path):
    source, work = tmp_path / "notebooks", tmp_path / "work"
    source.mkdir()
    (source / "03_melody_lstm.ipynb").write_text("version 1")
    first = workspace.copy_notebooks(source, work, today=date(2026, 12, 14))
    assert [d.how for d in first] == ["copied"]
    (work / "03_melody_lstm.ipynb").write_text("the student's version")
    assert [d.how for d in workspace.copy_notebooks(source, work)] == ["yours"]
    for version, name in (("version 2", "03_melody_lstm (course 2026-12-14).ipynb"),
                          ("version 3", "03_melody_lstm (course 2026-12-14 2).ipynb")):
        (source / "03_melody_lstm.ipynb").write_text(version)
        (d,) = workspace.copy_notebooks(source, work, today=date(2026, 12, 14))
        assert d.how == "update" and d.path.name == name and d.path.read_text() == version
    assert (work / "03_melody_lstm.ipynb").read_text() == "the student's version"
    with pytest.raises(FileExistsError):
        from course.files import create_new

        create_new(work / "03_melody_lstm.ipynb", "would overwrite")


def test_start_says_what_is_missing_and_opens_jupyterlab_on_the_workspace(tmp_path, monkeypatch, capsys):
    assert main(["start", str(tmp_path / "w"), "--no-lab", "--notebooks", str(tmp_path / "none")]) == 1
    assert "no student notebooks in" in capsys.readouterr().err.lower()
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "00_welcome.ipynb").write_text("{}")
    calls = []
    monkeypatch.setattr(workspace.subprocess, "call", lambda cmd, cwd: calls.append((cmd, cwd)) or 0)
    assert main(["start", str(tmp_path / "w"), "--notebooks", str(tmp_path / "nb")]) == 0
    (cmd, cwd), = calls
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"] and f"--ServerApp.root_dir={tmp_path / 'w'}" in cmd
    assert cwd == str(tmp_path / "w")


def test_the_readme_takes_a_new_user_from_nothing_to_the_lessons_and_the_tests(repo_root):
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    setup = readme[readme.index("## Set up"):readme.index("## Listening and looking")]
    install = setup.index("python -m pip install -r requirements.txt")
    assert setup.index("python3 -m venv .venv && . .venv/bin/activate") < install, "a venv before the install"
    assert setup.index(".venv\\Scripts\\activate") < install, "and the Windows lines too"
    assert "python -m course start" in setup and "jupyter lab notebooks/" not in readme
    tests = readme[readme.index("## Run the tests"):readme.index("## Layout")]
    assert "about 6 minutes" in tests and "--dist loadfile" in tests and "/usr/bin/chromium" in tests
    assert "skipped" in tests
    assert "--seed" in readme[readme.index("## For instructors"):readme.index("## Run the tests")]
    assert (repo_root / ".gitignore").read_text().splitlines().count("/work/") == 1, "git ignores the workspace"


# ------------------------------------------------------------------------------------ the build and notebooks/
def test_the_build_refuses_to_overwrite_work_saved_in_notebooks_and_force_keeps_a_backup(course_tree, capsys):
    edited = course_tree / "notebooks" / f"{LESSON}.ipynb"
    saved = _save_as_a_student(edited)
    assert main(["build", *_tree_args(course_tree)]) == 1
    captured = capsys.readouterr()
    assert edited.read_bytes() == saved, "the build must not overwrite the student's notebook"
    assert str(edited) in captured.err and "outputs of a run" in captured.err
    assert "code in place of the stub" in captured.err and "--force" in captured.err and "work" in captured.err
    assert main(["build", "--check", *_tree_args(course_tree)]) == 1
    assert "holds work the build did not make" in capsys.readouterr().out

    assert main(["build", "--force", *_tree_args(course_tree)]) == 0
    backups = list((course_tree / "work" / "backups").glob(f"*/{LESSON}.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == saved and str(backups[0]) in capsys.readouterr().out
    assert main(["build", "--check", *_tree_args(course_tree)]) == 0


@pytest.mark.parametrize("change, reason", [
    ("outputs", "outputs of a run"),
    ("app", "saved by a notebook app"),
])
def test_the_build_names_why_it_leaves_a_notebook_alone(course_tree, capsys, change, reason):
    path = course_tree / "notebooks" / f"{LESSON}.ipynb"
    nb = nbformat.read(path, as_version=4)
    if change == "outputs":            # run, not edited
        cell = next(c for c in nb.cells if c.cell_type == "code" and not nbs.is_setup_cell(c))
        cell.execution_count = 1
    else:                              # opened and saved, nothing else
        nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nbformat.write(nb, path)
    _new_edition(course_tree, "New text.")            # so that the build has something to write
    before = path.read_bytes()
    assert main(["build", *_tree_args(course_tree)]) == 1
    assert reason in capsys.readouterr().err and path.read_bytes() == before


def test_the_build_replaces_its_own_output_from_an_older_solution(course_tree, capsys):
    """An author's workflow: edit the solution, build, edit again, build; no refusal, no backup."""
    for text in ("First addition.", "Second addition."):
        _new_edition(course_tree, text)
        assert main(["build", *_tree_args(course_tree)]) == 0, capsys.readouterr().err
    assert "Second addition." in (course_tree / "notebooks" / f"{LESSON}.ipynb").read_text()
    assert not (course_tree / "work").exists()


# ------------------------------------------------------------------------------------ the self-check cell
def _run(kc, sources: list[str], timeout: float = 120) -> list[list[dict]]:
    """Send every source at once (as Run All does) and collect each one's outputs."""
    ids = [kc.execute(src) for src in sources]
    outs: dict[str, list] = {i: [] for i in ids}
    pending, deadline = set(ids), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        parent = msg["parent_header"].get("msg_id")
        if parent not in outs:
            continue
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            outs[parent].append(msg["content"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            pending.discard(parent)
    assert not pending, "the kernel did not finish"
    return [outs[i] for i in ids]


def _text(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") or o.get("evalue", "")
                   for o in outputs)


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    from course.authoring.kernels import current_env_kernel

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)    # a front end that does not say which notebook it is
    km = current_env_kernel(tmp_path)
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


SELF_CHECK = f'check.notebook(lesson="{LESSON}")'


def test_run_all_skips_the_self_check_and_running_it_alone_runs_it(kernel):
    first = "from course import check\ncheck.pitch_range   # looking a check up starts noting when cells run"
    _, right_after_the_first_check = _run(kernel, [first, SELF_CHECK])  # JupyterLab: every request sent at once
    assert "Self-check skipped" in _text(right_after_the_first_check)
    _, all_at_once = _run(kernel, ["import time\ntime.sleep(0.3)", SELF_CHECK])
    assert "Self-check skipped" in _text(all_at_once) and "Run All" in _text(all_at_once)
    _run(kernel, ["x = 1"])
    (one_after_another,) = _run(kernel, [SELF_CHECK])                   # VS Code, Colab: sent as the last one ends
    assert "Self-check skipped" in _text(one_after_another)
    time.sleep(1.5)                                                     # a person takes a moment
    (by_hand,) = _run(kernel, [SELF_CHECK])
    text = _text(by_hand)
    assert "skipped" not in text and "Cannot tell which notebook this is" in text
    assert f"check.notebook('{LESSON}.ipynb')" in text and f"{LESSON}.ipynb`" in text, text


def test_fail_lines_wrap_between_words_in_a_notebook_and_pass_lines_stay_plain(kernel):
    fail, ok = _run(kernel, [
        "from course import check\ncheck.pitch_range(lambda melody: (0, 0))",
        "check.pitch_range(lambda melody: (min(n.pitch for n in melody.notes), max(n.pitch for n in melody.notes)))"])
    (shown,) = fail
    assert shown["data"]["text/plain"].startswith("FAIL pitch_range: case ")
    assert "word-break: normal" in shown["data"]["text/html"] and "FAIL pitch_range" in shown["data"]["text/html"]
    assert ok == [{"name": "stdout", "text": "PASS pitch_range: all cases correct.\n"}]


def test_the_self_check_fallback_names_its_own_notebook(monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    selfcheck.check_notebook_interactive(lesson="03_melody_lstm")
    out = capsys.readouterr().out
    assert "check.notebook('03_melody_lstm.ipynb')" in out and "03_melody_lstm.ipynb`" in out
    assert "00_welcome" not in out


def test_every_lesson_ends_with_a_self_check_cell_that_names_the_lesson(repo_root):
    for path in sorted((repo_root / "solutions").glob("0[0-8]_*.ipynb")):
        nb = nbs.read_notebook(path)
        cell = nb.cells[-1]
        assert cell.source.splitlines()[0] == "# NBVAL_SKIP" and f'check.notebook(lesson="{path.stem}")' in cell.source
        assert "python -m course start" in nb.cells[0].source, f"{path.name}: the first cell says where to work"


# ------------------------------------------------------------------------------------ messages that name the cause
@pytest.fixture(scope="module")
def light_lessons(tmp_path_factory):
    return hostile.write_lessons_dir(tmp_path_factory.mktemp("lessons"), light=True)


def test_a_syntax_error_is_named_with_its_line_before_what_it_caused(light_lessons, tmp_path):
    nb = hostile.correct(nbs.read_notebook(light_lessons / f"{LESSON}.ipynb"))
    nb = hostile._set_function(nb, "pitch_range", "def pitch_range(melody):\np = [n.pitch for n in melody.notes]\n"
                                                  "    return min(p), max(p)")
    nb = hostile._set_function(nb, "transpose_melody", "def transpose_melody(melody, semitones):\n"
                                                        "    return music.transpose(melody, semitoness)")
    path = tmp_path / "mine.ipynb"
    path.write_text(nbs.dumps(nb))
    result = selfcheck.check_notebook(path, lessons_dir=light_lessons)
    by = {r.exercise: r for r in result.results}
    broken = by["pitch_range"]
    assert broken.status == "error"
    assert broken.message.startswith("the code cell starting 'def pitch_range(melody):' is not valid Python: "
                                     "IndentationError on line 2"), broken.message
    assert broken.message.index("IndentationError") < broken.message.index("NameError")
    typo = by["transpose_melody"]
    assert "uses the name 'semitoness', which is not defined (did you mean 'semitones'?)" in typo.message
    assert "Hint:" not in typo.message, "a typo gets no hint about the exercise"
    assert by["melody_intervals"].status == "passed"
    assert result.notes[0].startswith("the code cell starting 'def pitch_range(melody):' is not valid Python")
    table = selfcheck.format_table(result, path.name)
    assert "IndentationError on line 2" in table


@pytest.mark.parametrize("source, expected", [
    ("def f(:\n    pass", "SyntaxError on line 1"),
    ("x = 1\nif x:\nprint(x)", "IndentationError on line 3: expected an indented block"),
    ("%time x = 1\n!ls\nx = await something()", None),
    ("%%bash\necho this is not python", None),
    ("return 1", "SyntaxError on line 1: 'return' outside function"),
])
def test_syntax_errors_are_found_as_ipython_would_see_them(source, expected):
    found = nbs.syntax_error(source)
    assert (found is None) if expected is None else found.startswith(expected), found


# ------------------------------------------------------------------------------------ the instructor's hour
def test_grading_counts_notebooks_and_exercises_apart_and_keeps_every_run(light_lessons, tmp_path, capsys):
    lesson_nb = nbs.read_notebook(light_lessons / f"{LESSON}.ipynb")
    subs = hostile.write_submissions(tmp_path / "subs", {"alice": hostile.correct(lesson_nb),
                                                          "bob": hostile.student(lesson_nb)})
    out = tmp_path / "grades"
    args = ["grade", str(subs), "--out", str(out), "--lessons-dir", str(light_lessons), "--jobs", "2",
            "--cell-timeout", "60", "--no-progress", "--seed", "first-hour"]
    assert main(args) == 0
    n = len(exercises_of(LESSON))
    first = capsys.readouterr().out
    assert ("Graded 2 notebooks in" in first and f": 1 all passed, 1 not attempted; {2 * n} exercises: "
            f"{n} passed, {n} not attempted." in first), first
    rows = list(csv.DictReader(open(out / "gradebook.csv", newline="")))
    assert {r["status"] for r in rows if r["student"] == "bob"} == {"not attempted"}
    summary = {r["student"]: r for r in csv.DictReader(open(out / "summary.csv", newline=""))}
    assert summary["bob"]["not_attempted"] == str(n) and summary["alice"]["not_attempted"] == "0"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    assert main(args) == 0                       # the same command again: a second run, beside the first
    second = capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, "a run never overwrites another"
    again = tmp_path / "grades-2"
    assert "already holds a grading run" in second and str(again) in second
    assert json.loads((again / "grading.json").read_text())["seed"] == "first-hour"
    assert (again / "gradebook.csv").read_text() == (out / "gradebook.csv").read_text(), \
        "the same seed, the same grades"


def test_the_summary_line_for_every_kind_of_notebook():
    Row = grading.Row
    run = grading.GradeRun([Row("a", "l", "x", 1, 1, "passed", ""), Row("a", "l", "y", 1, 1, "passed", ""),
                            Row("b", "l", "x", 1, 1, "passed", ""), Row("b", "l", "y", 0, 1, "failed", ""),
                            Row("c", "l", "x", 0, 1, "failed", ""), Row("c", "l", "y", 0, 1, "error", ""),
                            Row("d", "?", "-", 0, 0, "invalid", "")], seconds=12.0)
    assert run.summary() == ("Graded 4 notebooks in 12 s: 1 all passed, 1 partly passed, 1 none passed, 1 invalid; "
                             "6 exercises: 3 passed, 2 failed, 1 error.")


def test_an_out_folder_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "grades").write_text("not a folder")
    with pytest.raises(grading.ExerciseError, match="is a file"):
        grading.fresh_out(tmp_path / "grades")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert grading.fresh_out(empty) == empty
