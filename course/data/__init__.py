"""``course.data``: data sets built from the music21 corpus, and PyTorch helpers.

Two data sets ship with the course as small files under ``datasets/`` (see its README):

- ``"chorales"``: Bach's four-part chorales (lessons 00, 01, 04, 08, 09; ``data.bars`` cuts them into bars,
  ``data.voices`` reads them as four pitch lines);
- ``"folk"``: a few thousand folk tunes, as notes and as melody tokens (lessons 03, 06, 09).

::

    from course import data
    pieces = data.load("chorales", "train")          # Music objects, made on demand
    rolls = data.pianorolls("chorales", "train")      # uint8 (T, 88) at one step per quarter
    tokens = data.melody_tokens("train")              # int64 MelodyVocab ids, one array per tune

``python -m course data build`` rebuilds the files from the corpus, bit for bit.
The PyTorch helpers (``PianoRollDataset``, ``TokenDataset``, ``collate``, ``transpose_roll``)
import torch when first used, so ``import course.data`` stays quick.

Lesson: 00_welcome
"""
from __future__ import annotations

import importlib

from .bars import BAR_HIGH, BAR_LOW, KEY_PROFILES, bar_pairs, bars, estimate_key
from .benchmark import BENCHMARK_NAMES, load_polyphonic_benchmark
from .sets import Pieces, describe, load, melody_tokens, melody_vocab, names, pianorolls
from .store import SPLITS, datasets_dir, split_of
from .voices import VOICE_HIGH, VOICE_LOW, VOICE_NAMES, melody_to_steps, voice_crops, voices, voices_to_music

__all__ = [
    "names", "load", "describe", "Pieces", "pianorolls", "melody_tokens", "melody_vocab",
    "bars", "bar_pairs", "estimate_key", "KEY_PROFILES", "BAR_LOW", "BAR_HIGH",
    "voices", "voice_crops", "voices_to_music", "melody_to_steps", "VOICE_LOW", "VOICE_HIGH", "VOICE_NAMES",
    "split_of", "datasets_dir", "SPLITS", "load_polyphonic_benchmark", "BENCHMARK_NAMES",
    "PianoRollDataset", "TokenDataset", "collate", "RollBatch", "transpose_roll",
]

_TORCH = {"PianoRollDataset", "TokenDataset", "collate", "RollBatch", "transpose_roll"}


def __getattr__(name: str):
    if name in _TORCH:
        return getattr(importlib.import_module(".torchdata", __name__), name)
    raise AttributeError(f"module 'course.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _TORCH)
