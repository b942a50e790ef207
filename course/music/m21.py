"""music21 scores in and out. Only this file (and midi_io) touch the notation libraries.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import re
from fractions import Fraction

from ..errors import MusicError
from .core import Music, Note, Part

__all__ = ["from_music21", "to_music21", "pickup_quarters"]


def _expand(score):
    """Expand repeats; some scores' repeat marks are malformed (bwv277): play them once instead."""
    try:
        expanded = score.expandRepeats()
    except Exception:
        return score, False
    return expanded, True


def pickup_quarters(score) -> float:
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


def from_music21(stream, *, qpm: float | None = None, expand_repeats: bool = True, title: str | None = None,
                 in_place: bool = False) -> Music:
    """Convert a music21 ``Score``/``Part``/``Stream`` to a :class:`Music`.

    Tied notes become one note; repeats are expanded where the score's repeat marks
    are well formed (otherwise the written notes are played once); grace notes are dropped.

    Args:
        stream: a music21 stream.
        qpm: tempo; default: the score's first metronome mark, else 120.
        expand_repeats: play repeated sections twice, as a performer would.
        title: a label; defaults to the score's title or corpus file name.
        in_place: merge ties inside ``stream`` itself instead of in a copy: much faster for a
            score that is not needed afterwards (the data set builder), but ``stream`` is changed.
    """
    import music21

    if not isinstance(stream, music21.stream.Stream):
        raise MusicError(f"from_music21 needs a music21 stream (Score, Part, ...), not {type(stream).__name__}.")
    score = stream
    pickup = pickup_quarters(score)
    if expand_repeats:
        score, _ = _expand(score)
    try:
        if in_place:
            score.stripTies(inPlace=True)
        else:
            score = score.stripTies(inPlace=False)
    except Exception:  # odd streams without measures: ties stay split
        pass
    if qpm is None:
        qpm = 120.0
        try:
            marks = score.metronomeMarkBoundaries()
            if marks and marks[0][2] is not None and marks[0][2].number:
                qpm = float(marks[0][2].getQuarterBPM() or marks[0][2].number)
        except Exception:
            pass
    spq_sec = 60.0 / float(qpm)
    ts = (4, 4)
    tss = list(score.recurse().getElementsByClass(music21.meter.TimeSignature))
    if tss:
        ts = (int(tss[0].numerator), int(tss[0].denominator))
    voices = list(score.parts) if isinstance(score, music21.stream.Score) and len(score.parts) else [score]
    parts, notes = [], []
    for k, voice in enumerate(voices):
        name = getattr(voice, "partName", None) or ""
        parts.append(Part(name=str(name)))
        for el in voice.flatten().notes:
            ql = float(el.duration.quarterLength)
            if ql <= 0:  # grace note
                continue
            start = float(el.offset) * spq_sec
            end = start + ql * spq_sec
            vel = el.volume.velocity if el.volume is not None and el.volume.velocity is not None else 80
            for p in el.pitches:
                notes.append(Note(int(p.midi), start, end, int(vel), k))
    if not notes:
        raise MusicError("That music21 stream contains no notes.")
    if title is None:
        title = ""
        md = getattr(score, "metadata", None) or getattr(stream, "metadata", None)
        if md is not None:
            title = md.title or md.corpusFilePath or ""
    return Music(notes=tuple(notes), qpm=float(qpm), time_signature=ts, parts=tuple(parts), title=str(title),
                 pickup=pickup)


def _ql(seconds: float, qpm: float) -> Fraction:
    """Seconds to a quarterLength rounded to a 1/48 quarter, so music21 can notate it."""
    return Fraction(round(seconds * qpm / 60.0 * 48), 48)


def to_music21(music: Music):
    """Convert a :class:`Music` to a ``music21.stream.Score`` (one Part per part).

    Times are rounded to 1/48 of a quarter note so the result can be notated. A piece with an
    upbeat (``music.pickup``) gets measures, the first one short (music21's measure 0), so
    its bar lines fall where the composer put them; otherwise music21 makes measures when
    it writes the score. A part named as a tenor voice is written in the treble clef an octave
    down (the tenor staff of a chorale), unless its notes sit low enough for the bass clef;
    other parts get the clef music21 finds best for their notes.
    """
    import music21

    shift = Fraction(0)
    if music.pickup:
        # notes go in one upbeat-complement later, so the measures music21 makes line up with the
        # real bar lines; the first measure then loses that much silence at its start
        shift = Fraction(music.quarters_per_bar).limit_denominator(48) - _ql(music.pickup * music.seconds_per_quarter,
                                                                                music.qpm)
    score = music21.stream.Score()
    if music.title:
        score.insert(0, music21.metadata.Metadata(title=music.title))
    for k, part_info in enumerate(music.parts):
        part = music21.stream.Part()
        part.partName = part_info.name or f"Part {k + 1}"
        part.insert(0, music21.meter.TimeSignature(f"{music.time_signature[0]}/{music.time_signature[1]}"))
        if k == 0:
            part.insert(0, music21.tempo.MetronomeMark(number=music.qpm))
        groups: dict = {}
        for n in music.notes:
            if n.part == k:
                key = (_ql(n.start, music.qpm), max(_ql(n.end, music.qpm) - _ql(n.start, music.qpm), Fraction(1, 48)))
                groups.setdefault(key, []).append(n)
        for (off, ql), ns in sorted(groups.items()):
            if len(ns) == 1:
                el = music21.note.Note(ns[0].pitch, quarterLength=ql)
            else:
                el = music21.chord.Chord([x.pitch for x in ns], quarterLength=ql)
            el.volume.velocity = ns[0].velocity
            part.insert(off + shift, el)
        if _is_tenor(part_info.name) and not isinstance(music21.clef.bestClef(part), music21.clef.BassClef):
            part.insert(0, music21.clef.Treble8vbClef())
        if shift:
            part = _with_upbeat(part, shift)
        score.insert(0, part)
    return score


def _is_tenor(name: str | None) -> bool:
    """A part named as a tenor voice (``"Tenor"``, ``"tenor 2"``, ``"T."``, ``"Tenore"``)."""
    return bool(name) and re.match(r"(?i)^\s*(tenor|tenore|ten\.|t\.)(\s|\d|$)", name) is not None


def _with_upbeat(part, shift: Fraction):
    """``part`` (notes placed ``shift`` quarters late) in measures whose first one is an upbeat."""
    import music21

    measured = part.makeNotation(inPlace=False)
    measures = list(measured.getElementsByClass(music21.stream.Measure))
    if not measures:
        return part
    first = measures[0]
    for el in list(first.notesAndRests):
        off, end = Fraction(el.offset), Fraction(el.offset) + Fraction(el.duration.quarterLength)
        if end <= shift:                     # the silence added in front: goes
            first.remove(el)
        elif off < shift:                    # a rest reaching past it: shortened
            el.duration.quarterLength = end - shift
            first.remove(el)
            first.insert(shift, el)
    for el in list(first.notesAndRests):
        first.setElementOffset(el, Fraction(el.offset) - shift)
    first.paddingLeft = float(shift)
    for k, m in enumerate(measures):
        m.number = k                         # the upbeat is measure 0, as in a printed score
        if k:
            measured.setElementOffset(m, Fraction(m.offset) - shift)
    return measured
