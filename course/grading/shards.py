"""A class graded in shards: ``course grade --shard K/N`` on N machines (or N processes), then ``--merge``.

**The split.** The submissions (``*.ipynb`` files) are sorted by name, as bytes; the i-th (from 0)
belongs to shard ``i mod N + 1``. Every file is in exactly one shard, whatever the machine, and the
shards are as even as they can be. Student ids (and the suffix that tells apart two file names that
clean up alike) are decided over the whole folder, before the split.

**A shard's output** is a normal report folder (its own gradebook, summary and feedback, for its
share) plus ``shard.json``: the seed, the split, ``--lesson``, digests of the lesson check cells and
of the whole submissions folder (every file's name and content), the settings, and each graded
submission's rows, notes and place in the folder.

**The merge** (:func:`merge`) reads the ``shard.json`` files, refuses shards that do not make one run
(not a shard output, different seeds, lessons, check cells, submissions or settings, a shard given
twice or one missing), and writes the reports of all the submissions in the folder's order with
:func:`.reports.write_reports`: ``gradebook.csv``, ``summary.csv`` and ``feedback/`` are byte for byte
those of one unsharded run with the same seed. ``grading.json`` differs only in ``seconds`` (the
shards' sum), ``settings.jobs`` and ``settings.lessons_dir`` (the first shard's) and ``merged_from``
(the shard folders; an unsharded run has none).

Lesson: 00_welcome
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import ExerciseError
from ..files import atomic_write
from .reports import Entry

__all__ = ["MANIFEST", "parse_shard", "pick", "folder_digest", "checks_digest", "write_manifest", "read_shards",
           "merge_info"]

MANIFEST = "shard.json"
FORMAT = "course-grading-shard/1"
# settings that may differ between shards without changing a grade
_FREE_SETTINGS = ("jobs", "lessons_dir")
# what a merge reads from each shard.json, besides its shard and entries
_FIELDS = ("seed", "lesson", "checks", "submissions", "count", "settings", "seconds", "notes", "skipped_files")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> ``(2, 5)``: shard 2 of 5 (1 <= K <= N)."""
    try:
        k, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ExerciseError(f"--shard {text!r}: give K/N, e.g. --shard 1/4 (shard 1 of 4).") from None
    if not 1 <= k <= n:
        raise ExerciseError(f"--shard {text}: K must be between 1 and N (1/{max(n, 1)} ... {max(n, 1)}/{max(n, 1)}).")
    return k, n


def pick(count: int, shard: tuple[int, int] | None) -> list[int]:
    """The places (in the sorted folder) of the submissions that ``shard`` grades; all of them for ``None``."""
    if shard is None:
        return list(range(count))
    k, n = shard
    return [i for i in range(count) if i % n == k - 1]


def folder_digest(files: list[Path]) -> str:
    """SHA-256 over every file's name and content, in order: the same folder on any machine, same digest."""
    h = hashlib.sha256()
    for p in files:
        h.update(os.fsencode(p.name) + b"\0")
        try:
            content = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    content.update(block)
            h.update(content.digest())
        except OSError as e:
            h.update(f"unreadable: {type(e).__name__}".encode())
    return h.hexdigest()


def checks_digest(lessons: dict) -> str:
    """SHA-256 over every lesson's check cells (``{lesson id: LessonChecks}``)."""
    h = hashlib.sha256()
    for lesson_id in sorted(lessons):
        h.update(json.dumps([lesson_id, lessons[lesson_id].checks]).encode())
    return h.hexdigest()


def write_manifest(out: Path, run: dict, entries: dict[int, Entry]) -> None:
    """``out/shard.json``: ``run`` (seed, shard, lesson, digests, settings...) and the graded ``entries``
    (``{place in the folder: Entry}``)."""
    data = {"format": FORMAT, **run,
            "entries": [{"index": i, **e.to_json()} for i, e in sorted(entries.items())]}
    atomic_write(out / MANIFEST, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


# ------------------------------------------------------------------------------------ merging
def _read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    not_shard = f"{folder} is not a shard output of `course grade --shard K/N`"
    if not path.is_file():
        raise ExerciseError(f"{not_shard} (it has no {MANIFEST}).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        data["shard"] = tuple(data["shard"])
        data["entries"] = {int(e["index"]): Entry.from_json(e) for e in data["entries"]}
        absent = [k for k in _FIELDS if k not in data]
        if absent:
            raise KeyError(", ".join(absent))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ExerciseError(f"{not_shard} (its {MANIFEST} cannot be read: {type(e).__name__}: {e}).") from None
    data["folder"] = str(folder)
    return data


def _same(shards: list[dict], what: str, key) -> None:
    """Refuse shards that differ in ``key(shard)``; ``what`` names it."""
    first = shards[0]
    for s in shards[1:]:
        if key(s) != key(first):
            raise ExerciseError(f"These shards are not one grading run: {first['folder']} and {s['folder']} have "
                                f"different {what} ({key(first)!r} and {key(s)!r}).")


def read_shards(folders: list[Path]) -> tuple[list[dict], list[Entry]]:
    """The manifests of ``folders`` and all their entries in the folder's order, or an
    :class:`ExerciseError` saying why these shards do not make one run."""
    if not folders:
        raise ExerciseError("Give the shard folders to merge (the --out folders of the --shard K/N runs).")
    shards = [_read_manifest(Path(f)) for f in folders]
    _same(shards, "splits (--shard K/N)", lambda s: s["shard"][1])
    _same(shards, "seeds (--seed)", lambda s: s["seed"])
    _same(shards, "lessons (--lesson)", lambda s: s["lesson"])
    _same(shards, "lesson check cells (--lessons-dir)", lambda s: s["checks"])
    _same(shards, "submissions (the folder's files or their contents)", lambda s: s["submissions"])
    _same(shards, "settings", lambda s: {k: v for k, v in s["settings"].items() if k not in _FREE_SETTINGS})
    n = shards[0]["shard"][1]
    seen: dict[int, str] = {}
    for s in shards:
        k = s["shard"][0]
        if k in seen:
            raise ExerciseError(f"Shard {k}/{n} is given twice ({seen[k]} and {s['folder']}): give each shard once.")
        seen[k] = s["folder"]
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in seen]
    if missing:
        raise ExerciseError(f"Shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: grade "
                            f"{'them' if len(missing) > 1 else 'it'} with --shard and the same --seed, then merge all {n}.")
    entries: dict[int, Entry] = {}
    for s in shards:
        if sorted(s["entries"]) != pick(s["count"], s["shard"]):
            raise ExerciseError(f"{s['folder']}/{MANIFEST} does not hold shard {s['shard'][0]}/{n}'s share of "
                                "the submissions (was it edited?).")
        entries.update(s["entries"])
    return sorted(shards, key=lambda s: s["shard"]), [entries[i] for i in sorted(entries)]


def merge_info(shards: list[dict]) -> dict:
    """``grading.json`` of the merged run (after its seed), from the shards' manifests."""
    first = shards[0]
    return {"seconds": round(sum(s["seconds"] for s in shards), 1), "notebooks": first["count"],
            "settings": first["settings"], "notes": list(dict.fromkeys(n for s in shards for n in s["notes"])),
            "skipped_files": first["skipped_files"], "lesson": first["lesson"], "submissions": first["submissions"],
            "merged_from": [s["folder"] for s in shards]}
