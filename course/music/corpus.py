"""The music21 corpus: music that ships inside an installed package, read as :class:`Music`.

``course.data`` builds its data sets from these files, so nothing is ever downloaded.
This file (with ``m21``) keeps music21 inside ``course.music``; the rest of the package
only sees :class:`Music` objects and plain dicts.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import MusicError
from .core import Music, Note
from .m21 import from_music21, pickup_quarters

__all__ = ["music21_version", "corpus_dir", "corpus_files", "chorale_catalogue", "read_corpus"]

# music21's Riemenschneider list names one file that the corpus stores under another name
_CHORALE_FILE_ALIASES = {"bwv18.5-l": "bwv18.5-lz"}


def music21_version() -> str:
    """The installed music21 version, e.g. ``"9.1.0"``."""
    import music21

    return str(music21.__version__)


def corpus_dir() -> Path:
    """The folder of music21's bundled corpus (inside the installed package)."""
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def corpus_files(collection: str, suffixes: tuple = (".mxl", ".xml", ".musicxml", ".krn", ".abc")) -> list[str]:
    """The files of one corpus collection (a folder such as ``"bach"`` or ``"oneills1850"``).

    Returns paths relative to :func:`corpus_dir`, with ``/`` separators, sorted by name.
    """
    folder = corpus_dir() / collection
    if not folder.is_dir():
        known = sorted(p.name for p in corpus_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise MusicError(f"music21's corpus has no collection {collection!r}; it has: {', '.join(known)}.")
    return sorted(f"{collection}/{p.name}" for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def chorale_catalogue() -> list[dict]:
    """music21's catalogue of the 371 Bach chorales in Riemenschneider's numbering, in that order.

    Each entry: ``riemenschneider`` (1..371), ``bwv`` (e.g. ``"269"``, ``"248.12-2"``),
    ``stem`` (the corpus file name without suffix, e.g. ``"bwv269"``) and ``title``.
    Several Riemenschneider numbers can name the same file (the collection prints some
    harmonisations twice).
    """
    from music21.corpus import chorales

    out = []
    table = chorales.ChoraleListRKBWV().byRiemenschneider
    for r in sorted(table):
        info = table[r]
        stem = f"bwv{info['bwv']}"
        out.append({"riemenschneider": int(r), "bwv": str(info["bwv"]),
                    "stem": _CHORALE_FILE_ALIASES.get(stem, stem), "title": str(info.get("title") or "")})
    return out


def _ending_bars(part, measures: list) -> dict | None:
    """Bar index -> the passes its first/second-ending bracket is played on (every bar the
    bracket covers, from its first to its last); None if a bracket's numbers are unclear."""
    import music21

    where = {id(m): i for i, m in enumerate(measures)}
    out: dict = {}
    for b in part.spanners.getElementsByClass(music21.spanner.RepeatBracket):
        nums = _ending_numbers(b)
        idx = [where[id(m)] for m in b.getSpannedElements() if id(m) in where]
        if nums is None or not idx:
            return None
        for i in range(min(idx), max(idx) + 1):
            out[i] = nums
    return out


def _repeat_marks(measures: list) -> tuple[list, list]:
    """Per bar: does a repeat start at its beginning, does one end at its end?

    music21 sometimes hangs a mark on the neighbouring bar (an end mark as the next bar's left
    barline); both placements count.
    """
    from music21 import bar

    def is_repeat(b, direction):
        return isinstance(b, bar.Repeat) and b.direction == direction

    n = len(measures)
    starts = [is_repeat(m.leftBarline, "start") or (i > 0 and is_repeat(measures[i - 1].rightBarline, "start"))
              for i, m in enumerate(measures)]
    ends = [is_repeat(m.rightBarline, "end") or (i + 1 < n and is_repeat(measures[i + 1].leftBarline, "end"))
            for i, m in enumerate(measures)]
    return starts, ends


def _complete_repeats(score) -> None:
    """Write the start marks that ABC tunes leave out, in place.

    Folk tunes often mark only the end of a repeated section (``:|``) and mean "from the start
    of this section". music21 reads such a mark as "from the very beginning", so a jig with
    nine parts (O'Neill's 1046) expanded to 50,000 notes. Here each end mark without a start
    gets one at its section's first bar: after the previous end mark, double bar or last ending;
    a start mark that is never closed repeats to the end of the tune.
    """
    import music21
    from music21 import bar

    parts = list(score.parts) if isinstance(score, music21.stream.Score) and len(score.parts) else [score]
    for part in parts:
        measures = list(part.getElementsByClass(music21.stream.Measure))
        in_ending = set(_ending_bars(part, measures) or {})
        starts, ends = _repeat_marks(measures)
        section, open_start = 0, False
        for i, m in enumerate(measures):
            left, right = m.leftBarline, m.rightBarline
            if starts[i]:
                section, open_start = i, True
            elif left is not None and left.type in ("double", "final", "heavy-light", "light-light"):
                if not open_start:
                    section = i
            if ends[i]:
                if not open_start and section > 0:
                    measures[section].leftBarline = bar.Repeat(direction="start")
                section, open_start = i + 1, False
            elif right is not None and right.type in ("double", "final", "light-light", "light-heavy") and not open_start:
                section = i + 1
            if i in in_ending and i + 1 not in in_ending:
                section, open_start = i + 1, False
        if open_start and measures and not ends[-1]:
            measures[-1].rightBarline = bar.Repeat(direction="end")  # "|: ..." to the end of the tune


def _has_repeats(score) -> bool:
    import music21

    if score.recurse().getElementsByClass((music21.bar.Repeat, music21.repeat.RepeatExpression)).first() is not None:
        return True
    return any(True for _ in score.recurse().getElementsByClass(music21.spanner.RepeatBracket))


def _ending_numbers(bracket) -> set | None:
    """The passes a first/second-ending bracket is played on ("1", "2", "1,3", "1-2"); None if unclear."""
    nums = set()
    for piece in re.split(r"[,\s]+", str(bracket.number or "").strip()):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", piece)
        if not m:
            return None
        nums.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return nums or None


def _measure_plan(score):
    """The bars of a one-part score in playing order: ``(offsets, lengths, order)`` in quarters.

    Follows repeat barlines (``|:`` ``:|``) and numbered endings. Returns None for what it
    does not handle (several parts, da capo / segno signs, unreadable endings, no bars).
    """
    import music21
    from music21 import bar

    if isinstance(score, music21.stream.Score):
        if len(score.parts) != 1:
            return None
        part = score.parts[0]
    else:
        part = score
    if part.recurse().getElementsByClass(music21.repeat.RepeatExpression).first() is not None:
        return None
    measures = list(part.getElementsByClass(music21.stream.Measure))
    if not measures:
        return None
    n = len(measures)
    endings = _ending_bars(part, measures)
    if endings is None:
        return None
    in_ending = [i in endings for i in range(n)]
    last_pass = [0] * n          # the highest pass number of the endings group each bar belongs to
    i = 0
    while i < n:
        if in_ending[i]:
            j = i
            while j < n and in_ending[j]:
                j += 1
            top = max(max(endings[k]) for k in range(i, j))
            last_pass[i:j] = [top] * (j - i)
            i = j
        else:
            i += 1
    offsets = [float(m.offset) for m in measures]
    end = max(float(part.highestTime), offsets[-1] + float(measures[-1].duration.quarterLength))
    lengths = [b - a for a, b in zip(offsets, offsets[1:] + [end])]
    starts, ends = _repeat_marks(measures)
    order, i, start, p = [], 0, 0, 1
    while i < n:
        if len(order) > 4 * n:
            return None
        if starts[i] and i != start and not in_ending[i]:
            start, p = i, 1
        group_ends = in_ending[i] and (i + 1 == n or not in_ending[i + 1])
        if in_ending[i] and p not in endings[i]:           # an ending for another pass
            if group_ends:
                start, p = i + 1, 1
            i += 1
            continue
        order.append(i)
        if ends[i]:
            mark = measures[i].rightBarline if isinstance(measures[i].rightBarline, bar.Repeat) else None
            passes = last_pass[i] if in_ending[i] else int(getattr(mark, "times", None) or 2)
            if p < passes:
                p, i = p + 1, start
                continue
            start, p = i + 1, 1
        elif group_ends:
            start, p = i + 1, 1
        i += 1
    return offsets, lengths, order


def _play_bars(music: Music, offsets: list, lengths: list, order: list) -> Music:
    """The notes of ``music`` (one part, as written) laid out bar by bar in playing ``order``."""
    a = music.arrays()
    sec = 60.0 / music.qpm                                  # seconds per quarter
    bar_of = np.searchsorted(np.asarray(offsets), a["start"] / sec + 1e-9, side="right") - 1
    bar_of = np.clip(bar_of, 0, len(offsets) - 1)
    members = [np.flatnonzero(bar_of == j) for j in range(len(offsets))]
    notes, t = [], 0.0
    for j in order:
        shift = (t - offsets[j]) * sec
        for k in members[j].tolist():
            notes.append(Note(int(a["pitch"][k]), float(a["start"][k] + shift), float(a["end"][k] + shift),
                              int(a["velocity"][k]), int(a["part"][k])))
        t += lengths[j]
    return music.replace(notes=tuple(notes))


def _convert_expanded(score, qpm: float, title: str) -> tuple:
    """Convert with repeats played out: ``(music, "expanded")``, or ``(music, "written")`` if the
    marks are malformed (then the notes are as written)."""
    _complete_repeats(score)
    plan = _measure_plan(score)
    if plan is not None:
        music = from_music21(score, qpm=qpm, expand_repeats=False, title=title, in_place=True)
        played = _play_bars(music, *plan)
        if len(played.notes) <= 2 * len(music.notes):
            return played, "expanded"
        return music, "written"
    # several parts, da capo signs, ...: music21's own expansion
    written = len(score.flatten().notes)
    try:
        expanded = score.expandRepeats()
    except Exception:
        expanded = None
    if expanded is None or len(expanded.flatten().notes) > 2 * written:
        return from_music21(score, qpm=qpm, expand_repeats=False, title=title, in_place=True), "written"
    return from_music21(expanded, qpm=qpm, expand_repeats=False, title=title, in_place=True), "expanded"


def read_corpus(path: str, *, qpm: float = 120.0, expand_repeats: bool = False) -> list[dict]:
    """Parse one corpus file into pieces (an ABC file may hold hundreds of tunes).

    Args:
        path: a path relative to :func:`corpus_dir` (``"bach/bwv269.mxl"``) or an absolute path.
        qpm: the tempo the notes are timed at (times in the result are seconds at this tempo).
        expand_repeats: play repeats out: bar by bar along repeat barlines and first/second
            endings, adding the start marks that ABC tunes leave out (music21's own expansion
            only where that does not apply: several parts, da capo or segno signs).

    Returns:
        one dict per piece, in file order: ``number`` (the tune's number in the file, or None),
        ``title``, ``music`` (a :class:`Music`, or None if it could not be converted),
        ``error`` (why not, or None), ``pickup`` (quarters in an incomplete first bar),
        ``repeats``: ``"none"`` (no repeat marks), ``"expanded"``, or ``"written"`` (marks
        present but the notes are played once as written: not asked to expand, or the
        marks are malformed).
        Parsed scores are converted straight away and not kept.

    Raises:
        MusicError: the file itself cannot be read.
    """
    import music21

    full = Path(path) if Path(path).is_absolute() else corpus_dir() / path
    if not full.is_file():
        raise MusicError(f"There is no file {path!r} in music21's corpus ({corpus_dir()}).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21 warns about every odd ABC header
        try:
            parsed = music21.converter.parse(str(full))
        except Exception as e:
            raise MusicError(f"music21 could not read {path!r}: {type(e).__name__}: {e}") from None
        scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
        del parsed
        out = []
        for score in scores:
            md = score.metadata
            number = md.number if md is not None else None
            try:
                number = int(number) if number is not None else None
            except (TypeError, ValueError):
                number = None
            rec = {"number": number, "title": str((md.title if md is not None else None) or ""),
                   "music": None, "error": None, "pickup": pickup_quarters(score),
                   "repeats": "written" if _has_repeats(score) else "none"}
            try:
                if expand_repeats and rec["repeats"] == "written":
                    rec["music"], rec["repeats"] = _convert_expanded(score, qpm, rec["title"])
                else:
                    rec["music"] = from_music21(score, qpm=qpm, expand_repeats=False, title=rec["title"], in_place=True)
            except MusicError as e:
                rec["error"] = str(e)
            except Exception as e:  # music21 fails in many ways on odd encodings
                rec["error"] = f"{type(e).__name__}: {e}"
            out.append(rec)
    return out
