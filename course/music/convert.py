"""``as_music``: accept whatever a student has at hand and return a :class:`Music`.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import MusicError
from .core import Music, Note, Part

__all__ = ["as_music"]


def as_music(x, *, steps_per_quarter: int = 4, qpm: float = 120.0) -> Music:
    """Convert ``x`` to a :class:`Music`.

    Accepts: a Music; a list of Notes or ``(pitch, start, end[, velocity, part])`` tuples;
    a MIDI path, bytes or ``PrettyMIDI``; a music21 stream; a 2-D piano roll (NumPy or torch,
    88 columns = piano keys from A0, 128 = all MIDI pitches) at ``steps_per_quarter``.
    """
    if isinstance(x, Music):
        return x
    if isinstance(x, (str, os.PathLike, bytes, bytearray)):
        from .midi_io import read_midi

        return read_midi(x)
    mod = type(x).__module__ or ""
    if mod.startswith("pretty_midi"):
        from .midi_io import from_pretty_midi

        return from_pretty_midi(x)
    if mod.startswith("music21"):
        from .m21 import from_music21

        return from_music21(x)
    if hasattr(x, "detach") or isinstance(x, np.ndarray):
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else x
        if arr.ndim == 2 and arr.shape[1] in (88, 128):
            from .pianoroll import from_pianoroll

            return from_pianoroll(arr, steps_per_quarter, low=21 if arr.shape[1] == 88 else 0, qpm=qpm)
        raise MusicError(f"An array of shape {arr.shape} is not a piano roll; expected (time steps, 88) or (time steps, 128).")
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise MusicError("An empty list has no notes to play.")
        notes = tuple(n if isinstance(n, Note) else Note(*n) for n in x)
        n_parts = max(n.part for n in notes) + 1
        return Music(notes=notes, qpm=qpm, parts=tuple(Part() for _ in range(n_parts)))
    raise MusicError(f"Cannot turn a {type(x).__name__} into music. Give a Music, a list of Notes, "
                     "a MIDI file path or bytes, a PrettyMIDI, a music21 stream or a piano roll.")
