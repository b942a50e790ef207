"""``course.music``: the one representation of music and its conversions.

Every conversion is a ``to_x`` / ``from_x`` pair. Times are seconds; ``qpm`` and
``steps_per_quarter`` turn them into beats and grid steps.

Lesson: 01_music_as_data
"""
from .convert import as_music
from .core import MAX_NOTES, Music, Note, Part
from .m21 import from_music21, to_music21
from .midi_io import from_midi, from_pretty_midi, read_midi, to_midi, to_pretty_midi, write_midi
from .pianoroll import PIANO_HIGH, PIANO_LOW, from_pianoroll, to_pianoroll
from .tokens import (FrameVocab, MelodyVocab, frame_index, from_frame_tokens, from_melody_tokens, from_text,
                     parse_pitch, pitch_name, to_frame_tokens, to_melody_tokens, to_text)
from .transforms import monophonic, quantize, transpose, trim, with_tempo

__all__ = [
    "Music", "Note", "Part", "MAX_NOTES", "as_music",
    "read_midi", "write_midi", "to_midi", "from_midi", "to_pretty_midi", "from_pretty_midi",
    "to_music21", "from_music21",
    "to_pianoroll", "from_pianoroll", "PIANO_LOW", "PIANO_HIGH",
    "MelodyVocab", "to_melody_tokens", "from_melody_tokens",
    "FrameVocab", "to_frame_tokens", "from_frame_tokens", "frame_index",
    "to_text", "from_text", "pitch_name", "parse_pitch",
    "transpose", "quantize", "monophonic", "trim", "with_tempo",
]
