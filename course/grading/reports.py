"""What a grading run writes (``gradebook.csv``, ``summary.csv``, ``feedback/<student>.md``, ``grading.json``)
and what it gives back (:class:`GradeRun`, with the one-line summary the command prints).

The reports are a function of the graded submissions (:class:`Entry`, in the order of the
submissions folder) and the seed only, so a run split into shards and merged again
(:mod:`.shards`) writes the same bytes as one run of the whole folder.

Everything a student controls (the file name, hence the student id; whatever their code printed,
which can reach a check's fail line) is written so that it shows as itself:

- in the CSV files, a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  gets a leading ``'``, as OWASP recommends against formula injection, so a spreadsheet never runs
  ``=1+2`` or ``=HYPERLINK(...)`` (a lone ``-``, the grader's "whole notebook" exercise, is no formula
  and stays as it is);
- in the Markdown feedback, ``&``, ``<`` and ``>`` become HTML entities and Markdown's markup
  characters are backslash-escaped, so no raw HTML, link, image, emphasis or table cell can come
  from a student (a bare URL may still show as a link in renderers that link them: its text is the URL).

``flags`` (in both CSV files) names what the instructor should look at first: ``tampered`` (points
withheld), ``used the course's reference`` (the exercise called or named the course's reference
answer), and in the summary ``review: N notes`` (findings that took no points; they are listed in the
student's feedback).

Lesson: 00_welcome
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..files import atomic_write

__all__ = ["Row", "Entry", "GradeRun", "STATUSES", "NOTEBOOK_KINDS", "COLUMNS", "SUMMARY_COLUMNS", "TAMPERED", "USED_REFERENCE", "clean_text", "csv_cell",
           "md_text", "safe_name", "write_reports"]

COLUMNS = ["student", "lesson", "exercise", "points", "max_points", "status", "flags", "message"]
SUMMARY_COLUMNS = ["student", "lesson", "points", "max_points", "flags", "tampered", "not_attempted", "file"]
TAMPERED = "tampered"
USED_REFERENCE = "used the course's reference"


@dataclass
class Row:
    student: str
    lesson: str
    exercise: str
    points: int
    max_points: int
    status: str
    message: str
    flags: str = ""          # "tampered; used the course's reference": see the module docstring


@dataclass
class Entry:
    """One submission as the reports show it."""

    student: str
    file: str                                        # the submitted file's name, as written
    rows: list[Row]
    notes: list[str] = field(default_factory=list)   # shown in the feedback
    review: int = 0                                  # findings for the instructor that took no points

    def to_json(self) -> dict:
        return {"student": self.student, "file": self.file, "rows": [asdict(r) for r in self.rows],
                "notes": list(self.notes), "review": self.review}

    @classmethod
    def from_json(cls, data: dict) -> "Entry":
        return cls(str(data["student"]), str(data["file"]), [Row(**r) for r in data["rows"]],
                   [str(n) for n in data["notes"]], int(data["review"]))

    def flags(self) -> str:
        """The summary's flags: every row's, once, then the review count."""
        found = list(dict.fromkeys(f for r in self.rows for f in r.flags.split("; ") if f))
        if self.review:
            found.append(f"review: {self.review} note{'s' if self.review != 1 else ''}")
        return "; ".join(found)


@dataclass
class GradeRun:
    rows: list[Row]
    seconds: float
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    out: Path | None = None          # the folder the reports went to (beside --out if that held a run)
    isolation: str = "bubblewrap"    # how jobs were isolated ("none (why)" when they were not)

    def student_rows(self, student: str) -> list[Row]:
        return [r for r in self.rows if r.student == student]

    def summary(self) -> str:
        """``Graded 3 notebooks in 40 s: 1 all passed, ...; 9 exercises: 5 passed, ...``: notebooks and
        exercises counted apart."""
        kinds: dict[str, int] = {}
        for student in dict.fromkeys(r.student for r in self.rows):
            kind = _notebook_kind([r.status for r in self.student_rows(student)])
            kinds[kind] = kinds.get(kind, 0) + 1
        exercises = [r.status for r in self.rows if r.status != "invalid"]
        counts = {s: exercises.count(s) for s in STATUSES if s in exercises}
        n = sum(kinds.values())
        shown = [f"{kinds[kind]} {kind}" for kind in NOTEBOOK_KINDS if kind in kinds]
        text = f"Graded {n} notebook{'s' if n != 1 else ''} in {self.seconds:.0f} s: " + ", ".join(shown)
        if exercises:
            text += (f"; {len(exercises)} exercise{'s' if len(exercises) != 1 else ''}: "
                     + ", ".join(f"{k} {s}" for s, k in counts.items()))
        text += "."
        if not self.isolation.startswith("bubblewrap"):
            text += f" WARNING: jobs were NOT isolated ({self.isolation}); see grading.json."
        return text


STATUSES = ("passed", "failed", "not attempted", "error", "tampered", "invalid")
NOTEBOOK_KINDS = ("all passed", "partly passed", "none passed", "not attempted", "invalid")


def _notebook_kind(statuses: list[str]) -> str:
    """How one notebook did, from its exercises' statuses (see :data:`NOTEBOOK_KINDS`)."""
    if not statuses or "invalid" in statuses:
        return "invalid"
    if all(s == "passed" for s in statuses):
        return "all passed"
    if "passed" in statuses:
        return "partly passed"
    if all(s == "not attempted" for s in statuses):
        return "not attempted"
    return "none passed"


# ------------------------------------------------------------------------------------ escaping
def clean_text(text: str) -> str:
    """``text`` safe to write as UTF-8: bytes a file name could not decode become ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """``value`` as a CSV cell no spreadsheet reads as a formula (numbers are left as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and value != "-":
        return "'" + value
    return value


# Markdown markup anywhere in a line; an underscore between two letters or digits is no markup.
_MD_INLINE = re.compile(r"[\\`*\[\]|~]|(?<![^\W_])_|_(?![^\W_])")
_MD_LINE_START = re.compile(r"^([#+\-]|\d+(?=[.)]))")     # a heading or a list item


def md_text(text: str) -> str:
    """``text`` on one line, shown as itself in Markdown and in the HTML it renders to."""
    text = " ".join(clean_text(str(text)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(0), text)
    m = _MD_LINE_START.match(text)
    if m is None:
        return text
    if m.group(1)[0].isdigit():                   # "1." starts a list: escape the dot
        return text[:m.end()] + "\\" + text[m.end():]
    return "\\" + text


def safe_name(student: str) -> str:
    """A file name for ``student``'s feedback: letters, digits, ``.``, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


# ------------------------------------------------------------------------------------ writing
def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, clean_text(text).encode("utf-8", "backslashreplace"))


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([[csv_cell(v) for v in row] for row in rows])
    return buf.getvalue()


def _feedback(student: str, rows: list[Row], notes: list[str], seed_note: str) -> str:
    got, total = sum(r.points for r in rows), sum(r.max_points for r in rows)
    lesson = rows[0].lesson if rows else "?"
    out = [f"# Feedback for {md_text(student)}: lesson {md_text(lesson)}", "",
           f"**Score: {got} / {total} points.**", "",
           "| exercise | result | points | details |", "|---|---|---|---|"]
    for r in rows:
        detail = "" if r.status == "passed" else md_text(r.message)
        out.append(f"| {md_text(r.exercise)} | {md_text(r.status)} | {r.points} / {r.max_points} | {detail} |")
    if notes:
        out += ["", "## Notes", ""] + [f"- {md_text(n)}" for n in notes]
    out += ["", md_text(seed_note), ""]
    return "\n".join(out)


def write_reports(entries: list[Entry], out: Path, seed: str, info: dict) -> None:
    """Write the reports of ``entries`` (in the submissions' order) to ``out``; ``info`` goes into
    ``grading.json`` after the seed, and a feedback file that cannot be written adds to ``info["notes"]``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for e in entries for r in e.rows]
    _atomic_write(out / "gradebook.csv", _csv_text(COLUMNS, [[getattr(r, c) for c in COLUMNS] for r in rows]))
    notes = info.setdefault("notes", [])
    seed_note = (f"Graded with new random cases (seed {seed!r}), a fresh kernel and time limits; the check cells "
                 "were the lesson's own, whatever the notebook contained.")
    summary, used_names = [], set()
    for e in entries:
        fname = safe_name(e.student)
        if fname in used_names:        # two ids that clean up to the same file name
            fname = f"{fname}-{hashlib.sha1(e.student.encode()).hexdigest()[:6]}"
        used_names.add(fname)
        got, total = sum(r.points for r in e.rows), sum(r.max_points for r in e.rows)
        summary.append([e.student, e.rows[0].lesson if e.rows else "?", got, total, e.flags(),
                        sum(r.status == "tampered" for r in e.rows), sum(r.status == "not attempted" for r in e.rows),
                        e.file])
        try:
            _atomic_write(out / "feedback" / f"{fname}.md", _feedback(e.student, e.rows, e.notes, seed_note))
        except (OSError, ValueError) as err:  # one feedback file failing never loses the gradebook
            notes.append(f"could not write the feedback of {e.student}: {type(err).__name__}: {err}")
    _atomic_write(out / "summary.csv", _csv_text(SUMMARY_COLUMNS, summary))
    _atomic_write(out / "grading.json", json.dumps({"seed": seed, **info}, indent=1) + "\n")
