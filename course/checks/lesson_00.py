"""Checks for lesson 00, welcome: the range of a melody, transposing it, and its intervals.

Written with the check kit (:mod:`course.checks.kit`): each ``@exercise`` function builds the cases
(fixed ones plus random ones from the generator it is handed); expected answers are computed with
``course.music`` in the comparison, after the student's function has run, so no answer exists
while it runs.

Lesson: 00_welcome
"""
from __future__ import annotations

import numpy as np

from .. import music
from .kit import Case, CheckFailure, against, close, exercise, short

LESSON = "00_welcome"

# "Twinkle, twinkle" in C major at 100 qpm: (pitch, start beat, length in beats)
_TWINKLE = [(60, 0, 1), (60, 1, 1), (67, 2, 1), (67, 3, 1), (69, 4, 1), (69, 5, 1), (67, 6, 2),
            (65, 8, 1), (65, 9, 1), (64, 10, 1), (64, 11, 1), (62, 12, 1), (62, 13, 1), (60, 14, 2)]


def _melody(notes, qpm: float = 100.0, title: str = "", velocity: int = 80) -> music.Music:
    """A one-part Music from ``(pitch, start beat, beats)`` triples."""
    spb = 60.0 / qpm
    return music.Music(notes=tuple(music.Note(int(p), s * spb, (s + d) * spb, velocity) for p, s, d in notes),
                       qpm=qpm, title=title)


def _random_melody(r: np.random.Generator, n: int, low: int = 48, high: int = 84) -> music.Music:
    notes, t, p = [], 0.0, int(r.integers(low + 6, high - 6))
    for _ in range(n):
        d = float(r.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
        notes.append((p, t, d))
        t += d + float(r.choice([0.0, 0.0, 0.0, 0.5]))
        p = int(np.clip(p + r.integers(-4, 5), low, high))
    qpm = float(r.choice([72.0, 90.0, 100.0, 120.0]))
    return _melody(notes, qpm=qpm, title="random", velocity=int(r.integers(50, 110)))


def _chords() -> music.Music:
    """Two parts, four chords: the lowest and highest notes are in different parts."""
    soprano = [(72, 0, 1), (74, 1, 1), (76, 2, 1), (72, 3, 1)]
    bass = [(48, 0, 1), (43, 1, 1), (45, 2, 1), (41, 3, 1)]
    notes = [music.Note(p, s * 0.5, (s + d) * 0.5, 80, 0) for p, s, d in soprano]
    notes += [music.Note(p, s * 0.5, (s + d) * 0.5, 80, 1) for p, s, d in bass]
    return music.Music(notes=tuple(notes), qpm=120.0, parts=(music.Part("soprano"), music.Part("bass")))


# ---------------------------------------------------------------------------- pitch_range
def reference_pitch_range(melody: music.Music) -> tuple[int, int]:
    """The lowest and highest MIDI pitch in a piece: ``(lowest, highest)``."""
    p = melody.arrays()["pitch"]
    return int(p.min()), int(p.max())


def _validate_range(got, melody):
    if not isinstance(got, (tuple, list)) or isinstance(got, str):
        raise CheckFailure(f"return two numbers, (lowest, highest); you returned {short(got)}")
    if len(got) != 2:
        raise CheckFailure(f"return two numbers, (lowest, highest); you returned {len(got)}")
    lo, hi = reference_pitch_range(melody)      # computed only now, after your function has run
    pitches = [n.pitch for n in melody.notes]
    try:
        pair = (float(got[0]), float(got[1]))
    except (TypeError, ValueError):
        pair = None
    if pair is not None and not isinstance(got[0], (bool, np.bool_)) and pair != (lo, hi):
        first_part = [n.pitch for n in melody.notes if n.part == melody.notes[0].part]
        if pair == (hi, lo):
            raise CheckFailure("you returned (highest, lowest); return (lowest, highest)")
        if pair == (pitches[0], pitches[-1]):
            raise CheckFailure("you returned the pitches of the first and the last note; the lowest and highest "
                               "notes can come anywhere in the piece")
        if len(first_part) < len(pitches) and pair == (min(first_part), max(first_part)):
            raise CheckFailure("you looked at one part only; the range covers the notes of every part")
        times = [t for n in melody.notes for t in (n.start, n.end)]
        if pair[0] in times and pair[1] in times and not (float(got[0]).is_integer() and float(got[1]).is_integer()):
            raise CheckFailure("you returned times, not pitches")
    close(got[0], lo, where="(the lowest pitch)")
    close(got[1], hi, where="(the highest pitch)")


@exercise(compare=_validate_range,
          hint="the range runs over every note of the piece, in every part: compare the notes' pitches "
               "(not their order in the piece, and not their times)")
def pitch_range(r):
    """Check ``pitch_range(melody) -> (lowest, highest)`` (MIDI pitches of a ``Music``)."""
    twinkle = _melody(_TWINKLE, title="twinkle")
    leap = _melody([(64, 0, 1), (79, 1, 1), (55, 2, 1), (62, 3, 1), (64, 4, 2)], title="leaps")
    cases = [
        Case("Twinkle, twinkle", twinkle),
        Case("the highest note comes in the middle and the lowest later", leap),
        Case("two parts: chords", _chords()),
        Case("a single note", _melody([(69, 0, 1)])),
    ]
    return cases + [Case(f"random #{i + 1}", _random_melody(r, int(r.integers(6, 16)))) for i in range(4)]


# ---------------------------------------------------------------------------- transpose_melody
def reference_transpose_melody(melody: music.Music, semitones: int) -> music.Music:
    """``melody`` moved ``semitones`` up (down if negative): ``course.music.transpose``."""
    return music.transpose(melody, semitones)


def _pairs(melody: music.Music, got: music.Music) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: note ``i`` of ``melody`` and the note ``j`` of ``got`` it became.

    ``Music`` sorts its notes by (start, part, pitch), so a note whose part changed can move in
    ``got.notes``; pairing by (start, end, pitch) order, which a transposition keeps, does not
    depend on the parts.
    """
    def order(m):
        return sorted(range(len(m.notes)), key=lambda k: (m.notes[k].start, m.notes[k].end, m.notes[k].pitch,
                                                          m.notes[k].part))
    return list(zip(order(melody), order(got)))


def _validate_transposed(got, melody, semitones):
    if isinstance(got, (list, tuple)):
        raise CheckFailure(f"return a Music (melody.replace(notes=...)), not a {type(got).__name__} of notes")
    if type(got) is not music.Music:
        raise CheckFailure(f"expected a Music, got {type(got).__name__}")
    if len(got.notes) != len(melody.notes):
        raise CheckFailure(f"wrong number of notes: the piece has {len(melody.notes)}, you returned {len(got.notes)}")
    keep = "keep every field except pitch"
    # every field but the pitch first: a lost part also reorders the notes, and would look like a wrong pitch
    pairs = _pairs(melody, got)
    for i, j in pairs:
        m, g = melody.notes[i], got.notes[j]
        for field_name in ("start", "end"):
            if not np.isclose(getattr(g, field_name), getattr(m, field_name), rtol=0, atol=1e-9):
                raise CheckFailure(f"note {i} has a different {field_name} time (was {getattr(m, field_name):g} s, "
                                   f"now {getattr(g, field_name):g} s): {keep}")
    for i, j in pairs:
        m, g = melody.notes[i], got.notes[j]
        if g.velocity != m.velocity:
            raise CheckFailure(f"note {i} changed its velocity (was {m.velocity}, now {short(g.velocity)}): {keep}")
    for i, j in pairs:
        m, g = melody.notes[i], got.notes[j]
        if g.part != m.part:
            what = "lost its part" if g.part == 0 else "changed its part"
            raise CheckFailure(f"note {i} {what} (was {m.part}, now {short(g.part)}): {keep}")
    expected = reference_transpose_melody(melody, semitones)   # computed only now, after your function has run
    for i, (g, e) in enumerate(zip(got.notes, expected.notes)):
        if g.pitch != e.pitch:
            moved = g.pitch - melody.notes[i].pitch
            raise CheckFailure(f"note {i} moved by {moved:+g} semitones instead of {semitones:+d}")
    if got.qpm != expected.qpm or got.time_signature != expected.time_signature:
        raise CheckFailure("the tempo or time signature changed: keep them with melody.replace(notes=...)")
    if got.parts != expected.parts or got.title != expected.title:
        raise CheckFailure("the parts or the title changed: keep them with melody.replace(notes=...)")


@exercise(compare=_validate_transposed,
          hint="every note moves by the same number of semitones (up if positive, down if negative); its times, "
               "velocity and part stay, and so do the piece's tempo, metre, parts and title")
def transpose_melody(r):
    """Check ``transpose_melody(melody, semitones) -> Music`` (a new piece; the input stays as it was)."""
    twinkle = _melody(_TWINKLE, title="twinkle", velocity=90)   # not Note's default velocity, so losing it shows
    cases = [
        Case("Twinkle up a fifth (+7)", twinkle, 7),
        Case("Twinkle down an octave (-12)", twinkle, -12),
        Case("no change (0)", twinkle, 0),
        Case("two parts, up a semitone", _chords(), 1),
    ]
    for i in range(4):
        cases.append(Case(f"random #{i + 1}", _random_melody(r, int(r.integers(6, 16))), int(r.integers(-11, 12))))
    return cases


# ---------------------------------------------------------------------------- melody_intervals
def reference_melody_intervals(melody: music.Music) -> list[int]:
    """The steps from each note of a one-part melody to the next, in semitones (up positive):
    ``n`` notes give ``n - 1`` intervals."""
    p = melody.arrays()["pitch"].astype(int)
    return [int(b - a) for a, b in zip(p[:-1], p[1:])]


def _pitches(melody: music.Music) -> list[int]:
    return [int(n.pitch) for n in melody.notes]


def _intervals_reversed(melody):
    p = _pitches(melody)
    return [a - b for a, b in zip(p[:-1], p[1:])]


def _intervals_unsigned(melody):
    return [abs(i) for i in reference_melody_intervals(melody)]


def _intervals_from_first(melody):
    p = _pitches(melody)
    return [q - p[0] for q in p[1:]]


def _intervals_leading_zero(melody):
    return [0] + reference_melody_intervals(melody)


INTERVAL_MISTAKES = {
    _intervals_reversed: "that is each note minus the next one: an interval goes from this note to the next, "
                         "so a step up is positive",
    _intervals_unsigned: "those are the sizes without their direction: a step down is negative",
    _intervals_from_first: "that measures every note from the first one; an interval is from one note to the next",
    _intervals_leading_zero: "the first note has no note before it: n notes have n - 1 intervals",
}


def _as_int_list(got):
    if isinstance(got, str) or not hasattr(got, "__len__"):
        raise CheckFailure(f"return a list of whole numbers (semitones), one per pair of neighbouring notes; "
                           f"you returned {short(got)}")
    out = []
    for v in list(got):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise CheckFailure(f"return whole numbers of semitones; your list holds {short(v)}") from None
        out.append(v if isinstance(v, (bool, np.bool_)) else int(x) if x.is_integer() else x)
    return out


_intervals = against(reference_melody_intervals, INTERVAL_MISTAKES, rtol=0, atol=1e-9, convert=_as_int_list)


def _compare_intervals(got, melody):
    try:
        _intervals(got, melody)
    except CheckFailure as e:
        text = str(e)
        if "n - 1" not in text and hasattr(got, "__len__") and len(got) == len(melody.notes) > 0:
            raise CheckFailure(f"{text.rstrip('. ')}; one interval per pair of neighbouring notes: "
                               "n notes have n - 1 intervals") from None
        raise


@exercise(compare=_compare_intervals,
          hint="an interval is how far the next note lies from this one, in semitones: up is positive, down "
               "negative, a repeated note 0; n notes have n - 1 intervals")
def melody_intervals(r):
    """Check ``melody_intervals(melody) -> list of ints`` (semitones from each note to the next)."""
    cases = [
        Case("Twinkle, twinkle", _melody(_TWINKLE, title="twinkle")),
        Case("leaps up and down", _melody([(64, 0, 1), (79, 1, 1), (55, 2, 1), (62, 3, 1), (64, 4, 2)])),
        Case("a scale down", _melody([(72 - s, i, 1) for i, s in enumerate([0, 1, 3, 5, 7, 8, 10, 12])])),
        Case("a single note", _melody([(69, 0, 1)])),
    ]
    return cases + [Case(f"random #{i + 1}", _random_melody(r, int(r.integers(6, 16)))) for i in range(4)]
