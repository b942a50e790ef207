"""The grader and the self-check against honest, wrong, hostile and broken submissions.

One run grades a folder mixing all of them (made from lesson 00 by ``tests/hostile``) and every
student must get exactly their due: the honest one full points, whatever the others did. Most
tests use a light copy of lesson 00 (same check cells, none of the slow display cells) so the
suite stays quick; one grades against the real lesson end to end.
"""
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import hostile
from course.checks import exercises_of
from course.cli import main
from course.grading import grade as grading
from course.authoring import notebooks as nbs
from course.grading import checkrun, reports, sandbox, selfcheck, tamper

CELL_TIMEOUT = 8
BAD_NAME = os.fsdecode(b"bad\xffname")        # a file name that is not UTF-8
BAD_ID = "bad\\xffname"                        # the student id the reports show for it


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    folder = hostile.write_lessons_dir(tmp_path_factory.mktemp("lessons"), light=True)
    return folder, nbs.read_notebook(folder / "00_welcome.ipynb")


@pytest.fixture(scope="module")
def mixed(light, tmp_path_factory):
    """Grade one folder with every kind of submission, in one run, two at a time."""
    lessons_dir, lesson_nb = light
    subs_dir = tmp_path_factory.mktemp("submissions")
    subs = hostile.hostile(lesson_nb, outside=subs_dir)
    hostile.write_submissions(subs_dir, subs)
    (subs_dir / f"{BAD_NAME}.ipynb").write_bytes(nbs.dumps(hostile.correct(lesson_nb)).encode("utf-8"))
    (subs_dir / "notes.txt").write_text("not a notebook, and not .ipynb: skipped")
    before = _digest(subs_dir)
    out = tmp_path_factory.mktemp("report")
    scratch = tmp_path_factory.mktemp("scratch")      # this run's jobs, told apart from any other's
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        run = grading.grade(subs_dir, out, jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=120,
                            lessons_dir=lessons_dir, seed="test", memory_mb=3072, progress=False)
    finally:
        tempfile.tempdir = saved
    return run, out, subs_dir, before, scratch


def _status(run, student, exercise):
    rows = [r for r in run.rows if r.student == student and r.exercise == exercise]
    assert len(rows) == 1, (student, exercise, rows)
    return rows[0]


@pytest.mark.parametrize("student", sorted(hostile.EXPECTED))
def test_each_submission_gets_its_due(mixed, student):
    run = mixed[0]
    rows = [r for r in run.rows if r.student == student]
    assert rows, f"no rows for {student}"
    expected = hostile.EXPECTED[student]
    for r in rows:
        want = expected.get(r.exercise, expected.get("*"))
        assert r.status == want, f"{student} {r.exercise}: {r.status} ({r.message}), expected {want}"
        assert r.points == (r.max_points if r.status == "passed" else 0)
        assert r.message, "every row says why"


def test_the_honest_student_gets_full_points_whatever_the_others_did(mixed):
    run = mixed[0]
    for student in ("honest", BAD_ID):          # a file name that is not UTF-8 is graded like any other
        rows = run.student_rows(student)
        assert [r.exercise for r in rows] == [ex.name for ex in exercises_of("00_welcome")]
        assert all(r.status == "passed" and r.points == r.max_points == 1 for r in rows)


def test_attacks_are_named_in_the_messages_and_notes(mixed):
    run, out = mixed[0], mixed[1]
    # patching the course inside the job cannot move the judge: the wrong answers are judged as they are
    assert "moved by +0 semitones instead of +7" in _status(run, "a3_patch_course", "transpose_melody").message
    assert "expected 60, got 1" in _status(run, "a4_patch_reference", "pitch_range").message
    assert "reference implementation is not available" in _status(run, "a6_kept_reference", "pitch_range").message
    assert "you returned 3" in _status(run, "second_run", "pitch_range").message
    notes = (out / "feedback" / "a5_forged_recorder.md").read_text()
    assert "computed name" in notes and "computed attribute name" in notes
    deep = (out / "feedback" / "deep_cell.md").read_text()
    assert "review it by hand" in deep and "raised RecursionError" in deep, "the cell fails at once, no hang"
    assert all(len(r.message) < 2000 for r in run.rows), "printed floods never reach the gradebook"
    assert (out / "gradebook.csv").stat().st_size < 100_000


def test_messages_say_what_happened(mixed):
    run = mixed[0]
    assert "took longer than" in _status(run, "loop_in_function", "pitch_range").message
    assert "stopped" in _status(run, "os_exit", "pitch_range").message
    assert "check.pitch_range" in _status(run, "rebind_check", "pitch_range").message
    assert "builtins" in _status(run, "patch_builtins", "transpose_melody").message
    assert "pass line of pitch_range by hand" in _status(run, "silent_hook", "pitch_range").message
    assert "put back" in _status(run, "deleted_check", "transpose_melody").message
    assert "not valid JSON" in _status(run, "malformed_json", "-").message
    assert "format 3" in _status(run, "old_nbformat", "-").message
    assert "not a notebook" in _status(run, "not_a_notebook", "-").message


def test_the_submissions_are_never_modified(mixed):
    run, out, subs_dir, before, _ = mixed
    after = _digest(subs_dir)
    assert {k: v for k, v in after.items() if k != "pwned.txt"} == before
    info = json.loads((out / "grading.json").read_text())
    assert info["skipped_files"] == ["notes.txt"]
    if run.isolation == "bubblewrap":
        # in the sandbox the submissions folder is not even in view: the write to its absolute path fails
        assert "pwned.txt" not in after and not any("pwned.txt" in n for n in run.notes)
        assert info["settings"]["isolation"] == "bubblewrap"
    else:
        # without isolation a notebook can write to an absolute path: it is reported, and so is the lack of isolation
        assert "pwned.txt" in after
        assert any("pwned.txt" in n for n in run.notes)
        assert any("pwned.txt" in n for n in info["notes"]) and any("NOT isolated" in n for n in info["notes"])


def test_gradebook_summary_and_feedback(mixed):
    run, out, _, _, _ = mixed
    with open(out / "gradebook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == grading.COLUMNS
    assert len(rows) == len(run.rows)
    students = {r["student"] for r in rows}
    assert students == set(hostile.EXPECTED) | {BAD_ID}
    with open(out / "summary.csv", newline="") as f:
        summary = {r["student"]: r for r in csv.DictReader(f)}
    n = str(len(exercises_of("00_welcome")))
    assert summary["honest"]["points"] == n and summary["honest"]["max_points"] == n
    assert summary["patch_builtins"]["tampered"] == n
    # flags: what the instructor looks at first, in both CSV files
    assert summary["patch_builtins"]["flags"] == "tampered" and summary["honest"]["flags"] == ""
    assert "review: " in summary["a5_forged_recorder"]["flags"]
    flags = {(r["student"], r["exercise"]): r["flags"] for r in rows}
    assert flags[("a6_kept_reference", "pitch_range")] == "used the course's reference"
    assert flags[("patch_builtins", "pitch_range")] == "tampered" and flags[("honest", "pitch_range")] == ""
    assert "used the course's reference" in summary["a6_kept_reference"]["flags"]
    for s in students:
        text = (out / "feedback" / f"{reports.safe_name(s)}.md").read_text()
        assert text.startswith(f"# Feedback for {reports.md_text(s)}")
    assert f"{n} / {n} points" in (out / "feedback" / "honest.md").read_text()
    assert "process stopped while" in (out / "feedback" / "os_exit.md").read_text()
    assert not list(out.rglob("*.tmp")), "reports are written atomically"


def test_no_job_outlives_the_grading(mixed):
    """Kernels and their children are killed: no process of this run's jobs (a job marker, a home
    in this run's scratch folder) is left afterwards."""
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc")
    assert list(mixed[4].iterdir()) == [], "every job's scratch folder is removed"
    assert _carrying(sandbox.MARKER_ENV, f"HOME={mixed[4]}") == []


def test_grading_against_the_real_lesson(repo_root, tmp_path):
    """End to end with solutions/00_welcome.ipynb: the honest student passes, the untouched stub is not attempted."""
    lesson_nb = hostile.solution()
    subs = hostile.write_submissions(tmp_path / "subs", {"alice": hostile.correct(lesson_nb),
                                                          "bob": hostile.student(lesson_nb)})
    out = tmp_path / "out"
    code = main(["grade", str(subs), "--out", str(out), "--jobs", "2", "--lessons-dir", str(repo_root / "solutions"),
                 "--cell-timeout", "120", "--no-progress"])
    assert code == 0
    rows = list(csv.DictReader(open(out / "gradebook.csv", newline="")))
    got = {(r["student"], r["exercise"]): r["status"] for r in rows}
    names = [ex.name for ex in exercises_of("00_welcome")]
    assert len(names) >= 3
    assert got == {**{("alice", n): "passed" for n in names}, **{("bob", n): "not attempted" for n in names}}


def test_grading_as_another_user_stops_writes_outside(light, tmp_path):
    """With --run-as (grader as root), a notebook cannot write to the submissions folder."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("needs root")
    probe = subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", f"{sys.executable} -c 'import course'"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user nobody cannot run this environment's Python")
    lessons_dir, lesson_nb = light
    subs_dir = tmp_path / "subs"
    subs = hostile.hostile(lesson_nb, outside=subs_dir)
    hostile.write_submissions(subs_dir, {k: subs[k] for k in ("honest", "write_outside")})
    run = grading.grade(subs_dir, tmp_path / "out", jobs=2, cell_timeout=CELL_TIMEOUT, lessons_dir=lessons_dir,
                        run_as="nobody", progress=False)
    assert not (subs_dir / "pwned.txt").exists()
    assert all(r.status == "passed" for r in run.student_rows("honest"))


# ------------------------------------------------------------------------------------ self-check
def test_self_check_command(light, tmp_path, capsys):
    lessons_dir, lesson_nb = light
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    good.write_text(nbs.dumps(hostile.correct(lesson_nb)))
    wrong = hostile._set_function(hostile.correct(lesson_nb), "pitch_range", hostile.WRONG_RANGE)
    # a saved PASS output must not be trusted: the self-check runs the notebook itself
    for cell in wrong.cells:
        if nbs.is_check_cell(cell):
            cell.outputs, cell.execution_count = [nbs.pass_output(nbs.check_name(cell.source))], 7
    bad.write_text(nbs.dumps(wrong))
    assert main(["check", str(good), "--lessons-dir", str(lessons_dir)]) == 0
    out = capsys.readouterr().out
    n = len(exercises_of("00_welcome"))
    assert f"{n} of {n} exercises pass" in out
    assert main(["check", str(bad), "--lessons-dir", str(lessons_dir)]) == 1
    out = capsys.readouterr().out
    assert f"{n - 1} of {n} exercises pass" in out and "FAILED" in out and "FAIL pitch_range" in out


def test_self_check_from_a_cell_finds_the_notebook(monkeypatch, tmp_path, capsys):
    path = tmp_path / "00_welcome.ipynb"
    path.write_text(nbs.dumps(hostile.student(hostile.light_lesson())))
    seen = {}

    def fake_check(p, **kw):
        seen["path"] = Path(p)
        return selfcheck.NotebookResult("00_welcome", [checkrun.ExerciseResult("pitch_range", "passed", "ok", 1, 1)])

    monkeypatch.setattr(selfcheck, "check_notebook", fake_check)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    selfcheck.check_notebook_interactive()
    assert seen["path"] == path and "1 of 1 exercises pass" in capsys.readouterr().out
    monkeypatch.delenv("JPY_SESSION_NAME")
    seen.clear()
    selfcheck.check_notebook_interactive()
    assert not seen and "check.notebook(" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ pieces
def test_prepare_resets_check_cells_and_injects_pass_lines(light):
    _, lesson_nb = light
    lesson = checkrun.LessonChecks("00_welcome", Path("00_welcome.ipynb"),
                                    [(nbs.check_name(c.source), c.source) for c in lesson_nb.cells if nbs.is_check_cell(c)],
                                    {"pitch_range": ["pitch_range"], "transpose_melody": ["transpose_melody"]})
    sub = hostile.correct(lesson_nb)
    i = hostile._check_cell_index(sub, "pitch_range")
    sub.cells[i].source = "# NBVAL_CHECK_OUTPUT\ncheck.pitch_range(lambda melody: (60, 72))"
    del sub.cells[hostile._check_cell_index(sub, "transpose_melody")]
    p = checkrun.prepare(sub, lesson)
    code = [c for c in p.nb.cells if c.cell_type == "code"]
    assert code[0].source == checkrun.ARM_SOURCE
    for name in ("pitch_range", "transpose_melody"):
        cell = code[p.cell_of[name]]
        assert f"check.{name}({name})" in cell.source and "lambda" not in cell.source
        assert cell.outputs == [nbs.pass_output(name)] and cell.execution_count, "nbval needs an execution count"
    others = [c for k, c in enumerate(code) if k not in p.cell_of.values()]
    assert all(c.outputs == [] and c.execution_count is None for c in others)
    assert "edited" in p.notes["pitch_range"][0] and "put back" in p.notes["transpose_melody"][0]
    # the re-inserted check comes right after the function it checks
    k = p.cell_of["transpose_melody"]
    assert "def transpose_melody" in code[k - 1].source


@pytest.mark.parametrize("src,severity,exercise", [
    ("check.pitch_range = lambda f: None", "tamper", "pitch_range"),
    ("setattr(check, 'transpose_melody', print)", "tamper", "transpose_melody"),
    ("def print(*a):\n    pass", "tamper", None),
    ("import builtins\nbuiltins.print = len", "tamper", None),
    ("from course.checks import guard", "tamper", None),
    ("import course.checks.lesson_00 as m\nm.run_cases = None", "tamper", None),
    ("print('PASS pitch_range: all cases correct.')", "tamper", "pitch_range"),
    ("import os\nos.environ.get('COURSE_GRADING_SEED')", "tamper", None),
    ("import gc\ngc.collect()", "warning", None),
    ("import gc\n[o for o in gc.get_objects()]", "tamper", None),
    ("f.__closure__[0].cell_contents", "tamper", None),
    ("def pitch_range(m):\n    import sys\n    return sys._getframe(1).f_locals['case'].expected", "tamper", None),
    ("g = check.pitch_range.__globals__\ng['run_cases'] = None", "tamper", None),
    ("import ctypes", "tamper", None),
    ("open('/etc/passwd').read()", "warning", None),
])
def test_tamper_scan_names_what_it_finds(src, severity, exercise):
    found = tamper.scan_source(src, 3, ["pitch_range", "transpose_melody"])
    assert any(f.severity == severity and f.exercise == exercise for f in found), found


def test_untouched_lesson_notebooks_are_not_flagged(repo_root):
    """No cell a lesson ships may look like tampering, or every student would lose points."""
    lessons = checkrun.find_lessons(repo_root / "solutions")
    for folder in ("solutions", "notebooks"):
        for path in sorted((repo_root / folder).glob("[0-9][0-9]_*.ipynb")):
            lesson = lessons[path.stem]
            found = tamper.scan_notebook(nbs.read_notebook(path), lesson.names, [s for _, s in lesson.checks])
            assert not [f for f in found if f.severity == "tamper"], f"{folder}/{path.name}: {found}"


@pytest.mark.parametrize("src", [
    "def pitch_range(melody):\n    p = [n.pitch for n in melody.notes]\n    return min(p), max(p)",
    "check.pitch_range(pitch_range)",
    "%matplotlib inline\nimport numpy as np\nx = np.arange(3)",
    "checked = True\nprinted = check_list = 1",
])
def test_tamper_scan_leaves_ordinary_code_alone(src):
    assert tamper.scan_source(src, 0, ["pitch_range"]) == []


def _carrying(*needles: str) -> list[int]:
    """The processes whose environment contains every one of ``needles``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                env = open(f"/proc/{entry.name}/environ", "rb").read()
                if all(n.encode() in env for n in needles):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_kill_job_finds_processes_by_marker(tmp_path):
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc")
    import time
    import uuid

    marker = f"marker-for-test-{uuid.uuid4().hex}"
    env = dict(os.environ, **{sandbox.MARKER_ENV: marker})
    # a grandchild in a session of its own, as a kernel is: only the marker finds it
    p = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                          "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
                          "time.sleep(60)"], env=env, start_new_session=True)
    deadline = time.monotonic() + 30          # both started, however busy the machine
    while len(_carrying(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_carrying(marker)) == 2
    assert sandbox.kill_job(p.pid, marker) >= 2
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _carrying(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _carrying(marker) == []


def test_memory_limit_applies_to_the_job(tmp_path):
    code = ("from course.grading.sandbox import apply_limits\napply_limits(memory_mb=1024)\n"
            "try:\n    x = bytearray(2_000_000_000)\n    print('allocated')\nexcept MemoryError:\n    print('limited')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "limited"


def test_the_self_check_applies_the_graders_tamper_scan():
    """``course check`` reads the code as the grader does: a finding the grader withholds points for
    turns a pass into FLAGGED, and a warning becomes a review note."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import builtins\nbuiltins.len = lambda x: 2"),
                nbformat.v4.new_code_cell("import gc")]
    findings = tamper.scan_notebook(nb, ["pitch_range", "transpose_melody"])
    result = checkrun.NotebookResult("00_welcome", [checkrun.ExerciseResult("pitch_range", "passed", "ok", 1, 1),
                                                    checkrun.ExerciseResult("transpose_melody", "failed", "no", 0, 1)])
    out = selfcheck.review(result, findings)
    assert [r.status for r in out.results] == ["tampered", "tampered"] and out.results[0].points == 0
    assert "withhold" in out.results[0].message and "builtins" in out.results[0].message
    assert any(n.startswith("review: cell 1") and "gc" in n for n in out.notes)
    assert not out.all_passed and "FLAGGED" in selfcheck.format_table(out)
    clean = checkrun.NotebookResult("00_welcome", [checkrun.ExerciseResult("pitch_range", "passed", "ok", 1, 1)])
    assert selfcheck.review(clean, []).all_passed


def test_the_grading_benchmark_runs(repo_root, tmp_path):
    """``benchmarks/grading_speed.py`` end to end on two honest submissions (a smoke run; the figures come
    from its full run)."""
    out = tmp_path / "grading.json"
    run = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "grading_speed.py"), "--n", "2",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["verdicts_as_expected"] and result["runs"]
    for measured in result["runs"].values():          # with the sandbox (where there is one) and without
        assert measured["statuses"] == {"passed": 2 * len(exercises_of("00_welcome"))}
