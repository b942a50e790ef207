"""Regression tests for the red team's attacks on the checks and the grader (A1-A6, the output cap,
crashes, false positives), one or more per attack, at the level where each is stopped.

End-to-end versions of the notebook attacks are hostile submissions (``tests/hostile``: ``attacks``,
``ATTACKS_EXPECTED``) graded in ``tests/test_grading.py``. Arming the side channel is once per process,
so the tests that need an armed guard run a small script in a process of their own.
"""
import builtins
import dataclasses
import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import time

import nbformat
import numpy as np
import pytest

from course import check, music
from course.checks import EXERCISES, CheckFailure, env, lesson_00, load, load_all
from course.checks.values import compare_values, plain
from course.grading import grade as grading
from course.grading import reports, sidechannel, tamper

load_all()
MELODY = lesson_00._melody(lesson_00._TWINKLE)
PASS_RANGE = "PASS pitch_range: all cases correct."


def one_line(fn, *args) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn(*args)
    out = buf.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n"), repr(out)
    return out.strip()


def right_range(melody):
    pitches = [n.pitch for n in melody.notes]
    return min(pitches), max(pitches)


# ------------------------------------------------------------------------------------ A1: finalizers
def test_a1_a_finalizer_cannot_forge_what_the_check_reads_back():
    """The result's __del__ used to replace ``getvalue`` on the guard's capture buffer and so forge
    a pass line; the guard now takes the line run_cases reported, and frees results only after it."""
    events = []

    class Note:
        def __del__(self):
            events.append("del")
            with contextlib.suppress(Exception):
                sys.stdout.getvalue = lambda: PASS_RANGE + "\n"
            print(PASS_RANGE)

    def cheat(melody):
        return (0, 0, Note())

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        check.pitch_range(cheat)
    lines = io.StringIO.getvalue(buf).splitlines()     # what was really printed, in order
    assert lines[0].startswith("FAIL pitch_range: case") and events == ["del"]
    assert lines[1:] == [PASS_RANGE], "the finalizer ran only after the check's line was out"


def test_a1_the_students_results_are_freed_only_after_the_line_is_printed():
    order = []

    class Witness:
        def __del__(self):
            order.append("freed")

    def answer(melody):
        return right_range(melody) + (Witness(),)

    class Out(io.StringIO):
        def write(self, s):
            if s.strip():
                order.append("printed")
            return super().write(s)

    with contextlib.redirect_stdout(Out()):
        check.pitch_range(answer)
    assert order[0] == "printed" and "freed" in order


# ------------------------------------------------------------------------------------ A2: lying values
class Pitch(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


def test_a2_an_int_that_equals_everything_is_compared_as_the_number_it_holds():
    with pytest.raises(CheckFailure, match="expected 60, got 0"):
        compare_values(Pitch(0), 60)
    assert type(plain(Pitch(7))) is int and plain(Pitch(7)) == 7
    assert one_line(check.pitch_range, lambda m: (Pitch(0), Pitch(0))).startswith("FAIL pitch_range:")

    def transpose(melody, semitones):
        return melody.replace(notes=tuple(n._replace(pitch=Pitch(n.pitch)) for n in melody.notes))
    assert one_line(check.transpose_melody, transpose).startswith("FAIL transpose_melody:")


def test_a2_other_lying_types_are_reduced_too():
    class Liar(float):
        def __eq__(self, other):
            return True
    with pytest.raises(CheckFailure):
        compare_values(Liar(1.0), 2.0)

    class FakeClass:                 # isinstance() believes a faked __class__; the checks must not
        __class__ = property(lambda self: int)

        def __ne__(self, other):
            return False
    with pytest.raises(CheckFailure, match="whole number"):
        compare_values(FakeClass(), 5)

    class NpLiar(np.int64):
        def __eq__(self, other):
            return True
    with pytest.raises(CheckFailure):
        compare_values(NpLiar(1), 2)
    assert type(plain(NpLiar(3))) is np.int64

    class ListLiar(list):
        def __len__(self):
            return 2

        def __iter__(self):
            return iter([60, 79])
    with pytest.raises(CheckFailure):
        compare_values(ListLiar([0]), [60, 79])
    with pytest.raises(CheckFailure, match="cycle"):
        loop = []
        loop.append(loop)
        plain(loop)


def test_a2_honest_answers_are_left_as_they_are():
    m = music.transpose(MELODY, 3)
    assert plain(m) is m and plain((60, 72)) == (60, 72)
    arr = np.arange(3.0)
    assert plain(arr) is arr
    fixed = plain(m.replace(notes=tuple(n._replace(pitch=Pitch(n.pitch)) for n in m.notes)))
    assert type(fixed) is music.Music and all(type(n.pitch) is int for n in fixed.notes) and fixed == m


def test_a2_tensor_subclasses_become_plain_tensors():
    torch = pytest.importorskip("torch")

    class T(torch.Tensor):
        def __eq__(self, other):
            return torch.ones_like(other, dtype=torch.bool)
    t = torch.zeros(3).as_subclass(T)
    assert type(plain(t)) is torch.Tensor
    with pytest.raises(CheckFailure):
        compare_values(t, torch.ones(3))


# ------------------------------------------------------------------------------------ A3/A4/A6: patching
def test_a3_the_snapshot_names_what_was_replaced(monkeypatch):
    verify = sidechannel._make_verifier()
    assert verify() is None
    monkeypatch.setattr(lesson_00, "reference_pitch_range", lambda melody: (0, 0))
    assert "course.checks.lesson_00.reference_pitch_range was replaced" in verify()
    monkeypatch.undo()
    assert verify() is None
    monkeypatch.setattr(music, "transpose", lambda melody, semitones: melody)
    assert "course.music.transpose was replaced" in verify()
    monkeypatch.undo()
    monkeypatch.setattr(builtins, "len", lambda x: 0)
    monkeypatch.setattr(np, "isclose", lambda *a, **k: True)
    found = verify()
    assert "builtins.len was replaced" in found and "numpy.isclose was replaced" in found
    monkeypatch.undo()
    assert verify() is None


def verify_fields_of(ex):
    """The comparison the exercise was registered with (read back from its check's closure)."""
    run = dict(zip(ex.check.__code__.co_freevars, (c.cell_contents for c in ex.check.__closure__)))["run"]
    cells = dict(zip(run.__code__.co_freevars, (c.cell_contents for c in run.__closure__)))
    return cells["compare"]


def test_a3_changed_code_registry_and_modules_are_seen(monkeypatch):
    load("rnn_cell_step")
    verify = sidechannel._make_verifier()
    ref = lesson_00.reference_pitch_range
    monkeypatch.setattr(ref, "__code__", (lambda melody: (0, 0)).__code__)
    assert "the code of course.checks.lesson_00.reference_pitch_range was changed" in verify()
    monkeypatch.undo()
    ex = EXERCISES["pitch_range"]
    monkeypatch.setitem(EXERCISES, "pitch_range", dataclasses.replace(ex, points=5))
    assert "the registered check pitch_range was replaced" in verify()
    monkeypatch.undo()
    object.__setattr__(ex, "compare", lambda got, *a: None)          # the frozen record forced open
    try:
        assert "the registered check pitch_range was replaced" in verify()
    finally:
        object.__setattr__(ex, "compare", verify_fields_of(ex))
    assert verify() is None
    rnn = load("rnn_cell_step")
    tol = [c for c in rnn.compare.__closure__ if type(c.cell_contents) is float][0]
    before = tol.cell_contents
    tol.cell_contents = 1e9                                           # a tolerance inside the comparison
    try:
        assert "the code of the check rnn_cell_step was changed" in verify()
    finally:
        tol.cell_contents = before
    make = lesson_00.transpose_melody.make
    code = make.__code__
    make.__code__ = (lambda r: []).__code__                            # the cases builder emptied
    try:
        assert "the code of the check transpose_melody was changed" in verify()
    finally:
        make.__code__ = code
    assert verify() is None
    monkeypatch.setattr(music.Music, "arrays", lambda self: {})
    assert "course.music.core.Music.arrays was changed" in verify()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "course.music", type(sys)("course.music"))
    assert "sys.modules['course.music'] was replaced" in verify()
    monkeypatch.undo()
    assert verify() is None


def test_a3_a_librarys_own_wrapper_is_accepted_but_a_students_is_not(monkeypatch):
    torch = pytest.importorskip("torch")
    verify = sidechannel._make_verifier()
    original = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", torch._disable_dynamo(original))   # what torch._dynamo does
    assert verify() is None

    @functools.wraps(original)
    def fake(seed):
        return None
    monkeypatch.setattr(torch, "manual_seed", fake)
    assert "torch.manual_seed was replaced" in verify()


def test_a3_verifying_is_fast():
    pytest.importorskip("torch")
    import torch.nn.functional  # noqa: F401  - the biggest case: torch and the course loaded

    verify = sidechannel._make_verifier()
    verify()
    t0 = time.perf_counter()
    for _ in range(5):
        assert verify() is None
    assert (time.perf_counter() - t0) / 5 < 0.05


def test_a6_a_check_run_from_the_students_function_is_refused():
    def sneaky(melody):
        check.transpose_melody(lambda m, s: music.transpose(m, s))
        return right_range(melody)
    line = one_line(check.pitch_range, sneaky)
    assert line.startswith("FAIL pitch_range: the check was interfered with") and "another check" in line
    assert one_line(check.pitch_range, right_range) == PASS_RANGE


ARMED = r'''
import contextlib, io, json, sys
from course.grading import sidechannel
from course.checks import lesson_00
from course import check, music
assert sidechannel.arm()
melody = lesson_00._melody(lesson_00._TWINKLE)
kept = lesson_00.reference_pitch_range            # kept before the check, as A6 did

def quiet(f, *a):
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        f(*a)
    return buf.getvalue().strip()

out = {}
out["kept_reference"] = quiet(check.pitch_range, lambda m: kept(m))
out["reference_works_after"] = list(lesson_00.reference_pitch_range(melody))
out["honest"] = quiet(check.pitch_range, lambda m: (min(n.pitch for n in m.notes), max(n.pitch for n in m.notes)))

class Again:
    def __del__(self):                           # a second run, after the real one has finished
        quiet(check.pitch_range, lambda m: (min(n.pitch for n in m.notes), max(n.pitch for n in m.notes)))
out["second_run"] = quiet(check.pitch_range, lambda m: (0, 0, Again()))
music.transpose = lambda melody, semitones: melody
out["patched"] = quiet(check.transpose_melody, lambda m, s: m)
print(json.dumps(out))
'''


def test_armed_guard_blocks_references_records_tampering_and_second_runs(tmp_path):
    token, results = tmp_path / "token", tmp_path / "records.jsonl"
    token.write_text("s3cret")
    job_env = dict(os.environ, **{env.TOKEN_FILE: str(token), env.RESULTS: str(results), env.LESSON: "00_welcome"})
    proc = subprocess.run([sys.executable, "-c", ARMED], env=job_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert "reference implementation is not available" in out["kept_reference"]
    assert out["reference_works_after"] == [60, 69]
    assert out["honest"] == PASS_RANGE
    assert out["second_run"].startswith("FAIL pitch_range:")
    assert "course.music.transpose was replaced" in out["patched"]
    recs = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["exercise"] for r in recs] == ["pitch_range"] * 4 + ["transpose_melody"]
    assert recs[3]["line"] == PASS_RANGE, "the finalizer's second run is recorded: the grader sees two runs"
    assert "tampered" not in recs[1] and "course.music.transpose" in recs[4]["tampered"]


# ------------------------------------------------------------------------------------ A5: forged records
def test_a5_no_module_global_leads_to_the_recorder():
    assert not hasattr(sidechannel, "_recorder") and not hasattr(sidechannel, "record")


@pytest.mark.parametrize("src,what", [
    ('_m = __import__("course.grading.side" + "channel", fromlist=["x"])', "computed name"),
    ('setattr(_m, "_rec" + "order", None)', "setattr with a computed attribute name"),
    ('getattr(get_ipython(), "eve" + "nts").register("pre_run_cell", f)', "getattr with a computed"),
    ('get_ipython().events.register("pre_run_cell", f)', "IPython event hook"),
    ('import importlib\nimportlib.import_module(name)', "computed name"),
])
def test_a5_computed_access_is_noted_for_review(src, what):
    found = tamper.scan_source(src, 2, ["pitch_range"])
    assert any(f.severity == "warning" and what in f.what for f in found), found
    assert not [f for f in found if f.severity == "tamper"], found


def test_a5_a_constant_import_of_the_checking_code_is_tampering():
    found = tamper.scan_source('m = __import__("course.checks.lesson_00")\nm.reference_pitch_range(x)', 2,
                               ["pitch_range"])
    assert [f for f in found if f.severity == "tamper"], found


# ------------------------------------------------------------------------------------ the output cap
CAP_SCRIPT = r'''
import sys
from IPython.core.interactiveshell import InteractiveShell
from course.grading.checkrun import ARM_SOURCE
shell = InteractiveShell.instance()
assert shell.run_cell(ARM_SOURCE).success
shell.run_cell("print('x' * 50_000_000)")
shell.run_cell("print('y' * 50_000_000)")
deep = shell.run_cell("x = " + "-" * 3000 + "1")      # fails as a cell, does not break the shell
sys.stderr.write(f"deep cell: {type(deep.error_in_exec).__name__}\n")
'''


def test_the_output_cap_holds_in_every_cell_not_just_the_first(tmp_path):
    """IPython 9 puts back ``sys.stdout.write`` after each cell; the cap is re-applied as each starts."""
    token = tmp_path / "token"
    token.write_text("s")
    job_env = dict(os.environ, **{env.TOKEN_FILE: str(token), env.RESULTS: str(tmp_path / "r.jsonl"),
                                  env.MAX_OUTPUT: "10000"})
    proc = subprocess.run([sys.executable, "-c", CAP_SCRIPT], env=job_env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout) < 30_000 and proc.stdout.count(b"output cut by the grader") == 2
    assert b"deep cell: RecursionError" in proc.stderr


# ------------------------------------------------------------------------------------ crashes
@pytest.mark.parametrize("dashes", [3000, 200_000])
def test_a_cell_too_deep_to_parse_is_a_note_not_a_crash(dashes):
    found = tamper.scan_source("x = " + "-" * dashes + "1", 4, ["pitch_range"])
    assert [f.severity for f in found] == ["warning"] and "review it by hand" in found[0].what


def test_a_check_cell_too_deep_to_read_makes_an_invalid_row_not_a_crash(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nx = " + "-" * 3000 + "1")])
    path = tmp_path / "deep.ipynb"
    path.write_text(nbformat.writes(nb))
    job = grading._load(path, {})
    assert job.problem and job.prepared is None


def test_student_ids_from_undecodable_file_names_are_written_safely(tmp_path):
    name = os.fsdecode(b"bad\xffname")
    assert grading.clean_text(name) == "bad\\xffname" and grading.clean_text("plain") == "plain"
    student = grading.clean_text(name)
    entry = reports.Entry(student, grading.clean_text(f"{name}.ipynb"),
                          [grading.Row(student, "00_welcome", "pitch_range", 1, 1, "passed", "ok")])
    reports.write_reports([entry], tmp_path / "out", "seed", {})
    assert "bad\\xffname" in (tmp_path / "out" / "gradebook.csv").read_text(encoding="utf-8")
    assert (tmp_path / "out" / "feedback" / "bad_xffname.md").exists()


# ------------------------------------------------------------------------------------ false positives
def _notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


CHECKS = ["# NBVAL_CHECK_OUTPUT\ncheck.pitch_range(pitch_range)",
          "# NBVAL_CHECK_OUTPUT\ncheck.transpose_melody(transpose_melody)"]


@pytest.mark.parametrize("src", [
    'for check in ["range", "transpose"]:\n    print("done:", check)',
    'import matplotlib.pyplot as plt\nplt.title("Exercise")',
    "# my notebook said: PASS pitch_range: all cases correct.\nx = 1",
    'def f():\n    """PASS pitch_range: all cases correct."""\n    return 1',
])
def test_honest_cells_after_the_checks_are_not_tampering(src):
    nb = _notebook("def pitch_range(m):\n    return 0, 0", CHECKS[0], CHECKS[1], src)
    found = tamper.scan_notebook(nb, ["pitch_range", "transpose_melody"], CHECKS)
    assert not [f for f in found if f.severity == "tamper"], found


def test_rebinding_check_before_a_check_cell_is_still_flagged():
    nb = _notebook("check = None", CHECKS[0], CHECKS[1])
    found = tamper.scan_notebook(nb, ["pitch_range", "transpose_melody"], CHECKS)
    assert any(f.severity == "tamper" and "'check'" in f.what for f in found)
    nb = _notebook(CHECKS[0], "for check in range(2):\n    pass")      # a check cell is missing: still counts
    found = tamper.scan_notebook(nb, ["pitch_range", "transpose_melody"], CHECKS)
    assert any(f.severity == "tamper" for f in found)
    assert tamper.scan_source("print('PASS pitch_range: all cases correct.')", 1, ["pitch_range"])
