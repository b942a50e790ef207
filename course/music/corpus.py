"""The music21 corpus: music that ships inside an installed package, read as :class:`Music`.

``course.data`` builds its data sets from these files, so nothing is ever downloaded.
This file (with ``m21``) keeps music21 inside ``course.music``; the rest of the package
only sees :class:`Music` objects and plain dicts.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import MusicError
from .core import Music
from .m21 import from_music21

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


def _pickup_quarters(score) -> float:
    """Length in quarters of an incomplete first bar (an upbeat), 0 if the first bar is full."""
    import music21

    try:
        part = score.parts[0] if isinstance(score, music21.stream.Score) and len(score.parts) else score
        measures = part.getElementsByClass(music21.stream.Measure)
        if not measures:
            return 0.0
        first = measures[0]
        ts = first.timeSignature or first.getContextByClass(music21.meter.TimeSignature)
        bar = float(ts.barDuration.quarterLength) if ts is not None else 4.0
        have = float(first.duration.quarterLength)
        return have if 0 < have < bar else 0.0
    except Exception:  # unusual streams: no upbeat information
        return 0.0


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
        in_ending = {id(m) for b in part.spanners.getElementsByClass(music21.spanner.RepeatBracket)
                     for m in b.getSpannedElements()}
        section, open_start = 0, False
        for i, m in enumerate(measures):
            left, right = m.leftBarline, m.rightBarline
            if isinstance(left, bar.Repeat) and left.direction == "start":
                section, open_start = i, True
            elif left is not None and left.type in ("double", "final", "heavy-light", "light-light"):
                if not open_start:
                    section = i
            if isinstance(right, bar.Repeat) and right.direction == "end":
                if not open_start and section > 0:
                    measures[section].leftBarline = bar.Repeat(direction="start")
                section, open_start = i + 1, False
            elif right is not None and right.type in ("double", "final", "light-light", "light-heavy") and not open_start:
                section = i + 1
            if id(m) in in_ending and (i + 1 == len(measures) or id(measures[i + 1]) not in in_ending):
                section, open_start = i + 1, False
        if open_start and measures and not isinstance(measures[-1].rightBarline, bar.Repeat):
            measures[-1].rightBarline = bar.Repeat(direction="end")  # "|: ..." to the end of the tune


def _has_repeats(score) -> bool:
    import music21

    if score.recurse().getElementsByClass((music21.bar.Repeat, music21.repeat.RepeatExpression)).first() is not None:
        return True
    return any(True for _ in score.recurse().getElementsByClass(music21.spanner.RepeatBracket))


def _expand_checked(score):
    """Expand repeats; ``(score, "expanded")``, or ``(score, "written")`` when the marks are malformed.

    A correct expansion at most doubles the notes; more means music21 misread the marks.
    """
    written = len(score.flatten().notes)
    _complete_repeats(score)
    try:
        expanded = score.expandRepeats()
    except Exception:
        return score, "written"
    if len(expanded.flatten().notes) > 2 * written:
        return score, "written"
    return expanded, "expanded"


def read_corpus(path: str, *, qpm: float = 120.0, expand_repeats: bool = False) -> list[dict]:
    """Parse one corpus file into pieces (an ABC file may hold hundreds of tunes).

    Args:
        path: a path relative to :func:`corpus_dir` (``"bach/bwv269.mxl"``) or an absolute path.
        qpm: the tempo the notes are timed at (times in the result are seconds at this tempo).
        expand_repeats: play repeated sections twice (see ``from_music21``).

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
                   "music": None, "error": None, "pickup": _pickup_quarters(score),
                   "repeats": "written" if _has_repeats(score) else "none"}
            try:
                if expand_repeats and rec["repeats"] == "written":
                    score, rec["repeats"] = _expand_checked(score)
                rec["music"] = from_music21(score, qpm=qpm, expand_repeats=False, title=rec["title"])
            except MusicError as e:
                rec["error"] = str(e)
            except Exception as e:  # music21 fails in many ways on odd encodings
                rec["error"] = f"{type(e).__name__}: {e}"
            out.append(rec)
    return out
