"""The grader at class scale and its reports: ``--shard K/N`` and ``--merge``, ``--lesson``, and what
a student controls (file name, printed output) escaped in the CSV files and the Markdown feedback.

One module fixture grades a small folder of lesson 00 submissions (light lesson, as in
``test_grading.py``) three times: whole, and as shards 1/2 and 2/2; the merge must give the same bytes.
"""
import csv
import json
import shutil
from pathlib import Path

import pytest

import hostile
from course.authoring import notebooks as nbs
from course.cli import main
from course.errors import ExerciseError
from course.grading import grade as grading
from course.grading import reports, shards

SEED = "shards-test"
STUDENTS = {"=1+2": "honest", "honest": "honest", "stub": "stub"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``(submissions, lessons_dir, {"whole" | "1" | "2" | "merged": report folder})``."""
    root = tmp_path_factory.mktemp("shards")
    lessons_dir = hostile.write_lessons_dir(root / "lessons", light=True)
    lesson_nb = nbs.read_notebook(lessons_dir / "00_welcome.ipynb")
    made = {"honest": hostile.correct(lesson_nb), "stub": hostile.student(lesson_nb)}
    subs = hostile.write_submissions(root / "subs", {sid: made[kind] for sid, kind in STUDENTS.items()})
    (subs / "broken.ipynb").write_text("{not json")                    # an invalid row, no job
    (subs / "notes.txt").write_text("skipped")
    common = ["--lessons-dir", str(lessons_dir), "--seed", SEED, "--jobs", "2", "--cell-timeout", "8", "--no-progress"]
    outs = {"whole": root / "whole", "1": root / "shard1", "2": root / "shard2", "merged": root / "merged"}
    assert main(["grade", str(subs), "--out", str(outs["whole"]), *common]) == 0
    for k in ("1", "2"):
        assert main(["grade", str(subs), "--out", str(outs[k]), "--shard", f"{k}/2", *common]) == 0
    assert main(["grade", "--merge", str(outs["1"]), str(outs["2"]), "--out", str(outs["merged"])]) == 0
    return subs, lessons_dir, outs


def _reports(folder: Path) -> dict[str, bytes]:
    files = [folder / "gradebook.csv", folder / "summary.csv", *sorted((folder / "feedback").iterdir())]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_two_shards_merged_equal_the_unsharded_run(graded):
    _, _, outs = graded
    whole = _reports(outs["whole"])
    assert _reports(outs["merged"]) == whole, "gradebook, summary and feedback: byte for byte"
    assert len(whole) == 2 + 4
    # each submission is graded in exactly one shard, and each shard wrote a normal report of its share
    share = [{r["student"] for r in _csv(outs[k] / "gradebook.csv")} for k in ("1", "2")]
    assert not share[0] & share[1] and share[0] | share[1] == {"'=1+2", "broken", "honest", "stub"}
    assert all(share) and all((outs[k] / shards.MANIFEST).is_file() for k in ("1", "2"))
    # grading.json differs only in timing, the shards' own fields and where the lessons were
    info = {k: json.loads((outs[k] / "grading.json").read_text()) for k in ("whole", "merged", "1")}
    assert info["1"]["shard"] == "1/2" and info["merged"]["merged_from"] == [str(outs["1"]), str(outs["2"])]

    def comparable(d):
        d = {k: v for k, v in d.items() if k not in ("seconds", "merged_from")}
        d["settings"] = {k: v for k, v in d["settings"].items() if k not in ("jobs", "lessons_dir")}
        return d

    assert comparable(info["merged"]) == comparable(info["whole"])
    assert info["whole"]["skipped_files"] == ["notes.txt"] and info["whole"]["seed"] == SEED


def test_grades_are_what_each_student_is_due(graded):
    rows = _csv(graded[2]["merged"] / "gradebook.csv")
    got = {(r["student"], r["status"]) for r in rows}
    assert got == {("'=1+2", "passed"), ("honest", "passed"), ("stub", "not attempted"), ("broken", "invalid")}
    assert all(r["flags"] == "" for r in rows)


def test_a_formula_in_a_student_id_never_reaches_a_csv_raw(graded):
    out = graded[2]["whole"]
    for name in ("gradebook.csv", "summary.csv"):
        text = (out / name).read_text(encoding="utf-8")
        assert not any(line.startswith("=") for line in text.splitlines()), name
        assert "'=1+2" in text
    summary = {r["student"]: r for r in _csv(out / "summary.csv")}
    assert summary["'=1+2"]["file"] == "'=1+2.ipynb" and summary["honest"]["file"] == "honest.ipynb"
    broken = [r for r in _csv(out / "gradebook.csv") if r["student"] == "broken"]
    assert [r["exercise"] for r in broken] == ["-"], "the grader's own '-' is no formula: left as it is"
    assert (out / "feedback" / "1_2.md").read_text().startswith("# Feedback for =1+2: lesson 00")


@pytest.mark.parametrize("value,written", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("-", "-"), ("honest", "honest"), (3, 3), ("", ""),
])
def test_csv_cells_are_escaped_against_formulas(value, written):
    assert reports.csv_cell(value) == written


def test_feedback_escapes_html_and_markdown_from_a_student():
    mistune = pytest.importorskip("mistune")
    attack = ("<script>alert(1)</script> [click](http://evil.example) ![x](http://evil.example/x.png) "
              "**bold** `code` | extra cell\nsecond line")
    rows = [reports.Row("<b>eve</b>", "00_welcome", "pitch_range", 0, 1, "failed", f"FAIL pitch_range: got {attack}")]
    text = reports._feedback("<b>eve</b>", rows, ["# a heading?", "1. a list?", attack], "seed note")
    assert "<script>" not in text and "<b>" not in text and "[click](" not in text
    assert "&lt;script&gt;" in text and r"\[click\]" in text
    table_row = next(line for line in text.splitlines() if line.startswith("| pitch_range |"))
    assert table_row.replace("\\|", "").count("|") == 5, "a student's | never opens a table cell"
    html = mistune.html(text)
    for raw in ("<script", "<b>", "<a ", "<img", "<strong>bold", "<code>", "<h1>a heading", "<ol>"):
        assert raw not in html, (raw, html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "[click](http://evil.example)" in html


def test_md_text_leaves_ordinary_text_alone():
    assert reports.md_text("PASS pitch_range: all cases correct.") == "PASS pitch_range: all cases correct."
    assert reports.md_text("a5_forged_recorder") == "a5_forged_recorder"
    assert reports.md_text("_x_ *y*") == r"\_x\_ \*y\*"


# ------------------------------------------------------------------------------------ merge refusals
def _refused(folders, tmp_path, match):
    out = tmp_path / "merged-refused"
    with pytest.raises(ExerciseError, match=match):
        grading.merge(folders, out)
    assert not out.exists(), "a refused merge writes nothing"


def _edited_copy(folder: Path, dest: Path, **changes) -> Path:
    shutil.copytree(folder, dest)
    data = json.loads((dest / shards.MANIFEST).read_text())
    data.update(changes)
    (dest / shards.MANIFEST).write_text(json.dumps(data))
    return dest


def test_merge_refuses_shards_that_are_not_one_run(graded, tmp_path):
    _, _, outs = graded
    one, two = outs["1"], outs["2"]
    _refused([one, outs["whole"]], tmp_path, "is not a shard output")
    _refused([one], tmp_path, r"Shard 2/2 missing")
    _refused([one, one, two], tmp_path, r"Shard 1/2 is given twice")
    _refused([one, _edited_copy(two, tmp_path / "seed", seed="other")], tmp_path, r"different seeds")
    _refused([one, _edited_copy(two, tmp_path / "lesson", lesson="01_music_as_data")], tmp_path, r"different lessons")
    _refused([one, _edited_copy(two, tmp_path / "subs", submissions="0" * 64)], tmp_path, r"different submissions")
    _refused([one, _edited_copy(two, tmp_path / "split", shard=[2, 3])], tmp_path, r"different splits")
    _refused([one, _edited_copy(two, tmp_path / "share", count=9)], tmp_path, r"does not hold shard 2/2's share")
    damaged = shutil.copytree(two, tmp_path / "damaged")
    (damaged / shards.MANIFEST).write_text("{")
    _refused([one, damaged], tmp_path, r"is not a shard output .*cannot be read")


def test_the_merge_command_says_why_it_refuses(graded, tmp_path, capsys):
    outs = graded[2]
    assert main(["grade", "--merge", str(outs["1"]), "--out", str(tmp_path / "m")]) == 1
    assert "Shard 2/2 missing" in capsys.readouterr().err
    assert main(["grade", str(graded[0]), "--merge", str(outs["1"]), "--out", str(tmp_path / "m")]) == 1
    assert "--merge takes shard folders only" in capsys.readouterr().err


def test_shards_split_every_folder_evenly_and_need_a_seed(graded, tmp_path):
    for count in range(0, 12):
        for n in (1, 2, 3, 5):
            parts = [shards.pick(count, (k, n)) for k in range(1, n + 1)]
            assert sorted(i for p in parts for i in p) == list(range(count))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for bad in ("3/2", "0/2", "1", "a/b"):
        with pytest.raises(ExerciseError, match="--shard"):
            shards.parse_shard(bad)
    subs, lessons_dir, _ = graded
    with pytest.raises(ExerciseError, match="needs --seed"):
        grading.grade(subs, tmp_path / "o", lessons_dir=lessons_dir, shard="1/2", progress=False)


# ------------------------------------------------------------------------------------ --lesson
def test_a_notebook_of_another_lesson_is_refused(tmp_path):
    lessons_dir = hostile.write_lessons_dir(tmp_path / "lessons", light=True)
    shutil.copy(hostile.ROOT / "solutions" / "01_music_as_data.ipynb", lessons_dir)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(hostile.ROOT / "notebooks" / "01_music_as_data.ipynb", subs / "carol.ipynb")
    lessons = {"00_welcome": None, "01_music_as_data": None}
    assert grading.resolve_lesson("00", lessons) == grading.resolve_lesson("0", lessons) == "00_welcome"
    assert grading.resolve_lesson("01_music_as_data", lessons) == "01_music_as_data"
    with pytest.raises(ExerciseError, match="no such lesson"):
        grading.resolve_lesson("07", lessons)
    run = grading.grade(subs, tmp_path / "out", lessons_dir=lessons_dir, lesson="00", seed="s", progress=False)
    [row] = run.rows
    assert row.status == "invalid" and row.lesson == "00_welcome" and row.points == 0
    assert "01_music_as_data" in row.message and "00_welcome" in row.message and "--lesson" in row.message
    assert json.loads((run.out / "grading.json").read_text())["lesson"] == "00_welcome"
