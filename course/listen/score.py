"""Sheet music in the notebook: music -> music21 -> MusicXML -> verovio -> SVG.

No MuseScore, no LilyPond, nothing downloaded: verovio is a Python wheel.

Lesson: 00_welcome
"""
from __future__ import annotations

import contextlib
import copy
import functools
import html
import io
import tempfile
from pathlib import Path

from ..errors import MusicError
from ..music import Music, to_music21, trim
from ._common import to_music

__all__ = ["score_svg", "show_score", "Score", "MAX_MEASURES"]

MAX_MEASURES = 48   # engraving more than this by default is slow and unreadable in a notebook


@functools.lru_cache(maxsize=1)
def _toolkit():
    import verovio

    if hasattr(verovio, "enableLog") and hasattr(verovio, "LOG_ERROR"):
        verovio.enableLog(verovio.LOG_ERROR)   # layout warnings ("highly compressed") are noise to a student
    tk = verovio.toolkit()
    return tk


def _stable_ids(svg: str) -> str:
    """Renumber the SVG's element ids in document order, so the same music gives the same SVG
    (verovio and music21 make random ids; stable ones keep saved notebooks diffing cleanly)."""
    import re

    mapping: dict = {}
    for ident in re.findall(r'\bid="([^"]+)"', svg):
        mapping.setdefault(ident, f"v{len(mapping)}")
    return re.sub(r"[A-Za-z0-9_\-]+", lambda m: mapping.get(m.group(0), m.group(0)), svg)


def _measure_window(music: Music, measures) -> tuple[float, float | None, str]:
    """Seconds ``(start, end)`` of the chosen measures and a note about what was left out."""
    bar = music.quarters_per_bar * music.seconds_per_quarter      # seconds per measure
    upbeat = music.pickup * music.seconds_per_quarter           # an upbeat belongs to measure 1
    total = max(1, int(-(-round((music.duration - upbeat) / bar, 6) // 1)))
    if measures is None:
        if total <= MAX_MEASURES:
            return 0.0, None, ""
        first, last = 1, MAX_MEASURES
        note = f"Showing measures 1-{MAX_MEASURES} of {total} (pass measures=(first, last) for others)."
        return 0.0, upbeat + last * bar, note
    if isinstance(measures, bool):
        raise MusicError(f"measures must be a count or (first, last), got {measures!r}.")
    if isinstance(measures, int):
        first, last = 1, measures
    else:
        try:
            first, last = (int(m) for m in measures)
        except (TypeError, ValueError):
            raise MusicError(f"measures must be a count like 8 or a range like (1, 8), got {measures!r}.") from None
    if not 1 <= first <= last:
        raise MusicError(f"measures=({first}, {last}) needs 1 <= first <= last (measures count from 1).")
    if first > total:
        raise MusicError(f"This piece has {total} measure(s); measure {first} does not exist.")
    last = min(last, total)
    note = f"Measures {first}-{last} of {total}." if (first, last) != (1, total) else ""
    return (0.0 if first == 1 else upbeat + (first - 1) * bar), upbeat + last * bar, note


def score_svg(music, measures=None, *, width: int = 2100, scale: int = 40) -> str:
    """Engrave ``music`` as sheet music; returns one SVG document as a string.

    Lesson: 00_welcome

    Args:
        music: anything ``course.music.as_music`` accepts (e.g. a ``Music`` from ``read_midi``).
        measures: ``None`` (the whole piece, up to the first 48 measures), a count ``n`` (the
            first ``n`` measures) or ``(first, last)`` (counting from 1, inclusive). Measures
            follow the music's time signature and tempo.
        width: page width in verovio units (tenths of a millimetre); ``scale``: percent zoom.

    Raises:
        MusicError: not music, no notes in the chosen measures, or the score could not be engraved.
    """
    svg, _ = _render(music, measures, width, scale)
    return svg


def _render(music, measures, width, scale):
    music = to_music(music, "score_svg")
    start, end, note = _measure_window(music, measures)
    if start > 0 or end is not None:
        music = trim(music, start, end if end is not None else music.duration)
        if not music.notes:
            raise MusicError("There are no notes in those measures.")
    try:
        with contextlib.redirect_stderr(io.StringIO()):   # music21 writes warnings such as "out of midi channels"
            xml = _musicxml(music)                      # straight to stderr; they say nothing about the score
    except Exception as e:
        raise MusicError(f"music21 could not write this music as MusicXML ({type(e).__name__}: {e}).") from None
    tk = _toolkit()
    tk.setOptions({"pageWidth": int(width), "scale": int(scale), "adjustPageHeight": True, "pageHeight": 60000,
                   "header": "none", "footer": "none", "breaks": "auto", "svgViewBox": True})
    if not tk.loadData(xml):   # verovio takes a str, not bytes
        raise MusicError("verovio could not read the MusicXML made from this music.")
    pages = tk.getPageCount()
    svg = _stable_ids(tk.renderToSVG(1))
    if pages > 1:
        note = (note + " " if note else "") + f"Page 1 of {pages}; choose fewer measures to see the rest."
    return svg, note


def _musicxml(music: Music) -> str:
    """MusicXML text of ``music``, with a key signature and black keys spelled to suit it.

    The music21 objects come from ``course.music.to_music21`` (the only layer that imports
    music21); this only calls their methods.
    """
    score = to_music21(music)
    try:
        key = score.analyze("key")          # Krumhansl-Schmuckler key finding
    except Exception:                       # too few notes to tell: no key signature
        key = None
    for part in score.parts:
        if key is not None:       # into the first measure when there are measures (a piece with an upbeat)
            first = part.getElementsByClass("Measure").first()
            (first if first is not None else part).insert(0, copy.deepcopy(key))
    for note in score.recurse().notes:
        for pitch in note.pitches:
            acc = pitch.accidental
            if acc is None:
                continue
            if acc.name == "natural":       # music21 marks pitches made from MIDI numbers as natural
                pitch.accidental = None
            elif key is not None and ((key.sharps < 0 and acc.name == "sharp") or (key.sharps > 0 and acc.name == "flat")):
                pitch.getEnharmonic(inPlace=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = score.write("musicxml", fp=str(Path(tmp) / "score.musicxml"))
        return Path(path).read_text(encoding="utf-8")


class Score:
    """Engraved sheet music that a notebook displays inline as SVG (see :func:`show_score`).

    Lesson: 00_welcome

    Attributes:
        svg: the SVG document (str); note: what was left out, if anything.
    """

    def __init__(self, svg: str, note: str = "", title: str = ""):
        self.svg, self.note, self.title = svg, note, title

    def _repr_html_(self) -> str:
        note = f"<div style='color:#a60;font-size:90%'>{html.escape(self.note)}</div>" if self.note else ""
        return (f"<div class='course-score' style='max-width:900px;background:white'>{self.svg}</div>{note}")

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path) -> None:
        """Write the SVG to ``path`` (open it in a browser or a vector editor)."""
        Path(path).write_text(self.svg, encoding="utf-8")

    def __repr__(self) -> str:
        extra = f"; {self.note}" if self.note else ""
        return f"Score({self.title or 'music'!r}, {len(self.svg) // 1024} KB of SVG{extra}; display it in Jupyter)"


def show_score(music, measures=None, *, width: int = 2100, scale: int = 40) -> Score:
    """Sheet music of ``music`` for the notebook: put it last in a cell, or call ``display()`` on it.

    Lesson: 00_welcome

    Arguments as for :func:`score_svg`. Returns a :class:`Score` (``.svg`` holds the SVG text).
    """
    svg, note = _render(music, measures, width, scale)
    title = getattr(music, "title", "") if isinstance(music, Music) else ""
    return Score(svg, note, title)
