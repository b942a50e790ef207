"""The judge outside the student's process and the sandbox around each job (the grading issue).

One run grades the hostile set of ``tests/hostile/judged.py`` (lessons 03 and 04: attacks on the
verdict, on classmates and on the grader, and honest work that looks odd) and every student must get
exactly their due; afterwards no process of the run is alive, no file outside the jobs' scratch
folders changed, and the gradebook is what the grader wrote. The attacks on classmates and the grader
need the sandbox: without bubblewrap they are skipped (and under CI that is a failure).

Smaller tests: the wire format, the content hash of the submissions, ``--resume``, and the loud
notice when jobs are not isolated.
"""
import csv
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course.authoring import notebooks as nbs
from course.checks import wire
from course.checks.wire import Opaque
from course.grading import grade as grading
from course.grading import isolation, judge

import hostile
from hostile import judged

ISOLATED, WHY = isolation.available()
needs_sandbox = pytest.mark.skipif(not ISOLATED and not os.environ.get("CI"), reason=f"no sandbox here: {WHY}")
COURSE_DIR = Path(__file__).resolve().parents[1] / "course"


def test_ci_has_the_sandbox():
    """CI installs bubblewrap (``.ci/run``): the hostile tests below must run there, not be skipped."""
    if not os.environ.get("CI"):
        pytest.skip("only under CI")
    assert ISOLATED, WHY


# ------------------------------------------------------------------------------------ the wire
def test_plain_values_cross_the_wire_exactly():
    value = {"a": [1, 2.5, float("nan"), float("-inf"), 3 + 4j, "x", b"\x00\xff", None, True],
             (1, "k"): (np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(1.5), 2**70),
             "t": torch.tensor([[1.0, -2.0]], dtype=torch.float64)}
    back = wire.decode(wire.encode(value))
    assert back["a"][0:2] == [1, 2.5] and math.isnan(back["a"][2]) and back["a"][3] == float("-inf")
    assert back["a"][4:] == [3 + 4j, "x", b"\x00\xff", None, True]
    arr, scalar, big = back[(1, "k")]
    assert arr.dtype == np.int16 and arr.tolist() == [[0, 1, 2], [3, 4, 5]] and type(scalar) is np.float32
    assert big == 2**70
    assert type(back["t"]) is torch.Tensor and back["t"].dtype == torch.float64 and back["t"].tolist() == [[1.0, -2.0]]


def test_a_tensor_keeps_whether_it_carries_a_gradient():
    x = torch.ones(3, requires_grad=True)
    leaf, computed, plain_ = wire.decode(wire.encode([x, x * 2, torch.ones(2)]))
    assert leaf.requires_grad and leaf.grad_fn is None
    assert computed.requires_grad and computed.grad_fn is not None
    assert not plain_.requires_grad


def test_behaviour_does_not_survive_the_trip():
    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.tensor(0.0)

    class Always(np.ndarray):
        def __eq__(self, other):
            return True

    class Model(torch.nn.Module):
        pass

    lying = torch.tensor([5.0, 6.0]).as_subclass(Liar)
    got = wire.decode(wire.encode([lying, np.zeros(2).view(Always), Model(), print, np.array([object()])]))
    assert type(got[0]) is torch.Tensor and got[0].tolist() == [5.0, 6.0]
    assert type(got[1]) is np.ndarray and not (got[1] == np.ones(2)).all()
    assert got[2] == Opaque("test_behaviour_does_not_survive_the_trip.<locals>.Model")
    assert isinstance(got[3], Opaque) and isinstance(got[4], Opaque)


def test_course_types_are_rebuilt_by_the_judges_own_class():
    from course import music

    note = music.Note(60, 0.0, 0.5)
    back = wire.decode(wire.encode(note))
    assert type(back) is music.Note and back == note


@pytest.mark.parametrize("data", [
    b"not json", b'{"$nd": {"dtype": "|O", "shape": [1], "data": ""}}', b'{"$dc": "os:system", "fields": []}',
    b'{"$dc": "course.music:Note", "fields": [["pitch", 1]]}', b'{"$t": {"dtype": "<f8", "shape": [2], "data": "AAAA"},'
    b' "dtype": "float64", "grad": 0}', b'{"$weird": 1}', b"[" * 100 + b"]" * 100])
def test_malformed_or_unplain_data_is_refused(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_the_judge_scores_what_a_lying_model_returns():
    """Lesson 03's "must really learn": the loss is the judge's own, from the logits the job sends."""
    ns = {"torch": torch, "F": torch.nn.functional}
    exec(judged.LYING_TENSOR, ns)
    line = judge.judge_here("melody_lm", ns["MelodyLM"])
    assert line.startswith("FAIL melody_lm: case 'learns a scale") and "nats per token" in line


# ------------------------------------------------------------------------------------ hostile set
def _carrying(*needles: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if any(n.encode() in env for n in needles):
            found.append(int(entry.name))
    return found


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    if not ISOLATED:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the sandbox: {WHY}")
        pytest.skip(f"no sandbox here: {WHY}")
    import tempfile

    lessons = judged.write_lessons_dir(tmp_path_factory.mktemp("lessons"))
    subs_dir = tmp_path_factory.mktemp("submissions")
    subs = judged.submissions()
    for student, nb in subs.items():
        (subs_dir / f"{student}.ipynb").write_text(nbs.dumps(nb), encoding="utf-8")
    before = _tree_digest(subs_dir)
    course_before = _tree_digest(COURSE_DIR)
    out = tmp_path_factory.mktemp("report")
    scratch = tmp_path_factory.mktemp("scratch")
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        run = grading.grade(subs_dir, out, jobs=2, cell_timeout=60, notebook_timeout=300, lessons_dir=lessons,
                            seed="judged", memory_mb=3072, progress=False, isolation_mode="bwrap")
    finally:
        tempfile.tempdir = saved
    written = (out / "gradebook.csv").read_bytes()
    time.sleep(6)          # the detached survivor would rewrite the gradebook after 4 s
    return dict(run=run, out=out, subs=subs_dir, before=before, course_before=course_before, scratch=scratch,
                written=written)


@needs_sandbox
@pytest.mark.parametrize("student", sorted(judged.EXPECTED))
def test_each_hostile_or_honest_submission_gets_its_due(hostile_run, student):
    rows = [r for r in hostile_run["run"].rows if r.student == student]
    assert [r.exercise for r in rows] == judged.EXERCISES[judged.L03 if student.endswith("03") else judged.L04]
    for r in rows:
        want = judged.EXPECTED[student].get(r.exercise, judged.EXPECTED[student].get("*"))
        assert r.status == want, f"{student} {r.exercise}: {r.status} ({r.message}), expected {want}"
        assert r.points == (r.max_points if r.status == "passed" else 0), "no points it should not have"


@needs_sandbox
def test_the_attacks_are_named_and_flagged(hostile_run):
    run, out = hostile_run["run"], hostile_run["out"]

    def row(student, exercise):
        return next(r for r in run.rows if r.student == student and r.exercise == exercise)

    assert "forged PASS" in row("forged_pass_03", "melody_lm").message
    assert "used the course's reference" in row("detect_grader_04", "marginal_baseline_nll").flags
    assert "larger than 64 MB" in row("huge_answer_04", "sample_frame_autoregressive").message
    scribbled = row("scribble_protocol_04", "autoregressive_mask").message
    assert "out of turn" in scribbled or "process stopped" in scribbled
    assert "process stopped while the code cell starting 'import os, signal'" in \
        row("kill_itself_04", "autoregressive_mask").message
    assert "other jobs" not in row("kill_itself_04", "autoregressive_mask").message, "isolated: no one else to blame"
    with open(out / "summary.csv", newline="") as f:
        summary = {r["student"]: r for r in csv.DictReader(f)}
    assert "used the course's reference" in summary["detect_grader_04"]["flags"]
    assert "tampered" in summary["forged_pass_03"]["flags"] and summary["honest_04"]["flags"] == ""
    info = json.loads((out / "grading.json").read_text())
    assert info["settings"]["isolation"] == "bubblewrap"
    assert not any("NOT isolated" in n for n in info["notes"])


@needs_sandbox
def test_no_process_outlives_its_job_and_nothing_outside_changes(hostile_run):
    assert _carrying(f"HOME={hostile_run['scratch']}") == [], "the detached survivor and the fork storm ended with their jobs"
    assert list(hostile_run["scratch"].iterdir()) == [], "every job's scratch folder is removed"
    assert _tree_digest(hostile_run["subs"]) == hostile_run["before"], "no submission was edited"
    assert _tree_digest(COURSE_DIR) == hostile_run["course_before"], "nothing was planted in the course package"
    assert not hasattr(__import__("builtins"), "COURSE_PLANTED")
    assert not Path("/tmp/course-shared-answers.py").exists()
    assert (hostile_run["out"] / "gradebook.csv").read_bytes() == hostile_run["written"], "the gradebook stays as written"


# ------------------------------------------------------------------------------------ the run
def test_an_edit_in_place_with_the_same_size_and_time_is_seen(tmp_path):
    p = tmp_path / "a.ipynb"
    p.write_text("torch.tril")
    st = p.stat()
    before = grading._snapshot(tmp_path, None)
    p.write_text("torch.triu")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
    assert grading._snapshot(tmp_path, None) != before


def _light_submissions(tmp_path, n=3):
    lessons = hostile.write_lessons_dir(tmp_path / "lessons", light=True)
    lesson_nb = nbs.read_notebook(lessons / "00_welcome.ipynb")
    subs = {f"s{i}": (hostile.correct(lesson_nb) if i % 2 == 0 else hostile.student(lesson_nb)) for i in range(n)}
    return lessons, hostile.write_submissions(tmp_path / "subs", subs)


def test_resume_continues_an_interrupted_run_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    lessons, subs = _light_submissions(tmp_path)
    common = dict(jobs=1, cell_timeout=60, lessons_dir=lessons, seed="resume", progress=False)
    whole = grading.grade(subs, tmp_path / "whole", **common)
    real = grading._grade_job
    calls = []

    def interrupted(job, opts):
        calls.append(job.student)
        if len(calls) == 3:
            raise KeyboardInterrupt       # the grader is stopped while grading the third notebook
        return real(job, opts)

    monkeypatch.setattr(grading, "_grade_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grading.grade(subs, tmp_path / "cut", **common)
    assert not (tmp_path / "cut" / "gradebook.csv").exists()
    assert len(list((tmp_path / "cut" / grading.PROGRESS).glob("0*.json"))) == 2, "each result saved as it came"
    monkeypatch.setattr(grading, "_grade_job", real)
    again = grading.grade(subs, tmp_path / "cut", resume=True, **{k: v for k, v in common.items() if k != "seed"})
    assert again.out == tmp_path / "cut"
    for name in ("gradebook.csv", "summary.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (whole.out / name).read_bytes()
    assert not (tmp_path / "cut" / grading.PROGRESS).exists()
    with pytest.raises(Exception, match="no interrupted grading run"):
        grading.grade(subs, tmp_path / "cut", resume=True, **{k: v for k, v in common.items() if k != "seed"})


def test_without_isolation_the_run_says_so_loudly(tmp_path):
    lessons, subs = _light_submissions(tmp_path, n=1)
    run = grading.grade(subs, tmp_path / "out", jobs=1, cell_timeout=60, lessons_dir=lessons, seed="x",
                        progress=False, isolation_mode="none")
    assert "NOT isolated" in run.summary()
    info = json.loads((run.out / "grading.json").read_text())
    assert info["settings"]["isolation"].startswith("none")
    assert any("NOT isolated" in n and "bubblewrap" in n for n in info["notes"])
    assert [r.status for r in run.rows] == ["passed"] * 3, "grading still works"


def test_the_sandbox_hides_the_course_repository_but_the_package(tmp_path):
    if not ISOLATED:
        pytest.skip(WHY)
    import subprocess

    code = "import os, course; print(sorted(os.listdir(os.path.dirname(os.path.dirname(course.__file__)))))"
    (tmp_path / "work").mkdir()
    out = subprocess.run(isolation.wrap([sys.executable, "-c", code], tmp_path / "work"), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = eval(out.stdout.splitlines()[0])
    assert "solutions" not in seen and "tests" not in seen and "course" in seen
